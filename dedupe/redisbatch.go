package dedupe

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// batcher sends the Claim and MarkSeen commands of concurrent requests to
// Redis as pipelines: while a pipeline is on the wire, the commands that
// arrive queue up and leave together in the next one. Under load a request
// costs a fraction of a write and a read system call instead of one each, on
// the receiver and on Redis (profiled at 32 connections: the two round trips
// were 30% of the receiver's CPU); alone, a command leaves at once, as it
// would without batching.
//
// It keeps no goroutine while idle: a flusher is started when a command finds
// fewer than maxFlushers running, and it ends when the queue is empty. Each
// command is still bounded by its caller's context: a caller that gives up
// (Redis hanging or down) gets its context's error at once, and its command
// is dropped if it has not been sent yet.
type batcher struct {
	c       redis.UniversalClient
	timeout time.Duration // bound on one pipeline

	mu      sync.Mutex
	queue   []*pending
	running int // flushers

	batches, commands atomic.Int64 // for tests: how much batching happened
}

// pending is one command waiting for its pipeline.
type pending struct {
	ctx  context.Context
	add  func(ctx context.Context, p redis.Pipeliner)
	done chan struct{}
}

const (
	// maxFlushers pipelines may be on the wire at once: two keep Redis busy
	// while one batch's replies are read, and leave room for batches to form.
	maxFlushers = 1
	// maxBatch bounds one pipeline; more waits for the next.
	maxBatch = 256
	// maxQueued bounds the commands waiting: beyond it Redis is not keeping
	// up (or is hanging), and a prompt error lets the handler fall back to
	// JetStream's deduplication.
	maxQueued = 4096
)

var errQueueFull = errors.New("too many commands waiting for redis")

func newBatcher(c redis.UniversalClient, timeout time.Duration) *batcher {
	return &batcher{c: c, timeout: timeout}
}

// do queues the command that add puts on a pipeline and waits until the
// pipeline ran or ctx ends. add runs on the flusher's goroutine; what it
// stores may be read once do returned nil.
func (b *batcher) do(ctx context.Context, add func(ctx context.Context, p redis.Pipeliner)) error {
	p := &pending{ctx: ctx, add: add, done: make(chan struct{})}
	b.mu.Lock()
	if len(b.queue) >= maxQueued {
		b.mu.Unlock()
		return errQueueFull
	}
	b.queue = append(b.queue, p)
	start := b.running < maxFlushers
	if start {
		b.running++
	}
	b.mu.Unlock()
	if start {
		go b.flush()
	}
	select {
	case <-p.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// flush sends batches until the queue is empty.
func (b *batcher) flush() {
	for {
		b.mu.Lock()
		batch := b.queue
		if len(batch) == 0 {
			b.running--
			b.mu.Unlock()
			return
		}
		if len(batch) > maxBatch {
			batch, b.queue = batch[:maxBatch:maxBatch], batch[maxBatch:]
		} else {
			b.queue = nil
		}
		b.mu.Unlock()
		b.exec(batch)
	}
}

func (b *batcher) exec(batch []*pending) {
	ctx, cancel := context.WithTimeout(context.Background(), b.timeout)
	defer cancel()
	pipe := b.c.Pipeline()
	live := batch[:0:0]
	for _, p := range batch {
		if p.ctx.Err() != nil {
			continue // its caller gave up: do not send it
		}
		p.add(ctx, pipe)
		live = append(live, p)
	}
	if len(live) > 0 {
		// Each command carries its own result and error, except when the
		// pipeline failed as a whole (a connection whose set-up, such as
		// AUTH, was refused): go-redis then returns the error without
		// setting it on the commands, which would read as empty replies.
		cmds, err := pipe.Exec(ctx)
		if err != nil && !slices.ContainsFunc(cmds, func(c redis.Cmder) bool { return c.Err() != nil }) {
			for _, c := range cmds {
				c.SetErr(err)
			}
		}
		b.batches.Add(1)
		b.commands.Add(int64(len(live)))
	}
	for _, p := range live {
		close(p.done)
	}
}
