package bankstore_test

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/paycomet-notify/paycomet-notify/bankstore"
)

// answering is a server that gives every request the same answer.
func answering(t *testing.T, status int, body string) (*httptest.Server, *atomic.Int32) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		w.Header().Set("Content-Type", "text/xml; charset=utf-8")
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

const infoOK = `<?xml version="1.0" encoding="UTF-8"?>
<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/" xmlns:ns1="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><SOAP-ENV:Body><ns1:info_userResponse>
<DS_MERCHANT_PAN xsi:type="xsd:string">XXXXXXXXXXXX0004</DS_MERCHANT_PAN>
<DS_ERROR_ID xsi:type="xsd:integer">0</DS_ERROR_ID>
<DS_CARD_BRAND xsi:type="xsd:string">VISA</DS_CARD_BRAND>
<DS_CARD_TYPE xsi:type="xsd:string">DEBIT</DS_CARD_TYPE>
<DS_CARD_I_COUNTRY_ISO3 xsi:type="xsd:string">ESP</DS_CARD_I_COUNTRY_ISO3>
<DS_EXPIRYDATE xsi:type="xsd:string">2030/05</DS_EXPIRYDATE>
<DS_CARD_HASH xsi:type="xsd:string">` + hash64 + `</DS_CARD_HASH>
<DS_CARD_CATEGORY xsi:type="xsd:string">CONSUMER</DS_CARD_CATEGORY>
<DS_SEPA_CARD xsi:type="xsd:string">1</DS_SEPA_CARD>
</ns1:info_userResponse></SOAP-ENV:Body></SOAP-ENV:Envelope>`

const hash64 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

var wantInfo = &bankstore.InfoUserResponse{
	MaskedPAN: "XXXXXXXXXXXX0004", CardBrand: "VISA", CardType: "DEBIT", IssuerCountryISO3: "ESP",
	Expiry: bankstore.YearMonth{Year: 2030, Month: time.May}, CardHash: hash64, CardCategory: "CONSUMER", SEPACard: true,
}

func TestBankstoreResponseParsing(t *testing.T) {
	type check func(t *testing.T, got *bankstore.InfoUserResponse, err error)
	success := func(t *testing.T, got *bankstore.InfoUserResponse, err error) {
		if err != nil {
			t.Fatalf("InfoUser = %v, want success", err)
		}
		if diff := cmp.Diff(wantInfo, got); diff != "" {
			t.Errorf("InfoUser (-want +got):\n%s", diff)
		}
	}
	malformed := func(mentions string) check {
		return func(t *testing.T, got *bankstore.InfoUserResponse, err error) {
			if !errors.Is(err, bankstore.ErrMalformedResponse) {
				t.Fatalf("InfoUser = %v, want ErrMalformedResponse", err)
			}
			if !strings.Contains(err.Error(), mentions) {
				t.Errorf("error %q does not mention %q", err, mentions)
			}
			var f *bankstore.FaultError
			var h *bankstore.HTTPError
			var b *bankstore.Error
			if errors.As(err, &f) || errors.As(err, &h) || errors.As(err, &b) {
				t.Errorf("malformed answer also reads as another kind of error: %#v", err)
			}
		}
	}
	tests := []struct {
		name   string
		status int
		body   string
		check  check
	}{
		{"success with ns1 prefixes and xsi types", 200, infoOK, success},
		{"success with a default namespace and no prefixes", 200,
			strings.NewReplacer("SOAP-ENV:", "", "ns1:", "", `xmlns:SOAP-ENV=`, `xmlns=`).Replace(infoOK), success},
		{"success with other prefixes and padded values like the seed's examples", 200,
			strings.NewReplacer("SOAP-ENV:", "soap:", "xmlns:SOAP-ENV", "xmlns:soap", ">XXXX", ">  XXXX", "ESP<", "ESP  <").Replace(infoOK), success},
		{"empty DS_ERROR_ID is success", 200,
			strings.Replace(infoOK, `<DS_ERROR_ID xsi:type="xsd:integer">0</DS_ERROR_ID>`, `<DS_ERROR_ID/>`, 1), success},
		{"PAYCOMET error", 200, envelope(`<ns1:info_userResponse><DS_MERCHANT_PAN></DS_MERCHANT_PAN><DS_ERROR_ID>1001</DS_ERROR_ID><DS_EXPIRYDATE></DS_EXPIRYDATE></ns1:info_userResponse>`),
			func(t *testing.T, got *bankstore.InfoUserResponse, err error) {
				var e *bankstore.Error
				if !errors.As(err, &e) {
					t.Fatalf("InfoUser = %v, want *bankstore.Error", err)
				}
				if e.Code != bankstore.CodeUserNotFound || e.Op != bankstore.OpInfoUser || e.Meaning() != "User (token) not found" {
					t.Errorf("error = %+v (%q), want code 1001 of info_user, User (token) not found", e, e.Meaning())
				}
				if !strings.Contains(err.Error(), "1001") || !strings.Contains(err.Error(), "User (token) not found") {
					t.Errorf("message %q lacks the code and its meaning", err)
				}
				if got != nil {
					t.Errorf("response = %+v, want nil with an error", got)
				}
			}},
		{"SOAP fault with status 500", 500, envelope(`<SOAP-ENV:Fault><faultcode>SOAP-ENV:Server</faultcode><faultstring>Procedure 'x' not present</faultstring></SOAP-ENV:Fault>`),
			func(t *testing.T, _ *bankstore.InfoUserResponse, err error) {
				var f *bankstore.FaultError
				if !errors.As(err, &f) || f.Code != "SOAP-ENV:Server" || f.String != "Procedure 'x' not present" || f.Op != bankstore.OpInfoUser {
					t.Fatalf("InfoUser = %#v, want the SOAP fault", err)
				}
				var h *bankstore.HTTPError
				if errors.As(err, &h) || errors.Is(err, bankstore.ErrMalformedResponse) {
					t.Errorf("fault also reads as HTTP or malformed: %v", err)
				}
			}},
		{"SOAP fault with status 200", 200, envelope(`<env:Fault xmlns:env="http://schemas.xmlsoap.org/soap/envelope/"><faultcode>env:Client</faultcode><faultstring>bad</faultstring></env:Fault>`),
			func(t *testing.T, _ *bankstore.InfoUserResponse, err error) {
				var f *bankstore.FaultError
				if !errors.As(err, &f) || f.Code != "env:Client" {
					t.Fatalf("InfoUser = %v, want a SOAP fault", err)
				}
			}},
		{"HTTP error", 503, "Service Unavailable",
			func(t *testing.T, _ *bankstore.InfoUserResponse, err error) {
				var h *bankstore.HTTPError
				if !errors.As(err, &h) || h.StatusCode != 503 {
					t.Fatalf("InfoUser = %v, want HTTP status 503", err)
				}
				var f *bankstore.FaultError
				if errors.As(err, &f) || errors.Is(err, bankstore.ErrMalformedResponse) {
					t.Errorf("HTTP error also reads as fault or malformed: %v", err)
				}
			}},
		{"truncated XML", 200, infoOK[:len(infoOK)/2], malformed("unexpected EOF")},
		{"not XML", 200, "OK", malformed("malformed response")},
		{"no Body", 200, `<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/"><SOAP-ENV:Header/></SOAP-ENV:Envelope>`, malformed("Body")},
		{"element that does not parse", 200, strings.Replace(infoOK, "2030/05", "05/30", 1), malformed("DS_EXPIRYDATE")},
		{"DS_ERROR_ID not a number", 200, strings.Replace(infoOK, `integer">0<`, `integer">none<`, 1), malformed("DS_ERROR_ID")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv, n := answering(t, tc.status, tc.body)
			c := newClient(t, srv.URL, bankstore.WithInfoUserRetry(1, 0))
			got, err := c.InfoUser(t.Context(), user)
			tc.check(t, got, err)
			if n.Load() != 1 {
				t.Errorf("requests = %d, want 1", n.Load())
			}
		})
	}
}

func envelope(body string) string {
	return `<?xml version="1.0" encoding="UTF-8"?><SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/" xmlns:ns1="urn:x"><SOAP-ENV:Body>` +
		body + `</SOAP-ENV:Body></SOAP-ENV:Envelope>`
}

// TestBankstoreMoneyMovingFailuresAreOutcomeUnknown: a charge that fails
// without a PAYCOMET answer must not look retryable.
func TestBankstoreMoneyMovingFailuresAreOutcomeUnknown(t *testing.T) {
	purchase := bankstore.PurchaseRequest{IDUser: 32, TokenUser: token, Amount: 100, Order: "O1", Currency: "EUR", OriginalIP: ip}
	for _, tc := range []struct {
		name    string
		status  int
		body    string
		unknown bool
	}{
		{"HTTP 500", 500, "oops", true},
		{"SOAP fault", 500, envelope(`<SOAP-ENV:Fault><faultcode>SOAP-ENV:Server</faultcode><faultstring>x</faultstring></SOAP-ENV:Fault>`), true},
		{"truncated", 200, infoOK[:40], true},
		{"PAYCOMET error", 200, envelope(`<r><DS_ERROR_ID>105</DS_ERROR_ID></r>`), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, n := answering(t, tc.status, tc.body)
			c := newClient(t, srv.URL)
			_, err := c.ExecutePurchase(t.Context(), purchase)
			if err == nil {
				t.Fatal("ExecutePurchase succeeded, want an error")
			}
			if got := errors.Is(err, bankstore.ErrOutcomeUnknown); got != tc.unknown {
				t.Errorf("errors.Is(%v, ErrOutcomeUnknown) = %v, want %v", err, got, tc.unknown)
			}
			if n.Load() != 1 {
				t.Errorf("requests = %d, want exactly 1 (a charge is never retried)", n.Load())
			}
		})
	}
}
