package bankstore_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/paycomet-notify/paycomet-notify/bankstore"
	"github.com/paycomet-notify/paycomet-notify/secret"
)

func validPurchase() bankstore.PurchaseRequest {
	return bankstore.PurchaseRequest{IDUser: 32, TokenUser: token, Amount: 1250, Order: "ORDER1", Currency: "EUR", OriginalIP: ip}
}

func validSubscription() bankstore.CreateSubscriptionTokenRequest {
	return bankstore.CreateSubscriptionTokenRequest{IDUser: 32, TokenUser: token, StartDate: bankstore.Date{Year: 2030, Month: 1, Day: 1},
		EndDate: bankstore.Date{Year: 2031, Month: 1, Day: 1}, Order: "S1", PeriodicityDays: 30, Amount: 100, Currency: "EUR", OriginalIP: ip}
}

func validCard() bankstore.AddUserRequest {
	return bankstore.AddUserRequest{PAN: secret.New(pan), Expiry: bankstore.CardExpiry{Year: 2030, Month: 5}, CVV2: secret.New(cvv), OriginalIP: ip}
}

// TestBankstoreInputChecks: each malformed element is refused, named, and
// nothing is sent.
func TestBankstoreInputChecks(t *testing.T) {
	today := bankstore.NewDate(time.Now())
	purchase := func(edit func(*bankstore.PurchaseRequest)) func(context.Context, *bankstore.Client) error {
		return func(ctx context.Context, c *bankstore.Client) error {
			r := validPurchase()
			edit(&r)
			_, err := c.ExecutePurchase(ctx, r)
			return err
		}
	}
	subscription := func(edit func(*bankstore.CreateSubscriptionTokenRequest)) func(context.Context, *bankstore.Client) error {
		return func(ctx context.Context, c *bankstore.Client) error {
			r := validSubscription()
			edit(&r)
			_, err := c.CreateSubscriptionToken(ctx, r)
			return err
		}
	}
	addUser := func(edit func(*bankstore.AddUserRequest)) func(context.Context, *bankstore.Client) error {
		return func(ctx context.Context, c *bankstore.Client) error {
			r := validCard()
			edit(&r)
			_, err := c.AddUser(ctx, r)
			return err
		}
	}
	tests := []struct {
		name    string
		call    func(context.Context, *bankstore.Client) error
		element string
	}{
		{"order with a dash", purchase(func(r *bankstore.PurchaseRequest) { r.Order = "ORD-1" }), "DS_MERCHANT_ORDER"},
		{"order of 21 characters", purchase(func(r *bankstore.PurchaseRequest) { r.Order = strings.Repeat("A", 21) }), "DS_MERCHANT_ORDER"},
		{"missing order", purchase(func(r *bankstore.PurchaseRequest) { r.Order = "" }), "DS_MERCHANT_ORDER"},
		{"zero amount", purchase(func(r *bankstore.PurchaseRequest) { r.Amount = 0 }), "DS_MERCHANT_AMOUNT"},
		{"negative amount", purchase(func(r *bankstore.PurchaseRequest) { r.Amount = -5 }), "DS_MERCHANT_AMOUNT"},
		{"amount of 9 digits", purchase(func(r *bankstore.PurchaseRequest) { r.Amount = 123456789 }), "DS_MERCHANT_AMOUNT"},
		{"lower-case currency", purchase(func(r *bankstore.PurchaseRequest) { r.Currency = "eur" }), "DS_MERCHANT_CURRENCY"},
		{"zero user", purchase(func(r *bankstore.PurchaseRequest) { r.IDUser = 0 }), "DS_IDUSER"},
		{"user of 14 digits", purchase(func(r *bankstore.PurchaseRequest) { r.IDUser = 12345678901234 }), "DS_IDUSER"},
		{"token with a dash", purchase(func(r *bankstore.PurchaseRequest) { r.TokenUser = "abc-def" }), "DS_TOKEN_USER"},
		{"IPv6 original IP", purchase(func(r *bankstore.PurchaseRequest) { r.OriginalIP = netip.MustParseAddr("2001:db8::1") }), "DS_ORIGINAL_IP"},
		{"scoring over 100", purchase(func(r *bankstore.PurchaseRequest) { r.Scoring = ptr(101) }), "DS_MERCHANT_SCORING"},
		{"negative scoring", purchase(func(r *bankstore.PurchaseRequest) { r.Scoring = ptr(-1) }), "DS_MERCHANT_SCORING"},
		{"descriptor of 26 characters", purchase(func(r *bankstore.PurchaseRequest) { r.MerchantDescriptor = strings.Repeat("D", 26) }), "DS_MERCHANT_MERCHANTDESCRIPTOR"},
		{"descriptor with an accent", purchase(func(r *bankstore.PurchaseRequest) { r.MerchantDescriptor = "Café" }), "DS_MERCHANT_MERCHANTDESCRIPTOR"},
		{"description of 41 characters", purchase(func(r *bankstore.PurchaseRequest) { r.ProductDescription = strings.Repeat("p", 41) }), "DS_MERCHANT_PRODUCTDESCRIPTION"},
		{"owner with a newline", purchase(func(r *bankstore.PurchaseRequest) { r.Owner = "Ana\nLuis" }), "DS_MERCHANT_OWNER"},
		{"unknown SCA exception", purchase(func(r *bankstore.PurchaseRequest) { r.SCAException = "XYZ" }), "DS_MERCHANT_SCA_EXCEPTION"},
		{"unknown MIT type", purchase(func(r *bankstore.PurchaseRequest) { r.SCAException, r.TrxType = "MIT", "Z" }), "DS_MERCHANT_TRX_TYPE"},
		{"MIT without its type", purchase(func(r *bankstore.PurchaseRequest) { r.SCAException = bankstore.SCAMerchantMIT }), "DS_MERCHANT_TRX_TYPE"},
		{"merchant data not JSON", purchase(func(r *bankstore.PurchaseRequest) { r.MerchantData = bankstore.MerchantData("{oops") }), "DS_MERCHANT_DATA"},
		{"escrow target without ID", purchase(func(r *bankstore.PurchaseRequest) {
			r.EscrowTargets = bankstore.EscrowTargets{{Amount: 5}}
		}), "DS_ESCROW_TARGETS"},

		{"PAN of 15 digits", addUser(func(r *bankstore.AddUserRequest) { r.PAN = secret.New(pan[:15]) }), "DS_MERCHANT_PAN"},
		{"PAN of 20 digits", addUser(func(r *bankstore.AddUserRequest) { r.PAN = secret.New(pan + "1234") }), "DS_MERCHANT_PAN"},
		{"PAN with spaces", addUser(func(r *bankstore.AddUserRequest) { r.PAN = secret.New("4548 8120 4940 0004") }), "DS_MERCHANT_PAN"},
		{"missing PAN", addUser(func(r *bankstore.AddUserRequest) { r.PAN = secret.Value{} }), "DS_MERCHANT_PAN"},
		{"expiry month 13", addUser(func(r *bankstore.AddUserRequest) { r.Expiry = bankstore.CardExpiry{Year: 2030, Month: 13} }), "DS_MERCHANT_EXPIRYDATE"},
		{"expiry year 1999", addUser(func(r *bankstore.AddUserRequest) { r.Expiry = bankstore.CardExpiry{Year: 1999, Month: 1} }), "DS_MERCHANT_EXPIRYDATE"},
		{"missing expiry", addUser(func(r *bankstore.AddUserRequest) { r.Expiry = bankstore.CardExpiry{} }), "DS_MERCHANT_EXPIRYDATE"},
		{"CVV of 2 digits", addUser(func(r *bankstore.AddUserRequest) { r.CVV2 = secret.New("12") }), "DS_MERCHANT_CVV2"},
		{"CVV of 5 digits", addUser(func(r *bankstore.AddUserRequest) { r.CVV2 = secret.New("12345") }), "DS_MERCHANT_CVV2"},
		{"cardholder with a control character", addUser(func(r *bankstore.AddUserRequest) { r.CardholderName = "Ana\x00" }), "DS_MERCHANT_CARDHOLDERNAME"},

		{"periodicity of 366 days", subscription(func(r *bankstore.CreateSubscriptionTokenRequest) { r.PeriodicityDays = 366 }), "DS_SUBSCRIPTION_PERIODICITY"},
		{"zero periodicity", subscription(func(r *bankstore.CreateSubscriptionTokenRequest) { r.PeriodicityDays = 0 }), "DS_SUBSCRIPTION_PERIODICITY"},
		{"end a day past five years", subscription(func(r *bankstore.CreateSubscriptionTokenRequest) {
			r.EndDate = r.StartDate.AddDate(5, 0, 1)
		}), "DS_SUBSCRIPTION_ENDDATE"},
		{"end before start", subscription(func(r *bankstore.CreateSubscriptionTokenRequest) {
			r.EndDate = r.StartDate.AddDate(0, 0, -1)
		}), "DS_SUBSCRIPTION_ENDDATE"},
		{"empty start and end past today plus five years", subscription(func(r *bankstore.CreateSubscriptionTokenRequest) {
			r.StartDate, r.EndDate = bankstore.Date{}, today.AddDate(5, 0, 1)
		}), "DS_SUBSCRIPTION_ENDDATE"},
		{"missing end", subscription(func(r *bankstore.CreateSubscriptionTokenRequest) { r.EndDate = bankstore.Date{} }), "DS_SUBSCRIPTION_ENDDATE"},
		{"subscription order with a bracket", subscription(func(r *bankstore.CreateSubscriptionTokenRequest) { r.Order = "S[1]" }), "DS_SUBSCRIPTION_ORDER"},

		{"rtoken order of 71 characters", func(ctx context.Context, c *bankstore.Client) error {
			_, err := c.ExecutePurchaseRToken(ctx, bankstore.RTokenPurchaseRequest{Amount: 1, Order: longOrd + "X", Identifier: rtoken, Currency: "EUR"})
			return err
		}, "DS_MERCHANT_ORDER"},
		{"rtoken identifier in capitals", func(ctx context.Context, c *bankstore.Client) error {
			_, err := c.ExecutePurchaseRToken(ctx, bankstore.RTokenPurchaseRequest{Amount: 1, Order: "R1", Identifier: strings.ToUpper(rtoken), Currency: "EUR"})
			return err
		}, "DS_MERCHANT_IDENTIFIER"},
		{"JET token of 63 characters", func(ctx context.Context, c *bankstore.Client) error {
			_, err := c.AddUserToken(ctx, bankstore.AddUserTokenRequest{JetToken: jetToken[1:], JetID: jetID})
			return err
		}, "DS_MERCHANT_JETTOKEN"},
		{"DCC session with a space", func(ctx context.Context, c *bankstore.Client) error {
			_, err := c.ConfirmPurchaseDCC(ctx, bankstore.ConfirmDCCRequest{Order: "D1", DCCCurrency: "USD", DCCSession: "a b"})
			return err
		}, "DS_MERCHANT_DCC_SESSION"},
		{"refund without auth code", func(ctx context.Context, c *bankstore.Client) error {
			_, err := c.ExecuteRefund(ctx, bankstore.RefundRequest{IDUser: 32, TokenUser: token, Order: "O1", Currency: "EUR"})
			return err
		}, "DS_MERCHANT_AUTHCODE"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec, srv := newRecorder(t)
			c := newClient(t, srv.URL)
			err := tc.call(t.Context(), c)
			var in *bankstore.InputError
			if !errors.As(err, &in) {
				t.Fatalf("call = %v, want an *InputError for %s", err, tc.element)
			}
			if in.Element != tc.element || !strings.Contains(err.Error(), tc.element) {
				t.Errorf("error %q names %s, want %s", err, in.Element, tc.element)
			}
			if _, _, n := rec.last(); n != 0 {
				t.Errorf("%d requests sent, want none", n)
			}
		})
	}
}

// TestBankstoreValidEdgesPass keeps the checks from refusing what the seed
// allows.
func TestBankstoreValidEdgesPass(t *testing.T) {
	rec, srv := newRecorder(t)
	c := newClient(t, srv.URL)
	ctx := t.Context()
	r := validSubscription()
	r.EndDate, r.PeriodicityDays, r.Order = r.StartDate.AddDate(5, 0, 0), 365, "Luis_3268314"
	if _, err := c.CreateSubscriptionToken(ctx, r); err != nil {
		t.Errorf("end exactly five years after start, 365 days, the seed's order example: %v", err)
	}
	p := validPurchase()
	p.Scoring, p.Amount, p.MerchantDescriptor, p.ProductDescription = ptr(0), 99999999, strings.Repeat("D", 25), strings.Repeat("ñ", 40)
	if _, err := c.ExecutePurchase(ctx, p); err != nil {
		t.Errorf("scoring 0, 8-digit amount, 25-character descriptor, 40-character description: %v", err)
	}
	a := validCard()
	a.PAN = secret.New("4548812049400004123")
	if _, err := c.AddUser(ctx, a); err != nil {
		t.Errorf("19-digit PAN: %v", err)
	}
	if _, _, n := rec.last(); n != 3 {
		t.Errorf("%d requests sent, want 3", n)
	}
}

// TestBankstoreEmptyStartDateIsSentEmpty: the seed reads an empty start as
// today, so the element must be there, empty.
func TestBankstoreEmptyStartDateIsSentEmpty(t *testing.T) {
	rec, srv := newRecorder(t)
	c := newClient(t, srv.URL)
	r := validSubscription()
	r.StartDate, r.EndDate = bankstore.Date{}, bankstore.NewDate(time.Now()).AddDate(1, 0, 0)
	if _, err := c.CreateSubscriptionToken(t.Context(), r); err != nil {
		t.Fatal(err)
	}
	body, _, _ := rec.last()
	if !strings.Contains(string(body), `<DS_SUBSCRIPTION_STARTDATE type="xsd:string"></DS_SUBSCRIPTION_STARTDATE>`) {
		t.Errorf("no empty DS_SUBSCRIPTION_STARTDATE in\n%s", body)
	}
}

// TestBankstoreCardDataNeverInErrors: neither errors nor printed requests
// show the PAN or CVV2, whatever went wrong.
func TestBankstoreCardDataNeverInErrors(t *testing.T) {
	const secretPAN, secretCVV = "4548812049400004", "987"
	card := bankstore.AddUserRequest{PAN: secret.New(secretPAN), Expiry: bankstore.CardExpiry{Year: 2030, Month: 13}, CVV2: secret.New(secretCVV), OriginalIP: ip}
	sub := bankstore.CreateSubscriptionRequest{PAN: secret.New("4548 8120 4940 0004"), Expiry: bankstore.CardExpiry{Year: 2030, Month: 1},
		CVV2: secret.New("98765"), EndDate: bankstore.Date{Year: 2029, Month: 1, Day: 1}, Order: "S1", PeriodicityDays: 30, Amount: 1, Currency: "EUR"}

	var errs []error
	rec, srv := newRecorder(t)
	c := newClient(t, srv.URL)
	_, err := c.AddUser(t.Context(), card) // bad expiry
	errs = append(errs, err)
	_, err = c.CreateSubscription(t.Context(), sub) // bad PAN, CVV and dates
	errs = append(errs, err)
	_, err = c.Call(t.Context(), bankstore.OpAddUser, map[string]string{"DS_MERCHANT_PAN": secretPAN + "x", "DS_MERCHANT_EXPIRYDATE": secretCVV, "DS_MERCHANT_CVV2": "abc" + secretCVV})
	errs = append(errs, err)
	if _, _, n := rec.last(); n != 0 {
		t.Errorf("%d requests sent with bad card data, want none", n)
	}

	// A server that echoes the card data in its fault.
	echo, _ := answering(t, 500, envelope(`<SOAP-ENV:Fault><faultcode>SOAP-ENV:Client</faultcode><faultstring>card `+secretPAN+` cvv `+secretCVV+` rejected</faultstring></SOAP-ENV:Fault>`))
	card.Expiry.Month = 5
	_, err = newClient(t, echo.URL).AddUser(t.Context(), card)
	var f *bankstore.FaultError
	if !errors.As(err, &f) {
		t.Fatalf("AddUser against an echoing fault = %v, want a *FaultError", err)
	}
	errs = append(errs, err)

	for _, err := range errs {
		if err == nil {
			t.Fatal("want an error")
		}
		msg := err.Error() + fmt.Sprintf(" %v %+v %#v", err, err, err)
		for _, s := range []string{secretPAN, "4548 8120", secretCVV, "98765"} {
			if strings.Contains(msg, s) {
				t.Errorf("error %q contains card data %q", msg, s)
			}
		}
	}
	for _, v := range []any{card, sub, &card} {
		printed := fmt.Sprintf("%v %+v %#v", v, v, v)
		if strings.Contains(printed, secretPAN) || strings.Contains(printed, secretCVV) {
			t.Errorf("printing a request shows card data: %s", printed)
		}
	}
}
