package bankstore_test

import (
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/paycomet-notify/paycomet-notify/bankstore"
	"github.com/paycomet-notify/paycomet-notify/bankstore/bankstoretest"
	"github.com/paycomet-notify/paycomet-notify/internal/testenv"
	"github.com/paycomet-notify/paycomet-notify/secret"
)

func fakeClient(t *testing.T, opts ...bankstore.Option) (*bankstore.Client, *bankstoretest.Server) {
	t.Helper()
	fake := bankstoretest.NewServer(t, merchant, terminal, password)
	return newClient(t, fake.URL, opts...), fake
}

func seedUser(t *testing.T, fake *bankstoretest.Server, id int64, token string) {
	t.Helper()
	if err := fake.AddUser(id, token, "4548812049400004", "1230"); err != nil {
		t.Fatal(err)
	}
}

func wantCode(t *testing.T, what string, err error, code int) {
	t.Helper()
	var e *bankstore.Error
	if !errors.As(err, &e) || e.Code != code {
		t.Fatalf("%s = %v, want PAYCOMET error %d", what, err, code)
	}
}

// TestBankstoreLifecycle walks a card through every kind of operation
// against the fake over HTTP, ending with info_user failing with 1001 once
// the user is removed.
func TestBankstoreLifecycle(t *testing.T) {
	c, fake := fakeClient(t)
	ctx := t.Context()
	today := bankstore.NewDate(time.Now())

	added, err := c.AddUser(ctx, bankstore.AddUserRequest{PAN: secret.New("4548812049400004"),
		Expiry: bankstore.CardExpiry{Year: today.Year + 4, Month: time.June}, CVV2: secret.New("123"), CardholderName: "Ana"})
	if err != nil {
		t.Fatalf("AddUser: %v", err)
	}
	if added.IDUser <= 0 || added.TokenUser == "" {
		t.Fatalf("AddUser = %+v, want an id and a token", added)
	}
	u := bankstore.UserRequest{IDUser: added.IDUser, TokenUser: added.TokenUser}

	info, err := c.InfoUser(ctx, u)
	if err != nil {
		t.Fatalf("InfoUser: %v", err)
	}
	if info.MaskedPAN != "XXXXXXXXXXXX0004" || info.CardBrand != "VISA" || info.Expiry != (bankstore.YearMonth{Year: today.Year + 4, Month: time.June}) || len(info.CardHash) != 64 {
		t.Errorf("InfoUser = %+v, want the masked card, VISA, expiry %d/06 and a 64-character hash", info, today.Year+4)
	}

	bought, err := c.ExecutePurchase(ctx, bankstore.PurchaseRequest{IDUser: u.IDUser, TokenUser: u.TokenUser, Amount: 1250,
		Order: "LIFE1", Currency: "EUR", ProductDescription: "Socks & shoes", Scoring: ptr(20)})
	if err != nil {
		t.Fatalf("ExecutePurchase: %v", err)
	}
	if bought.Amount != 1250 || bought.Order != "LIFE1" || bought.Currency != "EUR" || bought.AuthCode == "" || !bought.Response {
		t.Errorf("ExecutePurchase = %+v", bought)
	}
	_, err = c.ExecutePurchase(ctx, bankstore.PurchaseRequest{IDUser: u.IDUser, TokenUser: u.TokenUser, Amount: 1, Order: "LIFE1", Currency: "EUR"})
	wantCode(t, "ExecutePurchase with a used order", err, bankstore.CodeDuplicatedReference)

	refunded, err := c.ExecuteRefund(ctx, bankstore.RefundRequest{IDUser: u.IDUser, TokenUser: u.TokenUser, AuthCode: bought.AuthCode,
		Order: "LIFE1", Currency: "EUR", Amount: 250})
	if err != nil || !refunded.Response || refunded.Order != "LIFE1" {
		t.Fatalf("ExecuteRefund = %+v, %v", refunded, err)
	}
	_, err = c.ExecuteRefund(ctx, bankstore.RefundRequest{IDUser: u.IDUser, TokenUser: u.TokenUser, AuthCode: bought.AuthCode,
		Order: "LIFE1", Currency: "EUR", Amount: 1001})
	wantCode(t, "refunding more than is left", err, bankstore.CodeRefundsExceedPayment)

	sub, err := c.CreateSubscriptionToken(ctx, bankstore.CreateSubscriptionTokenRequest{IDUser: u.IDUser, TokenUser: u.TokenUser,
		EndDate: today.AddDate(1, 0, 0), Order: "SUB_1", PeriodicityDays: 30, Amount: 999, Currency: "EUR"})
	if err != nil {
		t.Fatalf("CreateSubscriptionToken: %v", err)
	}
	wantOrder := "SUB_1[" + strconv.FormatInt(u.IDUser, 10) + "]" + strings.ReplaceAll(today.String(), "-", "")
	if sub.IDUser != u.IDUser || sub.Amount != 999 || sub.Order != wantOrder || sub.AuthCode == "" {
		t.Errorf("CreateSubscriptionToken = %+v, want instalment order %s", sub, wantOrder)
	}
	edited, err := c.EditSubscription(ctx, bankstore.EditSubscriptionRequest{IDUser: u.IDUser, TokenUser: u.TokenUser,
		EndDate: today.AddDate(2, 0, 0), PeriodicityDays: 60, Amount: 1999})
	if err != nil || edited.Amount != 1999 || edited.Currency != "EUR" {
		t.Fatalf("EditSubscription = %+v, %v", edited, err)
	}
	_, err = c.EditSubscription(ctx, bankstore.EditSubscriptionRequest{IDUser: u.IDUser, TokenUser: u.TokenUser,
		EndDate: today.AddDate(4, 11, 0), PeriodicityDays: 60, Amount: 1999})
	wantCode(t, "EditSubscription past the card's expiry", err, bankstore.CodeSubscriptionPastExpiry)
	if removed, err := c.RemoveSubscription(ctx, u); err != nil || !removed.Response {
		t.Fatalf("RemoveSubscription = %+v, %v", removed, err)
	}

	held, err := c.CreatePreauthorization(ctx, bankstore.PurchaseRequest{IDUser: u.IDUser, TokenUser: u.TokenUser, Amount: 5000, Order: "PRE1", Currency: "EUR"})
	if err != nil || held.AuthCode == "" {
		t.Fatalf("CreatePreauthorization = %+v, %v", held, err)
	}
	_, err = c.PreauthorizationConfirm(ctx, bankstore.PreauthorizationRequest{IDUser: u.IDUser, TokenUser: u.TokenUser, Amount: 5751, Order: "PRE1"})
	wantCode(t, "confirming more than 115%", err, bankstore.CodeAmountNotValid)
	confirmed, err := c.PreauthorizationConfirm(ctx, bankstore.PreauthorizationRequest{IDUser: u.IDUser, TokenUser: u.TokenUser, Amount: 5750, Order: "PRE1"})
	if err != nil || confirmed.Amount != 5750 || !confirmed.Response {
		t.Fatalf("PreauthorizationConfirm = %+v, %v", confirmed, err)
	}
	if _, err := c.CreatePreauthorization(ctx, bankstore.PurchaseRequest{IDUser: u.IDUser, TokenUser: u.TokenUser, Amount: 300, Order: "PRE2", Currency: "EUR"}); err != nil {
		t.Fatalf("CreatePreauthorization: %v", err)
	}
	if cancelled, err := c.PreauthorizationCancel(ctx, bankstore.PreauthorizationRequest{IDUser: u.IDUser, TokenUser: u.TokenUser, Amount: 300, Order: "PRE2"}); err != nil || !cancelled.Response {
		t.Fatalf("PreauthorizationCancel = %+v, %v", cancelled, err)
	}
	_, err = c.PreauthorizationConfirm(ctx, bankstore.PreauthorizationRequest{IDUser: u.IDUser, TokenUser: u.TokenUser, Amount: 300, Order: "PRE2"})
	wantCode(t, "confirming a cancelled preauthorisation", err, bankstore.CodeAlreadyCancelled)

	if err := fake.AddDeferredPreauthorization(u.IDUser, "DEF1", 700, "EUR"); err != nil {
		t.Fatal(err)
	}
	if err := fake.AddDeferredPreauthorization(u.IDUser, "DEF2", 700, "EUR"); err != nil {
		t.Fatal(err)
	}
	_, err = c.DeferredPreauthorizationConfirm(ctx, bankstore.PreauthorizationRequest{IDUser: u.IDUser, TokenUser: u.TokenUser, Amount: 701, Order: "DEF1"})
	wantCode(t, "confirming a deferred preauthorisation for another amount", err, bankstore.CodeAmountNotValid)
	if _, err := c.DeferredPreauthorizationConfirm(ctx, bankstore.PreauthorizationRequest{IDUser: u.IDUser, TokenUser: u.TokenUser, Amount: 700, Order: "DEF1"}); err != nil {
		t.Fatalf("DeferredPreauthorizationConfirm: %v", err)
	}
	if _, err := c.DeferredPreauthorizationCancel(ctx, bankstore.PreauthorizationRequest{IDUser: u.IDUser, TokenUser: u.TokenUser, Amount: 700, Order: "DEF2"}); err != nil {
		t.Fatalf("DeferredPreauthorizationCancel: %v", err)
	}

	offer, err := c.ExecutePurchaseDCC(ctx, bankstore.DCCPurchaseRequest{IDUser: u.IDUser, TokenUser: u.TokenUser, Amount: 1000, Order: "DCC1"})
	if err != nil || offer.DCCSession == "" || offer.DCCCurrency == "" || offer.DCCAmount == 0 || offer.Currency != "EUR" {
		t.Fatalf("ExecutePurchaseDCC = %+v, %v", offer, err)
	}
	_, err = c.ConfirmPurchaseDCC(ctx, bankstore.ConfirmDCCRequest{Order: "DCC1", DCCCurrency: offer.DCCCurrency, DCCSession: "wrongsession"})
	wantCode(t, "ConfirmPurchaseDCC with another session", err, bankstore.CodeOriginalNotFound)
	paid, err := c.ConfirmPurchaseDCC(ctx, bankstore.ConfirmDCCRequest{Order: "DCC1", DCCCurrency: offer.DCCCurrency, DCCSession: offer.DCCSession})
	if err != nil || paid.Amount != offer.DCCAmount || paid.Currency != offer.DCCCurrency || paid.AuthCode == "" {
		t.Fatalf("ConfirmPurchaseDCC = %+v, %v; want %d %s", paid, err, offer.DCCAmount, offer.DCCCurrency)
	}

	jet, err := c.AddUserToken(ctx, bankstore.AddUserTokenRequest{JetToken: jetToken, JetID: jetID})
	if err != nil || jet.IDUser == u.IDUser || jet.TokenUser == "" {
		t.Fatalf("AddUserToken = %+v, %v", jet, err)
	}
	rt, err := c.ExecutePurchaseRToken(ctx, bankstore.RTokenPurchaseRequest{Amount: 777, Order: longOrd, Identifier: rtoken, Currency: "EUR"})
	if err != nil || rt.Amount != 777 || rt.Order != longOrd {
		t.Fatalf("ExecutePurchaseRToken = %+v, %v", rt, err)
	}

	if removed, err := c.RemoveUser(ctx, u); err != nil || !removed.Response {
		t.Fatalf("RemoveUser = %+v, %v", removed, err)
	}
	_, err = c.InfoUser(ctx, u)
	wantCode(t, "InfoUser after RemoveUser", err, bankstore.CodeUserNotFound)

	// The fake saw every operation, and remove_user of the user before the
	// last info_user.
	var ops []bankstore.Operation
	for _, call := range fake.Calls() {
		ops = append(ops, call.Op)
	}
	for _, op := range bankstore.Operations() {
		if op != bankstore.OpCreateSubscription && !slices.Contains(ops, op) {
			t.Errorf("the fake never received %s", op)
		}
	}
	calls := fake.Calls()
	last := calls[len(calls)-1]
	before := calls[len(calls)-2]
	if last.Op != bankstore.OpInfoUser || last.ErrorID != 1001 || before.Op != bankstore.OpRemoveUser || before.IDUser != u.IDUser {
		t.Errorf("last calls = %+v, %+v; want remove_user of %d then info_user answered 1001", before, last, u.IDUser)
	}
}

// TestBankstoreCreateSubscriptionWithCard covers the one operation the life
// cycle leaves out: registering a card with a subscription.
func TestBankstoreCreateSubscriptionWithCard(t *testing.T) {
	c, _ := fakeClient(t)
	today := bankstore.NewDate(time.Now())
	req := bankstore.CreateSubscriptionRequest{PAN: secret.New("5540500001000004"), Expiry: bankstore.CardExpiry{Year: today.Year + 2, Month: time.December},
		CVV2: secret.New("123"), EndDate: today.AddDate(1, 0, 0), Order: "Luis_3268314", PeriodicityDays: 30, Amount: 500, Currency: "EUR", Execute: ptr(false)}
	got, err := c.CreateSubscription(t.Context(), req)
	if err != nil || got.IDUser == 0 || got.Order != "Luis_3268314" || got.AuthCode != "" {
		t.Fatalf("CreateSubscription without the first charge = %+v, %v", got, err)
	}
	info, err := c.InfoUser(t.Context(), bankstore.UserRequest{IDUser: got.IDUser, TokenUser: got.TokenUser})
	if err != nil || info.CardBrand != "MASTERCARD" {
		t.Fatalf("InfoUser of the subscribed card = %+v, %v", info, err)
	}
	req.EndDate = today.AddDate(3, 0, 0)
	_, err = c.CreateSubscription(t.Context(), req)
	wantCode(t, "CreateSubscription past the card's expiry", err, bankstore.CodeSubscriptionPastExpiry)
}

// TestBankstoreFakeChecksSignature: a client with the wrong password gets
// 1003 and one with the wrong terminal 1000.
func TestBankstoreFakeChecksSignature(t *testing.T) {
	fake := bankstoretest.NewServer(t, merchant, terminal, password)
	seedUser(t, fake, 7, "tok7")
	u := bankstore.UserRequest{IDUser: 7, TokenUser: "tok7"}
	for _, tc := range []struct {
		name string
		cred bankstore.Credentials
		code int
	}{
		{"right credentials", bankstore.Credentials{MerchantCode: merchant, Terminal: terminal, Password: secret.New(password)}, 0},
		{"wrong password", bankstore.Credentials{MerchantCode: merchant, Terminal: terminal, Password: secret.New(password + "x")}, bankstore.CodeInvalidSignature},
		{"wrong terminal", bankstore.Credentials{MerchantCode: merchant, Terminal: "9", Password: secret.New(password)}, bankstore.CodeAccountNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := bankstore.New(fake.URL, tc.cred)
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.InfoUser(t.Context(), u)
			if tc.code == 0 {
				if err != nil {
					t.Fatalf("InfoUser = %v", err)
				}
				return
			}
			wantCode(t, "InfoUser", err, tc.code)
		})
	}
	// A user removed behind the client's back is unknown.
	fake.DeleteUser(7)
	c := newClient(t, fake.URL)
	_, err := c.InfoUser(t.Context(), u)
	wantCode(t, "InfoUser of a deleted user", err, bankstore.CodeUserNotFound)
}

// TestBankstoreRetries: info_user is retried on HTTP 500 and SOAP faults, a
// bounded number of times; a money-moving call is sent once, even when it
// timed out while the fake carried it out.
func TestBankstoreRetries(t *testing.T) {
	t.Run("info_user recovers after two failures", func(t *testing.T) {
		c, fake := fakeClient(t, bankstore.WithInfoUserRetry(3, time.Millisecond))
		seedUser(t, fake, 5, "tok5")
		fake.FailNext(1, bankstoretest.FailHTTP500)
		fake.FailNext(1, bankstoretest.FailSOAPFault)
		if _, err := c.InfoUser(t.Context(), bankstore.UserRequest{IDUser: 5, TokenUser: "tok5"}); err != nil {
			t.Fatalf("InfoUser = %v, want success on the third try", err)
		}
		if calls := fake.Calls(); len(calls) != 3 || calls[0].Failed != bankstoretest.FailHTTP500 || calls[1].Failed != bankstoretest.FailSOAPFault || calls[2].Failed != 0 {
			t.Errorf("calls = %+v, want a 500, a fault, then success", calls)
		}
	})
	t.Run("info_user gives up after its attempts", func(t *testing.T) {
		c, fake := fakeClient(t, bankstore.WithInfoUserRetry(3, time.Millisecond))
		fake.FailNext(5, bankstoretest.FailSOAPFault)
		_, err := c.InfoUser(t.Context(), bankstore.UserRequest{IDUser: 5, TokenUser: "tok5"})
		var f *bankstore.FaultError
		if !errors.As(err, &f) {
			t.Fatalf("InfoUser = %v, want the last SOAP fault", err)
		}
		if n := len(fake.Calls()); n != 3 {
			t.Errorf("requests = %d, want 3", n)
		}
	})
	t.Run("info_user does not retry a PAYCOMET answer", func(t *testing.T) {
		c, fake := fakeClient(t, bankstore.WithInfoUserRetry(3, time.Millisecond))
		_, err := c.InfoUser(t.Context(), bankstore.UserRequest{IDUser: 5, TokenUser: "tok5"})
		wantCode(t, "InfoUser", err, bankstore.CodeUserNotFound)
		if n := len(fake.Calls()); n != 1 {
			t.Errorf("requests = %d, want 1", n)
		}
	})
	t.Run("purchase is not retried on HTTP 500", func(t *testing.T) {
		c, fake := fakeClient(t, bankstore.WithInfoUserRetry(3, time.Millisecond))
		seedUser(t, fake, 5, "tok5")
		fake.FailNext(1, bankstoretest.FailHTTP500)
		_, err := c.ExecutePurchase(t.Context(), bankstore.PurchaseRequest{IDUser: 5, TokenUser: "tok5", Amount: 100, Order: "P1", Currency: "EUR"})
		var h *bankstore.HTTPError
		if !errors.As(err, &h) || !errors.Is(err, bankstore.ErrOutcomeUnknown) {
			t.Fatalf("ExecutePurchase = %v, want HTTP 500 with outcome unknown", err)
		}
		if n := len(fake.Calls()); n != 1 {
			t.Errorf("requests = %d, want 1", n)
		}
	})
	t.Run("purchase that times out is not retried, and happened", func(t *testing.T) {
		fake := bankstoretest.NewServer(t, merchant, terminal, password)
		seedUser(t, fake, 5, "tok5")
		fake.SetDelay(10 * time.Second)
		fake.FailNext(1, bankstoretest.FailDelay)
		c := newClient(t, fake.URL, bankstore.WithHTTPClient(&http.Client{Timeout: 200 * time.Millisecond}))
		_, err := c.ExecutePurchase(t.Context(), bankstore.PurchaseRequest{IDUser: 5, TokenUser: "tok5", Amount: 100, Order: "P1", Currency: "EUR"})
		if err == nil || !errors.Is(err, bankstore.ErrOutcomeUnknown) {
			t.Fatalf("ExecutePurchase = %v, want a timeout with outcome unknown", err)
		}
		testenv.Eventually(t, 5*time.Second, "the fake to record the purchase", func() bool { return len(fake.Calls()) == 1 })
		if call := fake.Calls()[0]; call.ErrorID != 0 || call.Order != "P1" {
			t.Errorf("call = %+v, want the purchase carried out", call)
		}
		// The same order again is a duplicate: the first charge went through.
		c2 := newClient(t, fake.URL)
		_, err = c2.ExecutePurchase(t.Context(), bankstore.PurchaseRequest{IDUser: 5, TokenUser: "tok5", Amount: 100, Order: "P1", Currency: "EUR"})
		wantCode(t, "the same purchase again", err, bankstore.CodeDuplicatedReference)
	})
	t.Run("info_user retries on timeout too", func(t *testing.T) {
		fake := bankstoretest.NewServer(t, merchant, terminal, password)
		seedUser(t, fake, 5, "tok5")
		fake.SetDelay(10 * time.Second)
		fake.FailNext(1, bankstoretest.FailDelay)
		c := newClient(t, fake.URL, bankstore.WithHTTPClient(&http.Client{Timeout: 300 * time.Millisecond}), bankstore.WithInfoUserRetry(2, time.Millisecond))
		if _, err := c.InfoUser(t.Context(), bankstore.UserRequest{IDUser: 5, TokenUser: "tok5"}); err != nil {
			t.Fatalf("InfoUser = %v, want success on the second try", err)
		}
		if n := len(fake.Calls()); n != 2 {
			t.Errorf("requests = %d, want 2", n)
		}
	})
}
