package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/paycomet-notify/paycomet-notify/demo"
	"github.com/paycomet-notify/paycomet-notify/internal/testenv"
	"github.com/paycomet-notify/paycomet-notify/paycometrest"
	"github.com/paycomet-notify/paycomet-notify/paycometrest/paycomettest"
	"github.com/paycomet-notify/paycomet-notify/schemas"
)

// reconcileRig is `serve --demo` (its embedded NATS and the demo terminal)
// and the PAYCOMET fake with the demo's operations.
func reconcileRig(t *testing.T) (map[string]string, *paycomettest.Server) {
	t.Helper()
	env, _ := ivrReceiver(t)
	fake := paycomettest.NewServer(t, paycomettest.Config{APIKey: paycometrest.DemoAPIKey, MerchantCode: demo.MerchantCode,
		Terminals: map[string]string{demo.Terminal: demo.Password}, ProviderID: paycometrest.DemoProviderID})
	var term int
	fmt.Sscan(demo.Terminal, &term)
	fake.AddOperations(paycomettest.DemoOperations(term, time.Now())...)
	env["PAYCOMET_REST_URL"] = fake.URL
	return env, fake
}

// findingCount counts the findings on the demo stream.
func findingCount(t *testing.T, env map[string]string) int {
	t.Helper()
	nc, err := nats.Connect("nats://" + env["EMBEDDED_NATS_ADDR"])
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	s, err := js.Stream(context.Background(), "PAYCOMET")
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background(), jetstream.WithSubjectFilter("paycomet.*.reconcile.missing"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, c := range info.State.Subjects {
		n += int(c)
	}
	return n
}

func sendDemo(t *testing.T, env map[string]string, args ...string) {
	t.Helper()
	code, out, errs := runCmd(t, env, append([]string{"send", "--demo", "--watch=false"}, args...)...)
	if code != 0 {
		t.Fatalf("send %v = %d\n%s%s", args, code, out, errs)
	}
}

// TestReconcileDemo is the README's demo: three of the five operations
// were notified; reconcile finds the other two, publishes each finding
// once, and a REST failure exits 3 with nothing published for it.
func TestReconcileDemo(t *testing.T) {
	env, fake := reconcileRig(t)
	sendDemo(t, env, "--order", "DEMO1")
	sendDemo(t, env, "--order", "DEMO3", "--response", "KO")
	sendDemo(t, env, "--order", "DEMO4", "--type", "2", "--amount", "500")

	code, out, errs := runCmd(t, env, "reconcile", "--demo", "--last", "1h")
	if code != 0 {
		t.Fatalf("reconcile = %d\n%s%s", code, out, errs)
	}
	if !strings.Contains(out, "DEMO2") || !strings.Contains(out, "DEMO5") || strings.Contains(out, "DEMO1 ") ||
		strings.Contains(out, "DEMO3") || strings.Contains(out, "DEMO4") {
		t.Fatalf("reconcile table does not list exactly DEMO2 and DEMO5 missing:\n%s", out)
	}
	if !strings.Contains(out, demo.Terminal+"  5 ") && !strings.Contains(out, demo.Terminal+"      5") {
		// the row: terminal, 5 operations, 3 matched, 2 missing
		if !strings.Contains(strings.Join(strings.Fields(out), " "), demo.Terminal+" 5 3 2 0 complete") {
			t.Fatalf("terminal row is not 5 operations, 3 matched, 2 missing, 0 without:\n%s", out)
		}
	}
	if n := findingCount(t, env); n != 2 {
		t.Fatalf("%d findings on the stream, want 2", n)
	}
	if strings.Contains(out+errs, paycometrest.DemoAPIKey) {
		t.Fatalf("the API key appears in the output")
	}

	code, out, _ = runCmd(t, env, "reconcile", "--demo", "--last", "1h")
	if code != 0 || strings.Count(out, "reported before") != 2 || findingCount(t, env) != 2 {
		t.Fatalf("second run = %d with %d findings:\n%s", code, findingCount(t, env), out)
	}

	// A new lost operation, and PAYCOMET failing: exit 3, no finding.
	var term int
	fmt.Sscan(demo.Terminal, &term)
	fake.AddOperations(paycomettest.Operation{Terminal: term, Order: "DEMO6", Type: 1, State: 1, Amount: 1, Currency: "EUR", Time: time.Now().Add(-5 * time.Minute)})
	fake.SetPaymentsFault(func(c paycomettest.PaymentsCall) *paycomettest.Fault {
		if c.Op == "payments-search" && c.State == 1 {
			return &paycomettest.Fault{Status: 502}
		}
		return nil
	})
	code, out, errs = runCmd(t, env, "reconcile", "--demo", "--last", "1h")
	if code != 3 || !strings.Contains(out, "FAILED") || !strings.Contains(errs, "502") || strings.Contains(out, "DEMO6") {
		t.Fatalf("reconcile with PAYCOMET answering 502 = %d\n%s%s", code, out, errs)
	}
	if n := findingCount(t, env); n != 2 {
		t.Fatalf("after a failed run %d findings, want still 2", n)
	}
	fake.SetPaymentsFault(nil)
	code, out, _ = runCmd(t, env, "reconcile", "--demo", "--last", "1h")
	if code != 0 || !strings.Contains(out, "DEMO6") || findingCount(t, env) != 3 {
		t.Fatalf("run after PAYCOMET recovered = %d:\n%s", code, out)
	}
}

// TestReconcileFlags: bad input exits 1 before anything is asked.
func TestReconcileFlags(t *testing.T) {
	env := map[string]string{"PAYCOMET_MERCHANT_CODE": "M", "PAYCOMET_TERMINALS": "1000:pw", "PAYCOMET_REST_URL": "http://127.0.0.1:1"}
	withKey := withEnv(env, "RECONCILE_API_KEY", "query-key")
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"no window", withKey, nil, "--last"},
		{"both windows", withKey, []string{"--last", "1h", "--from", "2026-01-01T00:00:00Z", "--to", "2026-01-02T00:00:00Z"}, "not both"},
		{"every with fixed window", withKey, []string{"--every", "15m", "--from", "2026-01-01T00:00:00Z", "--to", "2026-01-02T00:00:00Z"}, "--every"},
		{"to before from", withKey, []string{"--from", "2026-01-02T00:00:00Z", "--to", "2026-01-01T00:00:00Z"}, "after --from"},
		{"bad time", withKey, []string{"--from", "yesterday", "--to", "2026-01-01T00:00:00Z"}, "RFC 3339"},
		{"no key", env, []string{"--last", "1h"}, "RECONCILE_API_KEY"},
		{"bad currency", withEnv(withKey, "RECONCILE_CURRENCIES", "EUR,euro"), []string{"--last", "1h"}, "RECONCILE_CURRENCIES"},
		{"unknown terminal", withKey, []string{"--last", "1h", "--terminal", "2000"}, "2000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errs := runCmd(t, tc.env, append([]string{"reconcile"}, tc.args...)...)
			if code != 1 || !strings.Contains(errs, tc.want) {
				t.Fatalf("reconcile %v = %d, stderr %q; want 1 naming %q", tc.args, code, errs, tc.want)
			}
		})
	}
}

// TestReconcileEvery: --every serves /healthz and /metrics and counts runs
// and findings until stopped.
func TestReconcileEvery(t *testing.T) {
	env, _ := reconcileRig(t)
	env = withEnv(env, "ADMIN_ADDR", freeAddr(t))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan int, 1)
	var out, errb testenv.Buffer
	go func() {
		done <- run(ctx, []string{"reconcile", "--demo", "--last", "1h", "--every", "1h"}, env, nil, &out, &errb)
	}()
	metrics := func() string {
		resp, err := http.Get("http://" + env["ADMIN_ADDR"] + "/metrics")
		if err != nil {
			return ""
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	testenv.Eventually(t, 30*time.Second, "a completed run on /metrics", func() bool {
		select {
		case code := <-done:
			t.Fatalf("reconcile --every exited %d:\n%s", code, errb.String())
		default:
		}
		m := metrics()
		return strings.Contains(m, "paycomet_notify_reconcile_runs_total 1") &&
			strings.Contains(m, `paycomet_notify_reconcile_missing_total{terminal="`+demo.Terminal+`"} 5`)
	})
	m := metrics()
	for _, want := range []string{"paycomet_notify_reconcile_failures_total 0", "paycomet_notify_reconcile_run_duration_seconds_count 1"} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if strings.Contains(m, "paycomet_notify_reconcile_last_success_timestamp_seconds 0\n") {
		t.Errorf("last success time not set after a completed run")
	}
	resp, err := http.Get("http://" + env["ADMIN_ADDR"] + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("/healthz = %v, %v", resp, err)
	}
	resp.Body.Close()
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("reconcile --every stopped with %d", code)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("reconcile --every did not stop")
	}
}

// streamEvents reads every message on subject from stream.
func streamEvents(t *testing.T, env map[string]string, stream, subject string) []map[string]any {
	t.Helper()
	nc, err := nats.Connect("nats://" + env["EMBEDDED_NATS_ADDR"])
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx := context.Background()
	c, err := js.CreateConsumer(ctx, stream, jetstream.ConsumerConfig{FilterSubject: subject, AckPolicy: jetstream.AckNonePolicy})
	if err != nil {
		t.Fatal(err)
	}
	defer js.DeleteConsumer(ctx, stream, c.CachedInfo().Name)
	want := int(c.CachedInfo().NumPending)
	var out []map[string]any
	for len(out) < want {
		b, err := c.Fetch(want-len(out), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for m := range b.Messages() {
			n++
			var ev map[string]any
			if err := json.Unmarshal(m.Data(), &ev); err != nil {
				t.Fatal(err)
			}
			if d, err := json.Marshal(ev["data"]); err == nil && ev["dataschema"] != nil {
				if err := schemas.Validate(ev["dataschema"].(string), d); err != nil {
					t.Fatalf("%s: %v", m.Subject(), err)
				}
			}
			out = append(out, ev)
		}
		if n == 0 {
			t.Fatalf("read %d of %d messages on %s", len(out), want, subject)
		}
	}
	return out
}

func withOrder(evs []map[string]any, order string) []map[string]any {
	var out []map[string]any
	for _, e := range evs {
		if d, _ := e["data"].(map[string]any); d != nil && d["order"] == order {
			out = append(out, e)
		}
	}
	return out
}

// TestReconcilePublishMissing: the missing operations' own events are
// published through the notification path; the real signed notification
// arriving later (with BankDateTime equal to PAYCOMET's timestamp, and a
// few seconds off it) is answered 200, publishes no second event and is
// quarantined as reconciled_copy.
func TestReconcilePublishMissing(t *testing.T) {
	env, fake := reconcileRig(t)
	code, out, errs := runCmd(t, env, "reconcile", "--demo", "--last", "1h", "--publish-missing")
	if code != 0 || strings.Count(out, ", event ") != 5 {
		t.Fatalf("reconcile --publish-missing = %d\n%s%s", code, out, errs)
	}
	var term int
	fmt.Sscan(demo.Terminal, &term)
	ops := map[string]paycomettest.Operation{}
	for _, o := range paycomettest.DemoOperations(term, time.Now()) {
		ops[o.Order] = o
	}
	// The seeded times are those of the rig's own call; read them back.
	for _, c := range []struct {
		order string
		shift time.Duration
	}{{"DEMO2", 0}, {"DEMO5", 3 * time.Second}} {
		evs := withOrder(streamEvents(t, env, "PAYCOMET", "paycomet.>"), c.order)
		var copyEv map[string]any
		for _, e := range evs {
			if d := e["data"].(map[string]any); d["authenticated_by"] == "reconciliation" {
				copyEv = e
			}
		}
		if copyEv == nil {
			t.Fatalf("%s: no reconciled event among %v", c.order, evs)
		}
		when, err := time.Parse(time.RFC3339, copyEv["time"].(string))
		if err != nil {
			t.Fatal(err)
		}
		o := ops[c.order]
		resp := "OK"
		form := demo.Sample(demo.SampleOptions{Type: o.Type, Terminal: demo.Terminal, Order: o.Order, Response: resp,
			Amount: o.Amount, Currency: o.Currency, When: when.Add(c.shift), IdUser: demo.IDUser, TokenUser: demo.TokenUser})
		res, err := http.Post("http://"+env["LISTEN_ADDR"]+"/paycomet/notifications/"+demo.URLToken, "application/x-www-form-urlencoded",
			strings.NewReader(form.Encode()))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Fatalf("%s: the real notification after its reconciled copy = %d, want 200", c.order, res.StatusCode)
		}
		subject := fmt.Sprintf("paycomet.%s.%s.ok", demo.Terminal, map[int]string{1: "authorization", 3: "preauthorization"}[o.Type])
		if n := len(withOrder(streamEvents(t, env, "PAYCOMET", subject), c.order)); n != 1 {
			t.Fatalf("%s (BankDateTime shifted %v): %d events on %s, want exactly 1", c.order, c.shift, n, subject)
		}
		var q []map[string]any
		for _, e := range streamEvents(t, env, "PAYCOMET_REJECTED", "paycomet.rejected") {
			d := e["data"].(map[string]any)
			if f, _ := d["fields"].(map[string]any); f == nil || fmt.Sprint(f["Order"]) != "["+c.order+"]" {
				continue
			}
			if d["reason"] != "reconciled_copy" || d["event_id"] != copyEv["id"] {
				t.Fatalf("%s: quarantined as %v for %v, want reconciled_copy for %v", c.order, d["reason"], d["event_id"], copyEv["id"])
			}
			q = append(q, e)
		}
		if len(q) != 1 {
			t.Fatalf("%s: %d reconciled_copy quarantine messages for %v, want 1", c.order, len(q), copyEv["id"])
		}
	}
	// The copies count as events: a run now finds nothing new.
	code, out, _ = runCmd(t, env, "reconcile", "--demo", "--last", "1h")
	if code != 0 || !strings.Contains(strings.Join(strings.Fields(out), " "), demo.Terminal+" 5 5 0 0 complete") {
		t.Fatalf("run after --publish-missing = %d:\n%s", code, out)
	}
	_ = fake
}
