package events

import (
	"testing"
)

// Known-answer vectors computed outside Go (Python hashlib), so the reference
// helpers of these tests are checked too.
func TestSignKnownAnswers(t *testing.T) {
	const (
		wantA = "00d7a36a9892de708e7dc9e9f6aa95eae0fd31063f3a1cd346272cfc20a2ea29717efef148b2f316a3a82931d20c3aa3cc9c71e3e6b0911ad0b9568df83669ce"
		wantB = "c32069ec98fd9950bd6a9b98ac04e686c8876ff8d6135ab6e8f7fc4fe49bcd72355bdd38905f0b59d6c2fd16363ee0652ad66d417d29b199fdd2af7631628cbf"
	)
	if got := SignA(tMerchant, tTerminal, "1", "PN-1", "1000", "EUR", tPassword, "20261124101500", "OK"); got != wantA {
		t.Errorf("SignA() = %s, want %s", got, wantA)
	}
	if got := SignB(tMerchant, tTerminal, "107", "4711_1", "20261124101500", tPassword); got != wantB {
		t.Errorf("SignB() = %s, want %s", got, wantB)
	}
	pay := paymentForm("1", "PN-1", "OK")
	if got := refHashA(tMerchant, tTerminal, tPassword, pay); got != wantA {
		t.Errorf("refHashA() = %s, want %s", got, wantA)
	}
	reg := cardRegistrationForm("OK")
	if got := refHashB(tMerchant, tTerminal, tPassword, reg); got != wantB {
		t.Errorf("refHashB() = %s, want %s", got, wantB)
	}
	Sign(pay, tMerchant, tPassword)
	Sign(reg, tMerchant, tPassword)
	if pay.Get("NotificationHash") != wantA || reg.Get("NotificationHash") != wantB {
		t.Errorf("Sign() set %s and %s, want %s and %s", pay.Get("NotificationHash"), reg.Get("NotificationHash"), wantA, wantB)
	}
}
