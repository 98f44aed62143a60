package refresher_test

import (
	"strings"
	"testing"

	"go.opentelemetry.io/otel/trace"

	"github.com/paycomet-notify/paycomet-notify/notify"
	"github.com/paycomet-notify/paycomet-notify/refresher"
	"github.com/paycomet-notify/paycomet-notify/tracing/tracingtest"
)

// TestRefresherContinuesTrace: the trace of a card-expiry notice goes from
// the receiver (its own tracer provider) through the NATS headers into the
// refresher's consumer span, its info_user call and its output, whose
// message header and event traceparent stay in the same trace.
func TestRefresherContinuesTrace(t *testing.T) {
	recvTr, recv := tracingtest.New(t)
	refTr, ref := tracingtest.New(t)
	r := newRig(t, withTracing(recvTr, refTr))
	r.card(70001, "TOKENabc123XYZ", visa, "1226")
	r.register("REG70001", 70001, "TOKENabc123XYZ")
	r.expiry(70001, 1)
	out := r.waitOutputs(1)[0]
	r.settle()

	// The notice's notification span at the receiver, and its publish.
	var notice, publish trace.SpanContext
	for _, s := range recv.Spans() {
		if s.Name == notify.SpanNotification && tracingtest.Attr(s, notify.AttrTransactionType) == "108" {
			notice = s.SpanContext
		}
	}
	for _, s := range recv.Children(notice) {
		if strings.HasPrefix(s.Name, "publish ") {
			publish = s.SpanContext
		}
	}
	if !notice.IsValid() || !publish.IsValid() {
		t.Fatalf("receiver spans: %s", tracingtest.Names(recv.Spans()))
	}
	// The refresher's span for that message: a consumer span, child of the
	// receiver's publish span (remote), in its trace.
	var consume trace.SpanContext
	for _, s := range ref.Spans() {
		if s.Name == refresher.SpanConsume && s.Parent.SpanID() == publish.SpanID() {
			consume = s.SpanContext
			if s.SpanKind != trace.SpanKindConsumer || !s.Parent.IsRemote() || s.SpanContext.TraceID() != notice.TraceID() {
				t.Errorf("consume span: kind %s, remote parent %v, trace %s (want %s)", s.SpanKind, s.Parent.IsRemote(),
					s.SpanContext.TraceID(), notice.TraceID())
			}
		}
	}
	if !consume.IsValid() {
		t.Fatalf("no refresher span continues the notice's publish span; refresher spans: %s", tracingtest.Names(ref.Spans()))
	}
	kids := ref.Children(consume)
	if got := tracingtest.Names(kids); got != "bankstore.info_user, publish PAYCOMET" {
		t.Fatalf("children of the consume span: %s, want bankstore.info_user, publish PAYCOMET", got)
	}
	if kids[0].SpanKind != trace.SpanKindClient || tracingtest.Attr(kids[0], "paycomet.terminal") != terminal {
		t.Errorf("info_user span: kind %s, attributes %v", kids[0].SpanKind, kids[0].Attributes)
	}
	if out.TraceParent != tracingtest.TraceParent(kids[1]) {
		t.Errorf("output header traceparent %q, want its publish span's %q", out.TraceParent, tracingtest.TraceParent(kids[1]))
	}
	if want := "00-" + notice.TraceID().String() + "-" + consume.SpanID().String() + "-01"; out.Event.TraceParent != want {
		t.Errorf("output event traceparent %q, want the consume span's %q", out.Event.TraceParent, want)
	}
	// The 107's confirmation call is traced too (its own trace).
	n := 0
	for _, s := range ref.Spans() {
		if s.Name == "bankstore.info_user" {
			n++
		}
	}
	if n != 2 {
		t.Errorf("%d info_user spans, want 2 (confirmation, notice)", n)
	}
	ref.NoValue("TOKENabc123XYZ", password)
	recv.NoValue("TOKENabc123XYZ", password)
}
