package events

import (
	"errors"
	"net/url"
	"regexp"
	"testing"
	"time"

	"github.com/paycomet-notify/paycomet-notify/config"
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

var authCodeShape = regexp.MustCompile(`^[0-9]{6}/[0-9]{10}$`)

// TestSampleEveryType checks that Sample's defaults make notifications the
// demo server accepts, with the fields the notifications doc lists, signed
// as the reference formulas say.
func TestSampleEveryType(t *testing.T) {
	v := demoVerifier()
	when := time.Date(2026, 11, 24, 10, 15, 0, 0, time.UTC) // written in Madrid time
	for _, typ := range []int{1, 2, 3, 4, 6, 9, 13, 14, 16, 106, 107, 108, 109, 200} {
		for _, resp := range []string{"OK", "KO"} {
			if typ == TypeCardExpiry && resp == "KO" {
				continue
			}
			f := Sample(SampleOptions{Type: typ, Response: resp, When: when})
			name := OperationName(typ) + " " + resp
			a, err := v.Authenticate(f, Channel{URLToken: true})
			if err != nil {
				t.Fatalf("%s: Authenticate(Sample) = %v", name, err)
			}
			e, err := Parse(f, a, receivedAt)
			if err != nil {
				t.Fatalf("%s: Parse(Sample) = %v", name, err)
			}
			validate(t, e)

			switch typ {
			case TypeCardExpiry:
				if f.Has("NotificationHash") {
					t.Errorf("%s: Sample signed a 108", name)
				}
				for _, k := range []string{"IdUser", "Terminal", "MonthsToExpire", "Name", "Domain", "TransactionName"} {
					if f.Get(k) == "" {
						t.Errorf("%s: Sample has no %s", name, k)
					}
				}
				continue
			case TypeCardRegistration:
				if got, want := f.Get("NotificationHash"), refHashB(config.DemoMerchantCode, config.DemoTerminal, config.DemoPassword, f); got != want {
					t.Errorf("%s: hash %s, want %s", name, got, want)
				}
				if f.Get("DateTime") != "20261124111500" {
					t.Errorf("%s: DateTime %q, want Madrid time 20261124111500", name, f.Get("DateTime"))
				}
			default:
				if got, want := f.Get("NotificationHash"), refHashA(config.DemoMerchantCode, config.DemoTerminal, config.DemoPassword, f); got != want {
					t.Errorf("%s: hash %s, want %s", name, got, want)
				}
				if f.Get("BankDateTime") != "20261124111500" || f.Get("Amount") != "1000" || f.Get("Currency") != "EUR" {
					t.Errorf("%s: BankDateTime, Amount, Currency = %q, %q, %q", name, f.Get("BankDateTime"), f.Get("Amount"), f.Get("Currency"))
				}
				if resp == "OK" && !authCodeShape.MatchString(f.Get("AuthCode")) {
					t.Errorf("%s: AuthCode %q", name, f.Get("AuthCode"))
				}
			}
			if f.Get("TpvID") != config.DemoTerminal {
				t.Errorf("%s: TpvID %q", name, f.Get("TpvID"))
			}
			if resp == "KO" && (f.Get("ErrorID") == "0" || f.Get("ErrorDescription") == "") {
				t.Errorf("%s: KO without ErrorID/ErrorDescription", name)
			}
			if resp == "OK" && typ == TypeCardRegistration && (f.Get("IdUser") == "" || f.Get("TokenUser") == "") {
				t.Errorf("%s: OK without IdUser/TokenUser", name)
			}
		}
	}
}

func TestSampleOptions(t *testing.T) {
	when := time.Date(2026, 11, 24, 10, 15, 0, 0, Madrid())
	t.Run("deterministic", func(t *testing.T) {
		a := Sample(SampleOptions{Type: 1, When: when})
		b := Sample(SampleOptions{Type: 1, When: when})
		if a.Encode() != b.Encode() {
			t.Errorf("Sample differs between calls:\n%s\n%s", a.Encode(), b.Encode())
		}
	})
	t.Run("own credentials", func(t *testing.T) {
		f := Sample(SampleOptions{Type: 1, MerchantCode: tMerchant, Terminal: tTerminal, Password: tPassword, When: when,
			Order: "O-1", Amount: 250, Currency: "USD", IdUser: 77, TokenUser: "tok"})
		if _, err := testVerifier().Authenticate(f, Channel{}); err != nil {
			t.Fatalf("Authenticate() = %v", err)
		}
		for k, want := range map[string]string{"Order": "O-1", "Amount": "250", "Currency": "USD", "IdUser": "77", "TokenUser": "tok", "TpvID": tTerminal} {
			if got := f.Get(k); got != want {
				t.Errorf("%s = %q, want %q", k, got, want)
			}
		}
		if f.Has("AmountEur") {
			t.Errorf("AmountEur set for a USD payment")
		}
	})
	t.Run("instalment order", func(t *testing.T) {
		f := Sample(SampleOptions{Type: 9, Order: "SUB-1", IdUser: 42, Instalment: true, When: when})
		if got := f.Get("Order"); got != "SUB-1[42]20261124" {
			t.Errorf("Order = %q", got)
		}
	})
	t.Run("extra fields are signed", func(t *testing.T) {
		f := Sample(SampleOptions{Type: 1, When: when, Extra: url.Values{"Amount": {"77"}, "tpvLstr": {"notify"}}})
		if f.Get("Amount") != "77" || f.Get("tpvLstr") != "notify" {
			t.Fatalf("Extra not applied: %v", f)
		}
		if _, err := demoVerifier().Authenticate(f, Channel{}); err != nil {
			t.Errorf("Authenticate() = %v", err)
		}
	})
	t.Run("signed 108", func(t *testing.T) {
		f := Sample(SampleOptions{Type: 108, Signed: true, When: when})
		if !f.Has("NotificationHash") {
			t.Fatal("Signed 108 sample has no hash")
		}
		if _, err := demoVerifier().Authenticate(f, Channel{}); !errors.Is(err, ErrUnsignedNotAllowed) {
			t.Errorf("Authenticate(signed 108, no channel) = %v, want ErrUnsignedNotAllowed", err)
		}
		a, err := demoVerifier().Authenticate(f, Channel{URLToken: true})
		if err != nil || a.Method != AuthURLToken {
			t.Errorf("Authenticate(signed 108, url token) = %+v, %v", a, err)
		}
	})
	t.Run("unsigned", func(t *testing.T) {
		if f := Sample(SampleOptions{Type: 1, Unsigned: true, When: when}); f.Has("NotificationHash") {
			t.Error("Unsigned sample has a hash")
		}
	})
	t.Run("default order is unique per millisecond", func(t *testing.T) {
		a := Sample(SampleOptions{Type: 1, When: when})
		b := Sample(SampleOptions{Type: 1, When: when.Add(time.Millisecond)})
		if a.Get("Order") == b.Get("Order") {
			t.Errorf("both samples have Order %q", a.Get("Order"))
		}
	})
}
