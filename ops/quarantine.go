package ops

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/paycomet-notify/paycomet-notify/events"
	"github.com/paycomet-notify/paycomet-notify/notify"
)

// Rejected is one quarantined request: its message and its data.
type Rejected struct {
	Message
	Event    Envelope
	Data     events.Rejection
	Replayed *Mark // what the last replay of it did; nil when never replayed
}

// Order is the order the request named ("" when it named none).
func (q Rejected) Order() string { return q.Event.Subject }

func decodeRejected(m Message) (Rejected, error) {
	q := Rejected{Message: m}
	var err error
	if q.Event, err = m.Event(); err != nil {
		return q, err
	}
	if err := json.Unmarshal(q.Event.Data, &q.Data); err != nil {
		return q, fmt.Errorf("%s sequence %d: rejected data: %w", m.Stream, m.Seq, err)
	}
	return q, nil
}

// RejectedFilter selects quarantined requests.
type RejectedFilter struct {
	Since  time.Time // zero: the whole quarantine
	Reason string    // a reason code; "" any
	IDs    []string  // CloudEvent ids; empty: any
}

func (f RejectedFilter) match(q Rejected) bool {
	if f.Reason != "" && q.Data.Reason != f.Reason {
		return false
	}
	if len(f.IDs) > 0 && !slices.Contains(f.IDs, q.Event.ID) {
		return false
	}
	return f.Since.IsZero() || !q.Data.ReceivedAt.Before(f.Since)
}

// EachRejected calls fn, oldest first, for every quarantined request f
// selects, up to the quarantine's last message when the call began. The
// quarantine is bounded (REJECTED_MAX_BYTES), so a full read is too; with
// Since it starts at that time instead of the first message.
func (r *Reader) EachRejected(ctx context.Context, f RejectedFilter, fn func(Rejected) error) error {
	in := r.Info(ctx, r.s.Rejected)
	if in.Err != nil {
		return fmt.Errorf("quarantine stream %s: %w", r.s.Rejected, in.Err)
	}
	if in.Messages == 0 {
		return nil
	}
	start := in.FirstSeq
	if !f.Since.IsZero() {
		seq, err := r.seqAt(ctx, r.s.Rejected, f.Since)
		if err != nil {
			return err
		}
		if seq == 0 {
			return nil
		}
		start = seq
	}
	var ferr error
	err := r.scan(ctx, r.s.Rejected, r.s.RejectedSubject(), start, false, func(m Message) bool {
		if m.Seq > in.LastSeq {
			return false
		}
		q, err := decodeRejected(m)
		if err != nil || !f.match(q) {
			return m.Seq < in.LastSeq // not ours to replay; skip it
		}
		if ferr = fn(q); ferr != nil {
			return false
		}
		return m.Seq < in.LastSeq
	})
	if ferr != nil {
		return ferr
	}
	return err
}

// seqAt is the first sequence stored at or after t, 0 when none is.
func (r *Reader) seqAt(ctx context.Context, stream string, t time.Time) (uint64, error) {
	s, err := r.js.Stream(ctx, stream)
	if err != nil {
		return 0, fmt.Errorf("stream %s: %w", stream, err)
	}
	// A consumer by start time is how JetStream finds a sequence by time
	// (from its index, no scan): created, its info says where it starts.
	c, err := s.CreateConsumer(ctx, jetstream.ConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartTimePolicy, OptStartTime: &t,
		AckPolicy: jetstream.AckNonePolicy, InactiveThreshold: 10 * time.Second,
	})
	if err != nil {
		return 0, fmt.Errorf("stream %s: consumer: %w", stream, err)
	}
	info := c.CachedInfo()
	_ = s.DeleteConsumer(ctx, info.Name) // else it goes after InactiveThreshold
	if info.NumPending == 0 {
		return 0, nil
	}
	return info.Delivered.Stream + 1, nil
}

// RejectedByID finds quarantined requests by CloudEvent id, reading only
// the headers of the quarantine (its Nats-Msg-Id is the id).
func (r *Reader) RejectedByID(ctx context.Context, ids ...string) (map[string]Rejected, error) {
	seqs, err := r.findIDs(ctx, r.s.Rejected, r.s.RejectedSubject(), ids)
	if err != nil {
		return nil, err
	}
	out := make(map[string]Rejected, len(seqs))
	for id, seq := range seqs {
		m, err := r.Get(ctx, r.s.Rejected, seq)
		if err != nil {
			return nil, err
		}
		q, err := decodeRejected(m)
		if err != nil {
			return nil, err
		}
		out[id] = q
	}
	return out, nil
}

// RejectedAt reads the quarantined request at seq.
func (r *Reader) RejectedAt(ctx context.Context, seq uint64) (Rejected, error) {
	m, err := r.Get(ctx, r.s.Rejected, seq)
	if err != nil {
		return Rejected{}, err
	}
	return decodeRejected(m)
}

// findIDs maps each id found in stream to its sequence (headers only).
func (r *Reader) findIDs(ctx context.Context, stream, filter string, ids []string) (map[string]uint64, error) {
	want := map[string]bool{}
	for _, id := range ids {
		want[id] = true
	}
	found := map[string]uint64{}
	in := r.Info(ctx, stream)
	if in.Err != nil {
		return nil, fmt.Errorf("stream %s: %w", stream, in.Err)
	}
	if in.Messages == 0 || len(want) == 0 {
		return found, nil
	}
	err := r.scan(ctx, stream, filter, in.FirstSeq, true, func(m Message) bool {
		if m.Seq > in.LastSeq {
			return false
		}
		if want[m.MsgID] {
			found[m.MsgID] = m.Seq
		}
		return len(found) < len(want) && m.Seq < in.LastSeq
	})
	return found, err
}

// Request rebuilds the request as it arrived, for notify.Path.Process: the
// exact body, query, content type, whether it came through the URL_TOKEN
// path (it counts as such even if the token changed since) and the source,
// checked against the current ALLOWED_IPS. A body that was cut at
// MAX_BODY_BYTES, or that did not arrive in time, cannot be run whole and
// is refused again for the same reason. ReceivedAt is left to the path
// (now): whether a notification is too old to tell from a replay depends on
// what the dedupe store remembers today, not on when it first arrived.
func (q Rejected) Request(acceptStale bool) notify.Request {
	rq := q.Data.Request
	req := notify.Request{Body: rq.Body, Truncated: rq.Truncated, Query: rq.Query, ContentType: rq.ContentType,
		URLTokenPath: rq.URLTokenPath, AcceptStale: acceptStale}
	if a, err := netip.ParseAddr(q.Data.Source); err == nil {
		req.Source = a
	}
	switch {
	case rq.Truncated:
		req.ReadErr = notify.ErrTooLarge
	case q.Data.Reason == events.ReasonBodyTimeout:
		req.ReadErr = notify.ErrBodyTimeout
	}
	return req
}
