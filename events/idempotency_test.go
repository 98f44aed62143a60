package events

import (
	"math/rand/v2"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

var idPattern = regexp.MustCompile(`^[0-9a-f]{32}$`)

func idOfForm(t *testing.T, f url.Values) string {
	t.Helper()
	e := mustParse(t, f)
	validate(t, e)
	if !idPattern.MatchString(e.ID) {
		t.Fatalf("ID %q is not 32 lower-case hex digits", e.ID)
	}
	return e.ID
}

func set(f url.Values, kv ...string) url.Values {
	g := clone(f)
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == "" {
			g.Del(kv[i])
		} else {
			g.Set(kv[i], kv[i+1])
		}
	}
	return g
}

func TestIDSameNotificationSameID(t *testing.T) {
	forms := map[string]url.Values{
		"payment OK":        paymentForm("1", "PN-1", "OK"),
		"payment KO":        paymentForm("1", "PN-1", "KO"),
		"payment no code":   set(paymentForm("1", "PN-1", "OK"), "AuthCode", ""),
		"card registration": cardRegistrationForm("OK"),
		"card expiry":       cardExpiryForm(),
		"unknown type":      set(paymentForm("200", "PN-1", "OK"), "Extra", "x"),
	}
	for name, f := range forms {
		t.Run(name, func(t *testing.T) {
			id := idOfForm(t, f)
			if again := idOfForm(t, clone(f)); again != id {
				t.Errorf("same notification: ID %s then %s", id, again)
			}

			// Field order in the body does not matter.
			keys := make([]string, 0, len(f))
			for k := range f {
				keys = append(keys, k)
			}
			for i := 0; i < 5; i++ {
				rand.Shuffle(len(keys), func(a, b int) { keys[a], keys[b] = keys[b], keys[a] })
				var parts []string
				for _, k := range keys {
					parts = append(parts, url.QueryEscape(k)+"="+url.QueryEscape(f.Get(k)))
				}
				g, err := url.ParseQuery(strings.Join(parts, "&"))
				if err != nil {
					t.Fatal(err)
				}
				if got := idOfForm(t, g); got != id {
					t.Errorf("body %q: ID %s, want %s", strings.Join(parts, "&"), got, id)
				}
			}

			// Body and query carrying the same fields are one notification.
			g := clone(f)
			for k, vs := range g {
				g[k] = append(vs, vs...)
			}
			if got := idOfForm(t, g); got != id {
				t.Errorf("repeated fields: ID %s, want %s", got, id)
			}
		})
	}
}

func TestIDDifferentNotificationsDiffer(t *testing.T) {
	payOK := paymentForm("1", "PN-1", "OK")
	payKO := paymentForm("1", "PN-1", "KO")
	refund1 := set(paymentForm("2", "PN-1", "OK"), "Amount", "400", "AuthCode", "111111/1")
	refund2 := set(paymentForm("2", "PN-1", "OK"), "Amount", "400", "AuthCode", "222222/2", "BankDateTime", "20261125101500")
	pairs := []struct {
		name string
		a, b url.Values
	}{
		{"KO then OK of one order", payKO, payOK},
		{"refund and the payment it refunds", payOK, set(payOK, "TransactionType", "2")},
		{"two partial refunds of one order", refund1, refund2},
		{"chargeback and the payment", payOK, set(payOK, "TransactionType", "106")},
		{"preauthorization and its confirmation", set(payOK, "TransactionType", "3"), set(payOK, "TransactionType", "6", "AuthCode", "999999/9")},
		{"two KO attempts of one order", payKO, set(payKO, "BankDateTime", "20261124101600")},
		{"pending then OK", set(payOK, "Response", "SF"), payOK},
		{"OK without AuthCode, different amounts", set(payOK, "AuthCode", ""), set(payOK, "AuthCode", "", "Amount", "999")},
		{"OK without AuthCode, different times", set(payOK, "AuthCode", ""), set(payOK, "AuthCode", "", "BankDateTime", "20261124101501")},
		{"successive expiry notices", cardExpiryForm(), set(cardExpiryForm(), "MonthsToExpire", "1")},
		{"expiry notices of two cards", cardExpiryForm(), set(cardExpiryForm(), "IdUser", "4823118")},
		{"card registration KO then OK a second later", cardRegistrationForm("KO"), set(cardRegistrationForm("OK"), "DateTime", "20261124101501")},
		{"two card registrations of one order", cardRegistrationForm("OK"), set(cardRegistrationForm("OK"), "IdUser", "4823118", "DateTime", "20261124111500")},
		{"card registration on another order", cardRegistrationForm("OK"), set(cardRegistrationForm("OK"), "Order", "4711_2")},
		{"two failed card registrations", cardRegistrationForm("KO"), set(cardRegistrationForm("KO"), "DateTime", "20261124101501")},
		{"unknown type, a signed field", set(payOK, "TransactionType", "200"), set(payOK, "TransactionType", "200", "Amount", "1001")},
		{"formula A and B inputs of an unknown type", set(payOK, "TransactionType", "200"), set(payOK, "TransactionType", "200", "Amount", "", "Currency", "", "BankDateTime", "", "Response", "", "DateTime", "20261124101500")},
		{"unknown type and a known one", set(payOK, "TransactionType", "109"), payOK},
		{"two unknown types", set(payOK, "TransactionType", "109"), set(payOK, "TransactionType", "110")},
	}
	for _, p := range pairs {
		t.Run(p.name, func(t *testing.T) {
			a, b := idOfForm(t, p.a), idOfForm(t, p.b)
			if a == b {
				t.Errorf("both notifications have ID %s", a)
			}
		})
	}
}

// TestIDFromSignedFieldsOnly holds the replay cases of issue 8: a copy of a
// signed notification with fields the signature does not cover edited,
// added or dropped has the same event id (so the receiver treats it as a
// duplicate) and a different Fingerprint (so it is recognised as a
// conflicting copy). Under the v1 scheme each of these minted a new id.
func TestIDFromSignedFieldsOnly(t *testing.T) {
	payOK := set(paymentForm("1", "PN-1", "OK"), "IdUser", "4823117", "TokenUser", "tokA")
	reg := cardRegistrationForm("OK")
	op := set(paymentForm("20", "PN-1", "OK"), "Language", "ES")
	cases := []struct {
		name       string
		orig, copy url.Values
	}{
		{"type 1, AuthCode edited", payOK, set(payOK, "AuthCode", "999999/1")},
		{"type 1, IdUser edited", payOK, set(payOK, "IdUser", "1")},
		{"type 1, TokenUser edited", payOK, set(payOK, "TokenUser", "tokEvil")},
		{"type 1, ErrorID edited", payOK, set(payOK, "ErrorID", "105")},
		{"type 1, all four edited", payOK, set(payOK, "AuthCode", "1/1", "IdUser", "2", "TokenUser", "x", "ErrorID", "1")},
		{"type 1, AuthCode dropped", payOK, set(payOK, "AuthCode", "")},
		{"type 1 KO, ErrorID edited", paymentForm("1", "PN-1", "KO"), set(paymentForm("1", "PN-1", "KO"), "ErrorID", "184")},
		{"107, IdUser edited", reg, set(reg, "IdUser", "1")},
		{"107, TokenUser edited", reg, set(reg, "TokenUser", "tokEvil")},
		{"107, IdUser and TokenUser edited", reg, set(reg, "IdUser", "1", "TokenUser", "tokEvil")},
		{"operation_20, a field added", op, set(op, "IdUser", "4823117")},
		{"operation_20, a field edited", op, set(op, "Language", "EN")},
		{"operation_20, a legacy signature added", op, set(op, "ExtendedSignature", "abc")},
		{"known limit: two partial refunds, same amount and second", set(paymentForm("2", "PN-1", "OK"), "Amount", "400"), set(paymentForm("2", "PN-1", "OK"), "Amount", "400", "AuthCode", "333333/3")},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a, b := idOfForm(t, c.orig), idOfForm(t, c.copy)
			if a != b {
				t.Errorf("a copy with unsigned fields changed got ID %s, the original %s", b, a)
			}
			if Fingerprint(c.orig) == Fingerprint(c.copy) {
				t.Errorf("Fingerprint does not tell the copy from the original")
			}
		})
	}
}

func TestIDDiffersPerTerminal(t *testing.T) {
	f := paymentForm("1", "PN-1", "OK")
	a, err := Parse(FormFromValues(f), signedAuth(1, "A"), receivedAt)
	if err != nil {
		t.Fatal(err)
	}
	g := set(f, "TpvID", "2000")
	b, err := Parse(FormFromValues(g), Auth{Terminal: "2000", Method: AuthSignature, Formula: "A", Type: 1}, receivedAt)
	if err != nil {
		t.Fatal(err)
	}
	if a.ID == b.ID {
		t.Errorf("one order on two terminals: both ID %s", a.ID)
	}
}

func TestIDKeyPartsAreUnambiguous(t *testing.T) {
	if ID("ab", "c") == ID("a", "bc") {
		t.Error(`ID("ab", "c") == ID("a", "bc")`)
	}
	if ID("a|b") == ID("a", "b") {
		t.Error(`ID("a|b") == ID("a", "b")`)
	}
}

// TestRejectedID: every rejected request is its own message, even the same
// request twice (issue 8: four different 415 bodies left one message).
func TestRejectedID(t *testing.T) {
	f := url.Values{"TransactionType": {"1"}, "Amount": {"1000", "2000"}}
	err := conflict("Amount")
	seen := map[string]bool{}
	for i := 0; i < 100; i++ {
		e := rejectedFor(err, 400, f, f.Encode(), "192.0.2.10")
		if !idPattern.MatchString(e.ID) {
			t.Fatalf("ID %q is not 32 lower-case hex digits", e.ID)
		}
		if seen[e.ID] {
			t.Fatalf("two rejected requests share ID %s", e.ID)
		}
		seen[e.ID] = true
	}
}

// TestSignedKeyIsID: signedKey builds ID's encoding itself (to save two
// string allocations); it must give what ID gives.
func TestSignedKeyIsID(t *testing.T) {
	f := paymentForm("1", "PN-1", "OK")
	if got, want := signedKey("A", tTerminal, f), ID(keyScheme, "signed", tTerminal, tTerminal+"1PN-11000EUR", "20261124101500OK"); got != want {
		t.Errorf("signedKey(A) = %s, ID gives %s", got, want)
	}
	g := cardRegistrationForm("OK")
	if got, want := signedKey("B", tTerminal, g), ID(keyScheme, "signed", tTerminal, tTerminal+"1074711_120261124101500", ""); got != want {
		t.Errorf("signedKey(B) = %s, ID gives %s", got, want)
	}
}

// TestIDFollowsTheSignedString: the signature does not see field
// boundaries or which formula was used, so neither may the id. Each copy
// below verifies with the original's NotificationHash; with a key of
// separate fields (the first v2 draft) each got a new id.
func TestIDFollowsTheSignedString(t *testing.T) {
	orig := paymentForm("1", "PN-1", "OK")
	orig.Set("NotificationHash", refHashA(tMerchant, tTerminal, tPassword, orig))
	shifted := set(orig, "Order", "PN-11", "Amount", "000")

	b := url.Values{"TransactionType": {"200"}, "TpvID": {tTerminal}, "Order": {"X-1"}, "DateTime": {"20261124101500"},
		"Response": {"OK"}, "Amount": {"5"}, "Currency": {"EUR"}}
	b.Set("NotificationHash", refHashB(tMerchant, tTerminal, tPassword, b))
	asA := set(b, "Amount", "20261124101500", "Currency", "", "Response", "")
	delete(asA, "Currency")
	delete(asA, "Response")

	v := testVerifier()
	for _, c := range []struct {
		name       string
		orig, copy url.Values
		formulas   string
	}{
		{"Order and Amount shifted", orig, shifted, "AA"},
		{"B-signed notice made to verify with A", b, asA, "BA"},
	} {
		t.Run(c.name, func(t *testing.T) {
			a1, err := v.Authenticate(c.orig, Channel{})
			if err != nil {
				t.Fatal(err)
			}
			a2, err := v.Authenticate(c.copy, Channel{})
			if err != nil {
				t.Fatalf("the copy does not verify: %v", err)
			}
			if a1.Formula+a2.Formula != c.formulas {
				t.Fatalf("formulas %s%s, want %s", a1.Formula, a2.Formula, c.formulas)
			}
			e1, err1 := Parse(FormFromValues(c.orig), a1, receivedAt)
			e2, err2 := Parse(FormFromValues(c.copy), a2, receivedAt)
			if err1 != nil || err2 != nil {
				t.Fatal(err1, err2)
			}
			if e1.ID != e2.ID {
				t.Errorf("copy got ID %s, original %s", e2.ID, e1.ID)
			}
		})
	}
}
