package events

import (
	"bytes"
	"errors"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzNotification feeds arbitrary bodies through the handler's calls, once
// as received and once re-signed with the demo credentials so that parsing
// is reached. Whatever the input: no panic, only the documented error types,
// and every event that comes out encodes, validates against its schema, and
// encodes to the same bytes by hand as through encoding/json.
func FuzzNotification(f *testing.F) {
	for _, fx := range loadFixtures(f) {
		f.Add(fx.body)
	}
	f.Add("TransactionType=108&IdUser=1&Terminal=1000&MonthsToExpire=-1")
	f.Add("TransactionType=9&TpvID=1000&Order=a%5B1%5D20261224&Response=ok&Amount=0&Currency=kwd&BankDateTime=20260329023000")
	f.Add("TransactionType=200&TpvID=1000&Order=%E2%80%A8&Amount=1&Amount=1")
	v := demoVerifier()
	f.Fuzz(func(t *testing.T, body string) {
		form, err := DecodeForm([]byte(body), "")
		if err != nil {
			return // the notification path answers 400 before calling us
		}
		check(t, v, form)
		vals := clone(form.Values())
		Sign(vals, demoMerchant, demoPassword)
		check(t, v, FormFromValues(vals))
	})
}

func check(t *testing.T, v *Verifier, f Form) {
	form := f.Values()
	ev, err := func() (Event, error) {
		a, err := v.Authenticate(form, Channel{AllowedIP: true})
		if err != nil {
			return Event{}, err
		}
		if a.Method == "" || a.Terminal != demoTerminal || a.Type <= 0 {
			t.Fatalf("Authenticate() succeeded with %+v", a)
		}
		return Parse(f, a, receivedAt)
	}()
	var fe *FieldError
	var ae *AuthError
	switch {
	case err == nil:
	case errors.As(err, &fe):
		if fe.Field == "" || fe.Problem == "" {
			t.Fatalf("empty FieldError %#v", fe)
		}
		ev = rejectedFor(err, 400, form, form.Encode(), "192.0.2.1")
	case errors.As(err, &ae):
		if ae.Err == nil {
			t.Fatalf("AuthError without sentinel: %v", err)
		}
		ev = rejectedFor(err, 401, form, form.Encode(), "192.0.2.1")
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
	b := validate(t, ev)
	if !utf8.Valid(b) {
		t.Fatalf("encoded event is not valid UTF-8: %q", b)
	}
	for _, tp := range []string{"", goldenTraceParent} {
		ev.TraceParent = tp
		if fast, ok := ev.encodeFast(); ok {
			if want, err := ev.encodeReflect(); err != nil || !bytes.Equal(fast, want) {
				t.Fatalf("fast encoding differs from encoding/json (%v):\nfast: %s\njson: %s", err, fast, want)
			}
		}
	}
}

// FuzzAuthenticate holds the verifier to the formulas written out
// independently in helpers_test.go, whatever the fields: a signature it
// accepts is the reference one for the type; a notification signed with the
// reference formula (in either hex case) is never refused as badly signed,
// only as malformed (or, for a 108, for lack of its channel); and one changed
// character of a signed field is refused. A 108 is accepted only through its
// channel, and a hash it carries must verify.
func FuzzAuthenticate(f *testing.F) {
	for _, fx := range loadFixtures(f) {
		f.Add(fx.body, uint8(0), uint8(0))
		f.Add(fx.body, uint8(3), uint8(1))
	}
	f.Add("TransactionType=107&Order=x&DateTime=1", uint8(1), uint8(3))
	f.Add("TransactionType=108&Terminal=31337&IdUser=1&MonthsToExpire=2", uint8(6), uint8(2))
	f.Add("TransactionType=0107&TpvID=31337&TpvID=31337&Order=a&Order=a", uint8(2), uint8(0))
	f.Add("TransactionType=200&Amount=1&Amount=2", uint8(10), uint8(0))
	v := testVerifier()
	f.Fuzz(func(t *testing.T, body string, mode, channel uint8) {
		form, err := url.ParseQuery(body)
		if err != nil {
			return
		}
		ch := Channel{URLToken: channel&1 != 0, AllowedIP: channel&2 != 0}

		a, err := v.Authenticate(form, ch)
		checkAuth(t, form, a, err, ch)

		tt := form.Get("TransactionType")
		typ, convErr := strconv.Atoi(tt)
		terminalField := "TpvID"
		if convErr == nil && typ == TypeCardExpiry {
			terminalField = "Terminal"
		}
		form.Set(terminalField, tTerminal)
		h := refHashA(tMerchant, tTerminal, tPassword, form)
		if convErr == nil && typ == TypeCardRegistration {
			h = refHashB(tMerchant, tTerminal, tPassword, form)
		}
		if mode&1 != 0 {
			h = strings.ToUpper(h)
		}
		form.Set("NotificationHash", h)
		a, err = v.Authenticate(form, ch)
		if errors.Is(err, ErrBadSignature) || errors.Is(err, ErrMissingSignature) || errors.Is(err, ErrUnknownTerminal) ||
			(errors.Is(err, ErrUnsignedNotAllowed) && a.Type != TypeCardExpiry) {
			t.Fatalf("Authenticate(%v) signed with the reference formula = %v", form, err)
		}
		checkAuth(t, form, a, err, ch)
		if err != nil || mode&2 == 0 {
			return
		}
		signed := []string{"Order", "Amount", "Currency", "BankDateTime", "Response"}
		if a.Formula == "B" {
			signed = []string{"Order", "DateTime"}
		}
		field := signed[int(mode>>2)%len(signed)]
		form.Set(field, form.Get(field)+"0")
		// The input of the formula that matched grew by one byte, so it
		// cannot match again. The other formula may (the formulas are plain
		// concatenations: A over empty fields is B over empty fields), and
		// checkAuth holds any acceptance to the reference.
		a2, err := v.Authenticate(form, ch)
		checkAuth(t, form, a2, err, ch)
		if err == nil && a.Formula != "" && a2.Formula == a.Formula {
			t.Fatalf("Authenticate(%v) with %s changed = %+v, want an error", form, field, a2)
		}
	})
}

// checkAuth checks one Authenticate result against the reference formulas.
func checkAuth(t *testing.T, form url.Values, a Auth, err error, ch Channel) {
	t.Helper()
	var fe *FieldError
	var ae *AuthError
	switch {
	case err == nil:
	case errors.As(err, &fe):
		if fe.Field == "" || fe.Problem == "" {
			t.Fatalf("empty FieldError %#v", fe)
		}
		return
	case errors.As(err, &ae):
		if ae.Err == nil {
			t.Fatalf("AuthError without sentinel: %v", err)
		}
		if a.Method != "" {
			t.Fatalf("Authenticate failed with %v but returned Method %q", err, a.Method)
		}
		return
	default:
		t.Fatalf("undocumented error %T %v", err, err)
	}
	if a.Terminal != tTerminal || a.Type <= 0 {
		t.Fatalf("Authenticate(%v) = %+v", form, a)
	}
	hash := form.Get("NotificationHash")
	refA, refB := refHashA(tMerchant, a.Terminal, tPassword, form), refHashB(tMerchant, a.Terminal, tPassword, form)
	switch a.Method {
	case AuthURLToken, AuthIPAllowlist:
		// A 108, and only a 108, is accepted through its channel; a hash it
		// carries must still be a valid one.
		if a.Type != TypeCardExpiry || a.Formula != "" {
			t.Fatalf("Authenticate(%v) accepted by channel: %+v", form, a)
		}
		if (a.Method == AuthURLToken) != ch.URLToken || (a.Method == AuthIPAllowlist && !ch.AllowedIP) {
			t.Fatalf("Authenticate(%v) through %s with channel %+v", form, a.Method, ch)
		}
		if hash != "" && !strings.EqualFold(hash, refA) && !strings.EqualFold(hash, refB) {
			t.Fatalf("Authenticate(%v) accepted a 108 whose hash %s is neither reference formula", form, hash)
		}
	case AuthSignature:
		want := refA
		if a.Formula == "B" {
			want = refB
		} else if a.Formula != "A" {
			t.Fatalf("Authenticate(%v) formula %q", form, a.Formula)
		}
		if a.Type == TypeCardExpiry || !strings.EqualFold(hash, want) {
			t.Fatalf("Authenticate(%v) accepted hash %s, reference formula %s gives %s", form, hash, a.Formula, want)
		}
	default:
		t.Fatalf("Authenticate(%v) succeeded with method %q", form, a.Method)
	}
}

// FuzzSignedFieldsDecideID is the property of issue 8: for a signed
// notification, changing (or adding) any field the signature does not cover
// never changes the event id, only the Fingerprint; changing any signed
// field to another value, re-signed so that it still verifies, always
// changes the id.
func FuzzSignedFieldsDecideID(f *testing.F) {
	for _, fx := range loadFixtures(f) {
		f.Add(fx.body, uint8(0), "X", "AuthCode")
		f.Add(fx.body, uint8(5), "", "IdUser")
		f.Add(fx.body, uint8(130), "1", "TokenUser")
	}
	f.Add("TransactionType=20&TpvID=1&Order=a&Amount=1&Currency=EUR&BankDateTime=20261124101500&Response=OK", uint8(3), "7", "Extra")
	f.Add("TransactionType=200&Order=a&DateTime=20261124101500&Amount=3", uint8(129), "", "Response")
	v := testVerifier()
	f.Fuzz(func(t *testing.T, body string, pick uint8, newValue, addName string) {
		form, err := DecodeForm([]byte(body), "")
		if err != nil {
			return
		}
		vals := form.Values()
		if vals == nil {
			vals = url.Values{}
		}
		typ, convErr := strconv.Atoi(vals.Get("TransactionType"))
		if convErr != nil || typ == TypeCardExpiry {
			return // a 108 is vouched for by its channel, not a signature
		}
		vals.Set("TpvID", tTerminal)
		formula := "A"
		if a, b := formulas(typ); !a || (b && pick&128 != 0) {
			formula = "B"
		}
		sign := func(g url.Values, formula string) {
			if formula == "B" {
				g.Set("NotificationHash", refHashB(tMerchant, tTerminal, tPassword, g))
			} else {
				g.Set("NotificationHash", refHashA(tMerchant, tTerminal, tPassword, g))
			}
		}
		sign(vals, formula)
		id0, a0, ok := eventIDOf(v, vals)
		if !ok {
			return
		}
		inputs := map[string]bool{"NotificationHash": true}
		for _, k := range signedA {
			inputs[k] = a0.Formula == "A"
		}
		for _, k := range signedB {
			inputs[k] = inputs[k] || a0.Formula == "B"
		}

		// An unsigned field edited, or added.
		var unsigned []string
		for k := range vals {
			if !inputs[k] && k != "NotificationHash" {
				unsigned = append(unsigned, k)
			}
		}
		slices.Sort(unsigned)
		name := addName
		if len(unsigned) > 0 && pick&1 == 0 {
			name = unsigned[int(pick>>1)%len(unsigned)]
		}
		if name != "" && !inputs[name] && name != "NotificationHash" {
			g := clone(vals)
			old := g[name]
			g.Set(name, newValue)
			id, _, ok := eventIDOf(v, g)
			if ok && id != id0 {
				t.Fatalf("changing unsigned %s from %q to %q changed the id (%s -> %s) of %v", name, old, newValue, id0, id, vals)
			}
			if !slices.Equal(old, g[name]) && Fingerprint(g) == Fingerprint(vals) {
				t.Fatalf("changing %s does not change the Fingerprint", name)
			}
		}

		// A signed field changed and re-signed.
		var signed []string
		for _, k := range a0.SignedFields {
			if k != "TpvID" {
				signed = append(signed, k)
			}
		}
		if len(signed) == 0 {
			return
		}
		sf := signed[int(pick>>1)%len(signed)]
		g := clone(vals)
		nv := newValue
		if nv == g.Get(sf) {
			nv += "0"
		}
		g.Set(sf, nv)
		sign(g, a0.Formula)
		id, a1, ok := eventIDOf(v, g)
		if ok && id == id0 {
			t.Fatalf("changing signed %s from %q to %q (formula %s, then %s) kept the id %s", sf, vals.Get(sf), nv, a0.Formula, a1.Formula, id)
		}
	})
}

// eventIDOf authenticates and parses form; ok is false when either refuses it.
func eventIDOf(v *Verifier, form url.Values) (string, Auth, bool) {
	a, err := v.Authenticate(form, Channel{})
	if err != nil || a.Method != AuthSignature {
		return "", a, false
	}
	e, err := Parse(FormFromValues(form), a, receivedAt)
	if err != nil {
		return "", a, false
	}
	return e.ID, a, true
}
