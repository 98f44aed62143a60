package tracing

import (
	"context"
	"net/http"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Header names of W3C trace context, as written on NATS messages.
const (
	TraceParentHeader = "traceparent"
	TraceStateHeader  = "tracestate"
)

// natsCarrier is a NATS message's headers as a propagation carrier. NATS
// headers are case-sensitive: written lower-case as W3C names them, read in
// either case.
type natsCarrier nats.Header

func (c natsCarrier) Get(key string) string {
	if v := c[key]; len(v) > 0 {
		return v[0]
	}
	if v := c[http.CanonicalHeaderKey(key)]; len(v) > 0 {
		return v[0]
	}
	return ""
}

func (c natsCarrier) Set(key, value string) { c[key] = []string{value} }

func (c natsCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}

// Inject writes the trace context of ctx's span into h (traceparent, and
// tracestate when there is one). Without a valid span in ctx (tracing off)
// it writes nothing and allocates nothing.
func Inject(ctx context.Context, h nats.Header) {
	if h == nil || !trace.SpanContextFromContext(ctx).IsValid() {
		return
	}
	propagator.Inject(ctx, natsCarrier(h))
}

// ExtractNATS returns ctx with the remote span context of a consumed
// message's headers; ctx unchanged when tracing is off or the headers carry
// none.
func (t *Tracing) ExtractNATS(ctx context.Context, h nats.Header) context.Context {
	if !t.On() || len(h) == 0 {
		return ctx
	}
	return propagator.Extract(ctx, natsCarrier(h))
}

// ExtractHTTP returns ctx with the remote span context of an incoming
// request's traceparent/tracestate headers; ctx unchanged when tracing is
// off or the request carries none.
func (t *Tracing) ExtractHTTP(ctx context.Context, h http.Header) context.Context {
	if !t.On() || len(h[http.CanonicalHeaderKey(TraceParentHeader)]) == 0 {
		return ctx
	}
	return propagator.Extract(ctx, propagation.HeaderCarrier(h))
}

// ExtractTraceParent returns ctx with the remote span context of a W3C
// traceparent string (an event's traceparent attribute); ctx unchanged
// when tracing is off or the string is not a valid traceparent.
func (t *Tracing) ExtractTraceParent(ctx context.Context, traceparent string) context.Context {
	if !t.On() || traceparent == "" {
		return ctx
	}
	return propagator.Extract(ctx, propagation.MapCarrier{TraceParentHeader: traceparent})
}

// TraceParent is ctx's span context as a W3C traceparent
// ("00-<trace id>-<span id>-<flags>"), the value of an event's traceparent
// attribute; "" without a valid span (tracing off).
func TraceParent(ctx context.Context) string {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return ""
	}
	tid, sid := sc.TraceID(), sc.SpanID()
	const hexdigits = "0123456789abcdef"
	b := make([]byte, 0, 55)
	b = append(b, "00-"...)
	for _, x := range tid {
		b = append(b, hexdigits[x>>4], hexdigits[x&0xf])
	}
	b = append(b, '-')
	for _, x := range sid {
		b = append(b, hexdigits[x>>4], hexdigits[x&0xf])
	}
	b = append(b, '-')
	f := byte(sc.TraceFlags() & trace.FlagsSampled)
	b = append(b, hexdigits[f>>4], hexdigits[f&0xf])
	return string(b)
}
