// Package tracingtest is tracing for tests: an SDK tracer provider that
// records every ended span in memory, and helpers to read the span tree.
package tracingtest

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/paycomet-notify/paycomet-notify/tracing"
)

// Recorder holds the spans of one test's tracer provider.
type Recorder struct {
	t   testing.TB
	exp *tracetest.InMemoryExporter
}

// New is tracing on, recording every span (always sampled) synchronously
// as it ends. The provider is the test's own, never the global one, so
// tests run in parallel.
func New(t testing.TB) (*tracing.Tracing, *Recorder) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp), sdktrace.WithSampler(sdktrace.AlwaysSample()))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return tracing.New(tp), &Recorder{t: t, exp: exp}
}

// Spans are the spans ended so far.
func (r *Recorder) Spans() tracetest.SpanStubs { return r.exp.GetSpans() }

// Wait polls until a span named name has ended (spans of another goroutine
// end after the answer), at most 10 s, and returns it.
func (r *Recorder) Wait(name string) tracetest.SpanStub {
	r.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		for _, s := range r.Spans() {
			if s.Name == name {
				return s
			}
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("no span %q ended within 10s; spans: %s", name, Names(r.Spans()))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Children are the ended spans whose parent is parent, in end order.
func (r *Recorder) Children(parent trace.SpanContext) tracetest.SpanStubs {
	var out tracetest.SpanStubs
	for _, s := range r.Spans() {
		if s.Parent.SpanID() == parent.SpanID() && s.Parent.TraceID() == parent.TraceID() {
			out = append(out, s)
		}
	}
	return out
}

// Names lists spans' names.
func Names(spans tracetest.SpanStubs) string {
	var n []string
	for _, s := range spans {
		n = append(n, s.Name)
	}
	return strings.Join(n, ", ")
}

// Attr is span s's attribute k ("" when absent), as text.
func Attr(s tracetest.SpanStub, k attribute.Key) string {
	for _, kv := range s.Attributes {
		if kv.Key == k {
			return kv.Value.String()
		}
	}
	return ""
}

// TraceParent is the W3C traceparent of span s.
func TraceParent(s tracetest.SpanStub) string {
	return "00-" + s.SpanContext.TraceID().String() + "-" + s.SpanContext.SpanID().String() + "-01"
}

// NoValue fails the test when any attribute, event or status of any span
// recorded contains one of secrets.
func (r *Recorder) NoValue(secrets ...string) {
	r.t.Helper()
	for _, s := range r.Spans() {
		texts := []string{s.Name, s.Status.Description}
		for _, kv := range s.Attributes {
			texts = append(texts, kv.Value.String())
		}
		for _, e := range s.Events {
			texts = append(texts, e.Name)
			for _, kv := range e.Attributes {
				texts = append(texts, kv.Value.String())
			}
		}
		for _, txt := range texts {
			for _, sec := range secrets {
				if sec != "" && strings.Contains(txt, sec) {
					r.t.Errorf("span %s carries %q", s.Name, sec)
				}
			}
		}
	}
}
