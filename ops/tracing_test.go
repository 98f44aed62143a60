package ops_test

import (
	"context"
	"testing"

	"github.com/paycomet-notify/paycomet-notify/demo"
	"github.com/paycomet-notify/paycomet-notify/notify"
	"github.com/paycomet-notify/paycomet-notify/ops"
	"github.com/paycomet-notify/paycomet-notify/ops/opstest"
	"github.com/paycomet-notify/paycomet-notify/tracing/tracingtest"
)

// TestReplayContinuesTrace: a notification quarantined by a traced receiver
// carries its trace; replaying it (another process, its own tracer) is a
// span in that trace, the path's notification span its child, and the
// event published has the replay's trace.
func TestReplayContinuesTrace(t *testing.T) {
	rig := opstest.New(t)
	recvTr, recv := tracingtest.New(t)
	s := opstest.Sample("order-T", 1000)
	o := rig.Send(rig.TracedPath("not-the-password", true, recvTr), s, notify.Rejected)
	orig := recv.Wait(notify.SpanNotification)
	if tracingtest.Attr(orig, notify.AttrQuarantineID) != o.QuarantineID {
		t.Fatalf("quarantine id attribute %q, want %q", tracingtest.Attr(orig, notify.AttrQuarantineID), o.QuarantineID)
	}

	replTr, repl := tracingtest.New(t)
	p := ops.NewReplayer(rig.Reader, rig.TracedPath(demo.Password, false, replTr)).Traced(replTr)
	var res []ops.Result
	if err := p.ReplayRejected(context.Background(), ops.RejectedFilter{}, false, func(r ops.Result) { res = append(res, r) }); err != nil {
		t.Fatal(err)
	}
	if len(res) != 1 || res[0].Outcome != ops.OutcomeAccepted {
		t.Fatalf("replay results %+v", res)
	}
	span := repl.Wait("replay rejected")
	if span.Parent.SpanID() != orig.SpanContext.SpanID() || span.SpanContext.TraceID() != orig.SpanContext.TraceID() || !span.Parent.IsRemote() {
		t.Errorf("replay span parent %s/%s, want the quarantined notification's span %s/%s", span.Parent.TraceID(), span.Parent.SpanID(),
			orig.SpanContext.TraceID(), orig.SpanContext.SpanID())
	}
	kids := repl.Children(span.SpanContext)
	if len(kids) != 1 || kids[0].Name != notify.SpanNotification || tracingtest.Attr(kids[0], notify.AttrOutcome) != "accepted" {
		t.Fatalf("children of the replay span: %s", tracingtest.Names(kids))
	}
	page, err := rig.Reader.Events(context.Background(), ops.EventFilter{Order: "order-T"}, 0, ops.MaxLimit)
	if err != nil || len(page.Messages) != 1 {
		t.Fatalf("events for order-T: %v %v", page, err)
	}
	ev, err := page.Messages[0].Event()
	if err != nil {
		t.Fatal(err)
	}
	if ev.TraceParent != tracingtest.TraceParent(kids[0]) {
		t.Errorf("replayed event traceparent %q, want the replay's notification span %q", ev.TraceParent, tracingtest.TraceParent(kids[0]))
	}
}
