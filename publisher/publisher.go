// Package publisher owns the JetStream side of the receiver: it makes sure the
// event stream and the quarantine stream exist with the shape the contract
// promises, checks them read-only for readiness, and publishes events with
// Nats-Msg-Id, returning only once JetStream has acknowledged them (the
// moment an event is durable).
package publisher

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/paycomet-notify/paycomet-notify/tracing"
)

// ContentType is the structured-mode CloudEvents media type of every message.
const ContentType = "application/cloudevents+json"

// ErrStreamMismatch means a stream exists but does not capture exactly the
// subjects this service publishes on; serving would silently lose events, so
// the receiver refuses to start or to become ready.
var ErrStreamMismatch = errors.New("stream exists with a different subject set")

// RejectedSuffix is appended to STREAM_NAME to name the quarantine stream.
const RejectedSuffix = "_REJECTED"

// StreamsConfig describes the two streams the receiver needs.
type StreamsConfig struct {
	Name     string // STREAM_NAME: the event stream
	Prefix   string // SUBJECT_PREFIX
	Replicas int    // STREAM_REPLICAS, for both streams when they are created
	// DuplicateWindow is how long JetStream remembers a Nats-Msg-Id on the
	// event stream. It is the second line of dedupe behind the dedupe store
	// and the only one while that store is down, so it must outlast a claim
	// lease, a receiver restart and PAYCOMET's quick retries; it costs server
	// memory per remembered id, which is why it is minutes, not DEDUPE_TTL.
	DuplicateWindow time.Duration
	// RejectedMaxBytes and RejectedMaxAge bound the quarantine stream
	// (REJECTED_MAX_BYTES, REJECTED_MAX_AGE); the oldest go first.
	RejectedMaxBytes int64
	RejectedMaxAge   time.Duration
}

// EventSubjects is what the event stream captures: every event
// (<prefix>.<terminal>.<operation>.<outcome>, the refresher's card.* and
// reconcile.* findings) and the refresher's dead letters.
func (c StreamsConfig) EventSubjects() []string {
	return []string{c.Prefix + ".*.>", c.Prefix + ".dlq"}
}

// RejectedName is the quarantine stream's name, <STREAM_NAME>_REJECTED.
func (c StreamsConfig) RejectedName() string { return c.Name + RejectedSuffix }

// RejectedSubjects is what the quarantine stream captures.
func (c StreamsConfig) RejectedSubjects() []string { return []string{c.Prefix + ".rejected"} }

// oldSubjects is what an earlier version's event stream captured, quarantine
// included.
func (c StreamsConfig) oldSubjects() []string { return []string{c.Prefix + ".>"} }

// rejectedDuplicates is the quarantine's Nats-Msg-Id window. Every rejected
// request has its own random id, so the window only costs server memory
// per message: keep it short.
const rejectedDuplicates = time.Minute

// Streams is what EnsureStreams found or made.
type Streams struct {
	Events, Rejected jetstream.Stream
	// Notes say what was created or changed, one sentence each, for the
	// caller to log; empty when both streams were already as configured.
	Notes []string
}

// EnsureStreams creates the event and quarantine streams when missing and
// brings them to the configured shape. An event stream created by an
// earlier version on <prefix>.> is moved to EventSubjects() first, because
// JetStream refuses a second stream whose subjects overlap; the rejected
// notifications it holds stay in it, readable by sequence. An event stream
// capturing anything else is ErrStreamMismatch. The event stream's limits
// are never touched (it is never bounded behind the operator's back); the
// quarantine's limits follow the configuration.
func EnsureStreams(ctx context.Context, js jetstream.JetStream, c StreamsConfig) (Streams, error) {
	var out Streams
	var err error
	if out.Events, err = ensureEvents(ctx, js, c, &out.Notes); err != nil {
		return out, err
	}
	if out.Rejected, err = ensureRejected(ctx, js, c, &out.Notes); err != nil {
		return out, err
	}
	return out, nil
}

func ensureEvents(ctx context.Context, js jetstream.JetStream, c StreamsConfig, notes *[]string) (jetstream.Stream, error) {
	want := c.EventSubjects()
	s, err := js.Stream(ctx, c.Name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		s, err = js.CreateStream(ctx, jetstream.StreamConfig{
			Name:        c.Name,
			Description: "PAYCOMET notifications as CloudEvents, and the refresher's dead letters (paycomet-notify)",
			Subjects:    want,
			Storage:     jetstream.FileStorage,
			Replicas:    c.Replicas,
			Duplicates:  c.DuplicateWindow,
			Retention:   jetstream.LimitsPolicy,
		})
		if err != nil {
			return nil, fmt.Errorf("create stream %s: %w", c.Name, err)
		}
		*notes = append(*notes, fmt.Sprintf("created event stream %s on %q", c.Name, want))
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("look up stream %s: %w", c.Name, err)
	}
	cfg := s.CachedInfo().Config
	have := sorted(cfg.Subjects)
	update := false
	switch {
	case slices.Equal(have, sorted(want)):
	case slices.Equal(have, c.oldSubjects()):
		cfg.Subjects = want
		update = true
		*notes = append(*notes, fmt.Sprintf("event stream subjects moved: stream %s now captures %q instead of %q; "+
			"the rejected notifications it holds stay in it, new ones go to %s", c.Name, want, have, c.RejectedName()))
	default:
		return nil, fmt.Errorf("%w: stream %s captures %q, this receiver publishes on %q; "+
			"change STREAM_NAME or SUBJECT_PREFIX, or fix the stream's subjects", ErrStreamMismatch, c.Name, have, want)
	}
	if cfg.Duplicates != c.DuplicateWindow {
		// It changes no data, and it is the only dedupe while the store is down.
		*notes = append(*notes, fmt.Sprintf("stream %s duplicate window %s -> %s", c.Name, cfg.Duplicates, c.DuplicateWindow))
		cfg.Duplicates = c.DuplicateWindow
		update = true
	}
	if !update {
		return s, nil
	}
	if s, err = js.UpdateStream(ctx, cfg); err != nil {
		return nil, fmt.Errorf("update stream %s: %w", c.Name, err)
	}
	return s, nil
}

func (c StreamsConfig) rejectedConfig() jetstream.StreamConfig {
	dup := rejectedDuplicates
	if c.RejectedMaxAge > 0 && c.RejectedMaxAge < dup {
		dup = c.RejectedMaxAge // JetStream refuses a window longer than the age bound
	}
	maxBytes := c.RejectedMaxBytes
	if maxBytes <= 0 {
		maxBytes = -1
	}
	return jetstream.StreamConfig{
		Name:        c.RejectedName(),
		Description: "rejected PAYCOMET notifications with their exact requests, bounded (paycomet-notify quarantine)",
		Subjects:    c.RejectedSubjects(),
		Storage:     jetstream.FileStorage,
		Replicas:    c.Replicas,
		Duplicates:  dup,
		Retention:   jetstream.LimitsPolicy,
		MaxBytes:    maxBytes,
		MaxAge:      c.RejectedMaxAge,
		Discard:     jetstream.DiscardOld,
	}
}

func ensureRejected(ctx context.Context, js jetstream.JetStream, c StreamsConfig, notes *[]string) (jetstream.Stream, error) {
	want := c.rejectedConfig()
	s, err := js.Stream(ctx, want.Name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		if s, err = js.CreateStream(ctx, want); err != nil {
			return nil, fmt.Errorf("create stream %s: %w", want.Name, err)
		}
		*notes = append(*notes, fmt.Sprintf("created quarantine stream %s on %q (max bytes %d, max age %s)",
			want.Name, want.Subjects, want.MaxBytes, want.MaxAge))
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("look up stream %s: %w", want.Name, err)
	}
	cfg := s.CachedInfo().Config
	if have := sorted(cfg.Subjects); !slices.Equal(have, want.Subjects) {
		return nil, fmt.Errorf("%w: stream %s captures %q, the quarantine is %q; "+
			"change STREAM_NAME or SUBJECT_PREFIX, or fix the stream's subjects", ErrStreamMismatch, want.Name, have, want.Subjects)
	}
	if cfg.MaxBytes == want.MaxBytes && cfg.MaxAge == want.MaxAge && cfg.Discard == want.Discard && cfg.Duplicates == want.Duplicates {
		return s, nil
	}
	*notes = append(*notes, fmt.Sprintf("quarantine stream %s limits: max bytes %d -> %d, max age %s -> %s",
		want.Name, cfg.MaxBytes, want.MaxBytes, cfg.MaxAge, want.MaxAge))
	cfg.MaxBytes, cfg.MaxAge, cfg.Discard, cfg.Duplicates = want.MaxBytes, want.MaxAge, want.Discard, want.Duplicates
	if s, err = js.UpdateStream(ctx, cfg); err != nil {
		return nil, fmt.Errorf("update stream %s: %w", want.Name, err)
	}
	return s, nil
}

// CheckStreams is the readiness check: both streams exist and capture the
// subjects this receiver publishes on. It only reads; a probe never creates
// or changes a stream, whatever it finds.
func CheckStreams(ctx context.Context, js jetstream.JetStream, c StreamsConfig) error {
	for _, want := range []struct {
		name     string
		subjects []string
	}{{c.Name, c.EventSubjects()}, {c.RejectedName(), c.RejectedSubjects()}} {
		s, err := js.Stream(ctx, want.name)
		if err != nil {
			return fmt.Errorf("stream %s: %w", want.name, err)
		}
		if have := sorted(s.CachedInfo().Config.Subjects); !slices.Equal(have, sorted(want.subjects)) {
			return fmt.Errorf("%w: stream %s captures %q, want %q", ErrStreamMismatch, want.name, have, want.subjects)
		}
	}
	return nil
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// Publisher publishes events and waits for their JetStream ack.
type Publisher struct {
	js     jetstream.JetStream
	stream string
	opts   []jetstream.PublishOpt
	tracer trace.Tracer // nil: no spans (trace context is still carried)
}

// New returns a Publisher whose acks must come from stream: the event
// stream, or the quarantine stream for rejected requests.
func New(js jetstream.JetStream, stream string) *Publisher {
	return &Publisher{js: js, stream: stream, opts: []jetstream.PublishOpt{jetstream.WithExpectStream(stream)}}
}

// Traced makes every publish a producer span that ends at the JetStream
// ack, when t is on. It returns p.
func (p *Publisher) Traced(t *tracing.Tracing) *Publisher {
	if t.On() {
		p.tracer = t.Tracer("github.com/paycomet-notify/paycomet-notify/publisher")
	}
	return p
}

// Ack is what JetStream said about one publish.
type Ack struct {
	Sequence  uint64
	Duplicate bool // JetStream had this Nats-Msg-Id in its window already
}

// Publish sends body on subject with Nats-Msg-Id id and returns when the
// stream has stored it (or had it already). ctx bounds the wait. The
// trace context of ctx's span, if any, goes in the headers (traceparent,
// tracestate): the publish span's when the publisher is Traced.
func (p *Publisher) Publish(ctx context.Context, subject, id string, body []byte) (Ack, error) {
	msg := &nats.Msg{Subject: subject, Data: body, Header: nats.Header{
		jetstream.MsgIDHeader: []string{id},
		"Content-Type":        []string{ContentType},
	}}
	var span trace.Span
	if p.tracer != nil {
		ctx, span = p.tracer.Start(ctx, "publish "+p.stream, trace.WithSpanKind(trace.SpanKindProducer),
			trace.WithAttributes(
				attribute.String("messaging.system", "nats"),
				attribute.String("messaging.operation.type", "send"),
				attribute.String("messaging.destination.name", subject),
				attribute.String("messaging.message.id", id),
				attribute.Int("messaging.message.body.size", len(body)),
			))
		defer span.End()
	}
	tracing.Inject(ctx, msg.Header)
	ack, err := p.js.PublishMsg(ctx, msg, p.opts...)
	if err != nil {
		if span != nil {
			span.SetStatus(codes.Error, "publish failed")
			span.RecordError(err)
		}
		return Ack{}, fmt.Errorf("publish %s: %w", subject, err)
	}
	if span != nil {
		span.SetAttributes(attribute.Int64("paycomet.jetstream.sequence", int64(ack.Sequence)),
			attribute.Bool("paycomet.jetstream.duplicate", ack.Duplicate))
	}
	return Ack{Sequence: ack.Sequence, Duplicate: ack.Duplicate}, nil
}
