package events

import (
	"errors"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func ptr[T any](v T) *T { return &v }

// rawOf is what data.raw must hold for f: every field, one string each.
func rawOf(f url.Values) Raw {
	m := make(Raw, len(f))
	for k, vs := range f {
		m[k] = vs[0]
	}
	return m
}

var winterBank = time.Date(2026, 11, 24, 10, 15, 0, 0, Madrid())

// wantPayment is the Payment paymentForm(tt, "PN-1", response) parses into.
func wantPayment(typ int, response string, f url.Values, formula string) Payment {
	p := Payment{
		Terminal:        tTerminal,
		TransactionType: typ,
		Order:           "PN-1",
		Response:        response,
		Amount:          1000,
		Currency:        "EUR",
		AmountDisplay:   "10.00",
		BankDateTime:    winterBank,
		Meta: Meta{
			AuthenticatedBy:  AuthSignature,
			SignatureFormula: formula,
			SignedFields:     wantSigned(formula, f),
			ReceivedAt:       receivedAt,
			Raw:              rawOf(f),
		},
	}
	if response == "OK" {
		p.AuthCode = "802335/120098123810102711053606007000"
		p.ErrorID = ptr(0)
	} else {
		p.ErrorID = ptr(105)
		p.ErrorDescription = "Insufficient funds"
	}
	return p
}

func TestParseTypes(t *testing.T) {
	type row struct {
		name        string
		form        url.Values
		wantTopic   string
		wantType    string
		wantSubject string
		wantTime    time.Time
		wantSchema  string
		wantData    any
	}
	var rows []row
	payments := []struct {
		typ  int
		op   string
		wrap func(Payment) any
	}{
		{1, "authorization", func(p Payment) any { return Authorization{p} }},
		{2, "refund", func(p Payment) any { return Refund{p} }},
		{3, "preauthorization", func(p Payment) any { return Preauthorization{p} }},
		{4, "preauthorization_cancel", func(p Payment) any { return PreauthorizationCancel{p} }},
		{6, "preauthorization_confirm", func(p Payment) any { return PreauthorizationConfirm{p} }},
		{9, "subscription", func(p Payment) any { return Subscription{Payment: p} }},
		{13, "deferred_preauthorization", func(p Payment) any { return DeferredPreauthorization{p} }},
		{14, "deferred_preauthorization_cancel", func(p Payment) any { return DeferredPreauthorizationCancel{p} }},
		{16, "deferred_preauthorization_confirm", func(p Payment) any { return DeferredPreauthorizationConfirm{p} }},
		{106, "chargeback", func(p Payment) any { return Chargeback{p} }},
	}
	for _, p := range payments {
		for _, resp := range []string{"OK", "KO"} {
			f := paymentForm(strconv.Itoa(p.typ), "PN-1", resp)
			signed := withHash(f, refHashA(tMerchant, tTerminal, tPassword, f))
			outcome := strings.ToLower(resp)
			rows = append(rows, row{
				name:        p.op + " " + resp,
				form:        f,
				wantTopic:   "paycomet." + tTerminal + "." + p.op + "." + outcome,
				wantType:    "paycomet." + p.op + "." + outcome,
				wantSubject: "PN-1",
				wantTime:    winterBank,
				wantSchema:  "schemas/" + p.op + ".v1.json",
				wantData:    p.wrap(wantPayment(p.typ, resp, signed, "A")),
			})
		}
	}

	// Every optional field, normalised.
	full := paymentForm("1", "PN-1", "OK")
	for k, v := range map[string]string{
		"AmountEur": "10.00", "DateTime": "20261124101459", "TransactionName": "Autorización",
		"AccountCode": "0gs265nc", "IdUser": "4823117", "TokenUser": "xFDZpKdgFFs1BS2hSFxDPSGNIGcyuNmH",
		"MethodId": "1", "MethodName": "Tarjeta", "CardBrand": "VISA", "CardCountry": "ES",
		"BicCode": "BSABESBBXXX", "SecurePayment": "1", "Language": "ES", "ExtendedSignature": "0123abcd",
		"tpvLstr": "notify", // a merchant's own query parameter: kept in raw only
	} {
		full.Set(k, v)
	}
	fullWant := wantPayment(1, "OK", withHash(full, refHashA(tMerchant, tTerminal, tPassword, full)), "A")
	fullWant.AmountEUR = ptr(int64(1000))
	fullWant.DateTime = time.Date(2026, 11, 24, 10, 14, 59, 0, Madrid())
	fullWant.Details = Details{
		TransactionName: "Autorización", AccountCode: "0gs265nc", ErrorID: ptr(0), IDUser: ptr(int64(4823117)),
		TokenUser: "xFDZpKdgFFs1BS2hSFxDPSGNIGcyuNmH", MethodID: ptr(1), MethodName: "Tarjeta", CardBrand: "VISA",
		CardCountry: "ES", BICCode: "BSABESBBXXX", SecurePayment: ptr(true), Language: "ES",
	}
	rows = append(rows, row{"authorization with every field", full, "paycomet.31337.authorization.ok",
		"paycomet.authorization.ok", "PN-1", winterBank, "schemas/authorization.v1.json", Authorization{fullWant}})

	// Normalisation: lower-case currency and response, summer time, JPY,
	// pending, malformed optional fields dropped (raw keeps them).
	norm := paymentForm("3", "PN-1", "OK")
	norm.Set("Currency", "jpy")
	norm.Set("Response", "ok")
	norm.Set("Amount", "0001500")
	norm.Set("BankDateTime", "20260715183045")
	norm.Set("SecurePayment", "yes")
	norm.Set("MethodId", "card")
	norm.Set("AmountEur", "9,12")
	normWant := wantPayment(3, "OK", withHash(norm, refHashA(tMerchant, tTerminal, tPassword, norm)), "A")
	normWant.Currency, normWant.Amount, normWant.AmountDisplay = "JPY", 1500, "1500"
	normWant.BankDateTime = time.Date(2026, 7, 15, 18, 30, 45, 0, Madrid())
	rows = append(rows, row{"preauthorization normalised", norm, "paycomet.31337.preauthorization.ok",
		"paycomet.preauthorization.ok", "PN-1", normWant.BankDateTime, "schemas/preauthorization.v1.json", Preauthorization{normWant}})

	pending := paymentForm("1", "PN-1", "OK")
	pending.Set("Response", "SF")
	pendingWant := wantPayment(1, "OK", withHash(pending, refHashA(tMerchant, tTerminal, tPassword, pending)), "A")
	pendingWant.Response = "SF"
	rows = append(rows, row{"authorization pending", pending, "paycomet.31337.authorization.pending",
		"paycomet.authorization.pending", "PN-1", winterBank, "schemas/authorization.v1.json", Authorization{pendingWant}})

	inst := paymentForm("9", "SUB-42[5120044]20261224", "OK")
	inst.Set("Order", "SUB-42[5120044]20261224")
	instWant := wantPayment(9, "OK", withHash(inst, refHashA(tMerchant, tTerminal, tPassword, inst)), "A")
	instWant.Order = "SUB-42[5120044]20261224"
	rows = append(rows, row{"subscription instalment", inst, "paycomet.31337.subscription.ok",
		"paycomet.subscription.ok", "SUB-42[5120044]20261224", winterBank, "schemas/subscription.v1.json",
		Subscription{Payment: instWant, Instalment: &Instalment{OriginalOrder: "SUB-42", IDUser: 5120044, Date: "2026-12-24"}}})

	for _, resp := range []string{"OK", "KO"} {
		f := cardRegistrationForm(resp)
		signed := withHash(f, refHashB(tMerchant, tTerminal, tPassword, f))
		d := CardRegistration{
			Terminal: tTerminal, TransactionType: 107, Order: "4711_1", Response: resp,
			DateTime: winterBank,
			Meta:     Meta{AuthenticatedBy: AuthSignature, SignatureFormula: "B", SignedFields: wantSigned("B", signed), ReceivedAt: receivedAt, Raw: rawOf(signed)},
		}
		if resp == "OK" {
			d.Details = Details{ErrorID: ptr(0), IDUser: ptr(int64(4823117)), TokenUser: "xFDZpKdgFFs1BS2hSFxDPSGNIGcyuNmH"}
		} else {
			d.Details = Details{ErrorID: ptr(1005)}
		}
		outcome := strings.ToLower(resp)
		rows = append(rows, row{"card registration " + resp, f, "paycomet.31337.card_registration." + outcome,
			"paycomet.card_registration." + outcome, "4711_1", winterBank, "schemas/card_registration.v1.json", d})
	}

	exp := cardExpiryForm()
	rows = append(rows, row{"card expiry", exp, "paycomet.31337.card_expiry.notice", "paycomet.card_expiry.notice",
		"4823117", receivedAt, "schemas/card_expiry.v1.json", CardExpiry{
			Terminal: tTerminal, TransactionType: 108, TransactionName: "Caducidad tarjeta", IDUser: 4823117,
			MonthsToExpire: 2, Name: "Demo shop", Domain: "shop.example.com",
			Meta: Meta{AuthenticatedBy: AuthURLToken, SignedFields: []string{}, ReceivedAt: receivedAt, Raw: rawOf(exp)},
		}})

	unknown := paymentForm("200", "PN-1", "OK")
	unknown.Set("MonthsToExpire", "3")
	unknown.Set("Surprise", "kept")
	unknownSigned := withHash(unknown, refHashA(tMerchant, tTerminal, tPassword, unknown))
	rows = append(rows, row{"unknown type, every known field", unknown, "paycomet.31337.operation_200.ok",
		"paycomet.operation_200.ok", "PN-1", winterBank, "schemas/operation.v1.json", OtherOperation{
			Terminal: tTerminal, TransactionType: 200, Order: "PN-1", Response: "OK",
			Amount: ptr(int64(1000)), Currency: "EUR", AmountDisplay: "10.00", BankDateTime: winterBank,
			AuthCode: "802335/120098123810102711053606007000", MonthsToExpire: ptr(3),
			Details: Details{ErrorID: ptr(0)},
			Meta:    Meta{AuthenticatedBy: AuthSignature, SignatureFormula: "A", SignedFields: wantSigned("A", unknown), ReceivedAt: receivedAt, Raw: rawOf(unknownSigned)},
		}})

	bare := url.Values{"TransactionType": {"109"}, "TpvID": {tTerminal}, "Amount": {"12.50"}, "Currency": {"euro"}, "BankDateTime": {"yesterday"}}
	bareSigned := withHash(bare, refHashA(tMerchant, tTerminal, tPassword, bare))
	rows = append(rows, row{"unknown type, only the type", bare, "paycomet.31337.operation_109.notice",
		"paycomet.operation_109.notice", "", receivedAt, "schemas/operation.v1.json", OtherOperation{
			Terminal: tTerminal, TransactionType: 109,
			Meta: Meta{AuthenticatedBy: AuthSignature, SignatureFormula: "A", SignedFields: []string{"TpvID", "TransactionType", "Amount", "Currency", "BankDateTime"}, ReceivedAt: receivedAt, Raw: rawOf(bareSigned)},
		}})

	for _, tc := range rows {
		t.Run(tc.name, func(t *testing.T) {
			e := mustParse(t, tc.form)
			if got := e.Topic("paycomet"); got != tc.wantTopic {
				t.Errorf("Topic() = %q, want %q", got, tc.wantTopic)
			}
			if e.Type != tc.wantType || e.Subject != tc.wantSubject || e.DataSchema != tc.wantSchema {
				t.Errorf("Type, Subject, DataSchema = %q, %q, %q; want %q, %q, %q", e.Type, e.Subject, e.DataSchema, tc.wantType, tc.wantSubject, tc.wantSchema)
			}
			if !e.Time.Equal(tc.wantTime) {
				t.Errorf("Time = %v, want %v", e.Time, tc.wantTime)
			}
			if e.Source != "/paycomet/terminals/"+tTerminal {
				t.Errorf("Source = %q", e.Source)
			}
			if diff := cmp.Diff(tc.wantData, e.Data); diff != "" {
				t.Errorf("Data mismatch (-want +got):\n%s", diff)
			}
			validate(t, e)
		})
	}
}

func TestParseFieldErrors(t *testing.T) {
	pay := paymentForm("1", "PN-1", "OK")
	reg := cardRegistrationForm("OK")
	exp := cardExpiryForm()
	with := func(f url.Values, field string, values ...string) url.Values {
		g := clone(f)
		if values == nil {
			g.Del(field)
		} else {
			g[field] = values
		}
		return g
	}
	tests := []struct {
		name      string
		form      url.Values
		wantError string // exact Error()
	}{
		{"payment without Order", with(pay, "Order"), "Order: missing"},
		{"payment with empty Order", with(pay, "Order", ""), "Order: missing"},
		{"payment without Response", with(pay, "Response"), "Response: missing"},
		{"payment with unknown Response", with(pay, "Response", "MAYBE"), `Response: "MAYBE" is not OK, KO or SF`},
		{"payment without Amount", with(pay, "Amount"), "Amount: missing"},
		{"payment with decimal Amount", with(pay, "Amount", "12.50"), `Amount: "12.50" is not an integer in minor units`},
		{"payment with negative Amount", with(pay, "Amount", "-5"), `Amount: "-5" is not an integer in minor units`},
		{"payment with overflowing Amount", with(pay, "Amount", "99999999999999999999"), `Amount: "99999999999999999999" is not an integer in minor units`},
		{"payment without Currency", with(pay, "Currency"), "Currency: missing"},
		{"payment with long Currency", with(pay, "Currency", "EURO"), `Currency: "EURO" is not an ISO 4217 alphabetic code`},
		{"payment with numeric Currency", with(pay, "Currency", "978"), `Currency: "978" is not an ISO 4217 alphabetic code`},
		{"payment without BankDateTime", with(pay, "BankDateTime"), "BankDateTime: missing"},
		{"payment with ISO BankDateTime", with(pay, "BankDateTime", "2026-11-24T10:15:00"), `BankDateTime: "2026-11-24T10:15:00" is not a yyyymmddhhmmss time`},
		{"payment with month 13", with(pay, "BankDateTime", "20261324101500"), `BankDateTime: "20261324101500" is not a yyyymmddhhmmss time`},
		{"payment with conflicting Order", with(pay, "Order", "PN-1", "PN-2"), "Order: given more than once with different values"},
		{"payment with conflicting unsigned field", with(pay, "AuthCode", "1/1", "2/2"), "AuthCode: given more than once with different values"},
		{"107 without DateTime", with(reg, "DateTime"), "DateTime: missing"},
		{"107 with bad DateTime", with(reg, "DateTime", "24/11/2026"), `DateTime: "24/11/2026" is not a yyyymmddhhmmss time`},
		{"107 without Order", with(reg, "Order"), "Order: missing"},
		{"107 without Response", with(reg, "Response"), "Response: missing"},
		{"107 OK without IdUser", with(reg, "IdUser"), "IdUser: missing"},
		{"107 OK with bad IdUser", with(reg, "IdUser", "u-17"), `IdUser: "u-17" is not a BankStore user id (digits)`},
		{"107 OK without TokenUser", with(reg, "TokenUser"), "TokenUser: missing"},
		{"108 without IdUser", with(exp, "IdUser"), "IdUser: missing"},
		{"108 with bad IdUser", with(exp, "IdUser", "-3"), `IdUser: "-3" is not a BankStore user id (digits)`},
		{"108 without MonthsToExpire", with(exp, "MonthsToExpire"), "MonthsToExpire: missing"},
		{"108 with bad MonthsToExpire", with(exp, "MonthsToExpire", "soon"), `MonthsToExpire: "soon" is not an integer`},
		{"long values are cut in errors", with(pay, "Amount", strings.Repeat("9", 100)+"x"), `Amount: "` + strings.Repeat("9", 64) + `"... is not an integer in minor units`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			typ, _ := transactionType(tc.form.Get("TransactionType"))
			formula := "A"
			if typ == TypeCardRegistration {
				formula = "B"
			}
			_, err := Parse(FormFromValues(tc.form), signedAuth(typ, formula), receivedAt)
			var fe *FieldError
			if !errors.As(err, &fe) || err.Error() != tc.wantError {
				t.Fatalf("Parse() = %v, want FieldError %q", err, tc.wantError)
			}
		})
	}

	t.Run("108 without Terminal", func(t *testing.T) {
		// Authenticate would have used the single terminal; the notice
		// itself is still malformed.
		f := with(exp, "Terminal")
		_, err := Parse(FormFromValues(f), Auth{Terminal: tTerminal, Method: AuthURLToken, Type: 108}, receivedAt)
		if err == nil || err.Error() != "Terminal: missing" {
			t.Fatalf("Parse() = %v, want Terminal: missing", err)
		}
	})
	t.Run("107 KO needs no user", func(t *testing.T) {
		if _, err := Parse(FormFromValues(cardRegistrationForm("KO")), signedAuth(107, "B"), receivedAt); err != nil {
			t.Fatalf("Parse() = %v", err)
		}
	})
	t.Run("identical repeats collapse", func(t *testing.T) {
		f := clone(pay)
		for k, vs := range f {
			f[k] = append(vs, vs[0])
		}
		e, err := Parse(FormFromValues(f), signedAuth(1, "A"), receivedAt)
		if err != nil {
			t.Fatalf("Parse() = %v", err)
		}
		if diff := cmp.Diff(rawOf(pay), e.Data.(Authorization).Raw); diff != "" {
			t.Errorf("raw mismatch (-want +got):\n%s", diff)
		}
	})
	t.Run("several conflicts name the first field in order", func(t *testing.T) {
		f := with(with(pay, "Order", "a", "b"), "Amount", "1", "2")
		_, err := Parse(FormFromValues(f), signedAuth(1, "A"), receivedAt)
		if err == nil || err.Error() != "Amount: given more than once with different values" {
			t.Fatalf("Parse() = %v", err)
		}
	})
}

func TestParseNeedsAuthentication(t *testing.T) {
	f := paymentForm("1", "PN-1", "OK")
	for _, a := range []Auth{
		{},
		{Terminal: tTerminal, Type: 1}, // no method: Authenticate failed
		{Terminal: "", Method: AuthSignature, Type: 1},        // no terminal
		{Terminal: "31.337", Method: AuthSignature, Type: 1},  // not a subject token
		{Terminal: tTerminal, Method: AuthSignature, Type: 2}, // another form's Auth
	} {
		if _, err := Parse(FormFromValues(f), a, receivedAt); !errors.Is(err, ErrNotAuthenticated) {
			t.Errorf("Parse(%+v) = %v, want %v", a, err, ErrNotAuthenticated)
		}
	}
}

func TestAmounts(t *testing.T) {
	tests := []struct {
		amount   int64
		currency string
		want     string
	}{
		{1000, "EUR", "10.00"},
		{5, "EUR", "0.05"},
		{0, "EUR", "0.00"},
		{1000, "JPY", "1000"},
		{1000, "KRW", "1000"},
		{1000, "CLP", "1000"},
		{12345, "KWD", "12.345"},
		{1, "BHD", "0.001"},
		{1, "JOD", "0.001"},
		{1, "OMR", "0.001"},
		{1, "TND", "0.001"},
		{1, "IQD", "0.001"},
		{1, "LYD", "0.001"},
		{12345, "CLF", "1.2345"},
		{199, "USD", "1.99"},
		{199, "XYZ", "1.99"}, // unknown codes: ISO's usual two decimals
	}
	for _, tc := range tests {
		if got := FormatMinor(tc.amount, tc.currency); got != tc.want {
			t.Errorf("FormatMinor(%d, %s) = %q, want %q", tc.amount, tc.currency, got, tc.want)
		}
	}

	euros := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"10.00", 1000, true}, {"10", 1000, true}, {"10.5", 1050, true}, {"0.07", 7, true},
		{"10,00", 0, false}, {"", 0, false}, {"10.", 1000, true}, {".5", 0, false}, {"1.234", 0, false}, {"-1.00", 0, false},
	}
	for _, tc := range euros {
		got, ok := parseEuros(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("parseEuros(%q) = %d, %v; want %d, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestStampsAreMadridTime(t *testing.T) {
	tests := []struct {
		in   string
		want string
	}{
		{"20261124101500", "2026-11-24T10:15:00+01:00"},
		{"20260715183045", "2026-07-15T18:30:45+02:00"},
		{"20260329030000", "2026-03-29T03:00:00+02:00"}, // just after the spring change
	}
	for _, tc := range tests {
		got, ok := parseStamp(tc.in)
		if !ok || got.Format(time.RFC3339) != tc.want {
			t.Errorf("parseStamp(%q) = %v, %v; want %s", tc.in, got, ok, tc.want)
		}
	}
	for _, bad := range []string{"", "2026112410150", "202611241015000", "2026112410150x", "20260230101500", "20261124246000"} {
		if _, ok := parseStamp(bad); ok {
			t.Errorf("parseStamp(%q) succeeded, want failure", bad)
		}
	}
}

func TestSplitInstalment(t *testing.T) {
	tests := []struct {
		order string
		want  *Instalment
	}{
		{"SUB-42[5120044]20261224", &Instalment{"SUB-42", 5120044, "2026-12-24"}},
		{"a[b][7]20260101", &Instalment{"a[b]", 7, "2026-01-01"}},
		{"SUB-42", nil},
		{"[5120044]20261224", nil},        // no original order
		{"SUB-42[]20261224", nil},         // no user
		{"SUB-42[x1]20261224", nil},       // user not a number
		{"SUB-42[5120044]20261324", nil},  // month 13
		{"SUB-42[5120044]2026122", nil},   // short date
		{"SUB-42[5120044]20261224x", nil}, // trailing text
		{"SUB-42[5120044]", nil},
	}
	for _, tc := range tests {
		if diff := cmp.Diff(tc.want, splitInstalment(tc.order)); diff != "" {
			t.Errorf("splitInstalment(%q) mismatch (-want +got):\n%s", tc.order, diff)
		}
	}
}

func TestOperationName(t *testing.T) {
	for typ, want := range map[int]string{1: "authorization", 16: "deferred_preauthorization_confirm", 106: "chargeback",
		107: "card_registration", 108: "card_expiry", 5: "operation_5", 109: "operation_109"} {
		if got := OperationName(typ); got != want {
			t.Errorf("OperationName(%d) = %q, want %q", typ, got, want)
		}
	}
}
