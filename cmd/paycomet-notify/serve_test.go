package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/paycomet-notify/paycomet-notify/demo"
	"github.com/paycomet-notify/paycomet-notify/internal/testenv"
)

// server is `paycomet-notify serve` running in-process through run().
// proc is a subcommand running through run() inside the test process.
type proc struct {
	name           string // for failure messages
	env            map[string]string
	stdout, stderr *testenv.Buffer
	cancel         context.CancelFunc
	done           chan int
	admin          string
}

// stop cancels the subcommand's context (SIGTERM's effect) and returns its
// exit code; it may be called more than once.
func (p *proc) stop(t *testing.T) int {
	p.cancel()
	select {
	case code := <-p.done:
		p.done <- code
		return code
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not stop within 30s:\n%s", p.name, p.stderr)
		return -1
	}
}

// server is serve running through run().
type server = proc

func freeAddr(t *testing.T) string { return fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t)) }

// startServe runs serve with env plus free listen/admin addresses and waits
// until /readyz answers 200. Addresses it chose are free when chosen, not
// held: when serve exits because one was taken meanwhile (another test bound
// it), it starts again on new ones instead of failing the test.
func startServe(t *testing.T, env map[string]string, args ...string) *server {
	t.Helper()
	var chosen []string
	for _, k := range []string{"LISTEN_ADDR", "ADMIN_ADDR"} {
		if env[k] == "" {
			chosen = append(chosen, k)
		}
	}
	for attempt := 1; ; attempt++ {
		for _, k := range chosen {
			env[k] = freeAddr(t)
		}
		s, code, ok := tryServe(t, env, args)
		if ok {
			return s
		}
		if len(chosen) == 0 || attempt == 3 || !strings.Contains(s.stderr.String(), "address already in use") {
			t.Fatalf("serve exited with %d before ready:\n%s", code, s.stderr)
		}
	}
}

// tryServe starts serve once; ok is false when it exited before it was ready.
func tryServe(t *testing.T, env map[string]string, args []string) (*server, int, bool) {
	t.Helper()
	s := &server{name: "serve", env: env, stdout: &testenv.Buffer{}, stderr: &testenv.Buffer{}, done: make(chan int, 1)}
	s.admin = "http://" + env["ADMIN_ADDR"]
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	go func() { s.done <- run(ctx, append([]string{"serve"}, args...), env, nil, s.stdout, s.stderr) }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		select {
		case code := <-s.done:
			cancel()
			return s, code, false
		default:
		}
		resp, err := http.Get(s.admin + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				t.Cleanup(func() { s.stop(t) })
				return s, 0, true
			}
		}
		if time.Now().After(deadline) {
			t.Cleanup(func() { s.stop(t) })
			t.Fatalf("serve not ready after 20s:\n%s", s.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// get fetches path from the subcommand's admin listener.
func (s *proc) get(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := http.Get(s.admin + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func runCmd(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	code := run(ctx, args, env, strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

func TestServeRefusesWithoutTerminals(t *testing.T) {
	code, _, stderr := runCmd(t, map[string]string{}, "serve")
	if code != 1 || !strings.Contains(stderr, "PAYCOMET_TERMINALS") || !strings.Contains(stderr, "PAYCOMET_MERCHANT_CODE") {
		t.Fatalf("serve without terminals = %d, stderr %q; want 1 naming the variables", code, stderr)
	}
	code, _, stderr = runCmd(t, map[string]string{"PAYCOMET_TERMINALS": "12:pw", "PAYCOMET_MERCHANT_CODE": "m", "DEDUPE_TTL": "forever"}, "serve")
	if code != 1 || !strings.Contains(stderr, "DEDUPE_TTL") {
		t.Fatalf("serve with a bad DEDUPE_TTL = %d, stderr %q", code, stderr)
	}
}

// TestServeDemoEndToEnd is the README's first command and `send --demo`:
// the embedded NATS and KV dedupe, a type 1 and a type 108, the events seen
// on NATS, metrics, and a clean stop.
func TestServeDemoEndToEnd(t *testing.T) {
	env := map[string]string{
		"DATA_DIR":           t.TempDir(),
		"EMBEDDED_NATS_ADDR": freeAddr(t),
	}
	s := startServe(t, env, "--demo")
	if out := s.stdout.String(); !strings.Contains(out, demo.Password) || !strings.Contains(out, "DEMO MODE") {
		t.Errorf("demo banner does not show the demo credentials:\n%s", out)
	}
	sendEnv := map[string]string{"LISTEN_ADDR": env["LISTEN_ADDR"], "EMBEDDED_NATS_ADDR": env["EMBEDDED_NATS_ADDR"]}
	for typ, subject := range map[int]string{1: "paycomet.1000.authorization.ok", 108: "paycomet.1000.card_expiry.notice", 107: "paycomet.1000.card_registration.ok"} {
		code, out, errOut := runCmd(t, sendEnv, "send", "--demo", "--type", fmt.Sprint(typ))
		if code != 0 || !strings.Contains(out, "200 OK") || !strings.Contains(out, "event on "+subject) {
			t.Errorf("send --demo --type %d = %d\n%s\n%s", typ, code, out, errOut)
		}
		if strings.Contains(out, demo.URLToken) {
			t.Errorf("send printed the URL token:\n%s", out)
		}
	}
	code, body := s.get(t, "/readyz")
	if code != 200 || !strings.Contains(body, `"dedupe_jetstream_kv"`) {
		t.Errorf("/readyz = %d %s", code, body)
	}
	_, metrics := s.get(t, "/metrics")
	for _, want := range []string{`paycomet_notify_notifications_total{result="published",type="1"} 1`, `paycomet_notify_http_responses_total{status="200"} 3`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if code := s.stop(t); code != 0 {
		t.Errorf("serve exit code after stop = %d\n%s", code, s.stderr)
	}
	logs := s.stderr.String()
	if strings.Contains(logs, demo.Password) || strings.Contains(logs, demo.URLToken) {
		t.Errorf("logs contain a demo secret:\n%s", logs)
	}
	if !strings.Contains(logs, `"msg":"stopped"`) {
		t.Errorf("no clean stop in logs:\n%s", logs)
	}
}

// TestServeExternalNATSAndRedis is the production shape: NATS_URL and
// REDIS_URL, several terminals, readiness naming each dependency.
func TestServeExternalNATSAndRedis(t *testing.T) {
	n := testenv.StartNATS(t)
	r := testenv.StartRedis(t)
	env := map[string]string{
		"PAYCOMET_MERCHANT_CODE": "MC000001",
		"PAYCOMET_TERMINALS":     "11:pw-eleven,12:pw-twelve",
		"NATS_URL":               n.URL(),
		"REDIS_URL":              r.URL(),
	}
	s := startServe(t, env)
	code, out, errOut := runCmd(t, env, "send", "--type", "1")
	if code != 1 || !strings.Contains(errOut, "--terminal") {
		t.Errorf("send with two terminals and none chosen = %d %q %q", code, out, errOut)
	}
	code, out, errOut = runCmd(t, env, "send", "--type", "2", "--terminal", "12")
	if code != 0 || !strings.Contains(out, "event on paycomet.12.refund.ok") {
		t.Errorf("send --terminal 12 = %d\n%s\n%s", code, out, errOut)
	}
	_, body := s.get(t, "/readyz")
	if !strings.Contains(body, `"dedupe_redis"`) {
		t.Errorf("/readyz = %s", body)
	}
	// Redis down: still ready (the receiver publishes through JetStream's
	// window), the dedupe store degraded in the JSON and the gauge at 0.
	r.Stop()
	var ready struct {
		Ready  bool   `json:"ready"`
		Status string `json:"status"`
		Checks []struct {
			Name  string `json:"name"`
			OK    bool   `json:"ok"`
			State string `json:"state"`
		} `json:"checks"`
	}
	testenv.Eventually(t, 10*time.Second, "/readyz to show Redis degraded", func() bool {
		code, body = s.get(t, "/readyz")
		if code != 200 || json.Unmarshal([]byte(body), &ready) != nil {
			return false
		}
		return ready.Ready && ready.Status == "degraded"
	})
	for _, c := range ready.Checks {
		if want := c.Name != "dedupe_redis"; c.OK != want {
			t.Errorf("/readyz check %s ok = %v, want %v: %s", c.Name, c.OK, want, body)
		}
	}
	if code, out, errOut := runCmd(t, env, "send", "--type", "1", "--terminal", "11"); code != 0 || !strings.Contains(out, "200 OK") {
		t.Errorf("send with Redis down = %d\n%s\n%s", code, out, errOut)
	}
	testenv.Eventually(t, 10*time.Second, "the dedupe_store_up gauge at 0", func() bool {
		_, metrics := s.get(t, "/metrics")
		return strings.Contains(metrics, "paycomet_notify_dedupe_store_up 0")
	})
	if strings.Contains(s.stderr.String(), "pw-eleven") || strings.Contains(s.stderr.String(), "pw-twelve") {
		t.Errorf("logs contain a terminal password")
	}
}

func TestServeRefusesStreamWithOtherSubjects(t *testing.T) {
	n := testenv.StartNATS(t)
	js, _ := jetstream.New(n.Connect(t))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "PAYCOMET", Subjects: []string{"billing.>"}}); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runCmd(t, map[string]string{
		"PAYCOMET_MERCHANT_CODE": "MC000001", "PAYCOMET_TERMINALS": "11:pw",
		"NATS_URL": n.URL(), "LISTEN_ADDR": freeAddr(t), "ADMIN_ADDR": freeAddr(t),
	}, "serve")
	if code != 1 || !strings.Contains(stderr, "billing.>") || !strings.Contains(stderr, "paycomet.*.>") {
		t.Fatalf("serve with a mismatched stream = %d\n%s", code, stderr)
	}
}
