// Package publisher owns the JetStream side of the receiver: it makes sure the
// stream that captures every event subject exists with the shape the contract
// promises, and publishes events with Nats-Msg-Id, returning only once
// JetStream has acknowledged them (the moment an event is durable).
package publisher

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ContentType is the structured-mode CloudEvents media type of every message.
const ContentType = "application/cloudevents+json"

// ErrStreamMismatch means the stream exists but does not capture exactly the
// subjects this service publishes on; serving would silently lose events, so
// the receiver refuses to become ready.
var ErrStreamMismatch = errors.New("stream exists with a different subject set")

// StreamConfig describes the stream the receiver needs.
type StreamConfig struct {
	Name     string // STREAM_NAME
	Prefix   string // SUBJECT_PREFIX; the stream captures "<prefix>.>"
	Replicas int    // STREAM_REPLICAS
	// DuplicateWindow is how long JetStream remembers a Nats-Msg-Id. It is the
	// second line of dedupe behind the dedupe store and the only one while that
	// store is down, so it must outlast a claim lease, a receiver restart and
	// PAYCOMET's quick retries; it costs server memory per remembered id, which
	// is why it is minutes, not DEDUPE_TTL.
	DuplicateWindow time.Duration
}

// Subjects returns the subject set the stream must capture.
func (c StreamConfig) Subjects() []string { return []string{c.Prefix + ".>"} }

// EnsureStream creates the stream when missing. When it exists it must
// capture exactly c.Subjects(); otherwise ErrStreamMismatch says why. A
// different duplicate window is brought in line, since it changes no data.
func EnsureStream(ctx context.Context, js jetstream.JetStream, c StreamConfig) (jetstream.Stream, error) {
	s, err := js.Stream(ctx, c.Name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		s, err = js.CreateStream(ctx, jetstream.StreamConfig{
			Name:        c.Name,
			Description: "PAYCOMET notifications as CloudEvents (paycomet-notify)",
			Subjects:    c.Subjects(),
			Storage:     jetstream.FileStorage,
			Replicas:    c.Replicas,
			Duplicates:  c.DuplicateWindow,
			Retention:   jetstream.LimitsPolicy,
		})
		if err != nil {
			return nil, fmt.Errorf("create stream %s: %w", c.Name, err)
		}
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("look up stream %s: %w", c.Name, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("stream %s info: %w", c.Name, err)
	}
	have, want := slices.Clone(info.Config.Subjects), c.Subjects()
	slices.Sort(have)
	if !slices.Equal(have, want) {
		return nil, fmt.Errorf("%w: stream %s captures %q, this receiver publishes on %q; "+
			"change STREAM_NAME or SUBJECT_PREFIX, or fix the stream's subjects", ErrStreamMismatch, c.Name, have, want)
	}
	if info.Config.Duplicates != c.DuplicateWindow {
		cfg := info.Config
		cfg.Duplicates = c.DuplicateWindow
		if s, err = js.UpdateStream(ctx, cfg); err != nil {
			return nil, fmt.Errorf("update stream %s duplicate window: %w", c.Name, err)
		}
	}
	return s, nil
}

// Publisher publishes events and waits for their JetStream ack.
type Publisher struct {
	js     jetstream.JetStream
	stream string
}

// New returns a Publisher whose acks must come from stream.
func New(js jetstream.JetStream, stream string) *Publisher {
	return &Publisher{js: js, stream: stream}
}

// Ack is what JetStream said about one publish.
type Ack struct {
	Sequence  uint64
	Duplicate bool // JetStream had this Nats-Msg-Id in its window already
}

// Publish sends body on subject with Nats-Msg-Id id and returns when the
// stream has stored it (or had it already). ctx bounds the wait.
func (p *Publisher) Publish(ctx context.Context, subject, id string, body []byte) (Ack, error) {
	msg := &nats.Msg{Subject: subject, Data: body, Header: nats.Header{
		jetstream.MsgIDHeader: []string{id},
		"Content-Type":        []string{ContentType},
	}}
	ack, err := p.js.PublishMsg(ctx, msg, jetstream.WithExpectStream(p.stream))
	if err != nil {
		return Ack{}, fmt.Errorf("publish %s: %w", subject, err)
	}
	return Ack{Sequence: ack.Sequence, Duplicate: ack.Duplicate}, nil
}
