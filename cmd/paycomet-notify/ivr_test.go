package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/paycomet-notify/paycomet-notify/demo"
	"github.com/paycomet-notify/paycomet-notify/internal/testenv"
	"github.com/paycomet-notify/paycomet-notify/paycometrest"
	"github.com/paycomet-notify/paycomet-notify/paycometrest/paycomettest"
)

// ivrKey is the API key of these tests: not the demo's, so that finding it
// in any output means it leaked.
const ivrKey = "ivr-secret-api-key-0123456789ABCDEF"

func ivrFake(t *testing.T, notifyURL string) *paycomettest.Server {
	t.Helper()
	return paycomettest.NewServer(t, paycomettest.Config{
		APIKey: ivrKey, MerchantCode: demo.MerchantCode, Terminals: map[string]string{demo.Terminal: demo.Password},
		ProviderID: 77, NotifyURL: notifyURL, Step: 10 * time.Millisecond,
	})
}

func ivrEnv(restURL string) map[string]string {
	return map[string]string{
		"PAYCOMET_API_KEY": ivrKey, "PAYCOMET_REST_URL": restURL, "PAYCOMET_MERCHANT_CODE": demo.MerchantCode,
		"PAYCOMET_TERMINALS": demo.Terminal + ":" + demo.Password, "IVR_PROVIDER_ID": "77", "IVR_STATION_ID": "DESK1",
	}
}

func runIn(t *testing.T, ctx context.Context, env map[string]string, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(ctx, args, env, strings.NewReader(stdin), &out, &errb)
	if strings.Contains(out.String()+errb.String(), ivrKey) {
		t.Errorf("%v: the API key appears in the output:\n%s\n%s", args, out.String(), errb.String())
	}
	return code, out.String(), errb.String()
}

func ivrRun(t *testing.T, env map[string]string, stdin string, args ...string) (int, map[string]string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code, out, errs := runIn(t, ctx, env, stdin, args...)
	var obj map[string]string
	if strings.TrimSpace(out) != "" {
		if err := json.Unmarshal([]byte(out), &obj); err != nil {
			t.Fatalf("%v: stdout is not one JSON object of strings: %q", args, out)
		}
	}
	return code, obj, errs
}

const startJSON = `{"IVR_MERCHANT_ORDER": "%s", "IVR_MERCHANT_AMOUNT": "1999", "IVR_MERCHANT_CURRENCY": "EUR", "IVR_MERCHANT_LANGUAGE": "ES", "IVR_TRANSACTION_TYPE": "1"}`

// TestIVRCalls: start, state and cancel against the fake, JSON in and out
// under the seed's names, exit 0 and 2.
func TestIVRCalls(t *testing.T) {
	f := ivrFake(t, "")
	env := ivrEnv(f.URL)
	ref := `{"IVR_MERCHANT_ORDER": "CALL1HOLD"}`
	steps := []struct {
		call, stdin string
		env         map[string]string
		code        int
		want        map[string]string
		stderr      string
	}{
		{"start", fmt.Sprintf(startJSON, "CALL1HOLD"), env, 0, map[string]string{"IVR_RESPONSE": "1", "IVR_ERROR_ID": "0"}, ""},
		{"start", fmt.Sprintf(startJSON, "CALL1HOLD"), env, 2, map[string]string{"IVR_RESPONSE": "0", "IVR_ERROR_ID": "1026"}, "PAYCOMET error 1026: Duplicated external reference"},
		{"start", `{"IVR_PROVIDER_ID": "78", "IVR_MERCHANT_ORDER": "CALL2", "IVR_MERCHANT_AMOUNT": "5", "IVR_MERCHANT_CURRENCY": "EUR", "IVR_MERCHANT_LANGUAGE": "ES", "IVR_TRANSACTION_TYPE": "1"}`,
			env, 2, map[string]string{"IVR_RESPONSE": "0", "IVR_ERROR_ID": "1206"}, "1206: ProviderID not available"},
		{"state", ref, env, 0, map[string]string{"IVR_RESPONSE": "1", "IVR_SESSION_STATE": "0", "IVR_SESSION_RESULT": "0", "IVR_TIME_LEFT": "120",
			"IVR_DIGIT_PAN": "0", "IVR_DIGIT_EXP": "0", "IVR_DIGIT_CVC": "0", "IVR_ERROR_ID": "0"}, ""},
		{"state", `{"IVR_MERCHANT_ORDER": "NOSUCH", "IVR_MERCHANT_TERMINAL": "1000", "IVR_MERCHANT_CODE": "` + demo.MerchantCode + `"}`, env, 2,
			map[string]string{"IVR_RESPONSE": "0", "IVR_SESSION_STATE": "5", "IVR_SESSION_RESULT": "0", "IVR_TIME_LEFT": "0",
				"IVR_DIGIT_PAN": "0", "IVR_DIGIT_EXP": "0", "IVR_DIGIT_CVC": "0", "IVR_ERROR_ID": "0"}, "not found"},
		{"cancel", ref, env, 0, map[string]string{"IVR_RESPONSE": "1", "IVR_SESSION_STATE": "6", "IVR_ERROR_ID": "0"}, ""},
		{"cancel", ref, env, 2, map[string]string{"IVR_RESPONSE": "0", "IVR_SESSION_STATE": "6", "IVR_ERROR_ID": "0"}, "not cancelled"},
		{"state", ref, withEnv(env, "PAYCOMET_API_KEY", "wrong-key"), 2, map[string]string{"IVR_RESPONSE": "0", "IVR_ERROR_ID": "1004"}, "1004: Forbidden access"},
	}
	for i, s := range steps {
		code, obj, stderr := ivrRun(t, s.env, s.stdin, "ivr", s.call)
		if code != s.code || !equalMaps(obj, s.want) || !strings.Contains(stderr, s.stderr) {
			t.Errorf("step %d: ivr %s = %d %v, stderr %q; want %d %v and %q", i, s.call, code, obj, stderr, s.code, s.want, s.stderr)
		}
	}
	if n := len(f.CallsTo("get-session")); n != 3 {
		t.Errorf("get-session received %d times, want 3 (never retried)", n)
	}
}

func withEnv(env map[string]string, kv ...string) map[string]string {
	out := map[string]string{}
	for k, v := range env {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			delete(out, kv[i])
		} else {
			out[kv[i]] = kv[i+1]
		}
	}
	return out
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestIVRBadInputNeverSent: every kind of bad input or configuration exits
// 1 naming what is wrong, and the fake receives nothing.
func TestIVRBadInputNeverSent(t *testing.T) {
	f := ivrFake(t, "")
	env := ivrEnv(f.URL)
	ok := fmt.Sprintf(startJSON, "BAD1")
	edit := func(from, to string) string { return strings.Replace(ok, from, to, 1) }
	cases := []struct {
		name, call, stdin string
		env               map[string]string
		args              []string
		named             string
	}{
		{"not JSON", "start", `{"IVR_MERCHANT_ORDER":`, env, nil, "not a JSON object"},
		{"unknown element", "start", edit(`{`, `{"IVR_X": "1", `), env, nil, "IVR_X"},
		{"element of another call", "state", `{"IVR_MERCHANT_ORDER": "A", "IVR_MERCHANT_AMOUNT": "1"}`, env, nil, "IVR_MERCHANT_AMOUNT"},
		{"number instead of string", "start", edit(`"1999"`, `1999`), env, nil, "IVR_MERCHANT_AMOUNT: must be a JSON string"},
		{"amount not digits", "start", edit(`"1999"`, `"19.99"`), env, nil, "IVR_MERCHANT_AMOUNT"},
		{"amount of 9 digits", "start", edit(`"1999"`, `"123456789"`), env, nil, "IVR_MERCHANT_AMOUNT"},
		{"amount missing", "start", edit(`"IVR_MERCHANT_AMOUNT": "1999", `, ``), env, nil, "IVR_MERCHANT_AMOUNT"},
		{"order too long", "start", edit(`"BAD1"`, `"`+strings.Repeat("A", 21)+`"`), env, nil, "IVR_MERCHANT_ORDER"},
		{"order missing", "cancel", `{}`, env, nil, "IVR_MERCHANT_ORDER"},
		{"type 2", "start", edit(`"IVR_TRANSACTION_TYPE": "1"`, `"IVR_TRANSACTION_TYPE": "2"`), env, nil, "IVR_TRANSACTION_TYPE"},
		{"subscription periodicity", "start", edit(`"IVR_TRANSACTION_TYPE": "1"`, `"IVR_TRANSACTION_TYPE": "9", "IVR_SUBSCRIPTION_STARTDATE": "2026-01-01", "IVR_SUBSCRIPTION_ENDDATE": "2027-01-01", "IVR_SUBSCRIPTION_PERIODICITY": "366"`), env, nil, "IVR_SUBSCRIPTION_PERIODICITY"},
		{"subscription end", "start", edit(`"IVR_TRANSACTION_TYPE": "1"`, `"IVR_TRANSACTION_TYPE": "9", "IVR_SUBSCRIPTION_STARTDATE": "2026-01-01", "IVR_SUBSCRIPTION_ENDDATE": "2031-01-02", "IVR_SUBSCRIPTION_PERIODICITY": "30"`), env, nil, "IVR_SUBSCRIPTION_ENDDATE"},
		{"merchant code differs", "state", `{"IVR_MERCHANT_ORDER": "A", "IVR_MERCHANT_CODE": "OTHER"}`, env, nil, "IVR_MERCHANT_CODE"},
		{"terminal not configured", "state", `{"IVR_MERCHANT_ORDER": "A", "IVR_MERCHANT_TERMINAL": "9"}`, env, nil, "IVR_MERCHANT_TERMINAL"},
		{"terminal and flag differ", "state", `{"IVR_MERCHANT_ORDER": "A", "IVR_MERCHANT_TERMINAL": "1000"}`, env, []string{"--terminal", "2000"}, "IVR_MERCHANT_TERMINAL"},
		{"no provider", "state", `{"IVR_MERCHANT_ORDER": "A"}`, withEnv(env, "IVR_PROVIDER_ID", ""), nil, "IVR_PROVIDER_ID"},
		{"no station", "start", ok, withEnv(env, "IVR_STATION_ID", ""), nil, "IVR_STATION_ID"},
		{"no API key", "state", `{"IVR_MERCHANT_ORDER": "A"}`, withEnv(env, "PAYCOMET_API_KEY", ""), nil, "PAYCOMET_API_KEY"},
		{"REST URL with credentials", "state", `{"IVR_MERCHANT_ORDER": "A"}`, withEnv(env, "PAYCOMET_REST_URL", "http://u:"+ivrKey+"@127.0.0.1:1"), nil, "PAYCOMET_REST_URL"},
		{"no terminals", "state", `{"IVR_MERCHANT_ORDER": "A"}`, withEnv(env, "PAYCOMET_TERMINALS", ""), nil, "PAYCOMET_TERMINALS"},
		{"argument", "state", `{}`, env, []string{"extra"}, "unexpected argument"},
		{"pay poll too slow", "pay", ``, env, []string{"--poll", "3s"}, "--poll"},
		{"pay bad amount", "pay", ``, env, []string{"--amount", "12.50"}, "IVR_MERCHANT_AMOUNT"},
		{"pay bad type", "pay", ``, env, []string{"--amount", "1", "--type", "107"}, "IVR_MERCHANT_AMOUNT"},
		{"pay bad JSON", "pay", `{"IVR_MERCHANT_AMOUNT": 5}`, env, []string{"--json"}, "must be a JSON string"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := ivrRun(t, tc.env, tc.stdin, append([]string{"ivr", tc.call}, tc.args...)...)
			if code != 1 || !strings.Contains(stderr, tc.named) {
				t.Errorf("exit %d, stderr %q; want 1 naming %q", code, stderr, tc.named)
			}
		})
	}
	if calls := f.Calls(); len(calls) != 0 {
		t.Fatalf("bad input reached the fake: %+v", calls)
	}
}

// TestIVRNoUsableAnswer: 5xx, unreadable answers and an unreachable
// PAYCOMET exit 3; a 422 exits 2 with PAYCOMET's text.
func TestIVRNoUsableAnswer(t *testing.T) {
	answer := func(status int, body string) string {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(status)
			fmt.Fprint(w, body)
		}))
		t.Cleanup(srv.Close)
		return srv.URL
	}
	cases := []struct {
		name, url string
		code      int
		stderr    string
	}{
		{"500", answer(500, `{"errorCode":0}`), 3, "HTTP status 500"},
		{"truncated", answer(200, `{"errorCode":0,"ivrRes`), 3, "malformed"},
		{"unreachable", "http://127.0.0.1:1", 3, "no usable answer"},
		{"422", answer(422, `{"errorCode":127,"error":{"message":"Validation error","detail":["ivrMerchantOrder: unknown"]}}`), 2, "HTTP 422), error 127: Invalid parameter: Validation error (ivrMerchantOrder: unknown)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, obj, stderr := ivrRun(t, ivrEnv(tc.url), fmt.Sprintf(startJSON, "N1"), "ivr", "start")
			if code != tc.code || !strings.Contains(stderr, tc.stderr) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, stderr, tc.code, tc.stderr)
			}
			if (tc.code == 3) != (obj == nil) {
				t.Errorf("stdout %v: an object is printed exactly when PAYCOMET answered", obj)
			}
		})
	}
}

// ivrReceiver runs `serve --demo` in-process with its own data directory
// and free ports and waits until it is ready.
func ivrReceiver(t *testing.T) (env map[string]string, notifyURL string) {
	t.Helper()
	env = map[string]string{
		"DATA_DIR":           t.TempDir(),
		"EMBEDDED_NATS_ADDR": fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)),
		"LISTEN_ADDR":        fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)),
		"ADMIN_ADDR":         fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)),
	}
	var out, errb testenv.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"serve", "--demo"}, env, nil, &out, &errb) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Errorf("serve did not stop")
		}
	})
	testenv.Eventually(t, 30*time.Second, "serve --demo ready", func() bool {
		select {
		case code := <-done:
			done <- code
			t.Fatalf("serve exited %d:\n%s", code, errb.String())
		default:
		}
		resp, err := http.Get("http://" + env["ADMIN_ADDR"] + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	return env, "http://" + env["LISTEN_ADDR"] + "/paycomet/notifications/" + demo.URLToken
}

// TestIVRPayEndToEnd: `ivr pay --demo` against the fake and a real receiver
// on real NATS, from the session's start to its event.
func TestIVRPayEndToEnd(t *testing.T) {
	recvEnv, notifyURL := ivrReceiver(t)
	f := ivrFake(t, notifyURL)
	env := withEnv(recvEnv, "PAYCOMET_REST_URL", f.URL, "PAYCOMET_API_KEY", ivrKey, "IVR_PROVIDER_ID", "77")
	pay := func(ctx context.Context, args ...string) (int, string, string) {
		return runIn(t, ctx, env, "", append([]string{"ivr", "pay", "--demo", "--poll", "20ms", "--wait", "15s"}, args...)...)
	}
	ctx := context.Background()

	t.Run("OK", func(t *testing.T) {
		code, out, stderr := pay(ctx, "--order", "E2EOK1", "--amount", "2500")
		var ev struct {
			Type, Source, Subject string
			Data                  struct {
				Amount   int64  `json:"amount"`
				Currency string `json:"currency"`
			}
		}
		if code != 0 || json.Unmarshal([]byte(out), &ev) != nil {
			t.Fatalf("exit %d, stdout %q, stderr:\n%s", code, out, stderr)
		}
		if ev.Type != "paycomet.authorization.ok" || ev.Subject != "E2EOK1" || ev.Source != "/paycomet/terminals/"+demo.Terminal || ev.Data.Amount != 2500 {
			t.Errorf("event %+v", ev)
		}
		for _, want := range []string{"Waiting ·", "Processing · card", "card 16 digits", "expiry 4", "CVC 3", "Finalised. OK", "payment succeeded"} {
			if !strings.Contains(stderr, want) {
				t.Errorf("progress lacks %q:\n%s", want, stderr)
			}
		}
		if strings.Contains(stderr, "\r") {
			t.Errorf("progress to a non-terminal uses carriage returns")
		}
	})
	t.Run("KO", func(t *testing.T) {
		code, out, stderr := pay(ctx, "--order", "E2EPAYKO")
		if code != 2 || !strings.Contains(out, `"type": "paycomet.authorization.ko"`) {
			t.Fatalf("exit %d, stdout %q, stderr:\n%s", code, out, stderr)
		}
	})
	t.Run("subscription", func(t *testing.T) {
		code, out, stderr := pay(ctx, "--order", "E2ESUB1", "--type", "9", "--subscription-start", "2026-03-01",
			"--subscription-end", "2027-03-01", "--subscription-periodicity", "30")
		if code != 0 || !strings.Contains(out, `"type": "paycomet.subscription.ok"`) || !strings.Contains(out, `"subject": "E2ESUB1[`) {
			t.Fatalf("exit %d, stdout %q, stderr:\n%s", code, out, stderr)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		code, out, stderr := pay(ctx, "--order", "E2ETIMEOUT")
		if code != 2 || out != "" || !strings.Contains(stderr, "timed_out") {
			t.Fatalf("exit %d, stdout %q, stderr:\n%s", code, out, stderr)
		}
	})
	t.Run("cancelled by the agent", func(t *testing.T) {
		done := make(chan [3]string, 1)
		go func() {
			code, out, stderr := pay(ctx, "--order", "E2ECX1HOLD")
			done <- [3]string{fmt.Sprint(code), out, stderr}
		}()
		testenv.Eventually(t, 10*time.Second, "the held session", func() bool {
			for _, c := range f.CallsTo("session-state") {
				if c.Order == "E2ECX1HOLD" {
					return true
				}
			}
			return false
		})
		if code, _, stderr := ivrRun(t, withEnv(env, "IVR_STATION_ID", ""), `{"IVR_MERCHANT_ORDER": "E2ECX1HOLD"}`, "ivr", "cancel", "--demo"); code != 0 {
			t.Fatalf("ivr cancel = %d: %s", code, stderr)
		}
		r := <-done
		if r[0] != "2" || r[1] != "" || !strings.Contains(r[2], "cancelled") {
			t.Fatalf("pay after the agent's cancel: exit %s, stdout %q, stderr:\n%s", r[0], r[1], r[2])
		}
	})
	t.Run("SIGINT cancels at PAYCOMET", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		done := make(chan [3]string, 1)
		go func() {
			code, out, stderr := pay(ctx, "--order", "E2EINT1HOLD")
			done <- [3]string{fmt.Sprint(code), out, stderr}
		}()
		testenv.Eventually(t, 10*time.Second, "the held session", func() bool {
			for _, c := range f.CallsTo("session-state") {
				if c.Order == "E2EINT1HOLD" {
					return true
				}
			}
			return false
		})
		cancel() // what SIGINT does to run's context
		r := <-done
		if r[0] != "2" || !strings.Contains(r[2], "cancelled at PAYCOMET") {
			t.Fatalf("exit %s, stderr:\n%s", r[0], r[2])
		}
		var cancels int
		for _, c := range f.CallsTo("session-cancel") {
			if c.Order == "E2EINT1HOLD" && c.Status == 200 {
				cancels++
			}
		}
		if cancels != 1 {
			t.Errorf("%d session-cancel calls for the interrupted session, want 1", cancels)
		}
	})
	t.Run("no event", func(t *testing.T) {
		// A fake that notifies nobody: the session ends OK, no event comes.
		quiet := ivrFake(t, "")
		code, out, stderr := runIn(t, ctx, withEnv(env, "PAYCOMET_REST_URL", quiet.URL), "",
			"ivr", "pay", "--demo", "--poll", "20ms", "--wait", "300ms", "--order", "E2ENOEV1")
		if code != 2 || out != "" || !strings.Contains(stderr, "no event for order E2ENOEV1") {
			t.Fatalf("exit %d, stdout %q, stderr:\n%s", code, out, stderr)
		}
	})
	for _, n := range f.Notifications() {
		if n.Status != 200 {
			t.Errorf("notification %+v not accepted by the receiver", n)
		}
	}
}

func TestProgressOnATerminal(t *testing.T) {
	var b bytes.Buffer
	p := &progress{w: &b, tty: true, order: "O1"}
	p.show(&paycometrest.SessionStatus{State: paycometrest.StateProcessing, DigitsPAN: 4, TimeLeft: 90 * time.Second})
	p.show(&paycometrest.SessionStatus{State: paycometrest.StateProcessing, DigitsPAN: 6, TimeLeft: 89 * time.Second})
	p.note("done")
	want := "\r\x1b[KIVR O1: Processing · card 4 digits · expiry 0 · CVC 0 · 90s left" +
		"\r\x1b[KIVR O1: Processing · card 6 digits · expiry 0 · CVC 0 · 89s left\ndone\n"
	if b.String() != want {
		t.Errorf("tty progress = %q, want %q", b.String(), want)
	}
	b.Reset()
	p = &progress{w: &b, order: "O1"}
	p.show(&paycometrest.SessionStatus{State: paycometrest.StateWaiting, TimeLeft: 90 * time.Second})
	p.show(&paycometrest.SessionStatus{State: paycometrest.StateWaiting, TimeLeft: 89 * time.Second})
	p.show(&paycometrest.SessionStatus{State: paycometrest.StateProcessing, DigitsPAN: 1, TimeLeft: 88 * time.Second})
	if n := strings.Count(b.String(), "\n"); n != 2 || strings.Contains(b.String(), "\r") {
		t.Errorf("plain progress = %q, want a line per change", b.String())
	}
}
