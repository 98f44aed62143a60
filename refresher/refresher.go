// Package refresher is the card-token refresh consumer (contract section 9).
// It reads the receiver's JetStream stream and:
//
//   - learns IdUser -> TokenUser (per terminal) from every OK event that
//     carries both, card registrations (107) and payments with a token, into
//     a durable key-value registry, once BankStore info_user has confirmed
//     a new or changed pair (those fields are not signed; a pair BankStore
//     refuses is counted and dropped);
//   - answers each card-expiry notice (108) with exactly one event:
//     card.refresh_required (info_user found the card), card.token_invalid
//     (info_user answered 1001) or card.token_unknown (no token learnt);
//   - completes renewals: a card.renewal_started message names the order of
//     a new card registration and the user it replaces; once that order's
//     107 OK has arrived (in either order), the old user is removed with
//     remove_user and card.token_replaced is published. Never before.
//
// Why one durable consumer for all three subjects: JetStream delivers a
// consumer's messages in stream order, so a notice is handled after every
// registration that was published before it. With separate consumers a
// 108 could overtake the 107 that registered its token and be answered
// token_unknown although the token had arrived first. Redeliveries (a Nak'd
// message) are out of order by nature, and every handler is written so that
// order does not matter for them.
//
// Failure handling: a BankStore or NATS failure Naks the message with the
// delay REFRESHER_BACKOFF gives for its delivery count; at
// REFRESHER_MAX_DELIVER deliveries, or at once for a failure no retry can
// fix (errors.go), the message is published on <prefix>.dlq as a
// paycomet.card.dead_letter CloudEvent (DeadLetter) and only then
// terminated. If that publish fails, the message is Nak'd and comes back.
//
// Idempotency: every output's Nats-Msg-Id is derived from its input
// (outputs.go), and a notice's durable processed mark, written after its
// output is acknowledged and before the notice is, is checked first. A
// redelivered notice therefore never produces a second event, even after
// JetStream's duplicate window.
package refresher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"

	"github.com/paycomet-notify/paycomet-notify/bankstore"
	"github.com/paycomet-notify/paycomet-notify/publisher"
	"github.com/paycomet-notify/paycomet-notify/tracing"
)

// BankStore is what the refresher needs of a BankStore client for one
// terminal (*bankstore.Client has it).
type BankStore interface {
	InfoUser(ctx context.Context, r bankstore.UserRequest) (*bankstore.InfoUserResponse, error)
	RemoveUser(ctx context.Context, r bankstore.UserRequest) (*bankstore.RemoveResponse, error)
}

// DefaultDurable is the name of the refresher's durable consumer.
const DefaultDurable = "paycomet-refresher"

// Config is the refresher's share of the service configuration.
type Config struct {
	Prefix   string // SUBJECT_PREFIX
	Stream   string // STREAM_NAME; the buckets are named after it
	Replicas int    // STREAM_REPLICAS, for the buckets
	Durable  string // consumer name; DefaultDurable when empty

	// MaxDeliver is REFRESHER_MAX_DELIVER: the delivery that still fails
	// at this count is dead-lettered.
	MaxDeliver int
	// Backoff is REFRESHER_BACKOFF: the Nak delay after delivery n is
	// Backoff[n-1], the last value repeated.
	Backoff []time.Duration
	// CallTimeout bounds one BankStore call (default 20s). The clients'
	// own *http.Client timeouts should not be longer.
	CallTimeout time.Duration
	// PublishTimeout bounds each JetStream publish and KV operation
	// (default 5s).
	PublishTimeout time.Duration
	// StateTTL is how long processed marks, pending renewals and
	// registrations by order are kept (default 90 days): a customer has
	// that long to complete a renewal, and a notice replayed within it is
	// still recognised as processed.
	StateTTL time.Duration
	// Tracing continues the trace of each consumed message (its
	// traceparent header) into the BankStore calls and the outputs; nil:
	// off.
	Tracing *tracing.Tracing
}

func (c *Config) defaults() error {
	if c.Prefix == "" || c.Stream == "" {
		return errors.New("refresher: prefix and stream are required")
	}
	if c.Durable == "" {
		c.Durable = DefaultDurable
	}
	if c.Replicas <= 0 {
		c.Replicas = 1
	}
	if c.MaxDeliver < 1 {
		return errors.New("refresher: MaxDeliver must be at least 1")
	}
	if len(c.Backoff) == 0 {
		c.Backoff = []time.Duration{5 * time.Second}
	}
	if c.CallTimeout <= 0 {
		c.CallTimeout = 20 * time.Second
	}
	if c.PublishTimeout <= 0 {
		c.PublishTimeout = 5 * time.Second
	}
	if c.StateTTL <= 0 {
		c.StateTTL = 90 * 24 * time.Hour
	}
	return nil
}

// ackWait is how long the server waits for an ack before redelivering: the
// longest a message can take (one BankStore call plus a few NATS
// round trips, each bounded) with room to spare. A process that dies
// mid-message gets its message redelivered after this.
func (c Config) ackWait() time.Duration { return c.CallTimeout + 6*c.PublishTimeout + 10*time.Second }

// Subjects are the consumer's filter subjects.
func (c Config) Subjects() []string {
	return []string{
		c.Prefix + ".*.card_expiry.notice",
		c.Prefix + ".*.*.ok",
		c.Prefix + ".*." + OperationCard + "." + KindRenewalStarted,
	}
}

// DeadLetterSubject is where given-up messages go: "<prefix>.dlq".
func (c Config) DeadLetterSubject() string { return c.Prefix + ".dlq" }

// Refresher consumes the stream. Open creates what it needs; Run consumes.
type Refresher struct {
	cfg   Config
	js    jetstream.JetStream
	banks map[string]BankStore
	m     *Metrics
	log   *slog.Logger
	now   func() time.Time
	store *store
	cons  jetstream.Consumer
	pub   *publisher.Publisher
	trace trace.Tracer // nil when tracing is off
}

// Open creates or updates the registry and state buckets and the durable
// consumer on cfg.Stream, which must exist (the receiver, or the command,
// creates it). banks holds one BankStore client per configured terminal; a
// message for another terminal is dead-lettered. now is the clock of
// output events and processed marks.
func Open(ctx context.Context, cfg Config, js jetstream.JetStream, banks map[string]BankStore, m *Metrics, log *slog.Logger, now func() time.Time) (*Refresher, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	st, err := openStore(ctx, js, cfg.Stream, cfg.Replicas, cfg.StateTTL)
	if err != nil {
		return nil, fmt.Errorf("refresher: %w", err)
	}
	// MaxDeliver is unlimited on the server on purpose: the refresher
	// enforces cfg.MaxDeliver itself (settle), because the server stops
	// delivering at its limit, and a message whose dead-letter publish
	// failed on that last delivery (NATS trouble) would then sit in the
	// stream unacknowledged forever. Here it comes back after the Nak and
	// goes straight to the dead-letter subject.
	cons, err := js.CreateOrUpdateConsumer(ctx, cfg.Stream, jetstream.ConsumerConfig{
		Durable:        cfg.Durable,
		Description:    "paycomet-notify refresher: card-expiry notices, token registrations, renewals",
		FilterSubjects: cfg.Subjects(),
		DeliverPolicy:  jetstream.DeliverAllPolicy,
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        cfg.ackWait(),
		MaxDeliver:     -1,
		MaxAckPending:  1000,
	})
	if err != nil {
		return nil, fmt.Errorf("refresher: consumer %s on stream %s: %w", cfg.Durable, cfg.Stream, err)
	}
	rf := &Refresher{cfg: cfg, js: js, banks: banks, m: m, log: log, now: now, store: st, cons: cons,
		pub: publisher.New(js, cfg.Stream).Traced(cfg.Tracing)}
	if cfg.Tracing.On() {
		rf.trace = cfg.Tracing.Tracer(tracerName)
	}
	return rf, nil
}

// ErrStopped means consuming ended although ctx was not cancelled: the
// consumer was deleted or the connection closed. The process should exit
// and be restarted.
var ErrStopped = errors.New("refresher: consuming stopped")

// Run handles messages one at a time until ctx is cancelled, then stops
// pulling, lets the message in hand finish (its BankStore call, publish and
// ack run on their own deadlines, not ctx) and returns nil. Messages pulled
// but not started are not acknowledged and come back after the ack wait.
func (r *Refresher) Run(ctx context.Context) error {
	// One message at a time from the server: a buffered message would age
	// towards its ack wait while the one before it waits on BankStore.
	it, err := r.cons.Messages(jetstream.PullMaxMessages(1))
	if err != nil {
		return fmt.Errorf("refresher: consume: %w", err)
	}
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	defer it.Stop()
	for {
		msg, err := it.Next()
		if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("%w: %w", ErrStopped, err)
		}
		if err != nil {
			// Heartbeats missed, leadership changed, ...: the iterator
			// carries on by itself; a terminal error is followed by
			// ErrMsgIteratorClosed.
			r.log.Warn("consumer", "err", err)
			continue
		}
		r.handle(msg)
	}
}

// Ready reports whether NATS, the consumer and both buckets answer.
func (r *Refresher) Ready(ctx context.Context) error {
	if !r.js.Conn().IsConnected() {
		return fmt.Errorf("nats %s", r.js.Conn().Status())
	}
	if _, err := r.cons.Info(ctx); err != nil {
		return fmt.Errorf("consumer %s: %w", r.cfg.Durable, err)
	}
	return r.store.ping(ctx)
}

// Message kinds, by subject.
const (
	msgNotice       = "notice"
	msgRegistration = "registration" // any OK event, learnt from when it carries a token
	msgRenewal      = "renewal"
)

// route tells a message's kind and terminal from its subject,
// <prefix>.<terminal>.<operation>.<outcome>.
func (r *Refresher) route(subject string) (kind, terminal, operation string) {
	parts := strings.Split(subject, ".")
	if len(parts) != 4 || parts[0] != r.cfg.Prefix {
		return "", "", ""
	}
	terminal, operation = parts[1], parts[2]
	switch {
	case operation == "card_expiry" && parts[3] == "notice":
		return msgNotice, terminal, operation
	case operation == OperationCard && parts[3] == KindRenewalStarted:
		return msgRenewal, terminal, operation
	case parts[3] == "ok":
		return msgRegistration, terminal, operation
	}
	return "", terminal, operation
}

// delivery is one message being handled.
type delivery struct {
	msg       jetstream.Msg
	seq       uint64
	delivered uint64
	terminal  string
	operation string
}

// handle runs one message to an ack, a Nak with delay or a dead letter.
func (r *Refresher) handle(msg jetstream.Msg) {
	md, err := msg.Metadata()
	if err != nil { // not a JetStream delivery: cannot happen on a pull consumer
		r.log.Error("message without JetStream metadata", "subject", msg.Subject(), "err", err)
		_ = msg.Term()
		return
	}
	kind, terminal, operation := r.route(msg.Subject())
	d := delivery{msg: msg, seq: md.Sequence.Stream, delivered: md.NumDelivered, terminal: terminal, operation: operation}
	// Every step below is bounded by its own timeout; this only caps the
	// total below the ack wait, so the server does not redeliver a message
	// that is still being worked on.
	ctx, cancel := context.WithTimeout(context.Background(), r.cfg.ackWait()-5*time.Second)
	defer cancel()
	ctx, span := r.consumeSpan(ctx, d, kind)
	defer span.End()

	if d.delivered > uint64(r.cfg.MaxDeliver) {
		// An earlier last delivery failed and could not be dead-lettered
		// (or the process died on it): do not try again, dead-letter it.
		r.settle(ctx, d, kind, &permanentError{cause: CauseDeliveryLimit,
			err: fmt.Errorf("delivery limit %d reached; the last attempt's error was not recorded", r.cfg.MaxDeliver)})
		return
	}
	switch kind {
	case msgNotice:
		err = r.handleNotice(ctx, d)
	case msgRegistration:
		err = r.handleRegistration(ctx, d)
	case msgRenewal:
		err = r.handleRenewal(ctx, d)
	default: // outside the filter subjects: nothing to do
		err = nil
	}
	failed(span, err)
	r.settle(ctx, d, kind, err)
}

// settle acknowledges, retries or dead-letters d after its handler returned
// err.
func (r *Refresher) settle(ctx context.Context, d delivery, kind string, err error) {
	log := r.log.With("subject", d.msg.Subject(), "stream_sequence", d.seq, "deliveries", d.delivered)
	if err == nil {
		actx, cancel := context.WithTimeout(ctx, r.cfg.PublishTimeout)
		defer cancel()
		if aerr := d.msg.DoubleAck(actx); aerr != nil {
			// The work is done and recorded; the redelivery finds it so.
			log.Warn("ack failed; the message will be redelivered and recognised as done", "err", aerr)
		}
		return
	}
	var perm *permanentError
	if !errors.As(err, &perm) {
		if d.delivered < uint64(r.cfg.MaxDeliver) {
			delay := r.backoff(d.delivered)
			r.m.retry(kind)
			log.Warn("will retry", "err", err, "retry_in", delay.String())
			if nerr := d.msg.NakWithDelay(delay); nerr != nil {
				log.Warn("nak failed; the message comes back after the ack wait", "err", nerr)
			}
			return
		}
		perm = &permanentError{cause: CauseDeliveryLimit, err: fmt.Errorf("failed %d times, the delivery limit; last error: %w", d.delivered, err)}
	}
	if derr := r.deadLetter(ctx, d, perm); derr != nil {
		delay := r.backoff(d.delivered)
		log.Error("dead letter not published; will try again", "err", derr, "reason", perm.Error(), "retry_in", delay.String())
		if nerr := d.msg.NakWithDelay(delay); nerr != nil {
			log.Warn("nak failed; the message comes back after the ack wait", "err", nerr)
		}
		return
	}
	r.m.deadLetter(perm.cause)
	log.Error("dead-lettered", "cause", perm.cause, "reason", perm.Error(), "dlq", r.cfg.DeadLetterSubject())
	if terr := d.msg.TermWithReason("dead-lettered: " + perm.cause); terr != nil {
		// Redelivered past the limit, it is dead-lettered again under the
		// same Nats-Msg-Id, which JetStream drops as a duplicate.
		log.Warn("term failed", "err", terr)
	}
}

// backoff is the Nak delay after delivery n (1-based).
func (r *Refresher) backoff(n uint64) time.Duration {
	i := min(int(n), len(r.cfg.Backoff)) - 1
	return r.cfg.Backoff[max(i, 0)]
}

// deadLetter publishes d on <prefix>.dlq and waits for the stream's ack.
func (r *Refresher) deadLetter(ctx context.Context, d delivery, perm *permanentError) error {
	dl := DeadLetter{
		Reason:          perm.Error(),
		Cause:           perm.cause,
		Consumer:        r.cfg.Durable,
		OriginalSubject: d.msg.Subject(),
		StreamSequence:  d.seq,
		Deliveries:      d.delivered,
		OriginalMsgID:   d.msg.Headers().Get(jetstream.MsgIDHeader),
		FailedAt:        r.now(),
	}
	if perm.cause == CauseBankstoreError && perm.code != 0 {
		dl.ErrorCode, dl.ErrorDescription = perm.code, bankstore.ErrorMeaning(perm.code)
	}
	if body := d.msg.Data(); json.Valid(body) {
		dl.Original = json.RawMessage(body)
	} else {
		dl.OriginalBase64 = body
	}
	source := "/paycomet-notify/refresher"
	if d.terminal != "" {
		source = "/paycomet/terminals/" + d.terminal
	}
	id := deadLetterID(r.cfg.Durable, d.seq)
	ev := output{kind: KindDeadLetter, terminal: d.terminal, data: dl}.event(id, r.now())
	ev.Source, ev.Subject = source, d.msg.Subject()
	ev.TraceParent = r.traceParent(ctx)
	body, err := ev.Encode()
	if err != nil {
		return err
	}
	pctx, cancel := context.WithTimeout(ctx, r.cfg.PublishTimeout)
	defer cancel()
	_, err = r.pub.Publish(pctx, r.cfg.DeadLetterSubject(), id, body)
	return err
}

// publish sends o with id and waits for the stream's ack.
func (r *Refresher) publish(ctx context.Context, o output, id string) (publisher.Ack, error) {
	ev := o.event(id, r.now())
	ev.TraceParent = r.traceParent(ctx)
	body, err := ev.Encode()
	if err != nil {
		return publisher.Ack{}, err
	}
	pctx, cancel := context.WithTimeout(ctx, r.cfg.PublishTimeout)
	defer cancel()
	return r.pub.Publish(pctx, ev.Topic(r.cfg.Prefix), id, body)
}

// kvCtx bounds one KV operation.
func (r *Refresher) kvCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, r.cfg.PublishTimeout)
}
