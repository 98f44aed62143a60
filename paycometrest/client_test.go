package paycometrest_test

import (
	"context"
	"errors"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/paycomet-notify/paycomet-notify/paycometrest"
	"github.com/paycomet-notify/paycomet-notify/secret"
)

var update = flag.Bool("update", false, "rewrite testdata/*.json with the requests the client sends")

const testKey = "k3y-THAT-must-never-leak-0123456789"

// recorder is a REST endpoint that keeps every request and answers with a
// fixed status and body.
type recorder struct {
	mu     sync.Mutex
	reqs   []recorded
	status int
	body   string
	delay  time.Duration
}

type recorded struct {
	method, path string
	header       http.Header
	body         []byte
}

func (rc *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	rc.reqs = append(rc.reqs, recorded{r.Method, r.URL.Path, r.Header.Clone(), b})
	status, body, delay := rc.status, rc.body, rc.delay
	rc.mu.Unlock()
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	io.WriteString(w, body)
}

func (rc *recorder) requests() []recorded {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]recorded(nil), rc.reqs...)
}

func newRecorder(t *testing.T, status int, body string) (*recorder, *paycometrest.Client) {
	t.Helper()
	rc := &recorder{status: status, body: body}
	srv := httptest.NewServer(rc)
	t.Cleanup(srv.Close)
	c, err := paycometrest.New(srv.URL+"/", secret.New(testKey), paycometrest.WithHTTPClient(&http.Client{Timeout: 2 * time.Second}))
	if err != nil {
		t.Fatal(err)
	}
	return rc, c
}

func ptr(n int) *int { return &n }

func authorization() paycometrest.SessionRequest {
	return paycometrest.SessionRequest{
		Terminal: 1000, ProviderID: 4242, StationID: "STATION7", Amount: 1999, Currency: "EUR",
		Order: "IVR20260101A", Language: "ES", Type: paycometrest.TypeAuthorization,
	}
}

func subscription() paycometrest.SessionRequest {
	r := authorization()
	r.Type, r.Order, r.Concept = paycometrest.TypeSubscription, "SUB0001", "Monthly box"
	r.Subscription = &paycometrest.Subscription{Start: "2026-02-01", End: "2031-02-01", PeriodicityDays: 30}
	r.MaxRetries, r.SessionTimeout = ptr(0), ptr(300)
	r.CallbackStationTimeout, r.CallbackStationOK, r.CallbackStationKO = "same", "201", "202"
	r.CallerPhoneNumber = "+34910000000"
	return r
}

var ref = paycometrest.SessionRef{Terminal: 1000, ProviderID: 4242, Order: "IVR20260101A"}

// TestGoldenRequests pins each call's method, path, headers and body byte
// for byte: the members and JSON types of PAYCOMET's generated clients
// (ivrTransactionType a string, amounts and ids integers, unset optional
// members absent).
func TestGoldenRequests(t *testing.T) {
	cases := []struct {
		name, path, answer string
		call               func(context.Context, *paycometrest.Client) error
	}{
		{"get_session_authorization", "/v1/ivr/get-session", `{"errorCode":0,"ivrResponse":true}`,
			func(ctx context.Context, c *paycometrest.Client) error {
				_, err := c.GetSession(ctx, authorization())
				return err
			}},
		{"get_session_subscription_all_members", "/v1/ivr/get-session", `{"errorCode":0,"ivrResponse":true}`,
			func(ctx context.Context, c *paycometrest.Client) error {
				_, err := c.GetSession(ctx, subscription())
				return err
			}},
		{"session_state", "/v1/ivr/session-state", `{"errorCode":0,"ivrResponse":true,"ivrSessionState":1,"ivrSessionResult":0,"ivrTimeLeft":90,"ivrDigitPan":4,"ivrDigitExp":0,"ivrDigitCvc":0}`,
			func(ctx context.Context, c *paycometrest.Client) error {
				_, err := c.SessionState(ctx, ref)
				return err
			}},
		{"session_cancel", "/v1/ivr/session-cancel", `{"errorCode":0,"ivrResponse":true,"ivrSessionState":6}`,
			func(ctx context.Context, c *paycometrest.Client) error {
				_, err := c.SessionCancel(ctx, ref)
				return err
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rc, c := newRecorder(t, 200, tc.answer)
			if err := tc.call(context.Background(), c); err != nil {
				t.Fatalf("call: %v", err)
			}
			reqs := rc.requests()
			if len(reqs) != 1 {
				t.Fatalf("%d requests sent, want 1", len(reqs))
			}
			r := reqs[0]
			if r.method != http.MethodPost || r.path != tc.path {
				t.Errorf("request line = %s %s, want POST %s", r.method, r.path, tc.path)
			}
			for name, want := range map[string]string{"Content-Type": "application/json", "Accept": "application/json", "Paycomet-Api-Token": testKey} {
				if got := r.header.Get(name); got != want {
					t.Errorf("header %s = %q, want %q", name, got, want)
				}
			}
			golden := filepath.Join("testdata", tc.name+".json")
			if *update {
				if err := os.WriteFile(golden, append(r.body, '\n'), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if diff := cmp.Diff(strings.TrimSpace(string(want)), string(r.body)); diff != "" {
				t.Errorf("body differs from %s (-want +got):\n%s", golden, diff)
			}
		})
	}
}

// TestAnswers reads PAYCOMET-shaped answers of every kind.
func TestAnswers(t *testing.T) {
	type outcome struct {
		status  *paycometrest.SessionStatus
		kind    string // "", "error", "validation", "false", "http", "malformed", "transport"
		code    int
		meaning string
	}
	cases := []struct {
		name   string
		status int
		body   string
		want   outcome
	}{
		{"processing", 200, `{"errorCode":0,"ivrResponse":true,"ivrSessionState":1,"ivrSessionResult":0,"ivrTimeLeft":87,"ivrDigitPan":12,"ivrDigitExp":2,"ivrDigitCvc":0}`,
			outcome{status: &paycometrest.SessionStatus{Found: true, State: paycometrest.StateProcessing, TimeLeft: 87 * time.Second, DigitsPAN: 12, DigitsExpiry: 2}}},
		{"numbers as strings, unknown members", 200, `{"errorCode":"0","ivrResponse":"1","ivrSessionState":"2","ivrSessionResult":"0","ivrTimeLeft":"0","ivrDigitPan":"16","ivrDigitExp":"4","ivrDigitCvc":"3","newField":{"x":1}}`,
			outcome{status: &paycometrest.SessionStatus{Found: true, State: paycometrest.StateOK, DigitsPAN: 16, DigitsExpiry: 4, DigitsCVC: 3}}},
		{"KO with its error code", 200, `{"errorCode":1256,"ivrResponse":true,"ivrSessionState":3,"ivrSessionResult":2,"ivrTimeLeft":0,"ivrDigitPan":16,"ivrDigitExp":0,"ivrDigitCvc":0}`,
			outcome{status: &paycometrest.SessionStatus{ErrorCode: 1256, Found: true, State: paycometrest.StateKO, Result: paycometrest.ResultCardData, DigitsPAN: 16},
				kind: "error", code: 1256, meaning: "Call terminated, incorrect attempts exceeded"}},
		{"errorCode only", 200, `{"errorCode":1206}`,
			outcome{status: &paycometrest.SessionStatus{ErrorCode: 1206, State: paycometrest.StateNotFound}, kind: "error", code: 1206, meaning: "ProviderID not available"}},
		{"not found", 200, `{"errorCode":0,"ivrResponse":false,"ivrSessionState":5}`,
			outcome{status: &paycometrest.SessionStatus{State: paycometrest.StateNotFound}, kind: "false"}},
		{"422", 422, `{"errorCode":127,"error":{"message":"Validation error","detail":["ivrMerchantOrder: required",{"field":"terminal"}]}}`,
			outcome{kind: "validation", code: 127, meaning: "Validation error (ivrMerchantOrder: required; {\"field\":\"terminal\"})"}},
		{"422 unreadable", 422, `<html>`, outcome{kind: "validation"}},
		{"403 with errorCode", 403, `{"errorCode":1004}`, outcome{kind: "error", code: 1004, meaning: "Forbidden access"}},
		{"401 without body", 401, ``, outcome{kind: "http", code: 401}},
		{"500", 500, `{"errorCode":0}`, outcome{kind: "http", code: 500}},
		{"502 html", 502, `<html>Bad gateway</html>`, outcome{kind: "http", code: 502}},
		{"truncated JSON", 200, `{"errorCode":0,"ivrResponse":tr`, outcome{kind: "malformed"}},
		{"not an object", 200, `[1,2]`, outcome{kind: "malformed"}},
		{"no errorCode", 200, `{"ivrResponse":true,"ivrSessionState":1}`, outcome{kind: "malformed"}},
		{"no state", 200, `{"errorCode":0,"ivrResponse":true}`, outcome{kind: "malformed"}},
		{"state not a number", 200, `{"errorCode":0,"ivrResponse":true,"ivrSessionState":"busy"}`, outcome{kind: "malformed"}},
		{"empty body", 200, ``, outcome{kind: "malformed"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, c := newRecorder(t, tc.status, tc.body)
			st, err := c.SessionState(context.Background(), ref)
			var e *paycometrest.Error
			var v *paycometrest.ValidationError
			var h *paycometrest.HTTPError
			kind := ""
			code, meaning := 0, ""
			switch {
			case err == nil:
			case errors.As(err, &e):
				kind, code, meaning = "error", e.Code, e.Meaning()
			case errors.As(err, &v):
				kind, code = "validation", v.Code
				if v.Message != "" {
					meaning = v.Message + " (" + strings.Join(v.Detail, "; ") + ")"
				}
			case errors.Is(err, paycometrest.ErrResponseFalse):
				kind = "false"
			case errors.As(err, &h):
				kind, code = "http", h.Status
			case errors.Is(err, paycometrest.ErrMalformedResponse):
				kind = "malformed"
			default:
				kind = "transport"
			}
			got := outcome{status: st, kind: kind, code: code, meaning: meaning}
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(outcome{})); diff != "" {
				t.Errorf("SessionState (err %v) differs (-want +got):\n%s", err, diff)
			}
			if wantAnswer := kind == "error" || kind == "validation" || kind == "false"; paycometrest.IsAnswer(err) != wantAnswer {
				t.Errorf("IsAnswer(%v) = %v, want %v", err, !wantAnswer, wantAnswer)
			}
		})
	}
}

func TestGetSessionAndCancelAnswers(t *testing.T) {
	_, c := newRecorder(t, 200, `{"errorCode":0,"ivrResponse":false}`)
	a, err := c.GetSession(context.Background(), authorization())
	if !errors.Is(err, paycometrest.ErrResponseFalse) || a == nil || a.Created {
		t.Errorf("GetSession(ivrResponse false) = %+v, %v; want the answer and ErrResponseFalse", a, err)
	}
	_, c = newRecorder(t, 200, `{"errorCode":1259,"ivrResponse":false}`)
	a, err = c.GetSession(context.Background(), authorization())
	var e *paycometrest.Error
	if !errors.As(err, &e) || e.Code != 1259 || e.Meaning() != "It has not been possible to establish the IVR session" || a == nil || a.ErrorCode != 1259 {
		t.Errorf("GetSession(errorCode 1259) = %+v, %v", a, err)
	}
	_, c = newRecorder(t, 200, `{"errorCode":0,"ivrResponse":true,"ivrSessionState":6}`)
	ca, err := c.SessionCancel(context.Background(), ref)
	if err != nil || !ca.Cancelled || ca.State != paycometrest.StateCancelled {
		t.Errorf("SessionCancel = %+v, %v", ca, err)
	}
	_, c = newRecorder(t, 200, `{"errorCode":0,"ivrResponse":false,"ivrSessionState":2}`)
	ca, err = c.SessionCancel(context.Background(), ref)
	if !errors.Is(err, paycometrest.ErrResponseFalse) || ca == nil || ca.State != paycometrest.StateOK {
		t.Errorf("SessionCancel of a finished session = %+v, %v", ca, err)
	}
}

// TestTimeout: a slow PAYCOMET gives a timeout error, not an answer, and
// get-session is sent once, never again.
func TestTimeout(t *testing.T) {
	rc := &recorder{status: 200, body: `{"errorCode":0,"ivrResponse":true}`, delay: 5 * time.Second}
	srv := httptest.NewServer(rc)
	t.Cleanup(srv.Close)
	c, err := paycometrest.New(srv.URL, secret.New(testKey), paycometrest.WithHTTPClient(&http.Client{Timeout: 100 * time.Millisecond}))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = c.GetSession(context.Background(), authorization())
	if err == nil || paycometrest.IsAnswer(err) || time.Since(start) > 3*time.Second {
		t.Fatalf("GetSession against a slow server = %v after %v; want a timeout quickly", err, time.Since(start))
	}
	var ne interface{ Timeout() bool }
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("error %v is not a timeout", err)
	}
	if n := len(rc.requests()); n != 1 {
		t.Errorf("get-session sent %d times, want once", n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	c2, _ := paycometrest.New(srv.URL, secret.New(testKey))
	if _, err := c2.SessionState(ctx, ref); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("SessionState with an expiring context = %v, want context.DeadlineExceeded", err)
	}
}

// TestAPIKeyNeverInErrors: a server echoing the key, and every kind of
// failure, leave no trace of it in error texts.
func TestAPIKeyNeverInErrors(t *testing.T) {
	bodies := []struct {
		status int
		body   string
	}{
		{422, `{"errorCode":127,"error":{"message":"bad token ` + testKey + `","detail":["` + testKey + `"]}}`},
		{403, `{"errorCode":1004,"token":"` + testKey + `"}`},
		{500, testKey},
		{200, `{"errorCode":0,"ivrResponse":"` + testKey + `"}`},
	}
	for _, b := range bodies {
		_, c := newRecorder(t, b.status, b.body)
		_, err := c.SessionState(context.Background(), ref)
		if err == nil || strings.Contains(err.Error(), testKey) {
			t.Errorf("answer %d %s: error %q (must exist and not hold the key)", b.status, b.body, err)
		}
	}
	c, _ := paycometrest.New("http://127.0.0.1:1", secret.New(testKey))
	if _, err := c.SessionState(context.Background(), ref); err == nil || strings.Contains(err.Error(), testKey) {
		t.Errorf("transport error %q", err)
	}
	for _, u := range []string{"http://user:" + testKey + "@example.com", "https://example.com/?key=" + testKey, "ftp://x", "::"} {
		if _, err := paycometrest.New(u, secret.New(testKey)); err == nil || strings.Contains(err.Error(), testKey) {
			t.Errorf("New(%q) = %v; want a refusal that does not echo the URL", u, err)
		}
	}
	for _, k := range []string{"", "with space", "line\nbreak"} {
		if _, err := paycometrest.New("https://rest.paycomet.com", secret.New(k)); err == nil || (k != "" && strings.Contains(err.Error(), k)) {
			t.Errorf("New with key %q = %v; want a refusal", k, err)
		}
	}
}
