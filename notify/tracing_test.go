package notify_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/paycomet-notify/paycomet-notify/dedupe"
	"github.com/paycomet-notify/paycomet-notify/demo"
	"github.com/paycomet-notify/paycomet-notify/events"
	"github.com/paycomet-notify/paycomet-notify/internal/testenv"
	"github.com/paycomet-notify/paycomet-notify/notify"
	"github.com/paycomet-notify/paycomet-notify/publisher"
	"github.com/paycomet-notify/paycomet-notify/secret"
	"github.com/paycomet-notify/paycomet-notify/tracing/tracingtest"
)

// tracedPath is a traced notification path over real NATS and the
// JetStream KV store, for the callers other than the handler.
func tracedPath(t *testing.T) (*notify.Path, jetstream.Stream, *tracingtest.Recorder, context.Context) {
	t.Helper()
	ctx := context.Background()
	js, err := jetstream.New(testenv.StartNATS(t).Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	sc := publisher.StreamsConfig{Name: "PAYCOMET", Prefix: "paycomet", Replicas: 1, DuplicateWindow: 10 * time.Minute,
		RejectedMaxBytes: 1 << 20, RejectedMaxAge: time.Hour}
	streams, err := publisher.EnsureStreams(ctx, js, sc)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := dedupe.NewJetStreamKV(ctx, js, "PAYCOMET_DEDUPE", 1, dedupe.Options{ClaimTTL: 10 * time.Second, SeenTTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { kv.Close() })
	tr, rec := tracingtest.New(t)
	v := events.NewVerifier(tkMerchant, map[string]secret.Value{tkTerminal: secret.New(tkPassword)})
	p := notify.New(notify.Config{Prefix: "paycomet", Terminals: []string{tkTerminal}, Tracing: tr}, v, kv,
		publisher.New(js, sc.Name).Traced(tr), publisher.New(js, sc.RejectedName()).Traced(tr),
		notify.NewMetrics(prometheus.NewRegistry()), slog.New(slog.NewJSONHandler(io.Discard, nil)))
	return p, streams.Events, rec, ctx
}

func lastTraceParent(t *testing.T, s jetstream.Stream) (header, envelope string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	m, err := s.GetLastMsgForSubject(ctx, "paycomet.>")
	if err != nil {
		t.Fatal(err)
	}
	var ev struct {
		TraceParent string `json:"traceparent"`
	}
	if err := json.Unmarshal(m.Data, &ev); err != nil {
		t.Fatal(err)
	}
	return m.Header.Get("traceparent"), ev.TraceParent
}

// TestProcessUnderCallersSpan: a caller that traces (replay, reconcile)
// passes a ctx with its span; the notification span is its child, in its
// trace, and Process leaves the caller's span alone.
func TestProcessUnderCallersSpan(t *testing.T) {
	p, stream, rec, ctx := tracedPath(t)
	tr, _ := tracingtest.New(t) // the caller's own provider
	ctx, caller := tr.Tracer("caller").Start(ctx, "replay")
	body := demo.Sample(demo.SampleOptions{Type: 1, MerchantCode: tkMerchant, Terminal: tkTerminal, Password: tkPassword,
		Order: "CTX1", Amount: 100, Currency: "EUR", Response: "OK", When: time.Now()}).Encode()
	o := p.Process(ctx, notify.Request{Body: []byte(body), ContentType: "application/x-www-form-urlencoded", Source: netip.MustParseAddr("127.0.0.1")})
	if o.Kind != notify.Accepted {
		t.Fatalf("outcome %+v", o)
	}
	if !caller.IsRecording() {
		t.Error("Process ended the caller's span")
	}
	caller.End()
	root := rec.Wait(notify.SpanNotification)
	if root.Parent.SpanID() != caller.SpanContext().SpanID() || root.SpanContext.TraceID() != caller.SpanContext().TraceID() {
		t.Errorf("notification span parent %s in trace %s, want the caller's span %s in %s", root.Parent.SpanID(),
			root.SpanContext.TraceID(), caller.SpanContext().SpanID(), caller.SpanContext().TraceID())
	}
	if _, env := lastTraceParent(t, stream); env != tracingtest.TraceParent(root) {
		t.Errorf("event traceparent %q, want %q", env, tracingtest.TraceParent(root))
	}
}

// TestPublishReconciledTraced: the reconciler's copy is a span of its own
// and its event carries the trace.
func TestPublishReconciledTraced(t *testing.T) {
	p, stream, rec, ctx := tracedPath(t)
	ev, err := events.Reconciled(events.ReconciledOperation{Terminal: tkTerminal, TransactionType: 1, Order: "REC1", Response: "OK",
		Amount: 100, Currency: "EUR", Timestamp: time.Now().Add(-time.Hour).Format("20060102150405")}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if o := p.PublishReconciled(ctx, ev, "match-REC1"); o.Kind != notify.Accepted {
		t.Fatalf("outcome %+v", o)
	}
	span := rec.Wait(notify.SpanReconciled)
	if tracingtest.Attr(span, notify.AttrOutcome) != "accepted" || tracingtest.Attr(span, notify.AttrEventID) != ev.ID {
		t.Errorf("reconciled span attributes %v", span.Attributes)
	}
	hdr, env := lastTraceParent(t, stream)
	if env != tracingtest.TraceParent(span) || hdr == "" {
		t.Errorf("reconciled event traceparent %q (header %q), want %q", env, hdr, tracingtest.TraceParent(span))
	}
}
