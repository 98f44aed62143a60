package ops

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/paycomet-notify/paycomet-notify/events"
	"github.com/paycomet-notify/paycomet-notify/refresher"
)

// DeadLetter is one of the refresher's dead letters (a
// paycomet.card.dead_letter CloudEvent on <prefix>.dlq).
type DeadLetter struct {
	Message
	Event    Envelope
	Data     refresher.DeadLetter
	Replayed *Mark
}

func decodeDeadLetter(m Message) (DeadLetter, error) {
	d := DeadLetter{Message: m}
	var err error
	if d.Event, err = m.Event(); err != nil {
		return d, err
	}
	if err := json.Unmarshal(d.Event.Data, &d.Data); err != nil {
		return d, fmt.Errorf("%s sequence %d: dead letter data: %w", m.Stream, m.Seq, err)
	}
	return d, nil
}

// Original is the dead-lettered message's body, as it was on the stream.
func (d DeadLetter) Original() []byte {
	if len(d.Data.Original) > 0 {
		return d.Data.Original
	}
	return d.Data.OriginalBase64
}

// DeadLetters reads one page of dead letters, newest first.
func (r *Reader) DeadLetters(ctx context.Context, before uint64, limit int) ([]DeadLetter, Page, error) {
	p, err := r.Page(ctx, Query{Stream: r.s.Events, Filter: r.s.DLQSubject(), Before: before, Limit: limit})
	if err != nil {
		return nil, p, err
	}
	out := make([]DeadLetter, 0, len(p.Messages))
	for _, m := range p.Messages {
		d, err := decodeDeadLetter(m)
		if err != nil {
			continue // not a dead letter we wrote; the event page shows it
		}
		out = append(out, d)
	}
	return out, p, nil
}

// EachDeadLetter calls fn with every dead letter, oldest first, up to the
// last one when the call began. Dead letters are few (each needs an
// operator), and the server's subject index skips the events between them.
func (r *Reader) EachDeadLetter(ctx context.Context, fn func(DeadLetter) error) error {
	in := r.Info(ctx, r.s.Events)
	if in.Err != nil {
		return fmt.Errorf("stream %s: %w", r.s.Events, in.Err)
	}
	if in.Messages == 0 {
		return nil
	}
	var ferr error
	err := r.scan(ctx, r.s.Events, r.s.DLQSubject(), in.FirstSeq, false, func(m Message) bool {
		if m.Seq > in.LastSeq {
			return false
		}
		if d, err := decodeDeadLetter(m); err == nil {
			if ferr = fn(d); ferr != nil {
				return false
			}
		}
		return m.Seq < in.LastSeq
	})
	if ferr != nil {
		return ferr
	}
	return err
}

// DeadLetterByID finds dead letters by CloudEvent id (their Nats-Msg-Id).
func (r *Reader) DeadLetterByID(ctx context.Context, ids ...string) (map[string]DeadLetter, error) {
	seqs, err := r.findIDs(ctx, r.s.Events, r.s.DLQSubject(), ids)
	if err != nil {
		return nil, err
	}
	out := make(map[string]DeadLetter, len(seqs))
	for id, seq := range seqs {
		m, err := r.Get(ctx, r.s.Events, seq)
		if err != nil {
			return nil, err
		}
		d, err := decodeDeadLetter(m)
		if err != nil {
			return nil, err
		}
		out[id] = d
	}
	return out, nil
}

// ReplayMsgID is the Nats-Msg-Id a replayed dead letter is republished
// with. Not the original's: JetStream would drop that as a duplicate
// within its window. Derived from the dead letter's id, so two replays of
// one dead letter close together are one message.
func ReplayMsgID(deadLetterID string) string { return events.ID("ops-replay-v1", "dlq", deadLetterID) }

// ReplayDeadLetters republishes the dead letters with the given ids (all
// of them with all=true) on their original subjects, so the refresher
// processes each as new and gives one output; a dead letter replayed
// before reports OutcomeDuplicate and publishes nothing.
func (p *Replayer) ReplayDeadLetters(ctx context.Context, ids []string, all bool, fn func(Result)) error {
	if all {
		return p.r.EachDeadLetter(ctx, func(d DeadLetter) error {
			fn(p.replayDeadLetter(ctx, d))
			return nil
		})
	}
	found, err := p.r.DeadLetterByID(ctx, ids...)
	if err != nil {
		return err
	}
	var ds []DeadLetter
	for _, id := range ids {
		d, ok := found[id]
		if !ok {
			fn(Result{ID: id, Outcome: OutcomeNotFound})
			continue
		}
		if !slices.ContainsFunc(ds, func(o DeadLetter) bool { return o.Seq == d.Seq }) {
			ds = append(ds, d)
		}
	}
	for _, d := range ds {
		fn(p.replayDeadLetter(ctx, d))
	}
	return nil
}

// ReplayDeadLetterAt replays the dead letter at seq of the event stream.
func (p *Replayer) ReplayDeadLetterAt(ctx context.Context, seq uint64) Result {
	m, err := p.r.Get(ctx, p.r.s.Events, seq)
	if err != nil {
		return Result{ID: fmt.Sprintf("seq %d", seq), Seq: seq, Outcome: OutcomeNotFound, Detail: err.Error()}
	}
	d, err := decodeDeadLetter(m)
	if err != nil || m.Subject != p.r.s.DLQSubject() {
		return Result{ID: fmt.Sprintf("seq %d", seq), Seq: seq, Outcome: OutcomeNotFound, Detail: "not a dead letter"}
	}
	return p.replayDeadLetter(ctx, d)
}

func (p *Replayer) replayDeadLetter(ctx context.Context, d DeadLetter) Result {
	res := Result{ID: d.Event.ID, Seq: d.Seq, Order: d.Data.OriginalSubject}
	key := dlqKey(d.Event.ID)
	mark, err := p.marks.Get(ctx, key)
	if err != nil {
		res.Outcome, res.Detail, res.Err = OutcomeFailed, err.Error(), err
		return res
	}
	if mark.Done() {
		res.Outcome, res.Seq = OutcomeDuplicate, mark.Seq
		return res
	}
	body := d.Original()
	if d.Data.OriginalSubject == "" || len(body) == 0 {
		res.Outcome, res.Reason, res.Detail = OutcomeRejected, "no_original", "the dead letter carries no original message"
		return res
	}
	ctx, span := p.replaySpan(ctx, "replay dead letter", d.Event.TraceParent, d.Event.ID)
	defer span.End()
	ack, err := p.pub.Publish(ctx, d.Data.OriginalSubject, ReplayMsgID(d.Event.ID), body)
	if err != nil {
		res.Outcome, res.Detail, res.Err = OutcomeFailed, err.Error(), err
		return res
	}
	res.Outcome, res.Seq = OutcomeReplayed, ack.Sequence
	if ack.Duplicate {
		res.Outcome = OutcomeDuplicate
	}
	if err := p.marks.Put(ctx, key, Mark{Outcome: OutcomeReplayed, Seq: ack.Sequence, At: p.now().UTC()}); err != nil {
		res.Err = err
	}
	return res
}
