package events

import (
	"crypto/md5"
	"crypto/sha512"
	"encoding/hex"
	"net/url"
	"testing"
	"time"

	"github.com/paycomet-notify/paycomet-notify/schemas"
	"github.com/paycomet-notify/paycomet-notify/secret"
)

// Test credentials, deliberately not the demo ones: the demo constants are
// used only where a test checks that fixtures and samples work with
// `serve --demo`.
const (
	tMerchant = "MERCH042"
	tTerminal = "31337"
	tPassword = "s3cret-terminal-password"
)

// The demo credentials (package demo), restated because package demo
// imports events: the shared fixtures in testdata/notifications are signed
// with them, and demo's tests check that the two agree.
const (
	demoMerchant = "DEMO0001"
	demoTerminal = "1000"
	demoPassword = "demo-password-not-a-secret"
)

// receivedAt is the fixed receive time of every test event.
var receivedAt = time.Date(2026, 11, 24, 9, 15, 3, 0, time.UTC)

func testVerifier() *Verifier {
	return NewVerifier(tMerchant, map[string]secret.Value{tTerminal: secret.New(tPassword)})
}

// The formulas written out independently of the package under test
// (notifications doc section 5), so a bug in SignA/SignB or in the verifier
// cannot hide behind itself.

func refMD5Hex(s string) string {
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

func refSHA512Hex(s string) string {
	sum := sha512.Sum512([]byte(s))
	return hex.EncodeToString(sum[:])
}

// refHashA is sha512(MerchantCode‖Terminal‖TransactionType‖Order‖Amount‖
// Currency‖md5(Password)‖BankDateTime‖Response).
func refHashA(merchant, terminal, password string, f url.Values) string {
	return refSHA512Hex(merchant + terminal + f.Get("TransactionType") + f.Get("Order") + f.Get("Amount") +
		f.Get("Currency") + refMD5Hex(password) + f.Get("BankDateTime") + f.Get("Response"))
}

// refHashB is sha512(MerchantCode‖Terminal‖TransactionType‖Order‖DateTime‖
// md5(Password)).
func refHashB(merchant, terminal, password string, f url.Values) string {
	return refSHA512Hex(merchant + terminal + f.Get("TransactionType") + f.Get("Order") + f.Get("DateTime") + refMD5Hex(password))
}

// paymentForm is a minimal amount-bearing notification as PAYCOMET posts it.
func paymentForm(tt, order, response string) url.Values {
	f := url.Values{
		"TransactionType": {tt},
		"TpvID":           {tTerminal},
		"Order":           {order},
		"Response":        {response},
		"Amount":          {"1000"},
		"Currency":        {"EUR"},
		"BankDateTime":    {"20261124101500"},
	}
	if response == "OK" {
		f.Set("AuthCode", "802335/120098123810102711053606007000")
		f.Set("ErrorID", "0")
	} else {
		f.Set("ErrorID", "105")
		f.Set("ErrorDescription", "Insufficient funds")
	}
	return f
}

func cardRegistrationForm(response string) url.Values {
	f := url.Values{
		"TransactionType": {"107"},
		"TpvID":           {tTerminal},
		"Order":           {"4711_1"},
		"Response":        {response},
		"DateTime":        {"20261124101500"},
	}
	if response == "OK" {
		f.Set("IdUser", "4823117")
		f.Set("TokenUser", "xFDZpKdgFFs1BS2hSFxDPSGNIGcyuNmH")
		f.Set("ErrorID", "0")
	} else {
		f.Set("ErrorID", "1005")
	}
	return f
}

func cardExpiryForm() url.Values {
	return url.Values{
		"TransactionType": {"108"},
		"TransactionName": {"Caducidad tarjeta"},
		"IdUser":          {"4823117"},
		"Terminal":        {tTerminal},
		"Name":            {"Demo shop"},
		"Domain":          {"shop.example.com"},
		"MonthsToExpire":  {"2"},
	}
}

func withHash(f url.Values, h string) url.Values {
	g := clone(f)
	g.Set("NotificationHash", h)
	return g
}

func clone(f url.Values) url.Values {
	g := make(url.Values, len(f))
	for k, vs := range f {
		g[k] = append([]string(nil), vs...)
	}
	return g
}

// signedAuth is the Auth a successful signature check yields, for Parse tests
// that are not about authentication.
func signedAuth(typ int, formula string) Auth {
	return Auth{Terminal: tTerminal, Method: AuthSignature, Formula: formula, Type: typ}
}

// mustParse authenticates f with the reference signature and parses it.
func mustParse(t *testing.T, f url.Values) Event {
	t.Helper()
	g := clone(f)
	if g.Get("TransactionType") == "107" {
		g.Set("NotificationHash", refHashB(tMerchant, tTerminal, tPassword, g))
	} else if g.Get("TransactionType") != "108" {
		g.Set("NotificationHash", refHashA(tMerchant, tTerminal, tPassword, g))
	}
	a, err := testVerifier().Authenticate(g, Channel{URLToken: true})
	if err != nil {
		t.Fatalf("Authenticate(%v) = %v", g, err)
	}
	e, err := Parse(FormFromValues(g), a, receivedAt)
	if err != nil {
		t.Fatalf("Parse(%v) = %v", g, err)
	}
	return e
}

// validate encodes e and checks its data against the schema it names.
func validate(t *testing.T, e Event) []byte {
	t.Helper()
	b, err := e.Encode()
	if err != nil {
		t.Fatalf("Encode() = %v", err)
	}
	if err := schemas.ValidateEvent(b); err != nil {
		t.Errorf("event %s: %v\n%s", e.Type, err, b)
	}
	return b
}

// rejectedFor is the quarantine event of a refused form, posted as its
// encoded body from source.
func rejectedFor(err error, status int, f url.Values, body, source string) Event {
	return Rejected(RejectedInput{
		Reason: ReasonOf(err), Detail: err.Error(), Status: status,
		Form:       FormFromValues(f),
		Request:    RejectedRequest{Body: []byte(body), ContentType: "application/x-www-form-urlencoded"},
		Source:     source,
		ReceivedAt: receivedAt,
	})
}

// wantSigned is data.signed_fields of a form that formula verified: the
// formula's inputs (notifications doc section 5) that the form carries.
func wantSigned(formula string, f url.Values) []string {
	names := []string{"TpvID", "TransactionType", "Order", "Amount", "Currency", "BankDateTime", "Response"}
	if formula == "B" {
		names = []string{"TpvID", "TransactionType", "Order", "DateTime"}
	}
	out := []string{}
	for _, n := range names {
		if f.Has(n) {
			out = append(out, n)
		}
	}
	return out
}
