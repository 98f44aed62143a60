package dedupe

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/paycomet-notify/paycomet-notify/internal/testenv"
)

func newTestJetStream(t testing.TB) (*testenv.NATS, jetstream.JetStream) {
	t.Helper()
	n := testenv.StartNATS(t)
	js, err := jetstream.New(n.Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	return n, js
}

func newTestKV(t testing.TB, js jetstream.JetStream, bucket string, o Options) *KV {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := NewJetStreamKV(ctx, js, bucket, 1, o)
	if err != nil {
		t.Fatalf("NewJetStreamKV(%q) = %v", bucket, err)
	}
	return s
}

func (s *KV) putRaw(t *testing.T, key, value string) {
	t.Helper()
	if _, err := s.kv.Put(context.Background(), key, []byte(value)); err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
}

func TestJetStreamKVStore(t *testing.T) {
	_, js := newTestJetStream(t)
	var n atomic.Int64
	runStoreSuite(t, "jetstream_kv", func(t *testing.T, o Options) Store {
		return newTestKV(t, js, fmt.Sprintf("dedupe_test_%d", n.Add(1)), o)
	})
}

func TestJetStreamKVBucket(t *testing.T) {
	_, js := newTestJetStream(t)
	ctx := context.Background()
	newTestKV(t, js, "dedupe", Options{SeenTTL: time.Hour})
	s := newTestKV(t, js, "dedupe", Options{SeenTTL: 2 * time.Hour}) // DEDUPE_TTL changed: bound and updated
	mustClaim(t, s, newKey(t), Claimed)
	kv, err := js.KeyValue(ctx, "dedupe")
	if err != nil {
		t.Fatal(err)
	}
	st, err := kv.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	info := st.(*jetstream.KeyValueBucketStatus).StreamInfo()
	if st.TTL() != 2*time.Hour || st.History() != 1 || info.Config.Storage != jetstream.FileStorage || info.Config.Replicas != 1 {
		t.Errorf("bucket TTL %v history %d storage %v replicas %d, want 2h, 1, file, 1",
			st.TTL(), st.History(), info.Config.Storage, info.Config.Replicas)
	}
}

// A key deleted between a failed Create and the Get is created again rather
// than reported as anything else.
func TestJetStreamKVClaimAfterDeleteMarker(t *testing.T) {
	_, js := newTestJetStream(t)
	s := newTestKV(t, js, "dedupe", Options{})
	k := newKey(t)
	if _, err := s.kv.Put(context.Background(), k, []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := s.kv.Delete(context.Background(), k); err != nil {
		t.Fatal(err)
	}
	mustClaim(t, s, k, Claimed)
	if err := s.kv.Purge(context.Background(), k); err != nil {
		t.Fatal(err)
	}
	mustClaim(t, s, k, Claimed)
}

// releaseBetween lets a concurrent holder release (or the bucket expire) the
// key right after Claim's Create found it, before Claim reads it: the real
// bucket, with that interleaving forced.
type releaseBetween struct {
	jetstream.KeyValue
	lease Lease
	store *KV
	done  bool
}

func (r *releaseBetween) Create(ctx context.Context, key string, value []byte, opts ...jetstream.KVCreateOpt) (uint64, error) {
	rev, err := r.KeyValue.Create(ctx, key, value, opts...)
	if err != nil && !r.done {
		r.done = true
		if rerr := r.store.Release(ctx, r.lease); rerr != nil {
			return 0, rerr
		}
	}
	return rev, err
}

func TestJetStreamKVClaimWhileReleased(t *testing.T) {
	_, js := newTestJetStream(t)
	s := newTestKV(t, js, "dedupe", Options{})
	k := newKey(t)
	holder := mustClaim(t, s, k, Claimed)
	racing := *s
	racing.kv = &releaseBetween{KeyValue: s.kv, lease: holder, store: s}
	l := mustClaim(t, &racing, k, Claimed)
	mustClaim(t, s, k, InFlight)
	mustRelease(t, s, l)
	mustClaim(t, s, k, Claimed)
}

func TestJetStreamKVUnavailable(t *testing.T) {
	n, js := newTestJetStream(t)
	s := newTestKV(t, js, "dedupe", Options{}) // production timeout
	ctx := context.Background()
	seen, fp := newKey(t), newKey(t)
	mustMarkSeen(t, s, mustClaim(t, s, seen, Claimed), fp)
	held := mustClaim(t, s, newKey(t), Claimed)
	if !s.Up() {
		t.Fatal("Up() = false while connected")
	}

	n.Stop()
	testenv.Eventually(t, 10*time.Second, "Up() false after the server stopped", func() bool { return !s.Up() })
	for i := range 3 {
		assertPrompt(t, fmt.Sprintf("Claim #%d", i+1), 2*time.Second, func() error {
			_, _, err := s.Claim(ctx, newKey(t))
			return err
		})
	}
	assertPrompt(t, "MarkSeen", 2*time.Second, func() error { return s.MarkSeen(ctx, held, "") })
	if _, _, err := s.Claim(ctx, newKey(t)); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Claim while disconnected = %v, want %v", err, ErrUnavailable)
	}
	assertPrompt(t, "Release", 2*time.Second, func() error { return s.Release(ctx, held) })
	assertPrompt(t, "Ping", 2*time.Second, func() error { return s.Ping(ctx) })

	n.Start()
	testenv.Eventually(t, 10*time.Second, "Ping after restart", func() bool { return s.Ping(ctx) == nil })
	mustClaim(t, s, newKey(t), Claimed)
	if !s.Up() {
		t.Error("Up() = false after Ping succeeded")
	}
	mustSeen(t, s, seen, fp) // file storage: seen markers survive a restart
	mustClaim(t, s, held.Key, InFlight)
	mustRelease(t, s, held)
	mustClaim(t, s, held.Key, Claimed)
}

// BenchmarkJetStreamKVClaimMarkSeen is the embedded default's hot path, for
// comparison with Redis.
func BenchmarkJetStreamKVClaimMarkSeen(b *testing.B) {
	_, js := newTestJetStream(b)
	benchClaimMarkSeen(b, newTestKV(b, js, "dedupe", Options{}))
}
