package events

import (
	"encoding/json"
	"errors"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// TestInvalidUTF8RoundTrips: bytes that are not UTF-8 reach data.raw as
// they were on the wire. Before, %ff and %fe both became U+FFFD, two
// different fields encoded as one key (issue 8).
func TestInvalidUTF8RoundTrips(t *testing.T) {
	f, err := DecodeForm([]byte("%ff=1&%fe=2"), "")
	if err != nil {
		t.Fatal(err)
	}
	raw, enc, err := f.raw()
	if err != nil {
		t.Fatal(err)
	}
	if want := (Raw{"%ff": "1", "%fe": "2"}); !reflect.DeepEqual(raw, want) {
		t.Errorf("raw = %q, want %q", raw, want)
	}
	if want := []string{"%fe", "%ff"}; !reflect.DeepEqual(enc, want) {
		t.Errorf("raw_percent_encoded = %q, want %q", enc, want)
	}
	if got := f.Values(); len(got["\xff"]) != 1 || len(got["\xfe"]) != 1 {
		t.Errorf("Values() = %q, want the decoded bytes 0xff and 0xfe", got)
	}
}

// TestInvalidUTF8InAnEvent: a signed notification with an invalid Order
// and an extra field: the event's JSON is valid UTF-8, raw, subject and
// order keep the wire text, and decoding the wire text gives the bytes back.
func TestInvalidUTF8InAnEvent(t *testing.T) {
	g := paymentForm("1", "PN\xff1", "OK")
	g.Set("NotificationHash", refHashA(tMerchant, tTerminal, tPassword, g))
	body := strings.ReplaceAll(g.Encode(), "%FF", "%ff") + "&Note%fe=caf%e9+ok&Lang=ES"
	f, err := DecodeForm([]byte(body), "tpvLstr=%ff")
	if err != nil {
		t.Fatal(err)
	}
	a, err := testVerifier().Authenticate(f.Values(), Channel{})
	if err != nil {
		t.Fatalf("Authenticate() = %v", err)
	}
	e, err := Parse(f, a, receivedAt)
	if err != nil {
		t.Fatalf("Parse() = %v", err)
	}
	b := validate(t, e)
	if !utf8.Valid(b) {
		t.Fatalf("encoded event is not valid UTF-8: %q", b)
	}
	var got struct {
		Subject string `json:"subject"`
		Data    struct {
			Order             string            `json:"order"`
			Raw               map[string]string `json:"raw"`
			RawPercentEncoded []string          `json:"raw_percent_encoded"`
		} `json:"data"`
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if got.Subject != "PN%ff1" || got.Data.Order != "PN%ff1" || got.Data.Raw["Order"] != "PN%ff1" {
		t.Errorf("subject, order, raw.Order = %q, %q, %q; want PN%%ff1", got.Subject, got.Data.Order, got.Data.Raw["Order"])
	}
	if v := got.Data.Raw["Note%fe"]; v != "caf%e9+ok" {
		t.Errorf("raw[Note%%fe] = %q, want the wire text caf%%e9+ok", v)
	}
	if v := got.Data.Raw["tpvLstr"]; v != "%ff" {
		t.Errorf("raw[tpvLstr] = %q", v)
	}
	if want := []string{"Note%fe", "Order", "tpvLstr"}; !reflect.DeepEqual(got.Data.RawPercentEncoded, want) {
		t.Errorf("raw_percent_encoded = %q, want %q", got.Data.RawPercentEncoded, want)
	}
	for _, k := range got.Data.RawPercentEncoded {
		name, err1 := url.QueryUnescape(k)
		value, err2 := url.QueryUnescape(got.Data.Raw[k])
		if err1 != nil || err2 != nil || f.Values().Get(name) != value {
			t.Errorf("%q=%q does not decode to a received field (%v, %v)", k, got.Data.Raw[k], err1, err2)
		}
	}
	if got.Data.Raw["Lang"] != "ES" {
		t.Errorf("a valid field is not kept as text: %q", got.Data.Raw["Lang"])
	}
}

func TestDecodeForm(t *testing.T) {
	t.Run("body then query", func(t *testing.T) {
		f, err := DecodeForm([]byte("a=1&b=x+y&c=%41%42"), "a=2&d")
		if err != nil {
			t.Fatal(err)
		}
		want := url.Values{"a": {"1", "2"}, "b": {"x y"}, "c": {"AB"}, "d": {""}}
		if !reflect.DeepEqual(f.Values(), want) {
			t.Errorf("Values() = %v, want %v", f.Values(), want)
		}
		if f.wire != nil {
			t.Errorf("valid UTF-8 remembered as wire text: %v", f.wire)
		}
	})
	t.Run("empty", func(t *testing.T) {
		f, err := DecodeForm(nil, "")
		if err != nil || f.Len() != 0 {
			t.Errorf("DecodeForm(nil) = %v, %v", f.Values(), err)
		}
	})
	bad := []struct{ body, query, field, problem string }{
		{"a=%zz", "", "body", "invalid %-escape"},
		{"a=%f", "", "body", "invalid %-escape"},
		{"%=1", "", "body", "invalid %-escape"},
		{"a=1;b=2", "", "body", "';'"},
		{"a=1", "b=%", "query", "invalid %-escape"},
		{strings.Repeat("a=1&", MaxFields) + "b=2", "", "body", "more than 1000 fields"},
		{strings.Repeat("a=1&", MaxFields), "b=2", "query", "more than 1000 fields"},
	}
	for _, c := range bad {
		_, err := DecodeForm([]byte(c.body), c.query)
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != c.field || !strings.Contains(fe.Problem, c.problem) {
			t.Errorf("DecodeForm(%.40q, %q) = %v, want a *FieldError %s: ...%s...", c.body, c.query, err, c.field, c.problem)
		}
		if ReasonOf(err) != ReasonMalformed {
			t.Errorf("ReasonOf(%v) = %q", err, ReasonOf(err))
		}
	}
	// Exactly MaxFields is accepted; empty pairs do not count.
	if _, err := DecodeForm([]byte(strings.Repeat("a=1&&", MaxFields-1)+"b=2"), ""); err != nil {
		t.Errorf("DecodeForm(%d fields) = %v", MaxFields, err)
	}
}

// TestTooManyFields: the 12,000-field body of issue 8 is refused at once,
// with an answer that says why.
func TestTooManyFields(t *testing.T) {
	var b strings.Builder
	for i := 0; i < 12000; i++ {
		b.WriteString("f" + strconv.Itoa(i) + "=1&")
	}
	_, err := DecodeForm([]byte(b.String()), "")
	if err == nil || err.Error() != "body: more than 1000 fields" {
		t.Errorf("DecodeForm(12000 fields) = %v, want body: more than 1000 fields", err)
	}
}

// TestPercentEncodedNameClash: the name "%ff" sent as text (%25ff) next to
// the byte 0xff could not be told apart in data.raw: malformed.
func TestPercentEncodedNameClash(t *testing.T) {
	f, err := DecodeForm([]byte("%25ff=1&%ff=2"), "")
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = f.raw()
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "%ff" {
		t.Errorf("raw() = %v, want a *FieldError on %%ff", err)
	}
}

func TestFormFromValues(t *testing.T) {
	f := FormFromValues(url.Values{"Order": {"a\xffb"}, "ok": {"1"}})
	raw, enc, err := f.raw()
	if err != nil {
		t.Fatal(err)
	}
	if raw["Order"] != "a%FFb" || raw["ok"] != "1" || !reflect.DeepEqual(enc, []string{"Order"}) {
		t.Errorf("raw, enc = %q, %q", raw, enc)
	}
}

// FuzzDecodeForm: DecodeForm agrees with url.ParseQuery on every form that
// ParseQuery accepts, and every percent-encoded entry's wire text decodes
// back to the received bytes.
func FuzzDecodeForm(f *testing.F) {
	f.Add("a=1&b=%ff&%fe=x+y", "q=1")
	f.Add("TransactionType=1&Order=%e2%80%a8", "")
	f.Add("a&&=&b=%41", "a=%ff&a=2")
	f.Fuzz(func(t *testing.T, body, query string) {
		form, err := DecodeForm([]byte(body), query)
		want, werr := url.ParseQuery(body)
		q, qerr := url.ParseQuery(query)
		if werr != nil || qerr != nil {
			return
		}
		for k, vs := range q {
			want[k] = append(want[k], vs...)
		}
		if err != nil {
			if len(want) > 0 && strings.Contains(err.Error(), "more than") {
				return
			}
			t.Fatalf("DecodeForm(%q, %q) = %v; url.ParseQuery accepts it", body, query, err)
		}
		if (len(want) > 0 || form.Len() > 0) && !reflect.DeepEqual(form.Values(), want) {
			t.Fatalf("DecodeForm(%q, %q) = %q, url.ParseQuery %q", body, query, form.Values(), want)
		}
		fields, enc := form.fields()
		for _, k := range enc {
			name, err := url.QueryUnescape(k)
			if err != nil {
				t.Fatalf("wire name %q: %v", k, err)
			}
			if len(fields[k]) < len(want[name]) {
				t.Fatalf("wire field %q has %d values, received %d", k, len(fields[k]), len(want[name]))
			}
			for i, v := range want[name] {
				if got, err := url.QueryUnescape(fields[k][i]); err != nil || got != v {
					t.Fatalf("wire value %q of %q decodes to %q, %v; received %q", fields[k][i], k, got, err, v)
				}
			}
		}
		for k, vs := range fields {
			for _, v := range vs {
				if !utf8.ValidString(k) || !utf8.ValidString(v) {
					t.Fatalf("fields holds invalid UTF-8: %q=%q", k, v)
				}
			}
		}
	})
}
