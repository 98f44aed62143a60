package tracing_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/trace"

	"github.com/paycomet-notify/paycomet-notify/tracing"
	"github.com/paycomet-notify/paycomet-notify/tracing/tracingtest"
)

const incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

// TestOffCostsNothing: what the hot path calls with tracing off allocates
// nothing and carries nothing, even given an incoming traceparent.
func TestOffCostsNothing(t *testing.T) {
	off := tracing.Off()
	ctx := context.Background()
	hh := http.Header{"Traceparent": {incoming}}
	nh := nats.Header{"Nats-Msg-Id": {"x"}}
	allocs := testing.AllocsPerRun(100, func() {
		c := off.ExtractHTTP(ctx, hh)
		c = off.ExtractNATS(c, nh)
		tracing.Inject(c, nh)
		if tracing.TraceParent(c) != "" || off.On() {
			t.Fatal("tracing off carried a trace")
		}
	})
	if allocs != 0 {
		t.Errorf("tracing off allocates %v times per request, want 0", allocs)
	}
	if len(nh) != 1 {
		t.Errorf("tracing off wrote headers: %v", nh)
	}
}

// TestPropagation: a traceparent read from HTTP headers is written to NATS
// headers lower-case, read back from them in either case, and TraceParent
// formats what the propagator writes.
func TestPropagation(t *testing.T) {
	tr, _ := tracingtest.New(t)
	ctx := tr.ExtractHTTP(context.Background(), http.Header{"Traceparent": {incoming}, "Tracestate": {"k=v"}})
	if got := tracing.TraceParent(ctx); got != incoming {
		t.Fatalf("TraceParent(extracted) = %q, want %q", got, incoming)
	}
	h := nats.Header{}
	tracing.Inject(ctx, h)
	if h.Get("traceparent") != incoming || h.Get("tracestate") != "k=v" {
		t.Fatalf("injected headers %v", h)
	}
	for _, hdr := range []nats.Header{h, {"Traceparent": {incoming}}} {
		sc := trace.SpanContextFromContext(tr.ExtractNATS(context.Background(), hdr))
		if sc.TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" || !sc.IsRemote() {
			t.Errorf("ExtractNATS(%v) = %v", hdr, sc)
		}
	}
	sc := trace.SpanContextFromContext(tr.ExtractTraceParent(context.Background(), incoming))
	if sc.SpanID().String() != "00f067aa0ba902b7" {
		t.Errorf("ExtractTraceParent = %v", sc)
	}
	// An unsampled parent keeps its flag.
	ctx = tr.ExtractHTTP(context.Background(), http.Header{"Traceparent": {incoming[:len(incoming)-2] + "00"}})
	if got := tracing.TraceParent(ctx); got[len(got)-2:] != "00" {
		t.Errorf("TraceParent of an unsampled context = %q", got)
	}
}
