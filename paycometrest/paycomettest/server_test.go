package paycomettest_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/paycomet-notify/paycomet-notify/events"
	"github.com/paycomet-notify/paycomet-notify/paycometrest"
	"github.com/paycomet-notify/paycomet-notify/paycometrest/paycomettest"
	"github.com/paycomet-notify/paycomet-notify/secret"
)

const (
	apiKey   = "fake-test-key"
	merchant = "MERCH001"
	terminal = "1000"
	password = "pw-1000"
	provider = 77
)

// receiver is a notification URL that keeps what it was posted.
type receiver struct {
	mu    sync.Mutex
	forms []url.Values
	ctype []string
}

func (rv *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	r.ParseForm()
	rv.mu.Lock()
	rv.forms = append(rv.forms, r.PostForm)
	rv.ctype = append(rv.ctype, r.Header.Get("Content-Type"))
	rv.mu.Unlock()
	io.WriteString(w, "OK")
}

func (rv *receiver) got() []url.Values {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	return append([]url.Values(nil), rv.forms...)
}

func start(t *testing.T) (*paycomettest.Server, *paycometrest.Client, *receiver) {
	t.Helper()
	rv := &receiver{}
	hs := httptest.NewServer(rv)
	t.Cleanup(hs.Close)
	f := paycomettest.NewServer(t, paycomettest.Config{
		APIKey: apiKey, MerchantCode: merchant, Terminals: map[string]string{terminal: password},
		ProviderID: provider, Stations: []string{"ST1"}, NotifyURL: hs.URL + "/paycomet/notifications", Step: 5 * time.Millisecond,
	})
	c, err := paycometrest.New(f.URL, secret.New(apiKey))
	if err != nil {
		t.Fatal(err)
	}
	return f, c, rv
}

func raw(t *testing.T, f *paycomettest.Server, path, key, ctype, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, f.URL+path, strings.NewReader(body))
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if key != "" {
		req.Header.Set(paycometrest.HeaderAPIToken, key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

const goodSession = `{"terminal":1000,"ivrProviderId":77,"ivrStationId":"ST1","ivrMerchantAmount":1999,"ivrMerchantCurrency":"EUR","ivrMerchantOrder":"%s","ivrMerchantLanguage":"ES","ivrTransactionType":"1"}`

// TestStrict: the fake refuses what PAYCOMET's spec refuses.
func TestStrict(t *testing.T) {
	f, _, _ := start(t)
	good := strings.Replace(goodSession, "%s", "STRICT1", 1)
	cases := []struct {
		name, path, key, ctype, body string
		status                       int
		detail                       string
	}{
		{"no key", "/v1/ivr/get-session", "", "application/json", good, 403, ""},
		{"wrong key", "/v1/ivr/get-session", "nope", "application/json", good, 403, ""},
		{"form body", "/v1/ivr/get-session", apiKey, "application/x-www-form-urlencoded", good, 422, "Content-Type"},
		{"not JSON", "/v1/ivr/get-session", apiKey, "application/json", `{"terminal":`, 422, "one JSON object"},
		{"two objects", "/v1/ivr/get-session", apiKey, "application/json", good + good, 422, "one JSON object"},
		{"unknown member", "/v1/ivr/get-session", apiKey, "application/json", strings.Replace(good, `"terminal"`, `"IVR_X":1,"terminal"`, 1), 422, "IVR_X: unknown member"},
		{"type as a number", "/v1/ivr/get-session", apiKey, "application/json", strings.Replace(good, `"ivrTransactionType":"1"`, `"ivrTransactionType":1`, 1), 422, "ivrTransactionType: must be a string"},
		{"amount as a string", "/v1/ivr/get-session", apiKey, "application/json", strings.Replace(good, `1999`, `"1999"`, 1), 422, "ivrMerchantAmount: must be an integer"},
		{"amount with decimals", "/v1/ivr/get-session", apiKey, "application/json", strings.Replace(good, `1999`, `19.99`, 1), 422, "ivrMerchantAmount: must be an integer"},
		{"terminal null", "/v1/ivr/get-session", apiKey, "application/json", strings.Replace(good, `1000`, `null`, 1), 422, "terminal: must be an integer"},
		{"order missing", "/v1/ivr/get-session", apiKey, "application/json", strings.Replace(good, `"ivrMerchantOrder":"STRICT1",`, ``, 1), 422, "ivrMerchantOrder: required"},
		{"seed bound", "/v1/ivr/get-session", apiKey, "application/json", strings.Replace(good, `1999`, `123456789`, 1), 422, "ivrMerchantAmount"},
		{"state with a session member", "/v1/ivr/session-state", apiKey, "application/json", `{"terminal":1000,"ivrProviderId":77,"ivrMerchantOrder":"A","ivrStationId":"ST1"}`, 422, "ivrStationId: unknown member"},
		{"cancel without provider", "/v1/ivr/session-cancel", apiKey, "application/json", `{"terminal":1000,"ivrMerchantOrder":"A"}`, 422, "ivrProviderId: required"},
		{"unknown path", "/v1/ivr/nothing", apiKey, "application/json", `{}`, 404, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, out := raw(t, f, tc.path, tc.key, tc.ctype, tc.body)
			if status != tc.status {
				t.Fatalf("status %d (%v), want %d", status, out, tc.status)
			}
			if status == 403 && out["errorCode"] != float64(1004) {
				t.Errorf("403 body %v, want errorCode 1004", out)
			}
			if tc.detail != "" {
				b, _ := json.Marshal(out["error"])
				if !strings.Contains(string(b), tc.detail) || out["errorCode"] == nil {
					t.Errorf("422 body %v, want errorCode and a detail with %q", out, tc.detail)
				}
			}
		})
	}
	if n := len(f.Calls()); n != len(cases) {
		t.Errorf("%d calls recorded, want %d", n, len(cases))
	}
}

func TestBusinessErrors(t *testing.T) {
	f, c, _ := start(t)
	base := paycometrest.SessionRequest{Terminal: 1000, ProviderID: provider, StationID: "ST1", Amount: 5, Currency: "EUR", Order: "BIZ1HOLD", Language: "ES", Type: paycometrest.TypeAuthorization}
	ctx := context.Background()
	if _, err := c.GetSession(ctx, base); err != nil {
		t.Fatalf("first session: %v", err)
	}
	cases := []struct {
		name string
		edit func(*paycometrest.SessionRequest)
		code int
	}{
		{"order used", func(r *paycometrest.SessionRequest) {}, 1026},
		{"provider", func(r *paycometrest.SessionRequest) { r.ProviderID, r.Order = 78, "BIZ2" }, paycometrest.CodeProviderUnavailable},
		{"station", func(r *paycometrest.SessionRequest) { r.StationID, r.Order = "ST2", "BIZ3" }, paycometrest.CodeStationUnavailable},
		{"terminal", func(r *paycometrest.SessionRequest) { r.Terminal, r.Order = 2000, "BIZ4" }, 1130},
	}
	for _, tc := range cases {
		r := base
		tc.edit(&r)
		_, err := c.GetSession(ctx, r)
		var e *paycometrest.Error
		if !errors.As(err, &e) || e.Code != tc.code {
			t.Errorf("%s: GetSession = %v, want PAYCOMET error %d", tc.name, err, tc.code)
		}
	}
	st, err := c.SessionState(ctx, paycometrest.SessionRef{Terminal: 1000, ProviderID: provider, Order: "NOSUCH"})
	if !errors.Is(err, paycometrest.ErrResponseFalse) || st.State != paycometrest.StateNotFound {
		t.Errorf("state of an unknown session = %+v, %v", st, err)
	}
	_ = f
}

// follow polls a session until it is final, returning every distinct
// status seen.
func follow(t *testing.T, c *paycometrest.Client, ref paycometrest.SessionRef) []paycometrest.SessionStatus {
	t.Helper()
	var seen []paycometrest.SessionStatus
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		st, err := c.SessionState(context.Background(), ref)
		if st == nil {
			t.Fatalf("SessionState: %v", err)
		}
		s := *st
		s.TimeLeft = 0
		if len(seen) == 0 || seen[len(seen)-1] != s {
			seen = append(seen, s)
		}
		if st.State.Final() {
			return seen
		}
		time.Sleep(2 * time.Millisecond) // polling a script that advances every 5ms
	}
	t.Fatalf("session %s not final after 10s: %+v", ref.Order, seen)
	return nil
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestScripts: each script progresses over time to its end, and OK and KO
// post a notification signed the way the receiver verifies.
func TestScripts(t *testing.T) {
	cases := []struct {
		order     string
		typ       paycometrest.TransactionType
		amount    int64
		final     paycometrest.SessionState
		response  string // "" when no notification
		signature func(url.Values) string
	}{
		{"PAYOK1", paycometrest.TypeAuthorization, 1999, paycometrest.StateOK, "OK", formulaA},
		{"PAYKO", paycometrest.TypeAuthorization, 1999, paycometrest.StateKO, "KO", formulaA},
		{"PRE1", paycometrest.TypePreauthorization, 500, paycometrest.StateOK, "OK", formulaA},
		{"REG1", paycometrest.TypeCardRegistration, 0, paycometrest.StateOK, "OK", formulaB},
		{"SUB1", paycometrest.TypeSubscription, 999, paycometrest.StateOK, "OK", formulaA},
		{"LATETIMEOUT", paycometrest.TypeAuthorization, 1, paycometrest.StateTimedOut, "", nil},
	}
	f, c, rv := start(t)
	for _, tc := range cases {
		t.Run(tc.order, func(t *testing.T) {
			r := paycometrest.SessionRequest{Terminal: 1000, ProviderID: provider, StationID: "ST1", Amount: tc.amount, Currency: "EUR", Order: tc.order, Language: "es", Type: tc.typ}
			if tc.typ == paycometrest.TypeSubscription {
				r.Subscription = &paycometrest.Subscription{Start: "2026-01-01", End: "2027-01-01", PeriodicityDays: 30}
			}
			if _, err := c.GetSession(context.Background(), r); err != nil {
				t.Fatal(err)
			}
			seen := follow(t, c, paycometrest.SessionRef{Terminal: 1000, ProviderID: provider, Order: tc.order})
			last := seen[len(seen)-1]
			if last.State != tc.final || len(seen) < 3 {
				t.Fatalf("states seen %+v, want progress then %v", seen, tc.final)
			}
			maxPAN := 0
			for _, s := range seen {
				maxPAN = max(maxPAN, s.DigitsPAN)
			}
			if maxPAN == 0 {
				t.Errorf("no card digits were ever typed: %+v", seen)
			}
			if tc.response == "" {
				return
			}
			var form url.Values
			waitFor(t, "the notification", func() bool {
				for _, g := range rv.got() {
					if strings.HasPrefix(g.Get("Order"), tc.order) {
						form = g
						return true
					}
				}
				return false
			})
			if form.Get("Response") != tc.response || form.Get("TransactionType") != string(tc.typ) || form.Get("TpvID") != terminal {
				t.Errorf("notification %v", form)
			}
			if want := tc.signature(form); form.Get("NotificationHash") != want {
				t.Errorf("NotificationHash %s, want %s", form.Get("NotificationHash"), want)
			}
			if tc.typ == paycometrest.TypeSubscription && !strings.HasPrefix(form.Get("Order"), tc.order+"[") {
				t.Errorf("subscription Order %q, want %s[IdUser]date", form.Get("Order"), tc.order)
			}
			if tc.response == "KO" && form.Get("ErrorID") == "0" {
				t.Errorf("KO with ErrorID 0")
			}
		})
	}
	waitFor(t, "notifications recorded", func() bool { return len(f.Notifications()) == 5 })
	for _, n := range f.Notifications() {
		if n.Status != 200 || n.Attempts != 1 {
			t.Errorf("notification %+v, want delivered once", n)
		}
	}
	rv.mu.Lock()
	for _, ct := range rv.ctype {
		if ct != "application/x-www-form-urlencoded" {
			t.Errorf("notification Content-Type %q", ct)
		}
	}
	rv.mu.Unlock()
}

func formulaA(f url.Values) string {
	return events.SignA(merchant, terminal, f.Get("TransactionType"), f.Get("Order"), f.Get("Amount"), f.Get("Currency"), password, f.Get("BankDateTime"), f.Get("Response"))
}

func formulaB(f url.Values) string {
	return events.SignB(merchant, terminal, f.Get("TransactionType"), f.Get("Order"), f.Get("DateTime"), password)
}

// TestCancel: a held session is cancelled once; a finished one is not; no
// notification follows a cancel.
func TestCancel(t *testing.T) {
	f, c, rv := start(t)
	ctx := context.Background()
	ref := paycometrest.SessionRef{Terminal: 1000, ProviderID: provider, Order: "CX1HOLD"}
	r := paycometrest.SessionRequest{Terminal: 1000, ProviderID: provider, StationID: "ST1", Amount: 100, Currency: "EUR", Order: ref.Order, Language: "ES", Type: paycometrest.TypeAuthorization}
	if _, err := c.GetSession(ctx, r); err != nil {
		t.Fatal(err)
	}
	st, err := c.SessionState(ctx, ref)
	if err != nil || st.State != paycometrest.StateWaiting || st.TimeLeft <= 0 {
		t.Fatalf("held session = %+v, %v", st, err)
	}
	ca, err := c.SessionCancel(ctx, ref)
	if err != nil || !ca.Cancelled || ca.State != paycometrest.StateCancelled {
		t.Fatalf("cancel = %+v, %v", ca, err)
	}
	if st, _ := c.SessionState(ctx, ref); st.State != paycometrest.StateCancelled || st.TimeLeft != 0 {
		t.Errorf("after cancel: %+v", st)
	}
	if ca, err := c.SessionCancel(ctx, ref); !errors.Is(err, paycometrest.ErrResponseFalse) || ca.State != paycometrest.StateCancelled {
		t.Errorf("second cancel = %+v, %v", ca, err)
	}
	if n := len(f.CallsTo("session-cancel")); n != 2 {
		t.Errorf("%d session-cancel calls recorded, want 2", n)
	}
	if len(rv.got()) != 0 {
		t.Errorf("a cancelled session was notified: %v", rv.got())
	}
}

// TestSessionTimeout: ivrSessionTimeout ends a held session.
func TestSessionTimeout(t *testing.T) {
	_, c, _ := start(t)
	ctx := context.Background()
	one := 1
	r := paycometrest.SessionRequest{Terminal: 1000, ProviderID: provider, StationID: "ST1", Amount: 100, Currency: "EUR", Order: "TO1HOLD", Language: "ES", Type: paycometrest.TypeAuthorization, SessionTimeout: &one}
	if _, err := c.GetSession(ctx, r); err != nil {
		t.Fatal(err)
	}
	seen := follow(t, c, paycometrest.SessionRef{Terminal: 1000, ProviderID: provider, Order: r.Order})
	if seen[len(seen)-1].State != paycometrest.StateTimedOut {
		t.Errorf("held session with a 1s timeout ended %+v", seen)
	}
}

func TestScriptFor(t *testing.T) {
	for order, want := range map[string]paycomettest.Script{
		"A1": paycomettest.ScriptOK, "A1ko": paycomettest.ScriptKO, "XTIMEOUT": paycomettest.ScriptTimeout,
		"HOLD": paycomettest.ScriptHold, "KOA": paycomettest.ScriptOK,
	} {
		if got := paycomettest.ScriptFor(order); got != want {
			t.Errorf("ScriptFor(%q) = %s, want %s", order, got, want)
		}
	}
}
