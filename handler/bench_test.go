package handler

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/paycomet-notify/paycomet-notify/dedupe"
	"github.com/paycomet-notify/paycomet-notify/events"
	"github.com/paycomet-notify/paycomet-notify/internal/testenv"
	"github.com/paycomet-notify/paycomet-notify/notify"
	"github.com/paycomet-notify/paycomet-notify/publisher"
	"github.com/paycomet-notify/paycomet-notify/secret"
)

// benchReceiver is the gin handler over a real NATS server and a real Redis
// (or the JetStream KV store), driven through ServeHTTP without a socket in
// front: what the benchmark measures is the handler's path, not net/http.
func benchReceiver(b *testing.B, useRedis bool) http.Handler {
	b.Helper()
	n := testenv.StartNATS(b)
	nc := n.Connect(b)
	js, err := jetstream.New(nc)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	sc := publisher.StreamsConfig{Name: "PAYCOMET", Prefix: prefix, Replicas: 1, DuplicateWindow: 10 * time.Minute,
		RejectedMaxBytes: 64 << 20, RejectedMaxAge: time.Hour}
	if _, err := publisher.EnsureStreams(ctx, js, sc); err != nil {
		b.Fatal(err)
	}
	opts := dedupe.Options{ClaimTTL: 10 * time.Second, SeenTTL: time.Hour}
	var store notify.Deduper
	if useRedis {
		r := testenv.StartRedis(b)
		rdb, err := dedupe.NewRedisClient(r.URL())
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { rdb.Close() })
		s := dedupe.NewRedis(rdb, opts)
		b.Cleanup(func() { s.Close() })
		store = s
	} else {
		kv, err := dedupe.NewJetStreamKV(ctx, js, "PAYCOMET_DEDUPE", 1, opts)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { kv.Close() })
		store = kv
	}
	v := events.NewVerifier(merchant, map[string]secret.Value{terminal: secret.New(password), terminal2: secret.New(password2)})
	m := notify.NewMetrics(prometheus.NewRegistry())
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	p := notify.New(notify.Config{Prefix: prefix, MaxBodyBytes: 65536, Terminals: []string{terminal, terminal2}}, v, store,
		publisher.New(js, sc.Name), publisher.New(js, sc.RejectedName()), m, log)
	h, err := New(Config{MaxBodyBytes: 65536}, p, m, log)
	if err != nil {
		b.Fatal(err)
	}
	return h
}

// benchBodies are n distinct signed notifications, made before the timer
// starts so that signing them is not measured.
func benchBodies(n int) []string {
	out := make([]string, n)
	for i := range out {
		typ := 1
		if i%5 == 4 {
			typ = 107
		}
		out[i] = sample(typ, "B"+strconv.Itoa(i)+"x"+strconv.FormatInt(time.Now().UnixNano()%1e9, 36)).Encode()
	}
	return out
}

func benchPost(b *testing.B, h http.Handler, body string) {
	req := httptest.NewRequest(http.MethodPost, Path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code != http.StatusOK {
		b.Errorf("POST = %d %s", w.Code, w.Body.String())
	}
}

// benchNotify runs the full path — read, authenticate, parse, encode, claim,
// publish and wait for the JetStream ack, mark seen — for distinct
// notifications from 16 goroutines per CPU, about the 32 connections the
// Performance section loads serve with on 2 cores.
func benchNotify(b *testing.B, useRedis bool) {
	h := benchReceiver(b, useRedis)
	bodies := benchBodies(b.N)
	var next atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			benchPost(b, h, bodies[next.Add(1)-1])
		}
	})
}

// BenchmarkNotifyRedis is the production shape: Redis dedupe.
func BenchmarkNotifyRedis(b *testing.B) { benchNotify(b, true) }

// BenchmarkNotifyJetStreamKV is the embedded default: JetStream KV dedupe.
func BenchmarkNotifyJetStreamKV(b *testing.B) { benchNotify(b, false) }

// BenchmarkNotifyDuplicateRedis is a copy of a published notification: one
// claim answers Seen and nothing is published.
func BenchmarkNotifyDuplicateRedis(b *testing.B) {
	h := benchReceiver(b, true)
	bodies := benchBodies(64)
	for _, body := range bodies {
		benchPost(b, h, body)
	}
	var next atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			benchPost(b, h, bodies[(next.Add(1)-1)%int64(len(bodies))])
		}
	})
}
