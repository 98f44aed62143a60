package events

import (
	"net/url"
	"testing"
)

// TestSignedIDAIsTheNotificationsID: the reconciler's id for an operation
// is the id its formula-A notification gets, whatever signedKey's encoding.
func TestSignedIDAIsTheNotificationsID(t *testing.T) {
	form := url.Values{fTransactionType: {"1"}, fOrder: {"O1"}, fAmount: {"2500"}, fCurrency: {"EUR"},
		fBankDateTime: {"20260302090200"}, fResponse: {"OK"}, "AuthCode": {"x"}}
	want := signedKey("A", "1000", form)
	if got := SignedIDA("1000", "1", "O1", "2500", "EUR", "20260302090200", "OK"); got != want {
		t.Fatalf("SignedIDA = %s, want the notification's %s", got, want)
	}
	if SignedIDA("1000", "1", "O1", "2500", "EUR", "20260302090201", "OK") == want {
		t.Fatal("SignedIDA ignores BankDateTime")
	}
}
