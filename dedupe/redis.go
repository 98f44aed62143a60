package dedupe

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis is the production store: shared by any number of receivers, one
// command per Claim and per MarkSeen, the commands of concurrent requests
// pipelined together (see batcher). It needs Redis 7.0 or later (SET with
// both NX and GET).
//
// It fails fast during an outage: the first call that meets a
// connection-level failure or a timeout marks the store down, and while it is
// down Claim, MarkSeen and Release return ErrUnavailable at once, without
// touching the network, so an outage costs each notification nothing but the
// fallback to JetStream's deduplication window. A prober goroutine owned by
// the store (started by NewRedis, stopped by Close) sends PING every
// probeInterval while the store is down and marks it up when Redis answers.
type Redis struct {
	c    redis.UniversalClient
	b    *batcher
	opts Options

	up      atomic.Bool
	wake    chan struct{} // a down transition wakes the prober (capacity 1)
	stop    context.CancelFunc
	stopCtx context.Context
	probed  chan struct{} // closed when the prober has returned
	closing sync.Once
}

var _ Store = (*Redis)(nil)

// releaseScript deletes the key only if it still holds the caller's token:
// compare-and-delete in one atomic step, so a stale holder cannot delete a
// lease that expired and was claimed by someone else, nor a seen marker.
var releaseScript = redis.NewScript(`
if redis.call("GET", KEYS[1]) == ARGV[1] then
	return redis.call("DEL", KEYS[1])
end
return 0
`)

// probeInterval is the pause between two PINGs of the prober while Redis is
// down; each PING is bounded by Options.Timeout.
const probeInterval = 250 * time.Millisecond

// NewRedis builds the Redis store on a client the caller owns (and closes at
// shutdown, after the handler has drained and Close has stopped the prober).
// The store starts up; a failing first call or Ping marks it down.
func NewRedis(client redis.UniversalClient, opts Options) *Redis {
	opts = opts.withDefaults()
	r := &Redis{
		c:      client,
		b:      newBatcher(client, opts.Timeout),
		opts:   opts,
		wake:   make(chan struct{}, 1),
		probed: make(chan struct{}),
	}
	r.up.Store(true)
	r.stopCtx, r.stop = context.WithCancel(context.Background())
	go r.probe()
	return r
}

// Up reports the last known state: false from the first connection-level
// failure or timeout until a PING (the prober's or Ping's) succeeds. No I/O.
func (r *Redis) Up() bool { return r.up.Load() }

// Close stops the prober and waits for it; an in-progress PING is cancelled.
// It does not close the client, which the caller owns. After Close the store
// still works while Redis is up, but nothing brings it back once it is down.
func (r *Redis) Close() error {
	r.closing.Do(r.stop)
	<-r.probed
	return nil
}

// probe waits for the store to go down, then PINGs Redis every
// probeInterval until it answers.
func (r *Redis) probe() {
	defer close(r.probed)
	t := time.NewTimer(probeInterval)
	t.Stop()
	for {
		select {
		case <-r.stopCtx.Done():
			return
		case <-r.wake:
		}
		for !r.up.Load() {
			t.Reset(probeInterval)
			select {
			case <-r.stopCtx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			ctx, cancel := context.WithTimeout(r.stopCtx, r.opts.Timeout)
			err := r.c.Ping(ctx).Err()
			cancel()
			if err == nil {
				r.up.Store(true)
			}
		}
	}
}

// markDown records a connection-level failure and wakes the prober.
func (r *Redis) markDown() {
	if r.up.CompareAndSwap(true, false) {
		select {
		case r.wake <- struct{}{}:
		default:
		}
	}
}

// failed tells whether err (not nil, not redis.Nil) from a call made with ctx
// means Redis is unreachable or too slow, and marks the store down if so. A
// reply from the server (an error Redis sent, such as NOSCRIPT or OOM) says
// Redis is there; so does a caller that cancelled. (A caller whose deadline
// had passed before the call never gets here: see available.)
func (r *Redis) failed(ctx context.Context, err error) {
	var reply redis.Error
	if errors.As(err, &reply) || (errors.Is(err, context.Canceled) && ctx.Err() == context.Canceled) {
		return
	}
	r.markDown()
}

// available fails fast while the store is down, and for a context that has
// already ended (so its error is not taken for Redis's).
func (r *Redis) available(ctx context.Context) error {
	if !r.up.Load() {
		return ErrUnavailable
	}
	return ctx.Err()
}

// Tuned client settings for the notification hot path: a dead Redis must turn
// into an error within about a second, so the handler can fall back to
// JetStream's own deduplication instead of keeping PAYCOMET waiting.
const (
	redisPoolSize     = 64 // ~64 concurrent notifications, one connection each
	redisDialTimeout  = time.Second
	redisIOTimeout    = 500 * time.Millisecond
	redisPoolTimeout  = time.Second
	redisMaxRetries   = 1
	redisMaxRetryWait = 100 * time.Millisecond
)

// NewRedisClient parses REDIS_URL (redis://[user:password@]host:port/db,
// rediss:// for TLS; go-redis query parameters such as read_timeout override
// the tuned defaults) into a client tuned for the hot path: a pool for about
// 64 concurrent requests, 1s dial timeout, 500ms read and write timeouts and a
// single retry. Errors never contain the URL, which may hold a password.
func NewRedisClient(rawURL string) (redis.UniversalClient, error) {
	return NewRedisClientFor(RedisClientConfig{URL: rawURL})
}

func (r *Redis) key(k string) string { return r.opts.KeyPrefix + k }

// Claim is one SET key token NX GET with the claim TTL as expiry: it creates
// the lease only if the key is absent and returns what was there, which tells
// Seen from InFlight in the same round trip.
func (r *Redis) Claim(ctx context.Context, key string) (Lease, Status, error) {
	return r.claim(ctx, key, newToken())
}

func (r *Redis) claim(ctx context.Context, key, token string) (Lease, Status, error) {
	if err := r.available(ctx); err != nil {
		return Lease{Key: key}, 0, fmt.Errorf("redis claim %s: %w", key, err)
	}
	ctx, cancel := withTimeout(ctx, r.opts.Timeout)
	defer cancel()
	var cmd *redis.StatusCmd
	err := r.b.do(ctx, func(ctx context.Context, p redis.Pipeliner) {
		cmd = p.SetArgs(ctx, r.key(key), token, redis.SetArgs{
			Mode: "NX",
			Get:  true,
			TTL:  r.opts.ClaimTTL,
		})
	})
	var prev string
	if err == nil {
		prev, err = cmd.Result()
	}
	if errors.Is(err, redis.Nil) {
		return Lease{Key: key, token: token}, Claimed, nil
	}
	if err != nil {
		r.failed(ctx, err)
		return Lease{Key: key}, 0, fmt.Errorf("redis claim %s: %w", key, err)
	}
	if fp, seen := parseSeen(prev); seen {
		return Lease{Key: key, Fingerprint: fp}, Seen, nil
	}
	if prev == token {
		// The client retried a SET whose first attempt did reach Redis and
		// only lost the reply: the lease is ours.
		return Lease{Key: key, token: token}, Claimed, nil
	}
	return Lease{Key: key}, InFlight, nil
}

// MarkSeen is one SET key "s:"+fingerprint with the seen TTL. It overwrites
// unconditionally: the event is durable, so Seen is the truth even if the
// lease had expired and another copy claimed the key meanwhile.
func (r *Redis) MarkSeen(ctx context.Context, l Lease, fingerprint string) error {
	if err := r.available(ctx); err != nil {
		return fmt.Errorf("redis mark seen %s: %w", l.Key, err)
	}
	ctx, cancel := withTimeout(ctx, r.opts.Timeout)
	defer cancel()
	mark := seenMark(fingerprint)
	var cmd *redis.StatusCmd
	err := r.b.do(ctx, func(ctx context.Context, p redis.Pipeliner) {
		cmd = p.Set(ctx, r.key(l.Key), mark, r.opts.SeenTTL)
	})
	if err == nil {
		err = cmd.Err()
	}
	if err != nil {
		r.failed(ctx, err)
		return fmt.Errorf("redis mark seen %s: %w", l.Key, err)
	}
	return nil
}

// Release deletes the lease only if it is still the caller's (EVALSHA of a
// compare-and-delete script; EVAL once if the server has not cached it).
func (r *Redis) Release(ctx context.Context, l Lease) error {
	if l.token == "" {
		return fmt.Errorf("redis release %s: %w", l.Key, ErrNoLease)
	}
	if err := r.available(ctx); err != nil {
		return fmt.Errorf("redis release %s: %w", l.Key, err)
	}
	ctx, cancel := withTimeout(ctx, r.opts.Timeout)
	defer cancel()
	if err := releaseScript.Run(ctx, r.c, []string{r.key(l.Key)}, l.token).Err(); err != nil {
		r.failed(ctx, err)
		return fmt.Errorf("redis release %s: %w", l.Key, err)
	}
	return nil
}

// Ping asks Redis, even while the store is down, and updates Up with the
// answer. Up is the cheap check; Ping costs a round trip (or a timeout).
func (r *Redis) Ping(ctx context.Context) error {
	ctx, cancel := withTimeout(ctx, r.opts.Timeout)
	defer cancel()
	if err := r.c.Ping(ctx).Err(); err != nil {
		r.failed(ctx, err)
		return fmt.Errorf("redis ping: %w", err)
	}
	r.up.Store(true)
	return nil
}

// Name labels metrics and logs.
func (r *Redis) Name() string { return "redis" }
