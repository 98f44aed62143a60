package dedupe

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// KV is the embedded single-machine default: dedupe in a JetStream key-value
// bucket on the same NATS the events go to, so `serve --demo` needs nothing
// else. Every operation is a JetStream publish or direct get, compare-and-set
// on the key's revision.
type KV struct {
	kv   jetstream.KeyValue
	nc   *nats.Conn
	opts Options
}

var _ Store = (*KV)(nil)

// kvMaxAttempts bounds the compare-and-set loop of Claim. Each further
// attempt means another caller changed the key meanwhile, so after this many
// the key is reported InFlight and the handler polls again.
const kvMaxAttempts = 5

// NewJetStreamKV creates the bucket if it is missing, or updates it to the
// given settings, and binds to it: history 1, file storage, the given
// replicas, and a bucket-wide max age of SeenTTL, which is what expires seen
// markers (and any claim left behind).
func NewJetStreamKV(ctx context.Context, js jetstream.JetStream, bucket string, replicas int, opts Options) (*KV, error) {
	opts = opts.withDefaults()
	if replicas <= 0 {
		replicas = 1
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      bucket,
		Description: "paycomet-notify dedupe: claims and seen markers of notification ids",
		History:     1,
		TTL:         opts.SeenTTL,
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("jetstream kv bucket %s: %w", bucket, err)
	}
	return &KV{kv: kv, nc: js.Conn(), opts: opts}, nil
}

// connected fails fast while the connection is down (an error wrapping
// ErrUnavailable): nats.go would otherwise buffer the request until the
// server is back and the call times out. nats.go reconnects by itself, which
// is this store's recovery.
func (s *KV) connected() error {
	switch st := s.nc.Status(); st {
	case nats.CONNECTED, nats.DRAINING_SUBS, nats.DRAINING_PUBS:
		return nil
	case nats.CLOSED:
		return fmt.Errorf("%w: %w", ErrUnavailable, nats.ErrConnectionClosed)
	default:
		return fmt.Errorf("%w: nats %s: %w", ErrUnavailable, st, nats.ErrDisconnected)
	}
}

// Claim creates the key with a fresh token; if it exists, a seen marker means
// Seen, a claim younger than ClaimTTL means InFlight, and an older one was
// abandoned and is taken over by compare-and-set on its revision.
func (s *KV) Claim(ctx context.Context, key string) (Lease, Status, error) {
	ctx, cancel := withTimeout(ctx, s.opts.Timeout)
	defer cancel()
	if err := s.connected(); err != nil {
		return Lease{Key: key}, 0, fmt.Errorf("jetstream kv claim %s: %w", key, err)
	}
	for range kvMaxAttempts {
		token := newToken()
		rev, err := s.kv.Create(ctx, key, []byte(token))
		if err == nil {
			return Lease{Key: key, token: token, rev: rev}, Claimed, nil
		}
		if !isConflict(err) {
			return Lease{Key: key}, 0, fmt.Errorf("jetstream kv claim %s: %w", key, err)
		}
		e, err := s.kv.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue // deleted or expired since Create failed: create again
		}
		if err != nil {
			return Lease{Key: key}, 0, fmt.Errorf("jetstream kv claim %s: %w", key, err)
		}
		if fp, seen := parseSeen(string(e.Value())); seen {
			return Lease{Key: key, Fingerprint: fp}, Seen, nil
		}
		if time.Since(e.Created()) < s.opts.ClaimTTL {
			return Lease{Key: key}, InFlight, nil
		}
		rev, err = s.kv.Update(ctx, key, []byte(token), e.Revision())
		if err == nil {
			return Lease{Key: key, token: token, rev: rev}, Claimed, nil
		}
		if !isConflict(err) {
			return Lease{Key: key}, 0, fmt.Errorf("jetstream kv claim %s: %w", key, err)
		}
		// Someone else changed the key first: look again.
	}
	return Lease{Key: key}, InFlight, nil
}

// MarkSeen replaces the lease with the seen marker holding fingerprint. If
// the revision moved (the lease expired and was taken over, or released), it
// writes the marker anyway: the event is durable, so Seen is the truth.
func (s *KV) MarkSeen(ctx context.Context, l Lease, fingerprint string) error {
	ctx, cancel := withTimeout(ctx, s.opts.Timeout)
	defer cancel()
	if err := s.connected(); err != nil {
		return fmt.Errorf("jetstream kv mark seen %s: %w", l.Key, err)
	}
	mark := []byte(seenMark(fingerprint))
	_, err := s.kv.Update(ctx, l.Key, mark, l.rev)
	if isConflict(err) {
		_, err = s.kv.Put(ctx, l.Key, mark)
	}
	if err != nil {
		return fmt.Errorf("jetstream kv mark seen %s: %w", l.Key, err)
	}
	return nil
}

// Release deletes the key only at the lease's revision. A mismatch means
// someone else owns the key now (or it was marked seen), so it is left alone
// and Release succeeds.
func (s *KV) Release(ctx context.Context, l Lease) error {
	if l.token == "" || l.rev == 0 {
		return fmt.Errorf("jetstream kv release %s: %w", l.Key, ErrNoLease)
	}
	ctx, cancel := withTimeout(ctx, s.opts.Timeout)
	defer cancel()
	if err := s.connected(); err != nil {
		return fmt.Errorf("jetstream kv release %s: %w", l.Key, err)
	}
	err := s.kv.Delete(ctx, l.Key, jetstream.LastRevision(l.rev))
	if err != nil && !isConflict(err) {
		return fmt.Errorf("jetstream kv release %s: %w", l.Key, err)
	}
	return nil
}

// Ping reports whether NATS answers and the bucket exists, for /readyz.
func (s *KV) Ping(ctx context.Context) error {
	ctx, cancel := withTimeout(ctx, s.opts.Timeout)
	defer cancel()
	if err := s.connected(); err != nil {
		return fmt.Errorf("jetstream kv ping: %w", err)
	}
	if _, err := s.kv.Status(ctx); err != nil {
		return fmt.Errorf("jetstream kv ping: %w", err)
	}
	return nil
}

// Name labels metrics and logs.
func (s *KV) Name() string { return "jetstream_kv" }

// isConflict reports a failed compare-and-set: the key existed on Create, or
// its revision moved before Update or Delete. Single-replica streams report
// it as code 10071, replicated ones as 10164.
func isConflict(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return true
	}
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) &&
		(apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
			apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

// Up reports whether the NATS connection is up (no I/O).
func (s *KV) Up() bool { return s.connected() == nil }

// Close does nothing: the store has no background work of its own (nats.go
// reconnects), and the connection belongs to the caller.
func (s *KV) Close() error { return nil }
