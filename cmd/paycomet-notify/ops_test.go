package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/paycomet-notify/paycomet-notify/demo"
	"github.com/paycomet-notify/paycomet-notify/internal/testenv"
	"github.com/paycomet-notify/paycomet-notify/notify"
	"github.com/paycomet-notify/paycomet-notify/ops/opstest"
)

func opsEnv(rig *opstest.Rig, password string) map[string]string {
	return map[string]string{
		"NATS_URL":               rig.NATS.URL(),
		"PAYCOMET_MERCHANT_CODE": demo.MerchantCode,
		"PAYCOMET_TERMINALS":     demo.Terminal + ":" + password,
	}
}

func runOps(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb testenv.Buffer
	code := run(context.Background(), args, env, strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

// The wrong-password story from the command line, as the README tells it.
func TestQuarantineReplayFromTheCommandLine(t *testing.T) {
	rig := opstest.New(t)
	wrong := rig.Path("wrong-password", true)
	q1 := rig.Send(wrong, opstest.Sample("order-1", 1000), notify.Rejected)
	rig.Send(wrong, opstest.Sample("order-1", 1000), notify.Rejected) // PAYCOMET's retry
	q3 := rig.Send(wrong, opstest.Sample("order-2", 2000), notify.Rejected)

	env := opsEnv(rig, demo.Password)
	code, out, errs := runOps(t, env, "quarantine", "list", "--reason", "bad_signature")
	if code != 0 || strings.Count(out, "\n") != 3 || !strings.Contains(out, q1.QuarantineID) || !strings.Contains(out, " 401 ") {
		t.Fatalf("quarantine list = %d\n%s%s", code, out, errs)
	}
	code, out, _ = runOps(t, env, "quarantine", "show", q3.QuarantineID)
	if code != 0 || !strings.Contains(out, `"reason": "bad_signature"`) || !strings.Contains(out, `"order-2"`) {
		t.Fatalf("quarantine show = %d\n%s", code, out)
	}

	code, out, errs = runOps(t, env, "quarantine", "replay")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 3 {
		t.Fatalf("quarantine replay = %d\n%s%s", code, out, errs)
	}
	for i, want := range []string{q1.QuarantineID + " order-1 accepted ", " order-1 duplicate", q3.QuarantineID + " order-2 accepted "} {
		if !strings.Contains(lines[i], want) {
			t.Errorf("replay line %d = %q, want it to contain %q", i, lines[i], want)
		}
	}
	if rig.EventsFor("order-1") != 1 || rig.EventsFor("order-2") != 1 {
		t.Fatalf("events: order-1 %d, order-2 %d; want 1 each", rig.EventsFor("order-1"), rig.EventsFor("order-2"))
	}
	last := rig.LastSeq(rig.Streams.Events)
	code, out, _ = runOps(t, env, "quarantine", "replay")
	if code != 0 || strings.Count(out, " duplicate") != 3 || rig.LastSeq(rig.Streams.Events) != last {
		t.Fatalf("second replay = %d, published %d\n%s", code, rig.LastSeq(rig.Streams.Events)-last, out)
	}
	code, out, _ = runOps(t, env, "quarantine", "list")
	if code != 0 || strings.Count(out, "replayed: ") != 3 {
		t.Fatalf("list after replay does not say what was replayed:\n%s", out)
	}
}

func TestOpsCommandsExitCodes(t *testing.T) {
	rig := opstest.New(t)
	env := opsEnv(rig, demo.Password)
	down := opsEnv(rig, demo.Password)
	down["NATS_URL"] = fmt.Sprintf("nats://127.0.0.1:%d", testenv.FreePort(t))
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		want int
	}{
		{"unknown id", env, []string{"quarantine", "replay", "0123456789abcdef0123456789abcdef"}, exitInput},
		{"bad since", env, []string{"quarantine", "list", "--since", "yesterday"}, exitInput},
		{"show without id", env, []string{"quarantine", "show"}, exitInput},
		{"replay without terminals", map[string]string{"NATS_URL": rig.NATS.URL()}, []string{"quarantine", "replay"}, exitInput},
		{"dlq replay without ids", env, []string{"dlq", "replay"}, exitInput},
		{"dlq list empty", env, []string{"dlq", "list"}, exitOK},
		{"events without tail", env, []string{"events"}, exitInput},
		{"nats down: list", down, []string{"quarantine", "list"}, exitBackend},
		{"nats down: replay", down, []string{"quarantine", "replay"}, exitBackend},
		{"nats down: tail", down, []string{"events", "tail"}, exitBackend},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if code, out, errs := runOps(t, tc.env, tc.args...); code != tc.want {
				t.Errorf("%v = %d, want %d\n%s%s", tc.args, code, tc.want, out, errs)
			}
		})
	}
}

func TestEventsTailCommand(t *testing.T) {
	rig := opstest.New(t)
	path := rig.Path(demo.Password, true)
	rig.Send(path, opstest.Sample("order-old", 1000), notify.Accepted)
	var out, errb testenv.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"events", "tail", "--since", "1h"}, opsEnv(rig, demo.Password), strings.NewReader(""), &out, &errb)
	}()
	testenv.Eventually(t, 5*time.Second, "the old event", func() bool { return strings.Contains(out.String(), "order-old") })
	rig.Send(path, opstest.Sample("order-new", 1250), notify.Accepted)
	testenv.Eventually(t, 5*time.Second, "the new event", func() bool { return strings.Contains(out.String(), "order-new") })
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("events tail after SIGINT = %d, want 0\n%s", code, errb.String())
	}
	if !strings.Contains(out.String(), "12.50 EUR") || !strings.Contains(out.String(), "authorization") {
		t.Errorf("tail line lacks amount or operation:\n%s", out.String())
	}
}

// serve mounts the operator page on its admin listener: its login form is
// reachable without the bearer token the other admin routes need, and the
// page itself needs ADMIN_TOKEN.
func TestServeMountsTheOperatorPage(t *testing.T) {
	rig := opstest.New(t)
	env := opsEnv(rig, demo.Password)
	env["ADMIN_TOKEN"] = "admin-token-for-the-page"
	s := startServe(t, env)
	if code, body := s.get(t, "/ui/login"); code != 200 || !strings.Contains(body, `name="token"`) {
		t.Fatalf("GET /ui/login = %d\n%s", code, body)
	}
	if code, _ := s.get(t, "/metrics"); code != 401 {
		t.Errorf("GET /metrics without the token = %d, want 401", code)
	}
	req, _ := http.NewRequest("GET", s.admin+"/ui/", nil)
	req.Header.Set("Authorization", "Bearer admin-token-for-the-page")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), "PAYCOMET_REJECTED") || !strings.Contains(string(b), "connected") {
		t.Fatalf("GET /ui/ with the token = %d\n%s", resp.StatusCode, b)
	}
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err = noRedirect.Get(s.admin + "/ui/events")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Errorf("GET /ui/events without the token = %d, want 303 to the login form", resp.StatusCode)
	}
}
