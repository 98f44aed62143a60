// Package ops is what an operator does with the streams on a bad day:
// watch events as they arrive (Tail), read bounded pages from the end of a
// stream however long it is (Page), find rejected notifications and dead
// letters (Rejected, DeadLetters) and run them again once the cause is fixed
// (Replayer). It reads JetStream and runs replays through the receiver's own
// notification path (notify.Path.Process); it knows no HTTP and no terminal.
//
// Every read is bounded: pages walk back from the stream's last sequence in
// windows, never from the start, so the operator page stays fast on a stream
// of millions of events.
package ops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/paycomet-notify/paycomet-notify/publisher"
)

// Streams names what ops reads: the event stream (events and dead letters)
// and the quarantine stream, and the subject prefix.
type Streams struct {
	Prefix   string // SUBJECT_PREFIX
	Events   string // STREAM_NAME
	Rejected string // <STREAM_NAME>_REJECTED
	// Replicas is STREAM_REPLICAS, for the replay-marks bucket.
	Replicas int
}

// StreamsFor derives the names from the receiver's stream configuration.
func StreamsFor(c publisher.StreamsConfig) Streams {
	return Streams{Prefix: c.Prefix, Events: c.Name, Rejected: c.RejectedName(), Replicas: c.Replicas}
}

// RejectedSubject is where the quarantine lives: <prefix>.rejected.
func (s Streams) RejectedSubject() string { return s.Prefix + ".rejected" }

// DLQSubject is where the refresher's dead letters go: <prefix>.dlq.
func (s Streams) DLQSubject() string { return s.Prefix + ".dlq" }

// MarksBucket is the key-value bucket recording what each replay did,
// <STREAM_NAME>_REPLAYED.
func (s Streams) MarksBucket() string { return s.Events + "_REPLAYED" }

// Message is one stored message.
type Message struct {
	Stream  string
	Seq     uint64
	Subject string
	Stored  time.Time // when JetStream stored it
	MsgID   string    // the Nats-Msg-Id header: the event id
	Data    []byte    // nil when read headers-only
}

// Envelope is a CloudEvent as published (structured mode), data kept raw.
type Envelope struct {
	SpecVersion string          `json:"specversion"`
	ID          string          `json:"id"`
	Source      string          `json:"source"`
	Type        string          `json:"type"`
	Subject     string          `json:"subject,omitempty"`
	Time        time.Time       `json:"time"`
	DataSchema  string          `json:"dataschema,omitempty"`
	TraceParent string          `json:"traceparent,omitempty"`
	Data        json.RawMessage `json:"data"`
}

// Event decodes m's body as a CloudEvent.
func (m Message) Event() (Envelope, error) {
	var e Envelope
	if err := json.Unmarshal(m.Data, &e); err != nil {
		return e, fmt.Errorf("%s sequence %d is not a CloudEvent: %w", m.Stream, m.Seq, err)
	}
	return e, nil
}

// ID is the message's event id: the Nats-Msg-Id, or the CloudEvent id when
// the header is missing.
func (m Message) ID() string {
	if m.MsgID != "" {
		return m.MsgID
	}
	if e, err := m.Event(); err == nil {
		return e.ID
	}
	return ""
}

// ErrNotFound is returned when no message has the id or sequence asked for.
var ErrNotFound = errors.New("not found")

// Reader reads the streams. Safe for concurrent use.
type Reader struct {
	js jetstream.JetStream
	s  Streams
}

// NewReader returns a Reader of s's streams.
func NewReader(js jetstream.JetStream, s Streams) *Reader { return &Reader{js: js, s: s} }

// Streams returns the names the reader reads.
func (r *Reader) Streams() Streams { return r.s }

// JetStream returns the JetStream context the reader uses.
func (r *Reader) JetStream() jetstream.JetStream { return r.js }

// Get reads one message by stream sequence.
func (r *Reader) Get(ctx context.Context, stream string, seq uint64) (Message, error) {
	s, err := r.js.Stream(ctx, stream)
	if err != nil {
		return Message{}, fmt.Errorf("stream %s: %w", stream, err)
	}
	raw, err := s.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return Message{}, fmt.Errorf("%s sequence %d: %w", stream, seq, ErrNotFound)
	}
	if err != nil {
		return Message{}, fmt.Errorf("%s sequence %d: %w", stream, seq, err)
	}
	return fromRaw(stream, raw), nil
}

func fromRaw(stream string, raw *jetstream.RawStreamMsg) Message {
	return Message{Stream: stream, Seq: raw.Sequence, Subject: raw.Subject, Stored: raw.Time,
		MsgID: raw.Header.Get(jetstream.MsgIDHeader), Data: raw.Data}
}

func fromMsg(stream string, m jetstream.Msg) (Message, *jetstream.MsgMetadata, error) {
	md, err := m.Metadata()
	if err != nil {
		return Message{}, nil, err
	}
	return Message{Stream: stream, Seq: md.Sequence.Stream, Subject: m.Subject(), Stored: md.Timestamp,
		MsgID: m.Headers().Get(jetstream.MsgIDHeader), Data: m.Data()}, md, nil
}

// scan delivers, in stream order, the messages of stream matching filter
// from sequence start on, until fn returns false or the last matching
// message was delivered. It first finds the first match with a direct get,
// so it never waits for a message that does not exist, and then reads with
// an ordered consumer (one server round trip per batch, not per message).
func (r *Reader) scan(ctx context.Context, stream, filter string, start uint64, headersOnly bool, fn func(Message) bool) error {
	s, err := r.js.Stream(ctx, stream)
	if err != nil {
		return fmt.Errorf("stream %s: %w", stream, err)
	}
	if start == 0 {
		start = 1
	}
	first, err := s.GetMsg(ctx, start, jetstream.WithGetMsgSubject(filter))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s from sequence %d: %w", stream, start, err)
	}
	cons, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{filter},
		DeliverPolicy:  jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:    first.Sequence,
		HeadersOnly:    headersOnly,
		// A scan is short: the server forgets its consumer soon after.
		InactiveThreshold: 10 * time.Second,
	})
	if err != nil {
		return fmt.Errorf("%s: consumer: %w", stream, err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(256))
	if err != nil {
		return fmt.Errorf("%s: consume: %w", stream, err)
	}
	defer it.Stop()
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	for {
		m, err := it.Next()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("%s: read: %w", stream, err)
		}
		msg, md, err := fromMsg(stream, m)
		if err != nil {
			return fmt.Errorf("%s: read: %w", stream, err)
		}
		if !fn(msg) || md.NumPending == 0 {
			return nil
		}
	}
}

// Info is a stream's state, or why it could not be read.
type Info struct {
	Name     string
	Subjects []string
	Messages uint64
	Bytes    uint64
	MaxBytes int64 // -1: unbounded
	MaxAge   time.Duration
	FirstSeq uint64
	LastSeq  uint64
	LastTime time.Time
	Err      error
}

// Info reads stream's state (one round trip).
func (r *Reader) Info(ctx context.Context, stream string) Info {
	in := Info{Name: stream}
	s, err := r.js.Stream(ctx, stream)
	if err != nil {
		in.Err = err
		return in
	}
	i := s.CachedInfo()
	in.Subjects, in.MaxBytes, in.MaxAge = i.Config.Subjects, i.Config.MaxBytes, i.Config.MaxAge
	in.Messages, in.Bytes, in.FirstSeq, in.LastSeq, in.LastTime = i.State.Msgs, i.State.Bytes, i.State.FirstSeq, i.State.LastSeq, i.State.LastTime
	return in
}
