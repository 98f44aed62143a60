package demo

import (
	"errors"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/paycomet-notify/paycomet-notify/events"
	"github.com/paycomet-notify/paycomet-notify/schemas"
	"github.com/paycomet-notify/paycomet-notify/secret"
)

// Credentials that are not the demo ones, for the "own credentials" case.
const (
	tMerchant = "MERCH042"
	tTerminal = "31337"
	tPassword = "s3cret-terminal-password"
)

var receivedAt = time.Date(2026, 11, 24, 9, 15, 3, 0, time.UTC)

func demoVerifier() *events.Verifier {
	return events.NewVerifier(MerchantCode, map[string]secret.Value{Terminal: secret.New(Password)})
}

// The formulas written out independently of package events (notifications
// doc section 5), so the samples are checked against the reference, not
// against events.Sign.
func md5hex(s string) string { return refHex(md5Sum([]byte(s))) }

func refHashA(merchant, terminal, password string, f url.Values) string {
	return refHex(sha512Sum([]byte(merchant + terminal + f.Get("TransactionType") + f.Get("Order") + f.Get("Amount") +
		f.Get("Currency") + md5hex(password) + f.Get("BankDateTime") + f.Get("Response"))))
}

func refHashB(merchant, terminal, password string, f url.Values) string {
	return refHex(sha512Sum([]byte(merchant + terminal + f.Get("TransactionType") + f.Get("Order") + f.Get("DateTime") + md5hex(password))))
}

// validate encodes e and checks its data against the schema it names.
func validate(t *testing.T, e events.Event) {
	t.Helper()
	b, err := e.Encode()
	if err != nil {
		t.Fatalf("Encode() = %v", err)
	}
	if err := schemas.ValidateEvent(b); err != nil {
		t.Errorf("event %s: %v\n%s", e.Type, err, b)
	}
}

func parse(t *testing.T, v *events.Verifier, f url.Values, ch events.Channel) events.Event {
	t.Helper()
	a, err := v.Authenticate(f, ch)
	if err != nil {
		t.Fatalf("Authenticate(Sample) = %v", err)
	}
	e, err := events.Parse(events.FormFromValues(f), a, receivedAt)
	if err != nil {
		t.Fatalf("Parse(Sample) = %v", err)
	}
	return e
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
			if typ == events.TypeCardExpiry && resp == "KO" {
				continue
			}
			f := Sample(SampleOptions{Type: typ, Response: resp, When: when})
			name := events.OperationName(typ) + " " + resp
			validate(t, parse(t, v, f, events.Channel{URLToken: true}))

			switch typ {
			case events.TypeCardExpiry:
				if f.Has("NotificationHash") {
					t.Errorf("%s: Sample signed a 108", name)
				}
				for _, k := range []string{"IdUser", "Terminal", "MonthsToExpire", "Name", "Domain", "TransactionName"} {
					if f.Get(k) == "" {
						t.Errorf("%s: Sample has no %s", name, k)
					}
				}
				continue
			case events.TypeCardRegistration:
				if got, want := f.Get("NotificationHash"), refHashB(MerchantCode, Terminal, Password, f); got != want {
					t.Errorf("%s: hash %s, want %s", name, got, want)
				}
				if f.Get("DateTime") != "20261124111500" {
					t.Errorf("%s: DateTime %q, want Madrid time 20261124111500", name, f.Get("DateTime"))
				}
			default:
				if got, want := f.Get("NotificationHash"), refHashA(MerchantCode, Terminal, Password, f); got != want {
					t.Errorf("%s: hash %s, want %s", name, got, want)
				}
				if f.Get("BankDateTime") != "20261124111500" || f.Get("Amount") != "1000" || f.Get("Currency") != "EUR" {
					t.Errorf("%s: BankDateTime, Amount, Currency = %q, %q, %q", name, f.Get("BankDateTime"), f.Get("Amount"), f.Get("Currency"))
				}
				if resp == "OK" && !authCodeShape.MatchString(f.Get("AuthCode")) {
					t.Errorf("%s: AuthCode %q", name, f.Get("AuthCode"))
				}
				if f.Get("AmountEur") != "10.00" {
					t.Errorf("%s: AmountEur %q, want 10.00", name, f.Get("AmountEur"))
				}
			}
			if f.Get("TpvID") != Terminal {
				t.Errorf("%s: TpvID %q", name, f.Get("TpvID"))
			}
			if resp == "KO" && (f.Get("ErrorID") == "0" || f.Get("ErrorDescription") == "") {
				t.Errorf("%s: KO without ErrorID/ErrorDescription", name)
			}
			if resp == "OK" && typ == events.TypeCardRegistration && (f.Get("IdUser") == "" || f.Get("TokenUser") == "") {
				t.Errorf("%s: OK without IdUser/TokenUser", name)
			}
		}
	}
}

func TestSampleOptions(t *testing.T) {
	when := time.Date(2026, 11, 24, 10, 15, 0, 0, events.Madrid())
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
		v := events.NewVerifier(tMerchant, map[string]secret.Value{tTerminal: secret.New(tPassword)})
		if _, err := v.Authenticate(f, events.Channel{}); err != nil {
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
	t.Run("small euro amount", func(t *testing.T) {
		if got := Sample(SampleOptions{Type: 1, Amount: 5, When: when}).Get("AmountEur"); got != "0.05" {
			t.Errorf("AmountEur = %q, want 0.05", got)
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
		if _, err := demoVerifier().Authenticate(f, events.Channel{}); err != nil {
			t.Errorf("Authenticate() = %v", err)
		}
	})
	t.Run("signed 108", func(t *testing.T) {
		f := Sample(SampleOptions{Type: 108, Signed: true, When: when})
		if !f.Has("NotificationHash") {
			t.Fatal("Signed 108 sample has no hash")
		}
		if _, err := demoVerifier().Authenticate(f, events.Channel{}); !errors.Is(err, events.ErrUnsignedNotAllowed) {
			t.Errorf("Authenticate(signed 108, no channel) = %v, want ErrUnsignedNotAllowed", err)
		}
		a, err := demoVerifier().Authenticate(f, events.Channel{URLToken: true})
		if err != nil || a.Method != events.AuthURLToken {
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

// TestFixturesSignedForDemo: the shared fixtures verify with this package's
// credentials (events' own test checks them with restated constants).
func TestFixturesSignedForDemo(t *testing.T) {
	v := demoVerifier()
	for _, c := range fixtureCases() {
		if c.mod != nil || c.o.Type == events.TypeCardExpiry || strings.HasPrefix(c.name, "reject_401") {
			continue
		}
		f := Sample(c.o)
		if _, err := v.Authenticate(f, events.Channel{}); err != nil {
			t.Errorf("%s: Authenticate() = %v", c.name, err)
		}
	}
}
