package bankstore_test

import (
	"bytes"
	"context"
	"crypto/sha512"
	"encoding/hex"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/paycomet-notify/paycomet-notify/bankstore"
	"github.com/paycomet-notify/paycomet-notify/secret"
)

var update = flag.Bool("update", false, "rewrite the golden request envelopes in testdata/")

// Fixed inputs of the golden envelopes.
const (
	merchant = "MERCH001"
	terminal = "1234"
	password = "s3cr3t&pw"
	pan      = "4548812049400004"
	cvv      = "123"
	token    = "tok3nABC"
	jetToken = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	jetID    = "abcdef0123456789abcdef0123456789"
	rtoken   = "0123456789abcdefghij0123456789abcdefghij"
	longOrd  = "R123456789012345678901234567890123456789012345678901234567890123456789" // 70: only rtoken allows it
)

var ip = netip.MustParseAddr("192.0.2.10")

func sha512hex(s string) string {
	sum := sha512.Sum512([]byte(s))
	return hex.EncodeToString(sum[:])
}

func ptr[T any](v T) *T { return &v }

// recorder is an HTTP server that keeps the last request and answers every
// operation with an empty success.
type recorder struct {
	mu     sync.Mutex
	body   []byte
	header http.Header
	n      int
}

func newRecorder(t *testing.T) (*recorder, *httptest.Server) {
	rec := &recorder{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		rec.mu.Lock()
		rec.body, rec.header = b, r.Header.Clone()
		rec.n++
		rec.mu.Unlock()
		io.WriteString(w, `<?xml version="1.0"?><S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/"><S:Body><r><DS_ERROR_ID>0</DS_ERROR_ID></r></S:Body></S:Envelope>`)
	}))
	t.Cleanup(srv.Close)
	return rec, srv
}

func (r *recorder) last() ([]byte, http.Header, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.body, r.header, r.n
}

func newClient(t *testing.T, url string, opts ...bankstore.Option) *bankstore.Client {
	t.Helper()
	c, err := bankstore.New(url, bankstore.Credentials{MerchantCode: merchant, Terminal: terminal, Password: secret.New(password)}, opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

var user = bankstore.UserRequest{IDUser: 32, TokenUser: token, OriginalIP: ip}

// envelopeCases calls every operation with every element it has set, and
// spells out the concatenation Anexo I signs for it.
var envelopeCases = []struct {
	op     bankstore.Operation
	call   func(context.Context, *bankstore.Client) error
	signed string
}{
	{bankstore.OpAddUser, func(ctx context.Context, c *bankstore.Client) error {
		_, err := c.AddUser(ctx, bankstore.AddUserRequest{PAN: secret.New(pan), Expiry: bankstore.CardExpiry{Year: 2030, Month: time.May},
			CVV2: secret.New(cvv), OriginalIP: ip, CardholderName: "Ana & Luis <SL>"})
		return err
	}, merchant + pan + cvv + terminal + password},
	{bankstore.OpInfoUser, func(ctx context.Context, c *bankstore.Client) error {
		_, err := c.InfoUser(ctx, user)
		return err
	}, merchant + "32" + token + terminal + password},
	{bankstore.OpRemoveUser, func(ctx context.Context, c *bankstore.Client) error {
		_, err := c.RemoveUser(ctx, user)
		return err
	}, merchant + "32" + token + terminal + password},
	{bankstore.OpExecutePurchase, func(ctx context.Context, c *bankstore.Client) error {
		_, err := c.ExecutePurchase(ctx, bankstore.PurchaseRequest{IDUser: 32, TokenUser: token, Amount: 1250, Order: "ORDER1",
			Currency: "EUR", OriginalIP: ip, ProductDescription: "Socks & shoes", Owner: "Ana", Scoring: ptr(50),
			MerchantData: bankstore.MerchantData(`{"customer": {"email": "ana@example.com"}}`), MerchantDescriptor: "SHOP 1",
			SCAException: bankstore.SCAMerchantMIT, TrxType: "R",
			EscrowTargets:   bankstore.EscrowTargets{{ID: "acct1", Amount: 1000}, {ID: "acct2", Amount: 250}},
			UserInteraction: true})
		return err
	}, merchant + "32" + token + terminal + "1250" + "ORDER1" + password},
	{bankstore.OpExecutePurchaseDCC, func(ctx context.Context, c *bankstore.Client) error {
		_, err := c.ExecutePurchaseDCC(ctx, bankstore.DCCPurchaseRequest{IDUser: 32, TokenUser: token, Amount: 1250, Order: "DCC1",
			OriginalIP: ip, ProductDescription: "Socks", Owner: "Ana", MerchantDescriptor: "SHOP 1"})
		return err
	}, merchant + "32" + token + terminal + "1250" + "DCC1" + password},
	{bankstore.OpConfirmPurchaseDCC, func(ctx context.Context, c *bankstore.Client) error {
		_, err := c.ConfirmPurchaseDCC(ctx, bankstore.ConfirmDCCRequest{Order: "DCC1", DCCCurrency: "USD", DCCSession: "sess123"})
		return err
	}, merchant + terminal + "DCC1" + "USD" + "sess123" + password},
	{bankstore.OpExecuteRefund, func(ctx context.Context, c *bankstore.Client) error {
		_, err := c.ExecuteRefund(ctx, bankstore.RefundRequest{IDUser: 32, TokenUser: token, AuthCode: "AUTH42", Order: "ORDER1",
			Currency: "EUR", OriginalIP: ip, Amount: 500, MerchantDescriptor: "SHOP 1"})
		return err
	}, merchant + "32" + token + terminal + "AUTH42" + "ORDER1" + password},
	{bankstore.OpCreateSubscription, func(ctx context.Context, c *bankstore.Client) error {
		_, err := c.CreateSubscription(ctx, bankstore.CreateSubscriptionRequest{PAN: secret.New(pan),
			Expiry: bankstore.CardExpiry{Year: 2031, Month: time.December}, CVV2: secret.New(cvv),
			StartDate: bankstore.Date{Year: 2030, Month: 1, Day: 15}, EndDate: bankstore.Date{Year: 2031, Month: 1, Day: 15},
			Order: "SUB_1", PeriodicityDays: 30, Amount: 999, Currency: "EUR", OriginalIP: ip, Execute: ptr(true),
			CardholderName: "Ana", Scoring: ptr(0), MerchantData: bankstore.MerchantData(`{"a":1}`), SCAException: bankstore.SCARiskAnalyze,
			EscrowTargets: bankstore.EscrowTargets{{ID: "acct1", Amount: 999}}, UserInteraction: true})
		return err
	}, merchant + pan + cvv + terminal + "999" + "EUR" + password},
	{bankstore.OpEditSubscription, func(ctx context.Context, c *bankstore.Client) error {
		_, err := c.EditSubscription(ctx, bankstore.EditSubscriptionRequest{IDUser: 32, TokenUser: token,
			StartDate: bankstore.Date{Year: 2030, Month: 2, Day: 1}, EndDate: bankstore.Date{Year: 2032, Month: 2, Day: 1},
			PeriodicityDays: 7, Amount: 1500, Execute: false, OriginalIP: ip})
		return err
	}, merchant + "32" + token + terminal + "1500" + password},
	{bankstore.OpRemoveSubscription, func(ctx context.Context, c *bankstore.Client) error {
		_, err := c.RemoveSubscription(ctx, user)
		return err
	}, merchant + "32" + token + terminal + password},
	{bankstore.OpCreateSubscriptionToken, func(ctx context.Context, c *bankstore.Client) error {
		_, err := c.CreateSubscriptionToken(ctx, bankstore.CreateSubscriptionTokenRequest{IDUser: 32, TokenUser: token,
			StartDate: bankstore.Date{Year: 2030, Month: 3, Day: 1}, EndDate: bankstore.Date{Year: 2035, Month: 3, Day: 1},
			Order: "SUBT1", PeriodicityDays: 365, Amount: 2000, Currency: "USD", OriginalIP: ip, Scoring: ptr(100),
			MerchantData: bankstore.MerchantData(`{}`), SCAException: bankstore.SCALowValue, TrxType: "I",
			EscrowTargets: bankstore.EscrowTargets{{ID: "x", Amount: 1}}, UserInteraction: true})
		return err
	}, merchant + "32" + token + terminal + "2000" + "USD" + password},
	{bankstore.OpCreatePreauthorization, func(ctx context.Context, c *bankstore.Client) error {
		_, err := c.CreatePreauthorization(ctx, bankstore.PurchaseRequest{IDUser: 32, TokenUser: token, Amount: 5000, Order: "PRE1",
			Currency: "EUR", OriginalIP: ip, ProductDescription: "Hotel", Owner: "Ana", Scoring: ptr(10),
			MerchantDescriptor: "HOTEL"})
		return err
	}, merchant + "32" + token + terminal + "5000" + "PRE1" + password},
	{bankstore.OpPreauthorizationConfirm, func(ctx context.Context, c *bankstore.Client) error {
		_, err := c.PreauthorizationConfirm(ctx, bankstore.PreauthorizationRequest{IDUser: 32, TokenUser: token, Amount: 5500,
			Order: "PRE1", OriginalIP: ip, MerchantDescriptor: "HOTEL"})
		return err
	}, merchant + "32" + token + terminal + "PRE1" + "5500" + password},
	{bankstore.OpPreauthorizationCancel, func(ctx context.Context, c *bankstore.Client) error {
		_, err := c.PreauthorizationCancel(ctx, bankstore.PreauthorizationRequest{IDUser: 32, TokenUser: token, Amount: 5000,
			Order: "PRE2", OriginalIP: ip})
		return err
	}, merchant + "32" + token + terminal + "PRE2" + "5000" + password},
	{bankstore.OpDeferredPreauthorizationConfirm, func(ctx context.Context, c *bankstore.Client) error {
		_, err := c.DeferredPreauthorizationConfirm(ctx, bankstore.PreauthorizationRequest{IDUser: 32, TokenUser: token,
			Amount: 3000, Order: "DEF1", OriginalIP: ip})
		return err
	}, merchant + "32" + token + terminal + "DEF1" + "3000" + password},
	{bankstore.OpDeferredPreauthorizationCancel, func(ctx context.Context, c *bankstore.Client) error {
		_, err := c.DeferredPreauthorizationCancel(ctx, bankstore.PreauthorizationRequest{IDUser: 32, TokenUser: token,
			Amount: 3000, Order: "DEF2", OriginalIP: ip})
		return err
	}, merchant + "32" + token + terminal + "DEF2" + "3000" + password},
	{bankstore.OpAddUserToken, func(ctx context.Context, c *bankstore.Client) error {
		_, err := c.AddUserToken(ctx, bankstore.AddUserTokenRequest{JetToken: jetToken, JetID: jetID, OriginalIP: ip})
		return err
	}, merchant + jetToken + jetID + terminal + password},
	{bankstore.OpExecutePurchaseRToken, func(ctx context.Context, c *bankstore.Client) error {
		_, err := c.ExecutePurchaseRToken(ctx, bankstore.RTokenPurchaseRequest{Amount: 777, Order: longOrd, Identifier: rtoken,
			Currency: "EUR", ProductDescription: "Renewal", MerchantDescriptor: "SHOP 1"})
		return err
	}, merchant + terminal + "777" + longOrd + rtoken + password},
}

func TestBankstoreEnvelopeCasesCoverEveryOperation(t *testing.T) {
	var got []bankstore.Operation
	for _, c := range envelopeCases {
		got = append(got, c.op)
	}
	if diff := cmp.Diff(bankstore.Operations(), got); diff != "" {
		t.Errorf("envelope cases differ from Operations() (-want +got):\n%s", diff)
	}
	if n := len(bankstore.Operations()); n != 18 {
		t.Errorf("len(Operations()) = %d, want the seed's 18", n)
	}
}

var signatureRE = regexp.MustCompile(`<DS_MERCHANT_MERCHANTSIGNATURE type="xsd:string">([^<]*)</DS_MERCHANT_MERCHANTSIGNATURE>`)

// TestBankstoreGoldenEnvelopes compares what goes over the wire for every
// operation with testdata/<operation>.xml (go test -run Golden -update
// rewrites them), and checks each signature against SHA-512 over the
// concatenation Anexo I lists, computed here independently.
func TestBankstoreGoldenEnvelopes(t *testing.T) {
	for _, tc := range envelopeCases {
		t.Run(string(tc.op), func(t *testing.T) {
			rec, srv := newRecorder(t)
			c := newClient(t, srv.URL)
			if err := tc.call(t.Context(), c); err != nil {
				t.Fatalf("%s: %v", tc.op, err)
			}
			body, header, _ := rec.last()

			if got, want := header.Get("SOAPAction"), `"http://schemas.xmlsoap.org/soap/envelope/#BankStore#`+string(tc.op)+`"`; got != want {
				t.Errorf("SOAPAction = %q, want %q", got, want)
			}
			if got := header.Get("Content-Type"); got != "text/xml; charset=utf-8" {
				t.Errorf("Content-Type = %q, want text/xml; charset=utf-8", got)
			}

			m := signatureRE.FindSubmatch(body)
			if m == nil {
				t.Fatalf("no DS_MERCHANT_MERCHANTSIGNATURE in\n%s", body)
			}
			if got, want := string(m[1]), sha512hex(tc.signed); got != want {
				t.Errorf("signature = %s\nwant sha512(%q) = %s", got, tc.signed, want)
			}

			golden := filepath.Join("testdata", string(tc.op)+".xml")
			if *update {
				if err := os.WriteFile(golden, body, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./bankstore -run Golden -update to create it)", err)
			}
			if diff := cmp.Diff(string(want), string(body)); diff != "" {
				t.Errorf("envelope differs from %s (-want +got):\n%s", golden, diff)
			}

			// The envelope is one well-formed SOAP message with the
			// operation's name, readable by local names.
			msg, err := bankstore.ReadMessage(bytes.NewReader(body))
			if err != nil {
				t.Fatalf("ReadMessage(own envelope) = %v", err)
			}
			if msg.Name != string(tc.op) {
				t.Errorf("operation element = %q, want %q", msg.Name, tc.op)
			}
		})
	}
}

// TestBankstoreSignFormulas checks the exported Sign, which the fake server
// uses, against the same written-out concatenations.
func TestBankstoreSignFormulas(t *testing.T) {
	elems := map[string]string{
		"DS_MERCHANT_MERCHANTCODE": merchant, "DS_MERCHANT_TERMINAL": terminal, "DS_IDUSER": "32", "DS_TOKEN_USER": token,
		"DS_MERCHANT_PAN": pan, "DS_MERCHANT_CVV2": cvv, "DS_MERCHANT_AMOUNT": "1250", "DS_MERCHANT_ORDER": "ORDER1",
		"DS_MERCHANT_AUTHCODE": "AUTH42", "DS_SUBSCRIPTION_AMOUNT": "999", "DS_SUBSCRIPTION_CURRENCY": "EUR",
		"DS_MERCHANT_DCC_CURRENCY": "USD", "DS_MERCHANT_DCC_SESSION": "sess123", "DS_MERCHANT_JETTOKEN": jetToken,
		"DS_MERCHANT_JETID": jetID, "DS_MERCHANT_IDENTIFIER": rtoken,
	}
	want := map[bankstore.Operation]string{
		bankstore.OpAddUser:                         merchant + pan + cvv + terminal,
		bankstore.OpInfoUser:                        merchant + "32" + token + terminal,
		bankstore.OpRemoveUser:                      merchant + "32" + token + terminal,
		bankstore.OpExecutePurchase:                 merchant + "32" + token + terminal + "1250" + "ORDER1",
		bankstore.OpExecutePurchaseDCC:              merchant + "32" + token + terminal + "1250" + "ORDER1",
		bankstore.OpConfirmPurchaseDCC:              merchant + terminal + "ORDER1" + "USD" + "sess123",
		bankstore.OpExecuteRefund:                   merchant + "32" + token + terminal + "AUTH42" + "ORDER1",
		bankstore.OpCreateSubscription:              merchant + pan + cvv + terminal + "999" + "EUR",
		bankstore.OpEditSubscription:                merchant + "32" + token + terminal + "999",
		bankstore.OpRemoveSubscription:              merchant + "32" + token + terminal,
		bankstore.OpCreateSubscriptionToken:         merchant + "32" + token + terminal + "999" + "EUR",
		bankstore.OpCreatePreauthorization:          merchant + "32" + token + terminal + "1250" + "ORDER1",
		bankstore.OpPreauthorizationConfirm:         merchant + "32" + token + terminal + "ORDER1" + "1250",
		bankstore.OpPreauthorizationCancel:          merchant + "32" + token + terminal + "ORDER1" + "1250",
		bankstore.OpDeferredPreauthorizationConfirm: merchant + "32" + token + terminal + "ORDER1" + "1250",
		bankstore.OpDeferredPreauthorizationCancel:  merchant + "32" + token + terminal + "ORDER1" + "1250",
		bankstore.OpAddUserToken:                    merchant + jetToken + jetID + terminal,
		bankstore.OpExecutePurchaseRToken:           merchant + terminal + "1250" + "ORDER1" + rtoken,
	}
	if len(want) != len(bankstore.Operations()) {
		t.Fatalf("vectors for %d operations, want %d", len(want), len(bankstore.Operations()))
	}
	for op, concat := range want {
		got := bankstore.Sign(op, elems, secret.New(password))
		if w := sha512hex(concat + password); got != w {
			t.Errorf("Sign(%s) = %s, want sha512(%q) = %s", op, got, concat+password, w)
		}
		if strings.ToLower(got) != got {
			t.Errorf("Sign(%s) is not lower-case hex", op)
		}
	}
}
