package events

import (
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/paycomet-notify/paycomet-notify/config"
)

// FuzzNotification feeds arbitrary bodies through the handler's calls, once
// as received and once re-signed with the demo credentials so that parsing
// is reached. Whatever the input: no panic, only the documented error types,
// and every event that comes out encodes and validates against its schema.
func FuzzNotification(f *testing.F) {
	for _, fx := range loadFixtures(f) {
		f.Add(fx.body)
	}
	f.Add("TransactionType=108&IdUser=1&Terminal=1000&MonthsToExpire=-1")
	f.Add("TransactionType=9&TpvID=1000&Order=a%5B1%5D20261224&Response=ok&Amount=0&Currency=kwd&BankDateTime=20260329023000")
	f.Add("TransactionType=200&TpvID=1000&Order=%E2%80%A8&Amount=1&Amount=1")
	v := demoVerifier()
	f.Fuzz(func(t *testing.T, body string) {
		form, err := url.ParseQuery(body)
		if err != nil {
			return // the handler answers 400 before calling us
		}
		check(t, v, form)
		Sign(form, config.DemoMerchantCode, config.DemoPassword)
		check(t, v, form)
	})
}

func check(t *testing.T, v *Verifier, form url.Values) {
	ev, err := func() (Event, error) {
		a, err := v.Authenticate(form, Channel{AllowedIP: true})
		if err != nil {
			return Event{}, err
		}
		if a.Method == "" || a.Terminal != config.DemoTerminal || a.Type <= 0 {
			t.Fatalf("Authenticate() succeeded with %+v", a)
		}
		return Parse(form, a, receivedAt)
	}()
	var fe *FieldError
	var ae *AuthError
	switch {
	case err == nil:
	case errors.As(err, &fe):
		if fe.Field == "" || fe.Problem == "" {
			t.Fatalf("empty FieldError %#v", fe)
		}
		ev = Rejected(err.Error(), 400, form, "192.0.2.1:1", receivedAt)
	case errors.As(err, &ae):
		if ae.Err == nil {
			t.Fatalf("AuthError without sentinel: %v", err)
		}
		ev = Rejected(err.Error(), 401, form, "192.0.2.1:1", receivedAt)
	default:
		t.Fatalf("undocumented error %T %v", err, err)
	}
	if !idPattern.MatchString(ev.ID) {
		t.Fatalf("ID %q", ev.ID)
	}
	if topic := ev.Topic("paycomet"); strings.Contains(topic, "..") || strings.HasSuffix(topic, ".") ||
		strings.ContainsAny(topic, " *>\t\r\n") {
		t.Fatalf("Topic() = %q", topic)
	}
	validate(t, ev)
}
