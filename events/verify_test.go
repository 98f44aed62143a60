package events

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/paycomet-notify/paycomet-notify/secret"
)

// typeForms is one well-formed notification of every named type and of two
// unnamed ones, with the formula PAYCOMET is expected to sign it with.
func typeForms() []struct {
	name    string
	form    url.Values
	formula string
} {
	var out []struct {
		name    string
		form    url.Values
		formula string
	}
	add := func(name string, f url.Values, formula string) {
		out = append(out, struct {
			name    string
			form    url.Values
			formula string
		}{name, f, formula})
	}
	for _, tt := range []string{"1", "2", "3", "4", "6", "9", "13", "14", "16", "106", "109", "200"} {
		add("type "+tt, paymentForm(tt, "PN-1", "OK"), "A")
	}
	add("type 107", cardRegistrationForm("OK"), "B")
	add("type 108 signed", cardExpiryForm(), "A")
	return out
}

func TestAuthenticateSignatures(t *testing.T) {
	v := testVerifier()
	for _, tc := range typeForms() {
		f := tc.form
		good := refHashA(tMerchant, tTerminal, tPassword, f)
		other := refHashB(tMerchant, tTerminal, tPassword, f)
		if tc.formula == "B" {
			good, other = other, good
		}
		flipped := []byte(good) // still 128 hex digits, one of them changed
		if flipped[17] == '0' {
			flipped[17] = '1'
		} else {
			flipped[17] = '0'
		}
		otherTerminal := clone(f)
		if f.Get("TransactionType") == "108" {
			otherTerminal.Set("Terminal", "9999")
		} else {
			otherTerminal.Set("TpvID", "9999")
		}
		otherTerminal.Set("NotificationHash", good)
		wrongMerchant := refHashA("MERCH999", tTerminal, tPassword, f)
		wrongPassword := refHashA(tMerchant, tTerminal, "another-password", f)
		if tc.formula == "B" {
			wrongMerchant = refHashB("MERCH999", tTerminal, tPassword, f)
			wrongPassword = refHashB(tMerchant, tTerminal, "another-password", f)
		}
		typ, _ := transactionType(f.Get("TransactionType"))
		if typ == TypeCardExpiry {
			continue // channel-bound: TestAuthenticateUnsignedCardExpiry
		}
		// 106, signed 108 and unknown types accept either formula; the types
		// the plugins document accept only theirs.
		_, knownPayment := knownOperation(typ)
		eitherFormula := typ == TypeChargeback || typ == TypeCardExpiry || !knownPayment

		tamperedSigned := clone(f)
		if f.Get("TransactionType") == "107" {
			tamperedSigned.Set("DateTime", "20261124101501")
		} else {
			tamperedSigned.Set("Amount", "1001")
		}
		tamperedSigned.Set("NotificationHash", good)

		missingSig := ErrMissingSignature
		if typ == TypeCardExpiry {
			missingSig = ErrUnsignedNotAllowed
		}
		rows := []struct {
			name        string
			form        url.Values
			wantErr     error
			wantFormula string
		}{
			{"right hash", withHash(f, good), nil, tc.formula},
			{"right hash upper case", withHash(f, strings.ToUpper(good)), nil, tc.formula},
			{"wrong hash", withHash(f, string(flipped)), ErrBadSignature, ""},
			{"tampered field", tamperedSigned, ErrBadSignature, ""},
			{"wrong terminal", otherTerminal, ErrUnknownTerminal, ""},
			{"missing hash", clone(f), missingSig, ""},
			{"empty hash", withHash(f, ""), missingSig, ""},
			{"wrong merchant code", withHash(f, wrongMerchant), ErrBadSignature, ""},
			{"wrong password", withHash(f, wrongPassword), ErrBadSignature, ""},
			{"truncated hash", withHash(f, good[:127]), ErrBadSignature, ""},
			{"not hex", withHash(f, strings.Repeat("z", 128)), ErrBadSignature, ""},
			{"md5 legacy length", withHash(f, good[:32]), ErrBadSignature, ""},
		}
		if typ == TypeCardExpiry {
			// Neither formula covers a field a 108 carries, so A and B hash
			// the same string and tampering goes unseen; see
			// TestSignedCardExpiryCoversNoField.
			rows = slices.DeleteFunc(rows, func(r struct {
				name        string
				form        url.Values
				wantErr     error
				wantFormula string
			}) bool {
				return r.name == "tampered field"
			})
		} else if eitherFormula {
			rows = append(rows, struct {
				name        string
				form        url.Values
				wantErr     error
				wantFormula string
			}{"other formula", withHash(f, other), nil, "B"})
		} else {
			rows = append(rows, struct {
				name        string
				form        url.Values
				wantErr     error
				wantFormula string
			}{"other formula", withHash(f, other), ErrBadSignature, ""})
		}
		for _, r := range rows {
			t.Run(tc.name+"/"+r.name, func(t *testing.T) {
				a, err := v.Authenticate(r.form, Channel{})
				if r.wantErr != nil {
					var ae *AuthError
					if !errors.Is(err, r.wantErr) || !errors.As(err, &ae) {
						t.Fatalf("Authenticate() = %v, want *AuthError wrapping %v", err, r.wantErr)
					}
					if a.Method != "" {
						t.Errorf("Authenticate() failed but Auth.Method = %q", a.Method)
					}
					for _, secretText := range []string{tPassword, refMD5Hex(tPassword), good, strings.ToUpper(good)} {
						if strings.Contains(err.Error(), secretText) {
							t.Errorf("error %q reveals %q", err, secretText)
						}
					}
					return
				}
				if err != nil {
					t.Fatalf("Authenticate() = %v, want nil", err)
				}
				want := Auth{Terminal: tTerminal, Method: AuthSignature, Formula: r.wantFormula, Type: typ,
					SignedFields: wantSigned(r.wantFormula, r.form)}
				if diff := cmp.Diff(want, a); diff != "" {
					t.Errorf("Authenticate() mismatch (-want +got):\n%s", diff)
				}
			})
		}
	}
}

func TestAuthenticateUnsignedCardExpiry(t *testing.T) {
	v := testVerifier()
	f := cardExpiryForm()
	bad := withHash(f, strings.Repeat("ab", 64))
	tests := []struct {
		name       string
		form       url.Values
		ch         Channel
		wantMethod AuthMethod
		wantErr    error
	}{
		{"url token", f, Channel{URLToken: true}, AuthURLToken, nil},
		{"allowed ip", f, Channel{AllowedIP: true}, AuthIPAllowlist, nil},
		{"both: url token wins", f, Channel{URLToken: true, AllowedIP: true}, AuthURLToken, nil},
		{"neither", f, Channel{}, "", ErrUnsignedNotAllowed},
		{"a hash that is present must verify, whatever the channel", bad, Channel{URLToken: true, AllowedIP: true}, "", ErrBadSignature},
		{"signed but through neither channel", withHash(f, refHashB(tMerchant, tTerminal, tPassword, f)), Channel{}, "", ErrUnsignedNotAllowed},
		{"signed with B through the url token", withHash(f, refHashB(tMerchant, tTerminal, tPassword, f)), Channel{URLToken: true}, AuthURLToken, nil},
		{"signed with A from an allowed source", withHash(f, refHashA(tMerchant, tTerminal, tPassword, f)), Channel{AllowedIP: true}, AuthIPAllowlist, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, err := v.Authenticate(tc.form, tc.ch)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Authenticate() = %v, want %v", err, tc.wantErr)
			}
			if a.Method != tc.wantMethod {
				t.Errorf("Authenticate().Method = %q, want %q", a.Method, tc.wantMethod)
			}
			if err == nil && a.Terminal != tTerminal {
				t.Errorf("Authenticate().Terminal = %q, want %q", a.Terminal, tTerminal)
			}
		})
	}

	t.Run("other types are never accepted unsigned", func(t *testing.T) {
		for _, tc := range typeForms() {
			if tc.form.Get("TransactionType") == "108" {
				continue
			}
			_, err := v.Authenticate(tc.form, Channel{URLToken: true, AllowedIP: true})
			if !errors.Is(err, ErrMissingSignature) {
				t.Errorf("%s: Authenticate(unsigned, trusted channel) = %v, want %v", tc.name, err, ErrMissingSignature)
			}
		}
	})
	t.Run("unknown terminal even through the url token", func(t *testing.T) {
		g := clone(f)
		g.Set("Terminal", "9999")
		if _, err := v.Authenticate(g, Channel{URLToken: true}); !errors.Is(err, ErrUnknownTerminal) {
			t.Errorf("Authenticate() = %v, want %v", err, ErrUnknownTerminal)
		}
	})
}

func TestAuthenticateTerminalChoice(t *testing.T) {
	several := NewVerifier(tMerchant, map[string]secret.Value{
		tTerminal: secret.New(tPassword),
		"2000":    secret.New("password-of-2000"),
	})
	noTpv := paymentForm("1", "PN-1", "OK")
	noTpv.Del("TpvID")

	t.Run("single terminal stands in for a missing TpvID", func(t *testing.T) {
		f := withHash(noTpv, refHashA(tMerchant, tTerminal, tPassword, noTpv))
		a, err := testVerifier().Authenticate(f, Channel{})
		if err != nil || a.Terminal != tTerminal {
			t.Fatalf("Authenticate() = %+v, %v; want terminal %s", a, err, tTerminal)
		}
	})
	t.Run("several terminals need TpvID", func(t *testing.T) {
		f := withHash(noTpv, refHashA(tMerchant, tTerminal, tPassword, noTpv))
		_, err := several.Authenticate(f, Channel{})
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != "TpvID" {
			t.Fatalf("Authenticate() = %v, want a FieldError naming TpvID", err)
		}
	})
	t.Run("108 names its terminal in Terminal", func(t *testing.T) {
		f := cardExpiryForm()
		f.Del("Terminal")
		_, err := several.Authenticate(f, Channel{URLToken: true})
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != "Terminal" {
			t.Fatalf("Authenticate() = %v, want a FieldError naming Terminal", err)
		}
	})
	t.Run("each terminal with its own password", func(t *testing.T) {
		f := paymentForm("1", "PN-1", "OK")
		f.Set("TpvID", "2000")
		if _, err := several.Authenticate(withHash(f, refHashA(tMerchant, "2000", "password-of-2000", f)), Channel{}); err != nil {
			t.Errorf("Authenticate(terminal 2000, its password) = %v", err)
		}
		if _, err := several.Authenticate(withHash(f, refHashA(tMerchant, "2000", tPassword, f)), Channel{}); !errors.Is(err, ErrBadSignature) {
			t.Errorf("Authenticate(terminal 2000, password of %s) = %v, want %v", tTerminal, err, ErrBadSignature)
		}
		// The hash covers the terminal: a hash for 31337 does not pass as 2000.
		if _, err := several.Authenticate(withHash(f, refHashA(tMerchant, tTerminal, tPassword, f)), Channel{}); !errors.Is(err, ErrBadSignature) {
			t.Errorf("Authenticate(hash made for another terminal) = %v, want %v", err, ErrBadSignature)
		}
	})
	t.Run("no terminal configured", func(t *testing.T) {
		f := paymentForm("1", "PN-1", "OK")
		if _, err := NewVerifier(tMerchant, nil).Authenticate(withHash(f, strings.Repeat("0", 128)), Channel{}); !errors.Is(err, ErrUnknownTerminal) {
			t.Errorf("Authenticate() = %v, want %v", err, ErrUnknownTerminal)
		}
	})
}

func TestAuthenticateFieldErrors(t *testing.T) {
	v := testVerifier()
	base := paymentForm("1", "PN-1", "OK")
	signed := withHash(base, refHashA(tMerchant, tTerminal, tPassword, base))
	with := func(field string, values ...string) url.Values {
		f := clone(signed)
		if values == nil {
			f.Del(field)
		} else {
			f[field] = values
		}
		return f
	}
	tests := []struct {
		name      string
		form      url.Values
		wantField string
		wantText  string // substring of Error()
	}{
		{"missing type", with("TransactionType"), "TransactionType", "TransactionType: missing"},
		{"empty type", with("TransactionType", ""), "TransactionType", "TransactionType: missing"},
		{"non-numeric type", with("TransactionType", "abc"), "TransactionType", `"abc" is not a positive integer`},
		{"zero type", with("TransactionType", "0"), "TransactionType", "positive"},
		{"negative type", with("TransactionType", "-1"), "TransactionType", "positive"},
		{"signed type", with("TransactionType", "+1"), "TransactionType", "positive"},
		{"decimal type", with("TransactionType", "1.0"), "TransactionType", "positive"},
		{"huge type", with("TransactionType", "99999999999999999999"), "TransactionType", "positive"},
		{"conflicting type", with("TransactionType", "1", "2"), "TransactionType", "different values"},
		{"conflicting TpvID", with("TpvID", tTerminal, "2000"), "TpvID", "different values"},
		{"conflicting signed field", with("Amount", "1000", "2000"), "Amount", "different values"},
		{"conflicting hash", with("NotificationHash", signed.Get("NotificationHash"), strings.Repeat("0", 128)), "NotificationHash", "different values"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := v.Authenticate(tc.form, Channel{})
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != tc.wantField || !strings.Contains(err.Error(), tc.wantText) {
				t.Fatalf("Authenticate() = %v, want FieldError on %s containing %q", err, tc.wantField, tc.wantText)
			}
		})
	}

	t.Run("identical repeats collapse", func(t *testing.T) {
		f := clone(signed)
		for k, vs := range f {
			f[k] = append(vs, vs[0]) // as if body and query both carried everything
		}
		if _, err := v.Authenticate(f, Channel{}); err != nil {
			t.Errorf("Authenticate(repeated fields) = %v, want nil", err)
		}
	})
}

func TestVerifierDoesNotPrintKeys(t *testing.T) {
	v := testVerifier()
	md5 := refMD5Hex(tPassword)
	for _, s := range []string{
		//lint:ignore S1025 the point is what fmt prints
		fmt.Sprintf("%v", v), fmt.Sprintf("%+v", v), fmt.Sprintf("%#v", v), fmt.Sprintf("%s", *v),
		fmt.Sprintf("%+v", *v), fmt.Sprintf("%x", v), v.LogValue().String(),
	} {
		if strings.Contains(s, md5) || strings.Contains(s, tPassword) || strings.Contains(s, fmt.Sprint([]byte(md5))) {
			t.Errorf("printed Verifier %q reveals the key", s)
		}
		if !strings.Contains(s, tTerminal) && !strings.Contains(s, fmt.Sprintf("%x", tTerminal)) {
			t.Errorf("printed Verifier %q does not name its terminals", s)
		}
	}
}

func TestAuthenticateDoesNotAllocate(t *testing.T) {
	v := testVerifier()
	f := paymentForm("1", "PN-1", "OK")
	f.Set("NotificationHash", refHashA(tMerchant, tTerminal, tPassword, f))
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := v.Authenticate(f, Channel{}); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("Authenticate allocates %v times per call, want 0", allocs)
	}
}

// TestSignedCardExpiryCoversNoField: formulas A and B read Order, Amount,
// Currency, BankDateTime, Response and DateTime, none of which a 108 carries,
// so a "signed" 108's hash is one constant per terminal that does not protect
// IdUser or MonthsToExpire. That is why Authenticate accepts a 108 only
// through the URL token or an allowed source, hash or not.
func TestSignedCardExpiryCoversNoField(t *testing.T) {
	f := cardExpiryForm()
	h := refHashA(tMerchant, tTerminal, tPassword, f)
	if h != refHashB(tMerchant, tTerminal, tPassword, f) {
		t.Fatal("formulas A and B differ on a 108; revisit this test and Authenticate's 108 rule")
	}
	g := withHash(f, h)
	g.Set("IdUser", "1")
	g.Set("MonthsToExpire", "0")
	if refHashA(tMerchant, tTerminal, tPassword, g) != h {
		t.Fatal("tampering changed a 108's hash; revisit this test and Authenticate's 108 rule")
	}
	if a, err := testVerifier().Authenticate(g, Channel{}); !errors.Is(err, ErrUnsignedNotAllowed) {
		t.Fatalf("Authenticate(replayed 108 hash, no channel) = %+v, %v; want ErrUnsignedNotAllowed", a, err)
	}
}
