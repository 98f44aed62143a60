package bankstore_test

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/url"
	"os"
	"regexp"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/paycomet-notify/paycomet-notify/bankstore"
)

// TestBankstoreCallMatchesTypedCalls: the element-keyed form the command
// line uses puts the same bytes on the wire as the typed calls (compared with
// their golden files).
func TestBankstoreCallMatchesTypedCalls(t *testing.T) {
	for _, tc := range []struct {
		op    bankstore.Operation
		elems map[string]string
	}{
		{bankstore.OpInfoUser, map[string]string{"DS_IDUSER": "32", "DS_TOKEN_USER": token, "DS_ORIGINAL_IP": "192.0.2.10"}},
		{bankstore.OpExecutePurchase, map[string]string{
			"DS_IDUSER": "32", "DS_TOKEN_USER": token, "DS_MERCHANT_AMOUNT": "1250", "DS_MERCHANT_ORDER": "ORDER1",
			"DS_MERCHANT_CURRENCY": "EUR", "DS_ORIGINAL_IP": "192.0.2.10", "DS_MERCHANT_PRODUCTDESCRIPTION": "Socks & shoes",
			"DS_MERCHANT_OWNER": "Ana", "DS_MERCHANT_SCORING": "50", "DS_MERCHANT_DATA": `{"customer":{"email":"ana@example.com"}}`,
			"DS_MERCHANT_MERCHANTDESCRIPTOR": "SHOP 1", "DS_MERCHANT_SCA_EXCEPTION": "MIT", "DS_MERCHANT_TRX_TYPE": "R",
			// Escrow targets as plain JSON, amounts as number or string.
			"DS_ESCROW_TARGETS":   `{"TARGETS":[{"ESCROW_TARGET_ID":"acct1","ESCROW_TARGET_AMOUNT":1000},{"ESCROW_TARGET_ID":"acct2","ESCROW_TARGET_AMOUNT":"250"}]}`,
			"DS_USER_INTERACTION": "1",
		}},
		{bankstore.OpEditSubscription, map[string]string{"DS_IDUSER": "32", "DS_TOKEN_USER": token, "DS_SUBSCRIPTION_STARTDATE": "2030-02-01",
			"DS_SUBSCRIPTION_ENDDATE": "2032-02-01", "DS_SUBSCRIPTION_PERIODICITY": "7", "DS_SUBSCRIPTION_AMOUNT": "1500",
			"DS_EXECUTE": "0", "DS_ORIGINAL_IP": "192.0.2.10"}},
	} {
		t.Run(string(tc.op), func(t *testing.T) {
			rec, srv := newRecorder(t)
			if _, err := newClient(t, srv.URL).Call(t.Context(), tc.op, tc.elems); err != nil {
				t.Fatalf("Call: %v", err)
			}
			body, _, _ := rec.last()
			want, err := os.ReadFile("testdata/" + string(tc.op) + ".xml")
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(string(want), string(body)); diff != "" {
				t.Errorf("Call envelope differs from the typed call's (-typed +Call):\n%s", diff)
			}
		})
	}
}

func TestBankstoreCallRefusesBadElements(t *testing.T) {
	for _, tc := range []struct {
		name    string
		op      bankstore.Operation
		elems   map[string]string
		element string
	}{
		{"unknown element", bankstore.OpInfoUser, map[string]string{"DS_IDUSER": "1", "DS_TOKEN_USER": "t", "DS_AMOUNT": "1"}, "DS_AMOUNT"},
		{"element of another operation", bankstore.OpInfoUser, map[string]string{"DS_IDUSER": "1", "DS_TOKEN_USER": "t", "DS_MERCHANT_PAN": pan}, "DS_MERCHANT_PAN"},
		{"terminal given", bankstore.OpInfoUser, map[string]string{"DS_IDUSER": "1", "DS_TOKEN_USER": "t", "DS_MERCHANT_TERMINAL": "1"}, "DS_MERCHANT_TERMINAL"},
		{"signature given", bankstore.OpInfoUser, map[string]string{"DS_IDUSER": "1", "DS_TOKEN_USER": "t", "DS_MERCHANT_MERCHANTSIGNATURE": "x"}, "DS_MERCHANT_MERCHANTSIGNATURE"},
		{"missing token", bankstore.OpInfoUser, map[string]string{"DS_IDUSER": "1"}, "DS_TOKEN_USER"},
		{"empty token", bankstore.OpInfoUser, map[string]string{"DS_IDUSER": "1", "DS_TOKEN_USER": ""}, "DS_TOKEN_USER"},
		{"user not a number", bankstore.OpInfoUser, map[string]string{"DS_IDUSER": "abc", "DS_TOKEN_USER": "t"}, "DS_IDUSER"},
		{"amount with decimals", bankstore.OpExecutePurchase, map[string]string{"DS_IDUSER": "1", "DS_TOKEN_USER": "t", "DS_MERCHANT_AMOUNT": "12.50",
			"DS_MERCHANT_ORDER": "O", "DS_MERCHANT_CURRENCY": "EUR"}, "DS_MERCHANT_AMOUNT"},
		{"required flag missing", bankstore.OpEditSubscription, map[string]string{"DS_IDUSER": "1", "DS_TOKEN_USER": "t",
			"DS_SUBSCRIPTION_ENDDATE": "2030-01-01", "DS_SUBSCRIPTION_PERIODICITY": "7", "DS_SUBSCRIPTION_AMOUNT": "1"}, "DS_EXECUTE"},
		{"flag not 0 or 1", bankstore.OpEditSubscription, map[string]string{"DS_IDUSER": "1", "DS_TOKEN_USER": "t",
			"DS_SUBSCRIPTION_ENDDATE": "2030-01-01", "DS_SUBSCRIPTION_PERIODICITY": "7", "DS_SUBSCRIPTION_AMOUNT": "1", "DS_EXECUTE": "yes"}, "DS_EXECUTE"},
		{"date in another form", bankstore.OpEditSubscription, map[string]string{"DS_IDUSER": "1", "DS_TOKEN_USER": "t",
			"DS_SUBSCRIPTION_ENDDATE": "01/01/2030", "DS_SUBSCRIPTION_PERIODICITY": "7", "DS_SUBSCRIPTION_AMOUNT": "1", "DS_EXECUTE": "1"}, "DS_SUBSCRIPTION_ENDDATE"},
		{"escrow not JSON", bankstore.OpExecutePurchase, map[string]string{"DS_IDUSER": "1", "DS_TOKEN_USER": "t", "DS_MERCHANT_AMOUNT": "1",
			"DS_MERCHANT_ORDER": "O", "DS_MERCHANT_CURRENCY": "EUR", "DS_ESCROW_TARGETS": "{nope"}, "DS_ESCROW_TARGETS"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec, srv := newRecorder(t)
			_, err := newClient(t, srv.URL).Call(t.Context(), tc.op, tc.elems)
			var in *bankstore.InputError
			if !errors.As(err, &in) || in.Element != tc.element {
				t.Fatalf("Call = %v, want an *InputError naming %s", err, tc.element)
			}
			if _, _, n := rec.last(); n != 0 {
				t.Errorf("%d requests sent, want none", n)
			}
		})
	}
}

// TestBankstoreCallReturnsElementsWithPaycometError: the command prints the
// answer even when PAYCOMET refused.
func TestBankstoreCallReturnsElementsWithPaycometError(t *testing.T) {
	c, _ := fakeClient(t)
	got, err := c.Call(t.Context(), bankstore.OpInfoUser, map[string]string{"DS_IDUSER": "404", "DS_TOKEN_USER": "nobody"})
	wantCode(t, "Call(info_user)", err, bankstore.CodeUserNotFound)
	if got["DS_ERROR_ID"] != "1001" {
		t.Errorf("elements = %v, want DS_ERROR_ID 1001", got)
	}
	if _, ok := got["DS_MERCHANT_PAN"]; !ok {
		t.Errorf("elements = %v, want every element of the answer, empty ones too", got)
	}
}

// TestBankstoreEscrowEncoding decodes the golden envelope's
// DS_ESCROW_TARGETS by hand: URL-decoding, then base64, then JSON.
func TestBankstoreEscrowEncoding(t *testing.T) {
	body, err := os.ReadFile("testdata/execute_purchase.xml")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`<DS_ESCROW_TARGETS type="xsd:string">([^<]*)<`).FindSubmatch(body)
	if m == nil {
		t.Fatal("no DS_ESCROW_TARGETS in the golden envelope")
	}
	unescaped, err := url.QueryUnescape(string(m[1]))
	if err != nil {
		t.Fatal(err)
	}
	if unescaped == string(m[1]) {
		t.Errorf("value %q needed no URL-decoding; want the base64 padding escaped", m[1])
	}
	raw, err := base64.StdEncoding.DecodeString(unescaped)
	if err != nil {
		t.Fatal(err)
	}
	var got any
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"TARGETS": []any{
		map[string]any{"ESCROW_TARGET_ID": "acct1", "ESCROW_TARGET_AMOUNT": "1000"},
		map[string]any{"ESCROW_TARGET_ID": "acct2", "ESCROW_TARGET_AMOUNT": "250"},
	}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("escrow document (-want +got):\n%s", diff)
	}
}
