// Package opstest is the test rig of the operating tools: a real in-process
// NATS server with both streams, a JetStream KV dedupe store, and the
// receiver's notification path built with whatever terminal password a test
// wants, so a test can tell the wrong-password story end to end (401s
// quarantined, configuration fixed, replay).
package opstest

import (
	"context"
	"io"
	"log/slog"
	"math"
	"net/netip"
	"net/url"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/paycomet-notify/paycomet-notify/dedupe"
	"github.com/paycomet-notify/paycomet-notify/demo"
	"github.com/paycomet-notify/paycomet-notify/events"
	"github.com/paycomet-notify/paycomet-notify/internal/testenv"
	"github.com/paycomet-notify/paycomet-notify/notify"
	"github.com/paycomet-notify/paycomet-notify/ops"
	"github.com/paycomet-notify/paycomet-notify/publisher"
	"github.com/paycomet-notify/paycomet-notify/secret"
	"github.com/paycomet-notify/paycomet-notify/tracing"
)

// Source is the address every rig notification comes from.
var Source = netip.MustParseAddr("192.0.2.10")

// Rig is one test's streams and dedupe store.
type Rig struct {
	T       testing.TB
	NATS    *testenv.NATS
	NC      *nats.Conn
	JS      jetstream.JetStream
	Config  publisher.StreamsConfig
	Streams ops.Streams
	Store   *dedupe.KV
	Reader  *ops.Reader
	// DedupeTTL is the paths' DEDUPE_TTL (a notification signed earlier is stale).
	DedupeTTL time.Duration
}

// New starts NATS, creates both streams (prefix "paycomet", stream
// "PAYCOMET") and the dedupe bucket.
func New(t testing.TB) *Rig {
	t.Helper()
	n := testenv.StartNATS(t)
	nc := n.Connect(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	cfg := publisher.StreamsConfig{Name: "PAYCOMET", Prefix: "paycomet", Replicas: 1, DuplicateWindow: 10 * time.Minute,
		RejectedMaxBytes: 64 << 20, RejectedMaxAge: 720 * time.Hour}
	if _, err := publisher.EnsureStreams(ctx, js, cfg); err != nil {
		t.Fatal(err)
	}
	r := &Rig{T: t, NATS: n, NC: nc, JS: js, Config: cfg, Streams: ops.StreamsFor(cfg), DedupeTTL: 168 * time.Hour}
	r.Store, err = dedupe.NewJetStreamKV(ctx, js, "PAYCOMET_DEDUPE", 1, dedupe.Options{ClaimTTL: 15 * time.Second, SeenTTL: r.DedupeTTL})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Store.Close() })
	r.Reader = ops.NewReader(js, r.Streams)
	return r
}

// Path is the receiver's notification path with the demo terminal's
// password set to password. With quarantine it quarantines rejections
// like `serve`; without, rejections are published nowhere (a replay's path).
func (r *Rig) Path(password string, quarantine bool) *notify.Path {
	return r.TracedPath(password, quarantine, nil)
}

// TracedPath is Path with tracing tr (nil: off) in the path and its
// publishers.
func (r *Rig) TracedPath(password string, quarantine bool, tr *tracing.Tracing) *notify.Path {
	var q notify.Publisher = ops.Discard{}
	if quarantine {
		q = publisher.New(r.JS, r.Config.RejectedName()).Traced(tr)
	}
	v := events.NewVerifier(demo.MerchantCode, map[string]secret.Value{demo.Terminal: secret.New(password)})
	return notify.New(notify.Config{
		Prefix: r.Config.Prefix, MaxBodyBytes: 65536, DedupeTTL: r.DedupeTTL,
		RejectedRatePerSource: math.Inf(1), Terminals: []string{demo.Terminal}, Tracing: tr,
	}, v, r.Store, publisher.New(r.JS, r.Config.Name).Traced(tr), q, notify.NewMetrics(prometheus.NewRegistry()),
		slog.New(slog.NewTextHandler(io.Discard, nil)))
}

// Request is a form notification as PAYCOMET POSTs it from Source.
func Request(v url.Values) notify.Request {
	return notify.Request{Body: []byte(v.Encode()), ContentType: "application/x-www-form-urlencoded", Source: Source}
}

// Sample is a signed demo notification (demo.Sample) with order and amount.
func Sample(order string, amount int64) url.Values {
	return demo.Sample(demo.SampleOptions{Type: 1, Order: order, Amount: amount, When: time.Now().Add(-time.Minute)})
}

// Send runs v through p and fails the test unless the outcome is want.
func (r *Rig) Send(p *notify.Path, v url.Values, want notify.Kind) notify.Outcome {
	r.T.Helper()
	o := p.Process(context.Background(), Request(v))
	if o.Kind != want {
		r.T.Fatalf("Process(%s) = %v %s %q, want %v", v.Get("Order"), o.Kind, o.Reason, o.Detail, want)
	}
	return o
}

// LastSeq is the stream's last sequence (0 when empty).
func (r *Rig) LastSeq(stream string) uint64 {
	r.T.Helper()
	in := r.Reader.Info(context.Background(), stream)
	if in.Err != nil {
		r.T.Fatal(in.Err)
	}
	return in.LastSeq
}

// EventsFor counts the events of the event stream whose CloudEvent subject
// (the Order) is order.
func (r *Rig) EventsFor(order string) int {
	r.T.Helper()
	p, err := r.Reader.Events(context.Background(), ops.EventFilter{Order: order}, 0, ops.MaxLimit)
	if err != nil {
		r.T.Fatal(err)
	}
	n := 0
	for _, m := range p.Messages {
		if e, err := m.Event(); err == nil && e.Subject == order {
			n++
		}
	}
	return n
}
