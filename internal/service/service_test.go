package service

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/paycomet-notify/paycomet-notify/internal/testenv"
	"github.com/paycomet-notify/paycomet-notify/secret"
)

func TestCheckServerVersion(t *testing.T) {
	for _, tc := range []struct {
		version, min string
		ok           bool
	}{
		{"2.10.0", "", true},
		{"2.10.22", "", true},
		{"2.11.0-RC.2", "", true},
		{"v2.12.1", "", true},
		{"3.0.0", "", true},
		{"2.15.2", "", true},
		{"2.9.25", "", false},
		{"2.9.99", "", false},
		{"2.2.0", "", false},
		{"1.4.1", "", false},
		{"2.10.0-beta.1", "", true},
		{"", "", false},
		{"two.ten", "", false},
		{"2.10.0", "2.10.1", false},
		{"2.10.1", "2.10.1", true},
	} {
		err := CheckServerVersion(tc.version, tc.min)
		if (err == nil) != tc.ok {
			t.Errorf("CheckServerVersion(%q, %q) = %v, want ok=%v", tc.version, tc.min, err, tc.ok)
		}
		if err != nil && (!errors.Is(err, ErrServerTooOld) || !strings.Contains(err.Error(), "nats-server 2.10")) && tc.min == "" {
			t.Errorf("CheckServerVersion(%q) = %v, want ErrServerTooOld naming nats-server 2.10", tc.version, err)
		}
	}
}

// TestConnectNATSRefusesOldServer: a server announcing 2.9 is refused with
// a message naming both versions, and the connection is closed.
func TestConnectNATSRefusesOldServer(t *testing.T) {
	url := testenv.StartFakeNATS(t, "2.9.25")
	var logs bytes.Buffer
	_, err := ConnectNATS(NATSConfig{Name: "test", URL: secret.NewURL(url)}, slog.New(slog.NewJSONHandler(&logs, nil)))
	if err == nil || !errors.Is(err, ErrServerTooOld) || !strings.Contains(err.Error(), "2.9.25") || !strings.Contains(err.Error(), "nats-server 2.10 or later") {
		t.Fatalf("ConnectNATS(2.9.25) = %v, want ErrServerTooOld naming 2.9.25 and 2.10", err)
	}
	if url := testenv.StartFakeNATS(t, "2.10.7"); true {
		nc, err := ConnectNATS(NATSConfig{Name: "test", URL: secret.NewURL(url)}, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatalf("ConnectNATS(2.10.7) = %v", err)
		}
		nc.Close()
	}
}

// TestConnectNATSNeverShowsCredentials: a wrong password, then the right one
// through a disconnect and a reconnect; no log line or error holds either.
func TestConnectNATSNeverShowsCredentials(t *testing.T) {
	const pass, wrong = "natsPW-hunter2", "wrongPW-hunter3"
	ns := testenv.StartNATSWith(t, func(o *natsserver.Options) { o.Username, o.Password = "svc", pass })
	addr, srv := ns.Addr(), ns.Server()
	var logs testenv.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, nil))

	_, err := ConnectNATS(NATSConfig{Name: "test", URL: secret.NewURL("nats://svc:" + wrong + "@" + addr)}, log)
	if err == nil {
		t.Fatal("ConnectNATS with a wrong password succeeded")
	}
	if strings.Contains(err.Error(), wrong) || !strings.Contains(err.Error(), addr) {
		t.Errorf("ConnectNATS error = %q: want the address, not the password", err)
	}
	nc, err := ConnectNATS(NATSConfig{Name: "test", URL: secret.NewURL("nats://svc:" + pass + "@" + addr)}, log)
	if err != nil {
		t.Fatalf("ConnectNATS = %v", err)
	}
	defer nc.Close()
	// Kick the client: it reconnects, and both events are logged.
	cz, _ := srv.Connz(&natsserver.ConnzOptions{})
	for _, c := range cz.Conns {
		srv.DisconnectClientByID(c.Cid)
	}
	testenv.Eventually(t, 10*time.Second, "the reconnect log line", func() bool {
		return strings.Contains(logs.String(), "nats reconnected")
	})
	for _, s := range []string{pass, wrong, "svc:"} {
		if strings.Contains(logs.String(), s) {
			t.Errorf("logs hold %q:\n%s", s, logs.String())
		}
	}
	if !strings.Contains(logs.String(), "[redacted]@"+addr) {
		t.Errorf("reconnect line does not name the server:\n%s", logs.String())
	}
}

func get(t *testing.T, url, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func startAdmin(t *testing.T, cfg AdminConfig) string {
	t.Helper()
	cfg.Addr, cfg.Variable = "127.0.0.1:0", "ADMIN_ADDR"
	if cfg.Gatherer == nil {
		cfg.Gatherer = prometheus.NewRegistry()
	}
	if cfg.Ready == nil {
		cfg.Ready = func(context.Context) Readiness { return NewReadiness(Check{Name: "x", OK: true}) }
	}
	a, err := ListenAdmin(cfg)
	if err != nil {
		t.Fatal(err)
	}
	go a.Serve()
	t.Cleanup(func() { a.Shutdown(context.Background()) })
	return "http://" + a.Addr().String()
}

func TestAdminPprofOnlyWhenAsked(t *testing.T) {
	for _, pprof := range []bool{false, true} {
		base := startAdmin(t, AdminConfig{Pprof: pprof})
		want := http.StatusNotFound
		if pprof {
			want = http.StatusOK
		}
		for _, path := range []string{"/debug/pprof/", "/debug/pprof/heap", "/debug/pprof/cmdline"} {
			if code, _ := get(t, base+path, ""); code != want {
				t.Errorf("pprof=%v: GET %s = %d, want %d", pprof, path, code, want)
			}
		}
	}
}

func TestAdminToken(t *testing.T) {
	const token = "admin-token-0123456789"
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewCounter(prometheus.CounterOpts{Name: "x_total", Help: "x"}))
	base := startAdmin(t, AdminConfig{Token: secret.New(token), Pprof: true, Gatherer: reg})
	for _, tc := range []struct {
		path, token string
		want        int
	}{
		{"/healthz", "", 200},
		{"/readyz", "", 200},
		{"/metrics", "", 401},
		{"/metrics", "wrong-token-0123456789", 401},
		{"/metrics", token + "x", 401},
		{"/metrics", token[:len(token)-1], 401},
		{"/metrics", token, 200},
		{"/debug/pprof/", "", 401},
		{"/debug/pprof/", token, 200},
		{"/no-such-route", "", 401},
		{"/no-such-route", token, 404},
	} {
		if code, body := get(t, base+tc.path, tc.token); code != tc.want {
			t.Errorf("GET %s with token %q = %d %s, want %d", tc.path, tc.token, code, body, tc.want)
		}
	}
	// Other schemes and a bare token are refused.
	for _, h := range []string{token, "Basic " + token, "Bearer", "Bearer  "} {
		req, _ := http.NewRequest(http.MethodGet, base+"/metrics", nil)
		req.Header.Set("Authorization", h)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 401 {
			t.Errorf("Authorization %q = %d, want 401", h, resp.StatusCode)
		}
	}
	// Without a token everything is open.
	open := startAdmin(t, AdminConfig{Gatherer: reg})
	if code, _ := get(t, open+"/metrics", ""); code != 200 {
		t.Errorf("no ADMIN_TOKEN: /metrics = %d, want 200", code)
	}
}

func TestAdminReadiness(t *testing.T) {
	var mu sync.Mutex
	checks := []Check{{Name: "nats", OK: true}, {Name: "dedupe_redis", OK: true, Optional: true}}
	base := startAdmin(t, AdminConfig{Ready: func(context.Context) Readiness {
		mu.Lock()
		defer mu.Unlock()
		return NewReadiness(append([]Check(nil), checks...)...)
	}})
	set := func(i int, ok bool) { mu.Lock(); checks[i].OK = ok; mu.Unlock() }
	for _, tc := range []struct {
		nats, dedupe bool
		code         int
		want         []string
	}{
		{true, true, 200, []string{`"ready":true`, `"status":"ok"`}},
		{true, false, 200, []string{`"ready":true`, `"status":"degraded"`, `"name":"dedupe_redis","ok":false,"optional":true,"state":"degraded"`}},
		{false, true, 503, []string{`"ready":false`, `"status":"unavailable"`, `"name":"nats","ok":false,"state":"down"`}},
	} {
		set(0, tc.nats)
		set(1, tc.dedupe)
		code, body := get(t, base+"/readyz", "")
		if code != tc.code {
			t.Errorf("nats=%v dedupe=%v: /readyz = %d, want %d", tc.nats, tc.dedupe, code, tc.code)
		}
		for _, w := range tc.want {
			if !strings.Contains(body, w) {
				t.Errorf("nats=%v dedupe=%v: /readyz = %s, want %s", tc.nats, tc.dedupe, body, w)
			}
		}
	}
}

// TestRunStopsInOrder: each task is stopped only after the one before it
// has returned, and a failing task ends the run with its error.
func TestRunStopsInOrder(t *testing.T) {
	var mu sync.Mutex
	var order []string
	note := func(s string) { mu.Lock(); order = append(order, s); mu.Unlock() }
	mk := func(name string, fail error) Task {
		stop := make(chan struct{})
		return Task{Name: name,
			Run: func() error {
				if fail != nil {
					return fail
				}
				<-stop
				time.Sleep(10 * time.Millisecond) // finishing in-flight work takes a while
				note(name + " returned")
				return http.ErrServerClosed
			},
			Stop: func(context.Context) error { note("stop " + name); close(stop); return nil }}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Run(ctx, slog.New(slog.DiscardHandler), 5*time.Second, mk("public", nil), mk("admin", nil)); err != nil {
		t.Errorf("Run = %v, want nil", err)
	}
	want := "stop public,public returned,stop admin,admin returned"
	if got := strings.Join(order, ","); got != want {
		t.Errorf("order = %s, want %s", got, want)
	}

	boom := errors.New("boom")
	failing := mk("consumer", boom)
	failing.Stop = func(context.Context) error { return nil }
	err := Run(context.Background(), slog.New(slog.DiscardHandler), 5*time.Second, failing, mk("admin", nil))
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "consumer") {
		t.Errorf("Run with a failing task = %v, want it, naming the task", err)
	}
}

func TestStreamGauges(t *testing.T) {
	n := testenv.StartNATS(t)
	js, err := jetstream.New(n.Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "EV", Subjects: []string{"ev.>"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "EV_REJECTED", Subjects: []string{"rej"}, MaxBytes: 1 << 20}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if _, err := js.Publish(ctx, "ev.x", []byte("hello")); err != nil {
			t.Fatal(err)
		}
	}
	reg := prometheus.NewRegistry()
	g := NewStreamGauges(reg)
	task := g.Task(js, 20*time.Millisecond, slog.New(slog.DiscardHandler), "EV", "EV_REJECTED", "MISSING")
	done := make(chan error, 1)
	go func() { done <- task.Run() }()
	gauge := func(name, stream string) float64 {
		mfs, _ := reg.Gather()
		for _, mf := range mfs {
			for _, m := range mf.GetMetric() {
				if mf.GetName() == name && m.GetLabel()[0].GetValue() == stream {
					return m.GetGauge().GetValue()
				}
			}
		}
		return -2
	}
	testenv.Eventually(t, 5*time.Second, "3 messages in the gauge", func() bool { return gauge(MetricStreamMessages, "EV") == 3 })
	if _, err := js.Publish(ctx, "rej", []byte("x")); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 5*time.Second, "the periodic refresh", func() bool { return gauge(MetricStreamMessages, "EV_REJECTED") == 1 })
	if b := gauge(MetricStreamBytes, "EV"); b <= 0 {
		t.Errorf("%s{EV} = %v, want > 0", MetricStreamBytes, b)
	}
	if m := gauge(MetricStreamMaxBytes, "EV"); m != -1 {
		t.Errorf("%s{EV} = %v, want -1 (unbounded)", MetricStreamMaxBytes, m)
	}
	if m := gauge(MetricStreamMaxBytes, "EV_REJECTED"); m != 1<<20 {
		t.Errorf("%s{EV_REJECTED} = %v, want %d", MetricStreamMaxBytes, m, 1<<20)
	}
	_ = task.Stop(context.Background())
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("gauge task = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("gauge task did not stop")
	}
}
