// Package dedupe remembers which PAYCOMET notifications have already been
// published, so a notification PAYCOMET sends twice reaches NATS once, without
// ever dropping one that was not published.
//
// Deduplication is a two-phase claim:
//
//  1. Claim takes a short lease on the notification's key (the claim TTL,
//     longer than the publish timeout). Exactly one concurrent caller gets
//     Claimed; the others see InFlight (a live lease) or Seen (already
//     published).
//  2. The holder publishes to JetStream and, only once JetStream has
//     acknowledged, calls MarkSeen, which replaces the lease with a
//     long-lived seen marker (DEDUPE_TTL) holding the published copy's
//     fingerprint. If the publish fails it calls Release, so PAYCOMET's retry
//     is processed as if it were the first copy.
//
// A later copy's Claim returns Seen with that fingerprint in
// Lease.Fingerprint, so every replica can tell an identical copy from one
// whose unsigned fields differ (a conflicting copy) for as long as the key
// is remembered.
//
// Why this cannot lose an event: a key is marked Seen only after JetStream
// acknowledged the event, so Seen always means durable. A lease that is never
// completed (the receiver was killed mid-publish, the publish failed and the
// release was lost) expires after the claim TTL and the next copy claims the
// key again; meanwhile the notification path does not wait it out: a copy
// that finds the key InFlight for longer than INFLIGHT_WAIT publishes the
// same event itself (notify's takeover) and, when its publish stored the
// event, MarkSeen with a bare Lease{Key: key} replaces the dead lease. The worst a failure can do is let a notification be published
// twice, which JetStream's Nats-Msg-Id window then removes; the handler also
// publishes when the store itself is unreachable, for the same reason.
//
// Leases carry an owner token, so a holder that was too slow and lost its
// lease to a retry cannot release the new owner's claim.
//
// Two stores implement this: Redis (production, any number of receivers) and
// a JetStream key-value bucket (the embedded single-machine default). While
// its server is unreachable a store fails fast with ErrUnavailable, and comes
// back by itself (Redis: a background prober; JetStream: nats.go reconnects).
package dedupe

import (
	"context"
	"crypto/rand"
	"errors"
	"strconv"
	"strings"
	"time"
)

// Status is the outcome of a Claim, which decides what the handler does with
// the notification.
type Status int

const (
	// Claimed means the caller owns the lease and must publish, then call
	// MarkSeen, or Release if the publish failed.
	Claimed Status = iota + 1
	// Seen means the notification was already published and acknowledged: the
	// handler answers 200 without publishing.
	Seen
	// InFlight means another copy holds a live lease: the handler polls Claim
	// again until Seen or Claimed, or gives up with 503.
	InFlight
)

// String names the status for logs and metric labels.
func (s Status) String() string {
	switch s {
	case Claimed:
		return "claimed"
	case Seen:
		return "seen"
	case InFlight:
		return "in_flight"
	default:
		return "Status(" + strconv.Itoa(int(s)) + ")"
	}
}

// Lease identifies one claim. MarkSeen and Release take it instead of a bare
// key so that a stale holder, whose lease expired and was claimed again by a
// retry, cannot release someone else's claim.
//
// Only a Lease returned with Claimed can be released. MarkSeen needs only the
// Key, so a handler that published while the store was unreachable may still
// record the key as seen with Lease{Key: key}.
type Lease struct {
	// Key is the notification's idempotency key.
	Key string
	// Fingerprint is, when Claim returned Seen, what MarkSeen stored for the
	// key: the fingerprint of the copy that was published, so the caller can
	// tell an identical copy from a conflicting one. It is "" for a mark
	// written by an older version (which stored no fingerprint) or by a
	// MarkSeen given "".
	Fingerprint string

	token string // unique per Claim call; the value stored while the lease lives
	rev   uint64 // JetStream KV revision of the claim; unused by Redis
}

// ErrNoLease is returned by Release for a Lease that did not come from a
// Claim that returned Claimed: there is nothing of the caller's to release.
var ErrNoLease = errors.New("lease not owned")

// ErrUnavailable is returned at once, without any network round trip, while
// a store considers its server unreachable (fail fast: the handler publishes
// through JetStream's deduplication window instead). A background probe owned
// by the store notices when the server answers again.
var ErrUnavailable = errors.New("dedupe store unavailable")

// Store is what the notification handler needs from a dedupe store.
// Implementations are safe for concurrent use.
type Store interface {
	// Claim takes a lease on key, or reports that the key is Seen or InFlight.
	// An error means the store could not answer; it is returned promptly.
	Claim(ctx context.Context, key string) (Lease, Status, error)
	// MarkSeen records that the leased key's event is durable in JetStream,
	// keeping fingerprint (what a later Claim returns in Lease.Fingerprint).
	MarkSeen(ctx context.Context, l Lease, fingerprint string) error
	// Release gives a lease back after a failed publish, if it is still ours.
	Release(ctx context.Context, l Lease) error
	// Ping reports whether the store is reachable, for readiness.
	Ping(ctx context.Context) error
	// Name is "redis" or "jetstream_kv", for metrics and logs.
	Name() string
	// Up is the last known reachability of the server: cheap, no I/O, for
	// /readyz and a gauge.
	Up() bool
	// Close stops the store's background work. It does not close the client
	// or connection the store was built on, which the caller owns.
	Close() error
}

// Defaults applied to zero fields of Options.
const (
	DefaultClaimTTL  = 15 * time.Second
	DefaultSeenTTL   = 168 * time.Hour
	DefaultKeyPrefix = "pcn:"
	DefaultTimeout   = time.Second
)

// Options tunes a store. Zero fields take the defaults above.
type Options struct {
	// ClaimTTL is how long a lease lives if its holder never completes it. It
	// must be longer than the publish timeout, or a slow publish loses its
	// lease to a retry (harmless, but a duplicate publish).
	ClaimTTL time.Duration
	// SeenTTL is how long a published key is remembered (DEDUPE_TTL).
	SeenTTL time.Duration
	// KeyPrefix namespaces the Redis keys; unused by JetStream KV, whose
	// bucket is the namespace.
	KeyPrefix string
	// Timeout bounds each store call whose context has no earlier deadline,
	// so an unreachable store turns into a prompt error rather than a stalled
	// request.
	Timeout time.Duration
}

func (o Options) withDefaults() Options {
	if o.ClaimTTL <= 0 {
		o.ClaimTTL = DefaultClaimTTL
	}
	if o.SeenTTL <= 0 {
		o.SeenTTL = DefaultSeenTTL
	}
	if o.KeyPrefix == "" {
		o.KeyPrefix = DefaultKeyPrefix
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	return o
}

// Stored values. A key holds a lease owner token while a copy is being
// published and a seen mark once it is durable. The seen mark is
// seenPrefix followed by the published copy's fingerprint (32 hex characters,
// or nothing), so a later copy can be told identical or conflicting. Tokens
// are rand.Text (26 characters of A-Z and 2-7), so they never start with
// seenPrefix and never equal legacySeen, the mark of versions that kept no
// fingerprint.
const (
	seenPrefix = "s:"
	legacySeen = "1"
)

// seenMark is the stored value for a key published with fingerprint.
func seenMark(fingerprint string) string { return seenPrefix + fingerprint }

// parseSeen tells a seen mark (and the fingerprint it holds) from a lease
// token.
func parseSeen(v string) (fingerprint string, seen bool) {
	if v == legacySeen {
		return "", true
	}
	return strings.CutPrefix(v, seenPrefix)
}

// newToken returns a lease owner token, unique with overwhelming probability.
func newToken() string { return rand.Text() }

// withTimeout bounds ctx by d unless it already has an earlier deadline.
func withTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= d {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, d)
}
