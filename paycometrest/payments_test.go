package paycometrest_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/paycomet-notify/paycomet-notify/paycometrest"
	"github.com/paycomet-notify/paycomet-notify/paycometrest/paycomettest"
	"github.com/paycomet-notify/paycomet-notify/secret"
)

func payFake(t *testing.T) *paycomettest.Server {
	t.Helper()
	return paycomettest.NewServer(t, paycomettest.Config{APIKey: testKey, MerchantCode: "M1",
		Terminals: map[string]string{"1000": "pw1", "2000": "pw2"}, ProviderID: 1})
}

func payClient(t *testing.T, url string, opts ...paycometrest.Option) *paycometrest.Client {
	t.Helper()
	c, err := paycometrest.New(url, secret.New(testKey), opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var t0 = time.Date(2026, 3, 1, 10, 0, 0, 0, paycometrest.Madrid)

func search(from, to time.Time) paycometrest.SearchRequest {
	return paycometrest.SearchRequest{Terminal: 1000, Operations: []int{1, 2}, State: 1, From: from, To: to, Currency: "EUR"}
}

// TestSearchFilters holds the fake to PAYCOMET's filters (terminal, type,
// state, currency, inclusive dates) and the client to reading its rows.
func TestSearchFilters(t *testing.T) {
	f := payFake(t)
	f.AddOperations(
		paycomettest.Operation{Terminal: 1000, Order: "A1", Type: 1, State: 1, Amount: 1250, Currency: "EUR", Time: t0, AuthCode: "AC1"},
		paycomettest.Operation{Terminal: 1000, Order: "A2", Type: 2, State: 1, Amount: 500, Currency: "EUR", Time: t0.Add(59 * time.Second)},
		paycomettest.Operation{Terminal: 1000, Order: "A3", Type: 1, State: 0, Amount: 100, Currency: "EUR", Time: t0, ErrorCode: 190},
		paycomettest.Operation{Terminal: 1000, Order: "A4", Type: 1, State: 1, Amount: 100, Currency: "USD", Time: t0},
		paycomettest.Operation{Terminal: 2000, Order: "A5", Type: 1, State: 1, Amount: 100, Currency: "EUR", Time: t0},
		paycomettest.Operation{Terminal: 1000, Order: "A6", Type: 3, State: 1, Amount: 100, Currency: "EUR", Time: t0},
		paycomettest.Operation{Terminal: 1000, Order: "A7", Type: 1, State: 1, Amount: 100, Currency: "EUR", Time: t0.Add(time.Minute)},
	)
	c := payClient(t, f.URL)
	a, err := c.Search(context.Background(), search(t0, t0.Add(59*time.Second)))
	if err != nil {
		t.Fatal(err)
	}
	var orders []string
	for _, o := range a.Operations {
		orders = append(orders, o.Order)
	}
	if got := strings.Join(orders, ","); got != "A1,A2" || a.Truncated {
		t.Fatalf("Search = %s (truncated %v), want A1,A2", got, a.Truncated)
	}
	o := a.Operations[0]
	if o.PaycometID == 0 || o.Amount != 1250 || o.Currency != "EUR" || o.Response != "OK" || o.OperationType != 1 ||
		o.Terminal != 1000 || o.AuthCode != "AC1" || o.Timestamp != "20260301100000" || len(o.Raw) == 0 {
		t.Fatalf("row = %+v", o)
	}
	if tm, err := o.Time(); err != nil || !tm.Equal(t0) {
		t.Fatalf("Time() = %v, %v", tm, err)
	}
	// Failed operations are state 0.
	r := search(t0, t0.Add(time.Hour))
	r.State = 0
	a, err = c.Search(context.Background(), r)
	if err != nil || len(a.Operations) != 1 || a.Operations[0].Order != "A3" || a.Operations[0].Response != "KO" || a.Operations[0].ErrorCode != 190 {
		t.Fatalf("Search(state 0) = %+v, %v", a, err)
	}
}

// TestSearchLimitTruncates: PAYCOMET cuts at limit and says nothing more;
// the client reports a full answer as Truncated.
func TestSearchLimitTruncates(t *testing.T) {
	f := payFake(t)
	for i := range 5 {
		f.AddOperations(paycomettest.Operation{Terminal: 1000, Order: "L" + string(rune('a'+i)), Type: 1, State: 1, Amount: 1, Currency: "EUR", Time: t0.Add(time.Duration(i) * time.Second)})
	}
	r := search(t0, t0.Add(time.Hour))
	r.Limit = 3
	a, err := payClient(t, f.URL).Search(context.Background(), r)
	if err != nil || len(a.Operations) != 3 || !a.Truncated {
		t.Fatalf("Search(limit 3) = %d rows truncated=%v, %v; want 3, true", len(a.Operations), a.Truncated, err)
	}
}

// TestSearchTolerant reads PAYCOMET's habits: numbers as strings, nulls,
// and a business error as errorCode inside a 200.
func TestSearchTolerant(t *testing.T) {
	var body atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(body.Load().(string)))
	}))
	defer srv.Close()
	c := payClient(t, srv.URL)
	body.Store(`{"errorCode":"0","operations":[{"paycometId":"350741409","methodId":"1","amount":"1000","operationType":"1","terminal":"1000","state":"1","response":"ok","timestamp":"20251020170540","order":"X","currency":"eur","user":null,"errorCode":null,"authCode":123456}]}`)
	a, err := c.Search(context.Background(), search(t0, t0))
	if err != nil {
		t.Fatal(err)
	}
	o := a.Operations[0]
	if o.PaycometID != 350741409 || o.Amount != 1000 || o.OperationType != 1 || o.Terminal != 1000 || o.State != 1 ||
		o.Response != "OK" || o.Currency != "EUR" || o.AuthCode != "123456" {
		t.Fatalf("row = %+v", o)
	}
	body.Store(`{"errorCode":1141}`)
	_, err = c.Search(context.Background(), search(t0, t0))
	var pe *paycometrest.Error
	if !errors.As(err, &pe) || pe.Code != 1141 || pe.Status != 200 {
		t.Fatalf("Search(errorCode 1141 in a 200) = %v, want *Error 1141", err)
	}
	body.Store(`{"operations":[]}`)
	if _, err := c.Search(context.Background(), search(t0, t0)); !errors.Is(err, paycometrest.ErrMalformedResponse) {
		t.Fatalf("Search(no errorCode) = %v, want ErrMalformedResponse", err)
	}
	body.Store(`{"errorCode":0,"operations":[{"amount":"ten"}]}`)
	if _, err := c.Search(context.Background(), search(t0, t0)); !errors.Is(err, paycometrest.ErrMalformedResponse) {
		t.Fatalf("Search(amount ten) = %v, want ErrMalformedResponse", err)
	}
}

// TestSearch429 waits out Retry-After and then reads the answer; with no
// patience left it fails as HTTP 429.
func TestSearch429(t *testing.T) {
	f := payFake(t)
	f.AddOperations(paycomettest.Operation{Terminal: 1000, Order: "R1", Type: 1, State: 1, Amount: 1, Currency: "EUR", Time: t0})
	var n atomic.Int32
	f.SetPaymentsFault(func(paycomettest.PaymentsCall) *paycomettest.Fault {
		if n.Add(1) <= 2 {
			return &paycomettest.Fault{Status: 429, RetryAfter: "1"}
		}
		return nil
	})
	start := time.Now()
	a, err := payClient(t, f.URL).Search(context.Background(), search(t0, t0))
	if err != nil || len(a.Operations) != 1 {
		t.Fatalf("Search after two 429 = %v, %v", a, err)
	}
	if el := time.Since(start); el < 2*time.Second {
		t.Fatalf("Search returned after %v; Retry-After 1 twice means at least 2s", el)
	}
	f.SetPaymentsFault(func(paycomettest.PaymentsCall) *paycomettest.Fault {
		return &paycomettest.Fault{Status: 429, RetryAfter: "30"}
	})
	_, err = payClient(t, f.URL, paycometrest.WithRateLimitWait(time.Second)).Search(context.Background(), search(t0, t0))
	var he *paycometrest.HTTPError
	if !errors.As(err, &he) || he.Status != 429 {
		t.Fatalf("Search while rate limited past patience = %v, want HTTPError 429", err)
	}
}

// TestInfo reads the order's payment and history; the fake refuses a body
// that is not {"payment":{"terminal":N}} as PAYCOMET's spec does.
func TestInfo(t *testing.T) {
	f := payFake(t)
	f.AddOperations(
		paycomettest.Operation{Terminal: 1000, Order: "I1", Type: 1, State: 1, Amount: 1000, Currency: "EUR", Time: t0, AuthCode: "A"},
		paycomettest.Operation{Terminal: 1000, Order: "I1", Type: 2, State: 1, Amount: 300, Currency: "EUR", Time: t0.Add(time.Hour)},
	)
	c := payClient(t, f.URL)
	in, err := c.Info(context.Background(), 1000, "I1")
	if err != nil {
		t.Fatal(err)
	}
	if in.Payment.Order != "I1" || in.Payment.Amount != 1000 || len(in.History) != 2 || in.History[1].OperationType != 2 {
		t.Fatalf("Info = %+v", in)
	}
	var m map[string]any
	if json.Unmarshal(in.Raw, &m) != nil || m["history"] == nil {
		t.Fatalf("Info.Raw = %s", in.Raw)
	}
	_, err = c.Info(context.Background(), 1000, "NOPE")
	var pe *paycometrest.Error
	if !errors.As(err, &pe) || pe.Code == 0 {
		t.Fatalf("Info(unknown order) = %v, want *Error", err)
	}
	if _, err := c.Info(context.Background(), 1000, "a/b"); err == nil {
		t.Fatal("Info(order with /) sent")
	}
	res, err := http.Post(f.URL+"/v1/payments/I1/info", "application/json", strings.NewReader(`{"terminal":1000}`))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusForbidden {
		t.Fatalf("info without key = %d, want 403", res.StatusCode)
	}
	req, _ := http.NewRequest("POST", f.URL+"/v1/payments/I1/info", strings.NewReader(`{"terminal":1000}`))
	req.Header.Set(paycometrest.HeaderAPIToken, testKey)
	req.Header.Set("Content-Type", "application/json")
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("info with a flat body = %d, want 422", res.StatusCode)
	}
}

// TestSearchRefusedBeforeSending: no request leaves for a search without
// currency or with inverted dates.
func TestSearchRefusedBeforeSending(t *testing.T) {
	f := payFake(t)
	c := payClient(t, f.URL)
	r := search(t0.Add(time.Hour), t0)
	r.Currency = ""
	err := func() error { _, err := c.Search(context.Background(), r); return err }()
	var in *paycometrest.InputError
	if !errors.As(err, &in) || f.PaymentsCalls() != 0 {
		t.Fatalf("Search(bad) = %v with %d calls, want *InputError and none", err, f.PaymentsCalls())
	}
}
