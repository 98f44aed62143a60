package main

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/paycomet-notify/paycomet-notify/internal/testenv"
)

// TestRefusesOldNATSServer: serve, the refresher and send's watch refuse a
// nats-server older than 2.10 at start-up, saying so, instead of failing
// later with nats.go's message (the refresher on 2.9 did).
func TestRefusesOldNATSServer(t *testing.T) {
	url := testenv.StartFakeNATS(t, "2.9.25")
	for _, cmd := range []string{"serve", "refresher"} {
		code, _, stderr := runCmd(t, map[string]string{
			"PAYCOMET_MERCHANT_CODE": "MC000001", "PAYCOMET_TERMINALS": "11:pw", "NATS_URL": url,
			"LISTEN_ADDR": freeAddr(t), "ADMIN_ADDR": freeAddr(t), "REFRESHER_ADMIN_ADDR": freeAddr(t),
		}, cmd)
		if code != 1 || !strings.Contains(stderr, "2.9.25") || !strings.Contains(stderr, "nats-server 2.10 or later") {
			t.Errorf("%s on nats-server 2.9.25 = %d, stderr %q; want 1 naming 2.9.25 and 2.10", cmd, code, stderr)
		}
	}
}

// TestReadyzLeavesStreamsAlone: /readyz reads the streams and never changes
// them. It used to call EnsureStream, which put back a duplicate window an
// operator had edited.
func TestReadyzLeavesStreamsAlone(t *testing.T) {
	n := testenv.StartNATS(t)
	env := map[string]string{"PAYCOMET_MERCHANT_CODE": "MC000001", "PAYCOMET_TERMINALS": "11:pw", "NATS_URL": n.URL()}
	s := startServe(t, env)
	js, err := jetstream.New(n.Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	edit := func(name string, f func(*jetstream.StreamConfig)) jetstream.StreamConfig {
		st, err := js.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		cfg := st.CachedInfo().Config
		f(&cfg)
		if _, err := js.UpdateStream(ctx, cfg); err != nil {
			t.Fatalf("update %s: %v", name, err)
		}
		return cfg
	}
	edit("PAYCOMET", func(c *jetstream.StreamConfig) { c.Duplicates = 90 * time.Second })
	rejected := edit("PAYCOMET_REJECTED", func(c *jetstream.StreamConfig) { c.MaxBytes = 12345678 })
	for i := 0; i < 3; i++ {
		if code, body := s.get(t, "/readyz"); code != 200 {
			t.Fatalf("/readyz = %d %s", code, body)
		}
	}
	// A subject set the receiver would lose events with: unready, and still
	// left as the operator made it.
	// (the edit keeps the 90s window: it starts from the stream's config)
	events := edit("PAYCOMET", func(c *jetstream.StreamConfig) { c.Subjects = []string{"paycomet.*.>"} })
	if code, body := s.get(t, "/readyz"); code != 503 || !strings.Contains(body, "PAYCOMET") {
		t.Errorf("/readyz with the dlq subject gone = %d %s, want 503 naming the stream", code, body)
	}
	for _, want := range []jetstream.StreamConfig{events, rejected} {
		st, err := js.Stream(ctx, want.Name)
		if err != nil {
			t.Fatal(err)
		}
		got := st.CachedInfo().Config
		if got.Duplicates != want.Duplicates || got.MaxBytes != want.MaxBytes || !slices.Equal(got.Subjects, want.Subjects) {
			t.Errorf("stream %s after /readyz: duplicates %v, max bytes %d, subjects %q; want %v, %d, %q (as edited)",
				want.Name, got.Duplicates, got.MaxBytes, got.Subjects, want.Duplicates, want.MaxBytes, want.Subjects)
		}
	}
}

// TestStreamGaugesOnMetrics: both streams' storage is on /metrics.
func TestStreamGaugesOnMetrics(t *testing.T) {
	n := testenv.StartNATS(t)
	env := map[string]string{"PAYCOMET_MERCHANT_CODE": "MC000001", "PAYCOMET_TERMINALS": "11:pw", "NATS_URL": n.URL(),
		"REJECTED_MAX_BYTES": "2097152"}
	s := startServe(t, env)
	// The gauge loop starts beside the listeners: wait for its first pass.
	var metrics string
	testenv.Eventually(t, 10*time.Second, "the stream gauges on /metrics", func() bool {
		_, metrics = s.get(t, "/metrics")
		return strings.Contains(metrics, `paycomet_notify_stream_bytes{stream="PAYCOMET_REJECTED"}`)
	})
	for _, want := range []string{
		`paycomet_notify_stream_max_bytes{stream="PAYCOMET"} -1`,
		`paycomet_notify_stream_max_bytes{stream="PAYCOMET_REJECTED"} 2.097152e+06`,
		`paycomet_notify_stream_messages{stream="PAYCOMET"} 0`,
		`paycomet_notify_stream_bytes{stream="PAYCOMET_REJECTED"} 0`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
