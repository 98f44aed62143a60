package ops_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/paycomet-notify/paycomet-notify/demo"
	"github.com/paycomet-notify/paycomet-notify/events"
	"github.com/paycomet-notify/paycomet-notify/notify"
	"github.com/paycomet-notify/paycomet-notify/ops"
	"github.com/paycomet-notify/paycomet-notify/ops/opstest"
)

func replayAll(t *testing.T, p *ops.Replayer, f ops.RejectedFilter, stale bool) map[string][]string {
	t.Helper()
	got := map[string][]string{} // order -> outcomes in replay order
	err := p.ReplayRejected(context.Background(), f, stale, func(r ops.Result) {
		if r.Err != nil {
			t.Errorf("replay %s: %v", r.ID, r.Err)
		}
		o := r.Outcome
		if r.Reason != "" {
			o += " " + r.Reason
		}
		got[r.Order] = append(got[r.Order], o)
	})
	if err != nil {
		t.Fatalf("ReplayRejected: %v", err)
	}
	return got
}

// The typical bad day: a terminal's password was wrong, PAYCOMET's
// notifications were answered 401 and quarantined (and retried, so some are
// there twice); the operator fixes the password; PAYCOMET's retry of one of
// them already went through. Replaying everything publishes exactly one
// event per notification, and a second replay publishes nothing.
func TestReplayWrongPasswordStory(t *testing.T) {
	rig := opstest.New(t)
	wrong := rig.Path("not-the-password", true)
	a, b := opstest.Sample("order-A", 1000), opstest.Sample("order-B", 2500)
	for _, v := range []struct{ order string }{{"A"}, {"A"}, {"B"}} {
		s := a
		if v.order == "B" {
			s = b
		}
		o := rig.Send(wrong, s, notify.Rejected)
		if o.Reason != events.ReasonBadSignature || o.Status != 401 || o.QuarantineID == "" {
			t.Fatalf("wrong password: outcome %+v, want a quarantined 401 bad_signature", o)
		}
	}
	if n := rig.LastSeq(rig.Streams.Events); n != 0 {
		t.Fatalf("event stream has %d messages before the fix, want 0", n)
	}

	// Fixed: PAYCOMET's next retry of B is accepted by the receiver.
	fixed := rig.Path(demo.Password, true)
	rig.Send(fixed, b, notify.Accepted)

	p := ops.NewReplayer(rig.Reader, rig.Path(demo.Password, false))
	got := replayAll(t, p, ops.RejectedFilter{}, false)
	want := map[string][]string{"order-A": {"accepted", "duplicate"}, "order-B": {"duplicate"}}
	if !equal(got, want) {
		t.Fatalf("first replay: %v, want %v", got, want)
	}
	if n := rig.EventsFor("order-A"); n != 1 {
		t.Errorf("order-A has %d events, want 1", n)
	}
	if n := rig.EventsFor("order-B"); n != 1 {
		t.Errorf("order-B has %d events, want 1", n)
	}
	last := rig.LastSeq(rig.Streams.Events)

	got = replayAll(t, p, ops.RejectedFilter{}, false)
	want = map[string][]string{"order-A": {"duplicate", "duplicate"}, "order-B": {"duplicate"}}
	if !equal(got, want) {
		t.Fatalf("second replay: %v, want %v", got, want)
	}
	if n := rig.LastSeq(rig.Streams.Events); n != last {
		t.Errorf("second replay moved the event stream from %d to %d, want nothing published", last, n)
	}
	if n := rig.LastSeq(rig.Streams.Rejected); n != 3 {
		t.Errorf("quarantine has %d messages after replays, want the 3 original ones", n)
	}
}

// A notification that is still bad, a conflicting copy and a stale one are
// reported and publish nothing; --accept-stale takes the stale one.
func TestReplayStillBadConflictingAndStale(t *testing.T) {
	rig := opstest.New(t)
	recv := rig.Path(demo.Password, true)

	forged := opstest.Sample("order-forged", 1000)
	forged.Set("Amount", "999999") // the hash no longer matches
	rig.Send(recv, forged, notify.Rejected)

	first := opstest.Sample("order-copy", 1000)
	rig.Send(recv, first, notify.Accepted)
	copy := opstest.Sample("order-copy", 1000)
	copy.Set("AuthCode", "EDITED") // not signed: a conflicting copy
	if o := rig.Send(recv, copy, notify.Duplicate); o.Reason != events.ReasonConflictingCopy {
		t.Fatalf("edited copy: reason %q, want conflicting_copy", o.Reason)
	}

	stale := demo.Sample(demo.SampleOptions{Type: 1, Order: "order-stale", Amount: 700, Currency: "JPY",
		When: time.Now().Add(-rig.DedupeTTL - time.Hour)})
	if o := rig.Send(recv, stale, notify.Rejected); o.Reason != events.ReasonStale {
		t.Fatalf("old notification: reason %q, want stale", o.Reason)
	}
	last := rig.LastSeq(rig.Streams.Events)

	p := ops.NewReplayer(rig.Reader, rig.Path(demo.Password, false))
	got := replayAll(t, p, ops.RejectedFilter{}, false)
	want := map[string][]string{
		"order-forged": {"rejected bad_signature"},
		"order-copy":   {"duplicate conflicting_copy"},
		"order-stale":  {"rejected stale"},
	}
	if !equal(got, want) {
		t.Fatalf("replay: %v, want %v", got, want)
	}
	if n := rig.LastSeq(rig.Streams.Events); n != last {
		t.Fatalf("replay published %d events, want none", n-last)
	}

	got = replayAll(t, p, ops.RejectedFilter{Reason: events.ReasonStale}, true)
	if want := map[string][]string{"order-stale": {"accepted"}}; !equal(got, want) {
		t.Fatalf("replay --reason stale --accept-stale: %v, want %v", got, want)
	}
	if n := rig.EventsFor("order-stale"); n != 1 {
		t.Errorf("order-stale has %d events after --accept-stale, want 1", n)
	}
}

func TestReplayByIDAndUnknownID(t *testing.T) {
	rig := opstest.New(t)
	wrong := rig.Path("nope", true)
	o1 := rig.Send(wrong, opstest.Sample("order-1", 100), notify.Rejected)
	rig.Send(wrong, opstest.Sample("order-2", 200), notify.Rejected)

	p := ops.NewReplayer(rig.Reader, rig.Path(demo.Password, false))
	var lines []string
	err := p.ReplayRejected(context.Background(), ops.RejectedFilter{IDs: []string{o1.QuarantineID, "0123456789abcdef0123456789abcdef"}}, false,
		func(r ops.Result) { lines = append(lines, r.Line()) })
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "0123456789abcdef0123456789abcdef not found") ||
		!strings.HasPrefix(lines[1], o1.QuarantineID+" order-1 accepted ") {
		t.Fatalf("replay by id printed %q", lines)
	}
	if rig.EventsFor("order-2") != 0 {
		t.Error("order-2 was replayed although only order-1's id was given")
	}
}

func equal(a, b map[string][]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, va := range a {
		vb := b[k]
		if strings.Join(va, "|") != strings.Join(vb, "|") {
			return false
		}
	}
	return true
}
