package dedupe

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/paycomet-notify/paycomet-notify/internal/testenv"
)

// Concurrent requests share pipelines, and every one still gets its own
// answer: each key claimed once, the copies told InFlight or Seen.
func TestRedisBatchesConcurrentCommands(t *testing.T) {
	r := testenv.StartRedis(t)
	s := newTestRedis(t, newTestRedisClient(t, r.URL()), Options{})
	const workers, perWorker = 64, 20
	keys := make([]string, workers*perWorker/2)
	for i := range keys {
		keys[i] = newKey(t)
	}
	var mu sync.Mutex
	claimed := map[string]int{}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				k := keys[(w*perWorker+i)%len(keys)] // every key claimed by two workers
				l, st, err := s.Claim(context.Background(), k)
				if err != nil {
					t.Errorf("Claim(%s) = %v", k, err)
					return
				}
				if st == Claimed {
					mu.Lock()
					claimed[k]++
					mu.Unlock()
					if err := s.MarkSeen(context.Background(), l, ""); err != nil {
						t.Errorf("MarkSeen(%s) = %v", k, err)
					}
				}
			}
		})
	}
	wg.Wait()
	for _, k := range keys {
		if claimed[k] != 1 {
			t.Errorf("key %s claimed %d times, want 1", k, claimed[k])
		}
	}
	b, c := s.b.batches.Load(), s.b.commands.Load()
	t.Logf("%d commands in %d pipelines", c, b)
	if c != int64(workers*perWorker+len(keys)) || b >= c {
		t.Errorf("%d commands in %d pipelines: want %d commands, batched", c, b, workers*perWorker+len(keys))
	}
}

// A command whose caller gave up while it waited for the pipeline in front
// is never sent: a claim nobody waits for would only block the retry.
func TestRedisBatchDropsAbandonedCommands(t *testing.T) {
	r := testenv.StartRedis(t)
	c := newTestRedisClient(t, r.URL())
	s := newTestRedis(t, c, Options{})
	ctx := context.Background()
	admin := redis.NewClient(&redis.Options{Addr: r.Addr()})
	t.Cleanup(func() { admin.Close() })
	if err := admin.Do(ctx, "CLIENT", "PAUSE", "400", "ALL").Err(); err != nil {
		t.Fatal(err)
	}
	first := make(chan error, 1)
	go func() { _, _, err := s.Claim(ctx, newKey(t)); first <- err }()
	testenv.Eventually(t, 2*time.Second, "the first claim on the wire", func() bool {
		s.b.mu.Lock()
		defer s.b.mu.Unlock()
		return s.b.running == 1 && len(s.b.queue) == 0
	})
	abandoned := newKey(t)
	short, cancel := context.WithTimeout(ctx, 30*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, _, err := s.Claim(short, abandoned)
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 300*time.Millisecond {
		t.Fatalf("Claim behind a paused Redis = %v after %v, want the caller's deadline", err, time.Since(start))
	}
	if err := <-first; err != nil {
		t.Fatalf("first Claim = %v", err)
	}
	testenv.Eventually(t, 2*time.Second, "the flusher to finish", func() bool {
		s.b.mu.Lock()
		defer s.b.mu.Unlock()
		return s.b.running == 0
	})
	if n := c.Exists(ctx, DefaultKeyPrefix+abandoned).Val(); n != 0 {
		t.Errorf("the abandoned claim reached Redis")
	}
}
