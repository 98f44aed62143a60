package ops

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/paycomet-notify/paycomet-notify/notify"
	"github.com/paycomet-notify/paycomet-notify/publisher"
	"github.com/paycomet-notify/paycomet-notify/tracing"
)

// Processor is the receiver's notification path (*notify.Path), built with
// the current configuration and a quarantine publisher that publishes
// nothing (Discard): a replay that is still refused is reported, not
// quarantined a second time.
type Processor interface {
	Process(ctx context.Context, r notify.Request) notify.Outcome
}

// Discard is the quarantine publisher of a replay's path: a request still
// refused is already in the quarantine, so nothing is published.
type Discard struct{}

// Publish publishes nothing.
func (Discard) Publish(context.Context, string, string, []byte) (publisher.Ack, error) {
	return publisher.Ack{}, nil
}

// Outcomes of one replay (Result.Outcome, Mark.Outcome).
const (
	OutcomeAccepted  = "accepted"  // published now: the event id follows
	OutcomeDuplicate = "duplicate" // already on the stream: nothing published
	OutcomeRejected  = "rejected"  // still refused: the reason code follows
	OutcomeReplayed  = "replayed"  // a dead letter republished on its subject
	OutcomeNotFound  = "not_found" // no such id (bad input)
	OutcomeFailed    = "failed"    // NATS or the dedupe store failed: retry later
)

// Result is what replaying one message did.
type Result struct {
	ID      string // the quarantine message's or dead letter's CloudEvent id
	Seq     uint64
	Order   string // the order (or, for a dead letter, the original subject)
	Outcome string
	EventID string // accepted, duplicate: the event on the stream
	Reason  string // rejected: the reason code; duplicate: conflicting_copy when it is one
	Detail  string // the sentence a person reads (rejections, failures)
	Err     error  // OutcomeFailed, and a mark that could not be written
}

// Line is the result as `quarantine replay` prints it: id, order, outcome.
func (r Result) Line() string {
	order := r.Order
	if order == "" {
		order = "-"
	}
	head := r.ID + " " + clip(order, 60) + " "
	switch r.Outcome {
	case OutcomeAccepted:
		return head + "accepted " + r.EventID
	case OutcomeDuplicate:
		if r.Reason != "" {
			return head + "duplicate " + r.Reason + " " + r.EventID
		}
		return head + "duplicate"
	case OutcomeRejected:
		return head + "rejected " + r.Reason
	case OutcomeReplayed:
		return head + fmt.Sprintf("replayed seq %d", r.Seq)
	case OutcomeNotFound:
		return r.ID + " not found"
	}
	return head + "failed: " + r.Detail
}

// Replayer runs quarantined requests and dead letters again.
type Replayer struct {
	r     *Reader
	path  Processor
	marks *Marks
	pub   *publisher.Publisher
	now   func() time.Time
	trace *tracing.Tracing // nil: off
}

// NewReplayer replays through path (nil: dead letters only). The marks
// bucket is <STREAM_NAME>_REPLAYED.
func NewReplayer(r *Reader, path Processor) *Replayer {
	return &Replayer{r: r, path: path, marks: NewMarks(r.js, r.s), pub: publisher.New(r.js, r.s.Events), now: time.Now}
}

// Traced makes each replay a span continuing the trace of the request or
// message replayed (its event's traceparent), when t is on; the path
// passed to NewReplayer should be traced with the same t. It returns p.
func (p *Replayer) Traced(t *tracing.Tracing) *Replayer {
	p.trace = t
	p.pub.Traced(t)
	return p
}

// replaySpan starts the span of one replay, child of the trace that
// traceparent names; ctx and a no-op span when tracing is off.
func (p *Replayer) replaySpan(ctx context.Context, name, traceparent, id string) (context.Context, trace.Span) {
	if !p.trace.On() {
		return ctx, trace.SpanFromContext(context.Background())
	}
	if !trace.SpanContextFromContext(ctx).IsValid() {
		ctx = p.trace.ExtractTraceParent(ctx, traceparent)
	}
	return p.trace.Tracer("github.com/paycomet-notify/paycomet-notify/ops").Start(ctx, name,
		trace.WithAttributes(attribute.String("cloudevents.event_id", id)))
}

// Marks returns the replay marks, for showing what was replayed.
func (p *Replayer) Marks() *Marks { return p.marks }

// ReplayRejected replays every quarantined request f selects, oldest first,
// and calls fn with each result. IDs of f that are not in the quarantine
// give OutcomeNotFound results. It returns an error only when the
// quarantine could not be read; per-message failures are results.
func (p *Replayer) ReplayRejected(ctx context.Context, f RejectedFilter, acceptStale bool, fn func(Result)) error {
	if p.path == nil {
		return errors.New("replay: no notification path")
	}
	if len(f.IDs) > 0 {
		found, err := p.r.RejectedByID(ctx, f.IDs...)
		if err != nil {
			return err
		}
		var qs []Rejected
		for _, id := range f.IDs {
			q, ok := found[id]
			if !ok {
				fn(Result{ID: id, Outcome: OutcomeNotFound})
				continue
			}
			if f.match(q) && !slices.ContainsFunc(qs, func(o Rejected) bool { return o.Seq == q.Seq }) {
				qs = append(qs, q)
			}
		}
		slices.SortFunc(qs, func(a, b Rejected) int { return cmp.Compare(a.Seq, b.Seq) })
		for _, q := range qs {
			fn(p.replayOne(ctx, q, acceptStale))
		}
		return nil
	}
	return p.r.EachRejected(ctx, f, func(q Rejected) error {
		fn(p.replayOne(ctx, q, acceptStale))
		return nil
	})
}

// ReplayRejectedAt replays the quarantined requests at the given
// sequences (the operator page's form), in stream order.
func (p *Replayer) ReplayRejectedAt(ctx context.Context, seqs []uint64, acceptStale bool) []Result {
	seqs = slices.Clone(seqs)
	slices.Sort(seqs)
	seqs = slices.Compact(seqs)
	var out []Result
	for _, seq := range seqs {
		q, err := p.r.RejectedAt(ctx, seq)
		switch {
		case errors.Is(err, ErrNotFound):
			out = append(out, Result{ID: fmt.Sprintf("seq %d", seq), Seq: seq, Outcome: OutcomeNotFound})
		case err != nil:
			out = append(out, Result{Seq: seq, Outcome: OutcomeFailed, Detail: err.Error(), Err: err})
		case p.path == nil:
			out = append(out, Result{ID: q.Event.ID, Seq: seq, Outcome: OutcomeFailed, Detail: "no notification path"})
		default:
			out = append(out, p.replayOne(ctx, q, acceptStale))
		}
	}
	return out
}

// replayOne runs q through the path unless an earlier replay already put it
// on the stream, and records what happened.
func (p *Replayer) replayOne(ctx context.Context, q Rejected, acceptStale bool) Result {
	res := Result{ID: q.Event.ID, Seq: q.Seq, Order: q.Order()}
	key := rejectedKey(q.Event.ID)
	mark, err := p.marks.Get(ctx, key)
	if err != nil {
		res.Outcome, res.Detail, res.Err = OutcomeFailed, err.Error(), err
		return res
	}
	if mark.Done() {
		// Replayed before: its event is on the stream. Nothing is run, so
		// nothing can be published twice, even after DEDUPE_TTL.
		res.Outcome, res.EventID = OutcomeDuplicate, mark.EventID
		return res
	}
	ctx, span := p.replaySpan(ctx, "replay rejected", q.Event.TraceParent, q.Event.ID)
	defer span.End()
	o := p.path.Process(ctx, q.Request(acceptStale))
	res.EventID, res.Detail = o.EventID, o.Detail
	switch o.Kind {
	case notify.Accepted:
		res.Outcome = OutcomeAccepted
	case notify.Duplicate:
		res.Outcome, res.Reason = OutcomeDuplicate, o.Reason
	case notify.Rejected:
		res.Outcome, res.Reason, res.EventID = OutcomeRejected, o.Reason, ""
	case notify.Ping:
		// A ping was never a notification: nothing to publish.
		res.Outcome, res.Reason = OutcomeRejected, "ping"
	default: // Unavailable, Internal
		res.Outcome = OutcomeFailed
		res.Err = fmt.Errorf("%s: %s", o.Kind, o.Detail)
		return res
	}
	m := Mark{Outcome: res.Outcome, EventID: res.EventID, Reason: res.Reason, At: p.now().UTC()}
	if err := p.marks.Put(ctx, key, m); err != nil {
		// The outcome stands (an accepted event is durable and the dedupe
		// store remembers it); only the record is missing.
		res.Err = err
	}
	return res
}
