package events

import (
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestCheckFresh: a signed notification outside the dedupe window (or more
// than an hour ahead) is refused naming its formula's timestamp, because the
// receiver no longer remembers it and cannot tell it from a replay. Before,
// there was no such check: a notification from last year was accepted.
func TestCheckFresh(t *testing.T) {
	const maxAge = 720 * time.Hour
	stamp := time.Date(2026, 11, 24, 10, 15, 0, 0, Madrid()) // the forms' BankDateTime/DateTime
	payment := paymentForm("1", "PN-1", "OK")
	registration := cardRegistrationForm("OK")
	unknownB := url.Values{"TransactionType": {"200"}, "TpvID": {tTerminal}, "Order": {"X"}, "DateTime": {"20261124101500"}}
	unknownB.Set("NotificationHash", refHashB(tMerchant, tTerminal, tPassword, unknownB))
	cases := []struct {
		name   string
		form   url.Values
		field  string
		now    time.Time
		stale  bool
		signed bool
	}{
		{"A, just received", payment, "BankDateTime", stamp.Add(2 * time.Second), false, false},
		{"A, exactly maxAge old", payment, "BankDateTime", stamp.Add(maxAge), false, false},
		{"A, a second older than maxAge", payment, "BankDateTime", stamp.Add(maxAge + time.Second), true, false},
		{"A, a year old", payment, "BankDateTime", stamp.AddDate(1, 0, 0), true, false},
		{"A, exactly an hour ahead", payment, "BankDateTime", stamp.Add(-time.Hour), false, false},
		{"A, an hour and a second ahead", payment, "BankDateTime", stamp.Add(-time.Hour - time.Second), true, false},
		{"B, just received", registration, "DateTime", stamp, false, false},
		{"B, a second older than maxAge", registration, "DateTime", stamp.Add(maxAge + time.Second), true, false},
		{"B, exactly maxAge old", registration, "DateTime", stamp.Add(maxAge), false, false},
		{"B, an hour and a second ahead", registration, "DateTime", stamp.Add(-time.Hour - time.Second), true, false},
		{"B, exactly an hour ahead", registration, "DateTime", stamp.Add(-time.Hour), false, false},
		{"unknown type matched by B reads DateTime", unknownB, "DateTime", stamp.Add(maxAge + time.Second), true, true},
		{"card expiry has no signed time", cardExpiryForm(), "", stamp.AddDate(5, 0, 0), false, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var e Event
			var a Auth
			if c.signed {
				var err error
				a, err = testVerifier().Authenticate(c.form, Channel{})
				if err != nil {
					t.Fatal(err)
				}
				if e, err = Parse(FormFromValues(c.form), a, receivedAt); err != nil {
					t.Fatal(err)
				}
			} else {
				e = mustParse(t, c.form)
				a = authOf(t, c.form)
			}
			err := CheckFresh(e, a, c.now, maxAge)
			if !c.stale {
				if err != nil {
					t.Fatalf("CheckFresh() = %v, want nil", err)
				}
				return
			}
			var fe *FieldError
			if !errors.Is(err, ErrStale) || !errors.As(err, &fe) || fe.Field != c.field {
				t.Fatalf("CheckFresh() = %v, want a *FieldError on %s wrapping ErrStale", err, c.field)
			}
			if ReasonOf(err) != ReasonStale {
				t.Errorf("ReasonOf(%v) = %q, want stale", err, ReasonOf(err))
			}
			if !strings.HasPrefix(err.Error(), c.field+": ") {
				t.Errorf("error %q does not name %s first", err, c.field)
			}
		})
	}
}

// TestCheckFreshMissingTimestamp: an operation_N signed without its
// formula's timestamp cannot show it is recent.
func TestCheckFreshMissingTimestamp(t *testing.T) {
	f := url.Values{"TransactionType": {"200"}, "TpvID": {tTerminal}, "Order": {"X"}, "Amount": {"1"}}
	e := mustParse(t, f)
	err := CheckFresh(e, authOf(t, f), receivedAt, time.Hour)
	var fe *FieldError
	if !errors.Is(err, ErrStale) || !errors.As(err, &fe) || fe.Field != "BankDateTime" {
		t.Errorf("CheckFresh(no BankDateTime) = %v", err)
	}
}

// authOf is the Auth mustParse's signing gives f.
func authOf(t *testing.T, f url.Values) Auth {
	t.Helper()
	g := clone(f)
	switch g.Get("TransactionType") {
	case "107":
		g.Set("NotificationHash", refHashB(tMerchant, tTerminal, tPassword, g))
	case "108":
	default:
		g.Set("NotificationHash", refHashA(tMerchant, tTerminal, tPassword, g))
	}
	a, err := testVerifier().Authenticate(g, Channel{URLToken: true})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestReasonOf(t *testing.T) {
	cases := []struct {
		err  error
		want string
	}{
		{nil, ""},
		{errors.New("other"), ""},
		{ErrNotAuthenticated, ""},
		{authError(ErrBadSignature, ""), ReasonBadSignature},
		{authError(ErrMissingSignature, ""), ReasonMissingSignature},
		{authError(ErrUnknownTerminal, "TpvID \"9\""), ReasonUnknownTerminal},
		{authError(ErrUnsignedNotAllowed, ""), ReasonUnsignedWithoutToken},
		{missing("Order"), ReasonMalformed},
		{conflict("Amount"), ReasonMalformed},
		{&FieldError{Field: "BankDateTime", Problem: "old", Err: ErrStale}, ReasonStale},
	}
	for _, c := range cases {
		if got := ReasonOf(c.err); got != c.want {
			t.Errorf("ReasonOf(%v) = %q, want %q", c.err, got, c.want)
		}
	}
	// Through the real calls.
	v := testVerifier()
	f := paymentForm("1", "PN-1", "OK")
	if _, err := v.Authenticate(f, Channel{}); ReasonOf(err) != ReasonMissingSignature {
		t.Errorf("unsigned: %v -> %q", err, ReasonOf(err))
	}
	if _, err := v.Authenticate(withHash(f, strings.Repeat("0", 128)), Channel{}); ReasonOf(err) != ReasonBadSignature {
		t.Errorf("bad signature: %v -> %q", err, ReasonOf(err))
	}
	if _, err := v.Authenticate(cardExpiryForm(), Channel{}); ReasonOf(err) != ReasonUnsignedWithoutToken {
		t.Errorf("108 without token: %v -> %q", err, ReasonOf(err))
	}
}

func TestFingerprint(t *testing.T) {
	f := url.Values{"a": {"1", "2"}, "b": {"x"}}
	fp := Fingerprint(f)
	if !idPattern.MatchString(fp) {
		t.Fatalf("Fingerprint = %q, want 32 lower-case hex digits", fp)
	}
	same := []url.Values{
		{"b": {"x"}, "a": {"1", "2"}},
		{"a": {"2", "1"}, "b": {"x"}},
	}
	for _, g := range same {
		if Fingerprint(g) != fp {
			t.Errorf("Fingerprint(%v) differs from Fingerprint(%v): order must not count", g, f)
		}
	}
	differ := []url.Values{
		{"a": {"1", "2"}, "b": {"y"}},
		{"a": {"1", "2", "2"}, "b": {"x"}},
		{"a": {"1"}, "b": {"x"}},
		{"a": {"1", "2"}, "b": {"x"}, "c": {""}},
		{"a": {"12"}, "b": {"x"}},
		{"a1": {"2"}, "b": {"x"}},
		{"a": {"1", "2"}, "b": {"x\xff"}},
		{"a": {"1", "2"}},
	}
	seen := map[string]int{fp: -1}
	for i, g := range differ {
		h := Fingerprint(g)
		if j, dup := seen[h]; dup {
			t.Errorf("Fingerprint(%v) equals that of case %d", g, j)
		}
		seen[h] = i
	}
	if Fingerprint(url.Values{"a": {"1", "2"}}) == Fingerprint(url.Values{"a": {"2"}, "a1": {""}}) {
		t.Error("pairs are not delimited")
	}
}

// TestRejectedData: the quarantine event keeps the exact request, names the
// reason by its code and never merges two requests.
func TestRejectedData(t *testing.T) {
	form, err := DecodeForm([]byte("TransactionType=1&Order=%ff1&Amount=1&Amount=2"), "x=1")
	if err != nil {
		t.Fatal(err)
	}
	body := []byte("TransactionType=1&Order=%ff1&Amount=1&Amount=2")
	in := RejectedInput{
		Reason: ReasonConflictingCopy, Detail: "a copy of an accepted notification with other fields",
		Status: 200, Form: form, Source: "192.0.2.7", ReceivedAt: receivedAt,
		Request:  RejectedRequest{Body: body, Query: "x=1\xfe", ContentType: "application/x-www-form-urlencoded", URLTokenPath: true},
		Terminal: tTerminal, EventID: "0123456789abcdef0123456789abcdef",
	}
	e := Rejected(in)
	validate(t, e)
	if e.Topic("paycomet") != "paycomet.rejected" || e.Type != EventTypeRejected || e.Subject != "%ff1" {
		t.Errorf("Topic, Type, Subject = %q, %q, %q", e.Topic("paycomet"), e.Type, e.Subject)
	}
	d := e.Data.(Rejection)
	if string(d.Request.Body) != string(body) || d.Request.Query != "x=1%FE" || !d.Request.URLTokenPath {
		t.Errorf("request = %+v", d.Request)
	}
	if got := d.Fields["Amount"]; len(got) != 2 || got[0] != "1" || got[1] != "2" {
		t.Errorf("fields.Amount = %q", got)
	}
	if d.Fields["Order"][0] != "%ff1" || len(d.RawPercentEncoded) != 1 || d.RawPercentEncoded[0] != "Order" {
		t.Errorf("fields.Order, raw_percent_encoded = %q, %q", d.Fields["Order"], d.RawPercentEncoded)
	}
	if Rejected(in).ID == e.ID {
		t.Error("the same request rejected twice shares an id")
	}

	// A request whose body could not be decoded (413, 415, too many fields).
	z := Rejected(RejectedInput{Reason: ReasonMediaType, Status: 415, Source: "192.0.2.7", ReceivedAt: receivedAt,
		Request: RejectedRequest{Body: []byte("{\"json\":1}"), ContentType: "application/json"}})
	validate(t, z)
	zd := z.Data.(Rejection)
	if zd.Fields != nil || zd.Detail != ReasonMediaType || string(zd.Request.Body) != "{\"json\":1}" {
		t.Errorf("undecoded request: %+v", zd)
	}
	empty := Rejected(RejectedInput{Reason: ReasonBodyTimeout, Status: 408, Source: "192.0.2.7", ReceivedAt: receivedAt})
	b := validate(t, empty)
	if !strings.Contains(string(b), `"body":""`) {
		t.Errorf("an empty body is not \"\": %s", b)
	}
}
