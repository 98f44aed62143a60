// Package notify is the notification path as a function: it takes one
// received request (bytes, channel, source) and returns an Outcome, knowing
// nothing of HTTP frameworks. The handler maps the Outcome to an answer in one
// place; quarantine replay and reconciliation call the same Process, so there
// is one path to trust (house style, habit 14).
//
// The path is fixed: read errors and media type, decode the form, source
// check, ping, authenticate, parse, stale check, claim in the dedupe store,
// publish and wait for the JetStream ack, mark seen. Nothing is answered
// Accepted or Duplicate before the event is durable; a claim whose publish
// failed is released; every rejection is quarantined with the exact request
// on <prefix>.rejected (or the outcome is Unavailable, so PAYCOMET retries).
package notify

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"mime"
	"net/netip"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/paycomet-notify/paycomet-notify/dedupe"
	"github.com/paycomet-notify/paycomet-notify/events"
	"github.com/paycomet-notify/paycomet-notify/publisher"
	"github.com/paycomet-notify/paycomet-notify/tracing"
)

// Deduper is the part of a dedupe store the path uses.
type Deduper interface {
	Claim(ctx context.Context, key string) (dedupe.Lease, dedupe.Status, error)
	MarkSeen(ctx context.Context, l dedupe.Lease, fingerprint string) error
	Release(ctx context.Context, l dedupe.Lease) error
	Name() string
	Up() bool
}

// Publisher publishes one event and returns once JetStream acknowledged it.
// The path has two: one bound to the event stream, one to the quarantine.
type Publisher interface {
	Publish(ctx context.Context, subject, id string, body []byte) (publisher.Ack, error)
}

// Config is the path's share of the service configuration. Zero durations
// and rates take the contract's defaults.
type Config struct {
	Prefix       string         // SUBJECT_PREFIX
	AllowedIPs   []netip.Prefix // ALLOWED_IPS; empty: any source
	MaxBodyBytes int64          // MAX_BODY_BYTES, recorded in too_large details
	// DedupeTTL is how long a notification is remembered; a signed one older
	// than that cannot be told from a replay and is rejected as stale.
	DedupeTTL      time.Duration
	InFlightWait   time.Duration // how long a copy waits for the first copy's publish before publishing too (takeover)
	PublishTimeout time.Duration // bound on the wait for a JetStream ack
	StoreTimeout   time.Duration // bound on each dedupe store call
	// RejectedRatePerSource is how many rejected requests per second and
	// source address are stored (bursts of 10 times that); the rest are
	// answered as usual and only counted. +Inf stores all.
	RejectedRatePerSource float64
	// Terminals are the configured terminal ids, so the per-terminal 401
	// series exist at 0 before the first failure.
	Terminals []string
	// Tracing makes a span per notification (tracing.go); nil: off.
	Tracing *tracing.Tracing
}

func (c *Config) defaults() {
	if c.DedupeTTL <= 0 {
		c.DedupeTTL = 168 * time.Hour
	}
	if c.InFlightWait <= 0 {
		c.InFlightWait = 3 * time.Second
	}
	if c.PublishTimeout <= 0 {
		c.PublishTimeout = 5 * time.Second
	}
	if c.StoreTimeout <= 0 {
		c.StoreTimeout = time.Second
	}
	if c.RejectedRatePerSource <= 0 || math.IsNaN(c.RejectedRatePerSource) {
		c.RejectedRatePerSource = 10
	}
}

// Request is one received notification, as the transport saw it.
type Request struct {
	Body         []byte // at most MAX_BODY_BYTES bytes
	Truncated    bool   // the body was longer and only its first bytes are in Body
	Query        string // raw query string, merged after the body's fields
	ContentType  string // the Content-Type header as sent
	URLTokenPath bool   // came through the secret URL_TOKEN path
	Source       netip.Addr
	ReceivedAt   time.Time // zero: now
	// ReadErr is why the body could not be read whole: ErrTooLarge,
	// ErrBodyTimeout, or any other error (a broken connection).
	ReadErr error
	// AcceptStale skips the stale check: an operator replaying a quarantined
	// notification on purpose (quarantine replay --accept-stale).
	AcceptStale bool
}

// Errors a transport puts in Request.ReadErr.
var (
	ErrTooLarge    = errors.New("body is larger than MAX_BODY_BYTES")
	ErrBodyTimeout = errors.New("the body did not arrive in time")
)

// Kind is what became of a request.
type Kind int

const (
	// Accepted: published and acknowledged by JetStream.
	Accepted Kind = iota + 1
	// Duplicate: a copy of a notification already durable; nothing new was
	// published (a conflicting copy was also quarantined).
	Duplicate
	// Rejected: a 4xx (Outcome.Status); quarantined unless rate-limited.
	Rejected
	// Unavailable: the event (or the quarantine of a rejection) could not be
	// made durable; nothing was remembered, so a retry is processed anew.
	Unavailable
	// Ping: PAYCOMET's URL check.
	Ping
	// Internal: a defect of ours (the event could not be encoded).
	Internal
)

// String names the kind for logs.
func (k Kind) String() string {
	switch k {
	case Accepted:
		return "accepted"
	case Duplicate:
		return "duplicate"
	case Rejected:
		return "rejected"
	case Unavailable:
		return "unavailable"
	case Ping:
		return "ping"
	case Internal:
		return "internal"
	}
	return "unknown"
}

// Outcome is what Process did with a request.
type Outcome struct {
	Kind    Kind
	EventID string // the event published or copied (Accepted, Duplicate, a conflicting copy)
	// Reason is the quarantine reason code (contract §4) of a rejection or
	// a conflicting copy.
	Reason string
	// Detail is the sentence a person reads: the answer body of a
	// rejection. It names no internal address and no secret.
	Detail       string
	QuarantineID string // id of the quarantine message stored, "" when none was
	// Status is the HTTP status of a Rejected outcome (also the quarantine
	// message's data.status); 0 for the other kinds.
	Status int
}

// Path is the notification path; safe for concurrent use.
type Path struct {
	cfg        Config
	verifier   *events.Verifier
	store      Deduper
	pub        Publisher
	quarantine Publisher
	m          *Metrics
	log        *slog.Logger
	now        func() time.Time
	limiter    *sourceLimiter
	warn       *logLimiter
	terminals  map[string]bool
	dupStore   prometheus.Counter // duplicates{layer=<store>}
	tracer     trace.Tracer       // nil when tracing is off
}

// New builds the path. pub publishes to the event stream, quarantine to
// <STREAM_NAME>_REJECTED.
func New(cfg Config, v *events.Verifier, store Deduper, pub Publisher, quarantine Publisher, m *Metrics, log *slog.Logger) *Path {
	cfg.defaults()
	p := &Path{cfg: cfg, verifier: v, store: store, pub: pub, quarantine: quarantine, m: m, log: log, now: time.Now,
		terminals: make(map[string]bool, len(cfg.Terminals))}
	p.limiter = newSourceLimiter(cfg.RejectedRatePerSource, defaultMaxSources, p.now)
	p.warn = newLogLimiter(time.Second, p.now)
	if cfg.Tracing.On() {
		p.tracer = cfg.Tracing.Tracer(tracerName)
	}
	for _, t := range cfg.Terminals {
		p.terminals[t] = true
		m.unauthorized.WithLabelValues(t)
	}
	m.watchStore(store.Up)
	p.dupStore = m.dupStore(store.Name())
	return p
}

// formType is the only media type a non-empty body may have.
const formType = "application/x-www-form-urlencoded"

// Process runs one request through the path. ctx carries tracing and
// values only: the path bounds its own waits, and a client that went away
// does not abandon a publish half way (PAYCOMET's retry finds it done).
func (p *Path) Process(ctx context.Context, r Request) Outcome {
	ctx = context.WithoutCancel(ctx)
	if p.tracer != nil {
		return p.processTraced(ctx, r)
	}
	return p.process(ctx, r)
}

func (p *Path) process(ctx context.Context, r Request) Outcome {
	if r.ReceivedAt.IsZero() {
		r.ReceivedAt = p.now()
	}
	rej := rejection{req: &r}
	if r.ReadErr != nil {
		switch {
		case errors.Is(r.ReadErr, ErrTooLarge):
			rej.reason, rej.status, rej.detail = events.ReasonTooLarge, 413, ErrTooLarge.Error()
		case errors.Is(r.ReadErr, ErrBodyTimeout):
			rej.reason, rej.status, rej.detail = events.ReasonBodyTimeout, 408, "the request body did not arrive within the read timeout"
		default:
			rej.reason, rej.status, rej.detail = events.ReasonMalformed, 400, "the request body could not be read"
		}
		return p.reject(ctx, rej)
	}
	if len(r.Body) > 0 && !isForm(r.ContentType) {
		rej.reason, rej.status, rej.detail = events.ReasonMediaType, 415, "Content-Type must be "+formType
		return p.reject(ctx, rej)
	}
	form, err := events.DecodeForm(r.Body, r.Query)
	rej.form = form
	if err != nil {
		return p.rejectErr(ctx, rej, err)
	}
	if len(p.cfg.AllowedIPs) > 0 && !contains(p.cfg.AllowedIPs, r.Source) {
		rej.reason, rej.status, rej.detail = events.ReasonForbiddenSource, 403, "source address is not in ALLOWED_IPS"
		return p.reject(ctx, rej)
	}
	values := form.Values()
	if values.Get("ping") == "1" && values.Get("TransactionType") == "" {
		return Outcome{Kind: Ping}
	}
	ch := events.Channel{URLToken: r.URLTokenPath, AllowedIP: len(p.cfg.AllowedIPs) > 0}
	auth, err := p.authenticate(ctx, values, ch)
	rej.auth = auth
	if err != nil {
		return p.rejectErr(ctx, rej, err)
	}
	ev, err := events.Parse(form, auth, r.ReceivedAt)
	if err != nil {
		if errors.Is(err, events.ErrNotAuthenticated) {
			return p.internal("parse", err, auth)
		}
		return p.rejectErr(ctx, rej, err)
	}
	if !r.AcceptStale {
		if err := events.CheckFresh(ev, auth, r.ReceivedAt, p.cfg.DedupeTTL); err != nil {
			return p.rejectErr(ctx, rej, err)
		}
	}
	ev.TraceParent = p.traceParent(ctx)
	body, err := ev.Encode()
	if err != nil {
		return p.internal("encode", err, auth)
	}
	rej.eventID = ev.ID
	return p.deliver(ctx, ev, body, events.Fingerprint(values), auth.Type, rej)
}

func (p *Path) internal(what string, err error, auth events.Auth) Outcome {
	p.log.Error("notification path defect: "+what, "err", err, "transaction_type", auth.Type, "terminal", auth.Terminal)
	p.m.types(auth.Type).unavailable.Inc()
	return Outcome{Kind: Internal, Detail: "internal error"}
}

// isForm accepts the form media type with any parameters; the exact header
// PAYCOMET sends needs no parsing.
func isForm(ct string) bool {
	if ct == formType {
		return true
	}
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && mt == formType
}

func contains(ps []netip.Prefix, a netip.Addr) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// deliver runs claim → publish → mark seen.
func (p *Path) deliver(ctx context.Context, ev events.Event, body []byte, fp string, typ int, rej rejection) Outcome {
	ts := p.m.types(typ)
	lease, held, st := p.tracedClaim(ctx, ev.ID)
	switch st {
	case claimSeen:
		ts.duplicate.Inc()
		if out, ok := p.seenReconciled(ctx, ev, lease, fp, rej); ok {
			return out
		}
		if lease.Fingerprint != "" && lease.Fingerprint != fp {
			return p.conflictingCopy(ctx, rej)
		}
		return Outcome{Kind: Duplicate, EventID: ev.ID}
	}
	if held {
		if out, ok := p.lateReconciled(ctx, ev, lease, fp, rej); ok {
			return out
		}
	}
	takeover := st == claimTakeover

	t0 := p.now()
	ack, err := p.publish(ctx, ev, body)
	if err != nil {
		if held {
			p.release(ctx, lease)
		}
		ts.unavailable.Inc()
		p.warnf("publish", "publish failed; answering 503 so PAYCOMET retries",
			"err", err, "event_id", ev.ID, "transaction_type", typ, "terminal", ev.Terminal)
		return Outcome{Kind: Unavailable, EventID: ev.ID, Detail: "the event could not be made durable; retry"}
	}
	p.m.publishSeconds.Observe(p.now().Sub(t0).Seconds())
	if ack.Duplicate {
		p.m.dupJetStream.Inc()
		ts.duplicate.Inc()
	} else {
		ts.published.Inc()
	}
	if takeover && ack.Duplicate {
		// The first copy's event is durable. Its holder (when alive) marks
		// it seen with its own fingerprint; a conflicting copy is told
		// once that mark is there.
		return p.afterTakeover(ctx, ev.ID, fp, rej)
	}
	if held || takeover {
		// A takeover whose publish was the fresh one stored this copy's
		// body: its fingerprint is the right one, and the seen mark
		// replaces the dead holder's lease (MarkSeen needs only the key).
		sctx, cancel := context.WithTimeout(ctx, p.cfg.StoreTimeout)
		err := p.markSeen(sctx, lease, fp)
		cancel()
		if err != nil {
			// The event is durable; only the long-lived memory of it is
			// missing, and JetStream's window still catches quick retries.
			p.m.dedupeErrors.WithLabelValues("mark_seen").Inc()
			p.warnf("store", "dedupe store: mark seen failed after publish", "err", err, "event_id", ev.ID, "store", p.store.Name())
		}
	}
	if ack.Duplicate {
		return Outcome{Kind: Duplicate, EventID: ev.ID}
	}
	return Outcome{Kind: Accepted, EventID: ev.ID}
}

// conflictingCopy quarantines a copy whose signed fields equal an accepted
// notification's but whose other fields differ. Its event is durable, so the
// answer is 200 whatever happens to the quarantine message.
func (p *Path) conflictingCopy(ctx context.Context, rej rejection) Outcome {
	p.m.conflicting.Inc()
	rej.reason, rej.status = events.ReasonConflictingCopy, 200
	rej.detail = "a copy of an accepted notification with the same signed fields but different other fields"
	o := p.reject(ctx, rej)
	return Outcome{Kind: Duplicate, EventID: rej.eventID, Reason: rej.reason, Detail: rej.detail, QuarantineID: o.QuarantineID}
}

type claimResult int

const (
	claimPublish  claimResult = iota // go on and publish (held says whether a lease is ours)
	claimSeen                        // already durable
	claimTakeover                    // a copy in flight did not finish within InFlightWait: publish it too
)

// claim takes the dedupe lease. held=false with claimPublish means the store
// could not answer: publish anyway, JetStream's Nats-Msg-Id window dedupes.
func (p *Path) claim(ctx context.Context, id string) (dedupe.Lease, bool, claimResult) {
	deadline := p.now().Add(p.cfg.InFlightWait)
	pause := 2 * time.Millisecond
	waited := false
	for {
		sctx, cancel := context.WithTimeout(ctx, p.cfg.StoreTimeout)
		lease, st, err := p.store.Claim(sctx, id)
		cancel()
		if err != nil {
			p.m.claimErrors.Inc()
			p.m.withoutDedupe.Inc()
			if !errors.Is(err, dedupe.ErrUnavailable) {
				p.warnf("store", "dedupe store unreachable; publishing with JetStream dedupe only", "err", err, "event_id", id, "store", p.store.Name())
			}
			return dedupe.Lease{}, false, claimPublish
		}
		switch st {
		case dedupe.Claimed:
			if waited {
				p.m.inflightWaits.WithLabelValues("claimed").Inc()
			}
			return lease, true, claimPublish
		case dedupe.Seen:
			p.dupStore.Inc()
			if waited {
				p.m.inflightWaits.WithLabelValues("seen").Inc()
			}
			return lease, false, claimSeen
		}
		// InFlight: the first copy is being published. Wait for it to
		// become durable (Seen) or to give up (Claimed), never answer
		// before that; past InFlightWait publish this copy too (see
		// takeover).
		waited = true
		left := deadline.Sub(p.now())
		if left <= 0 {
			p.m.inflightWaits.WithLabelValues("takeover").Inc()
			return dedupe.Lease{Key: id}, false, claimTakeover
		}
		time.Sleep(min(pause, left))
		pause = min(pause*2, 50*time.Millisecond)
	}
}

func (p *Path) release(ctx context.Context, l dedupe.Lease) {
	sctx, cancel := context.WithTimeout(ctx, p.cfg.StoreTimeout)
	defer cancel()
	if err := p.store.Release(sctx, l); err != nil {
		// The lease expires by itself after the claim TTL; until then a
		// retry waits and gets 503.
		p.m.dedupeErrors.WithLabelValues("release").Inc()
		p.warnf("store", "dedupe store: release after failed publish failed", "err", err, "event_id", l.Key, "store", p.store.Name())
	}
}

// warnf logs at most one WARN line per second per key: during an outage or
// a flood every request hits the same line, and the metrics carry the count.
func (p *Path) warnf(key, msg string, attrs ...any) {
	if n, ok := p.warn.allow(key); ok {
		if n > 0 {
			attrs = append(attrs, "suppressed", n)
		}
		p.log.Warn(msg, attrs...)
	}
}

// publish and takeover: what a copy does when the first copy is still in flight after
// InFlightWait.
//
// A lease names no living process: when the receiver holding it was killed
// mid-publish, the lease stays until the claim TTL (PUBLISH_TIMEOUT+10s)
// ends it. Copies that merely waited for it and answered 503 kept PAYCOMET's
// retries failing for all that time, and their waits filled the survivor's
// connections. So a copy that still finds the key in flight after
// InFlightWait publishes the same event itself, with the same Nats-Msg-Id:
//
//   - the holder never published (it died first): this publish is the
//     event, acknowledged as new; the copy marks the key seen with its own
//     fingerprint, replacing the dead lease;
//   - the holder's publish landed (alive and slow, or dead before marking):
//     JetStream's duplicate window answers with a Duplicate ack, which it
//     gives only for a message already stored (on a cluster: committed; a
//     message still being proposed is answered "duplicate message id is in
//     process", which publish retries until PUBLISH_TIMEOUT). The copy
//     answers 200 as a duplicate and leaves the mark to the holder, whose
//     body is the event;
//   - the publish fails: 503, nothing remembered, as for a first copy.
//
// So nothing is answered 200 before JetStream acknowledged the event, and a
// dead holder delays its copies by InFlightWait plus one publish instead of
// the claim TTL. This is safe while the duplicate window covers the lease:
// a takeover happens only while a lease lives (at most the claim TTL after
// the holder's publish began), and STREAM_DUPLICATE_WINDOW (10m by default)
// is far longer than PUBLISH_TIMEOUT+10s. The price is one extra publish
// per copy whose first copy takes longer than InFlightWait, which JetStream
// drops. A shorter claim lease kept alive by a heartbeat was the other way:
// it needs a store write per second per publish, still makes copies wait
// the lease out, and a paused holder loses its lease anyway; the window is
// the guarantee either way.
//
// publish publishes ev within PublishTimeout. A publish refused because
// the same id is still being committed (another copy's, on a cluster) is
// tried again until the deadline: its outcome decides, and the next attempt
// gets a Duplicate ack once that message is stored, or stores this one if
// the other was lost with a failed leader.
func (p *Path) publish(ctx context.Context, ev events.Event, body []byte) (publisher.Ack, error) {
	pctx, cancel := context.WithTimeout(ctx, p.cfg.PublishTimeout)
	defer cancel()
	pause := 5 * time.Millisecond
	for {
		ack, err := p.pub.Publish(pctx, ev.Topic(p.cfg.Prefix), ev.ID, body)
		var apiErr *jetstream.APIError
		if err == nil || !errors.As(err, &apiErr) || apiErr.ErrorCode != errInProcess {
			return ack, err
		}
		t := time.NewTimer(pause)
		select {
		case <-pctx.Done():
			t.Stop()
			return ack, err
		case <-t.C:
		}
		pause = min(pause*2, 100*time.Millisecond)
	}
}

// errInProcess is the JetStream error code (409) for a publish whose
// Nats-Msg-Id belongs to a message a clustered stream is still committing.
const errInProcess = 10158

// afterTakeover answers a takeover copy whose publish was a duplicate: the
// event is durable. Claim once more to compare fingerprints when the
// first copy's mark is there; a conflicting copy is quarantined as it would
// have been had it waited.
func (p *Path) afterTakeover(ctx context.Context, id, fp string, rej rejection) Outcome {
	sctx, cancel := context.WithTimeout(ctx, p.cfg.StoreTimeout)
	lease, st, err := p.store.Claim(sctx, id)
	cancel()
	switch {
	case err != nil:
		p.m.claimErrors.Inc()
	case st == dedupe.Seen && lease.Fingerprint != "" && lease.Fingerprint != fp:
		return p.conflictingCopy(ctx, rej)
	case st == dedupe.Claimed:
		// The lease ended meanwhile: give this one back, so the next copy
		// marks the key after its own (duplicate) publish, as before.
		p.release(ctx, lease)
	}
	return Outcome{Kind: Duplicate, EventID: id}
}
