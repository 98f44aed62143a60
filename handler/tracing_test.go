package handler

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/paycomet-notify/paycomet-notify/notify"
	"github.com/paycomet-notify/paycomet-notify/tracing/tracingtest"
)

// incoming is the W3C specification's example traceparent.
const incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

func (r *rig) postTraced(body, traceparent string) answer {
	r.t.Helper()
	req, err := http.NewRequest(http.MethodPost, r.url, strings.NewReader(body))
	if err != nil {
		r.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if traceparent != "" {
		req.Header.Set("traceparent", traceparent)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	resp.Body.Close()
	return answer{status: resp.StatusCode}
}

// TestTracingSpanTree: a notification through the real handler, notify path
// and publisher (real NATS, real Redis) is one span with its steps as
// children, and the trace goes on in the message: the traceparent header is
// the publish span's, the event's traceparent the notification span's.
func TestTracingSpanTree(t *testing.T) {
	tr, rec := tracingtest.New(t)
	r := newRig(t, true, withTracing(tr))
	form := sample(1, "TRACE1")
	if got := r.send(form); got.status != 200 {
		t.Fatalf("status %d", got.status)
	}
	root := rec.Wait(notify.SpanNotification)
	if root.SpanKind != trace.SpanKindServer || root.Parent.IsValid() {
		t.Errorf("notification span: kind %s, parent %v; want a server root", root.SpanKind, root.Parent)
	}
	evs := r.events()
	if len(evs) != 1 {
		t.Fatalf("%d events", len(evs))
	}
	ev := evs[0]
	for k, want := range map[string]string{
		"paycomet.transaction_type": "1",
		"paycomet.terminal":         terminal,
		"paycomet.outcome":          "accepted",
		"cloudevents.event_id":      ev.Event.ID,
	} {
		if got := tracingtest.Attr(root, attribute.Key(k)); got != want {
			t.Errorf("notification span %s = %q, want %q", k, got, want)
		}
	}
	kids := rec.Children(root.SpanContext)
	want := []string{notify.SpanAuthenticate, notify.SpanClaim, "publish PAYCOMET", notify.SpanMarkSeen}
	if got := tracingtest.Names(kids); got != strings.Join(want, ", ") {
		t.Fatalf("children of the notification span: %s, want %s", got, strings.Join(want, ", "))
	}
	pub, mark := kids[2], kids[3]
	if pub.SpanKind != trace.SpanKindProducer || tracingtest.Attr(pub, "paycomet.jetstream.sequence") != "1" ||
		tracingtest.Attr(pub, "messaging.destination.name") != ev.Subject {
		t.Errorf("publish span: kind %s, attributes %v", pub.SpanKind, pub.Attributes)
	}
	if pub.EndTime.After(mark.StartTime) {
		t.Errorf("publish span ends at %s, after the seen mark began (%s): it must end at the ack", pub.EndTime, mark.StartTime)
	}
	if ev.TraceParent != tracingtest.TraceParent(pub) {
		t.Errorf("message traceparent %q, want the publish span's %q", ev.TraceParent, tracingtest.TraceParent(pub))
	}
	if ev.Event.TraceParent != tracingtest.TraceParent(root) {
		t.Errorf("event traceparent %q, want the notification span's %q", ev.Event.TraceParent, tracingtest.TraceParent(root))
	}
	rec.NoValue(password, password2, "TOKENabc123XYZ", form.Get("NotificationHash"))

	// A copy: a new notification span, outcome duplicate, nothing published.
	if got := r.send(form); got.status != 200 {
		t.Fatalf("copy: status %d", got.status)
	}
	waitSpans(t, rec, 2)
	if o := tracingtest.Attr(lastRoot(rec), "paycomet.outcome"); o != "duplicate" {
		t.Errorf("copy's outcome attribute %q", o)
	}

	// A rejection: the quarantine message carries the trace too.
	bad := sample(1, "TRACE2")
	bad.Set("NotificationHash", strings.Repeat("ef", 64))
	if got := r.send(bad); got.status != 401 {
		t.Fatalf("bad signature: status %d", got.status)
	}
	waitSpans(t, rec, 3)
	rej := lastRoot(rec)
	if tracingtest.Attr(rej, "paycomet.outcome") != "rejected" || tracingtest.Attr(rej, "paycomet.reason") == "" ||
		tracingtest.Attr(rej, "http.response.status_code") != "401" {
		t.Errorf("rejection span attributes %v", rej.Attributes)
	}
	q := r.quarantined()
	if len(q) != 1 || q[0].Event.TraceParent != tracingtest.TraceParent(rej) || q[0].TraceParent == "" {
		t.Errorf("quarantine message: header traceparent %q, event traceparent %q, want %q",
			q[0].TraceParent, q[0].Event.TraceParent, tracingtest.TraceParent(rej))
	}
	rec.NoValue(password, password2, "TOKENabc123XYZ", bad.Get("NotificationHash"))
}

// TestTracingContinuesIncomingTrace: a traceparent header on the request
// makes the notification span its child, in the same trace.
func TestTracingContinuesIncomingTrace(t *testing.T) {
	tr, rec := tracingtest.New(t)
	r := newRig(t, false, withTracing(tr))
	if got := r.postTraced(sample(1, "TRACE3").Encode(), incoming); got.status != 200 {
		t.Fatalf("status %d", got.status)
	}
	root := rec.Wait(notify.SpanNotification)
	if got := root.SpanContext.TraceID().String(); got != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Errorf("trace id %s, want the incoming one", got)
	}
	if got := root.Parent.SpanID().String(); got != "00f067aa0ba902b7" || !root.Parent.IsRemote() {
		t.Errorf("parent span %s (remote %v), want the incoming 00f067aa0ba902b7", got, root.Parent.IsRemote())
	}
	ev := r.events()[0]
	if !strings.HasPrefix(ev.Event.TraceParent, "00-4bf92f3577b34da6a3ce929d0e0e4736-") ||
		!strings.HasPrefix(ev.TraceParent, "00-4bf92f3577b34da6a3ce929d0e0e4736-") {
		t.Errorf("event traceparent %q, header %q: not the incoming trace", ev.Event.TraceParent, ev.TraceParent)
	}
}

// TestTracingOff: without tracing an incoming traceparent is not looked at
// and neither the event nor the message carries one.
func TestTracingOff(t *testing.T) {
	r := newRig(t, false)
	if got := r.postTraced(sample(1, "TRACE4").Encode(), incoming); got.status != 200 {
		t.Fatalf("status %d", got.status)
	}
	ev := r.events()[0]
	if ev.TraceParent != "" || strings.Contains(string(ev.Raw), "traceparent") {
		t.Errorf("tracing off, yet header traceparent %q, event %s", ev.TraceParent, ev.Raw)
	}
}

func waitSpans(t *testing.T, rec *tracingtest.Recorder, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for roots(rec) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d notification spans within 10s, want %d", roots(rec), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func roots(rec *tracingtest.Recorder) int {
	n := 0
	for _, s := range rec.Spans() {
		if s.Name == notify.SpanNotification {
			n++
		}
	}
	return n
}

func lastRoot(rec *tracingtest.Recorder) (last tracetest.SpanStub) {
	for _, s := range rec.Spans() {
		if s.Name == notify.SpanNotification {
			last = s
		}
	}
	return last
}
