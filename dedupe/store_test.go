package dedupe

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"sync"
	"testing"
	"time"
)

// newStoreFunc builds a store isolated from every other one the test made
// (own key prefix or own bucket) on a shared real server.
type newStoreFunc func(t *testing.T, opts Options) Store

// suiteTimeout is generous: the suite checks semantics on a shared 2-core
// machine under -race, not latency (the fault tests check that).
const suiteTimeout = 10 * time.Second

// newKey returns a notification id shaped like the real ones (32 hex chars).
func newKey(t testing.TB) string {
	t.Helper()
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func mustClaim(t *testing.T, s Store, key string, want Status) Lease {
	t.Helper()
	l, st, err := s.Claim(context.Background(), key)
	if err != nil {
		t.Fatalf("Claim(%q) error = %v, want %v", key, err, want)
	}
	if st != want {
		t.Fatalf("Claim(%q) = %v, want %v", key, st, want)
	}
	if l.Key != key {
		t.Fatalf("Claim(%q) lease key = %q", key, l.Key)
	}
	return l
}

func mustMarkSeen(t *testing.T, s Store, l Lease, fingerprint string) {
	t.Helper()
	if err := s.MarkSeen(context.Background(), l, fingerprint); err != nil {
		t.Fatalf("MarkSeen(%q, %q) = %v", l.Key, fingerprint, err)
	}
}

// mustSeen claims key, wanting Seen with the given fingerprint.
func mustSeen(t *testing.T, s Store, key, fingerprint string) {
	t.Helper()
	if l := mustClaim(t, s, key, Seen); l.Fingerprint != fingerprint {
		t.Fatalf("Claim(%q) fingerprint = %q, want %q", key, l.Fingerprint, fingerprint)
	}
}

// rawPutter writes a stored value directly, as an older version (or a
// corrupted store) would have: each store's test file implements it.
type rawPutter interface {
	putRaw(t *testing.T, key, value string)
}

func mustRelease(t *testing.T, s Store, l Lease) {
	t.Helper()
	if err := s.Release(context.Background(), l); err != nil {
		t.Fatalf("Release(%q) = %v", l.Key, err)
	}
}

// waitClaimed polls Claim until it returns Claimed and reports when that
// happened. Any other status than InFlight or Seen in between fails.
func waitClaimed(t *testing.T, s Store, key string, timeout time.Duration) (Lease, time.Time) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		l, st, err := s.Claim(context.Background(), key)
		if err != nil {
			t.Fatalf("Claim(%q) = %v", key, err)
		}
		if st == Claimed {
			return l, time.Now()
		}
		if time.Now().After(deadline) {
			t.Fatalf("Claim(%q) still %v after %v", key, st, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// runStoreSuite is the contract every Store must keep; it runs against each
// implementation on a real server.
func runStoreSuite(t *testing.T, wantName string, newStore newStoreFunc) {
	base := Options{ClaimTTL: 15 * time.Second, SeenTTL: time.Hour, Timeout: suiteTimeout}

	t.Run("name and ping", func(t *testing.T) {
		t.Parallel()
		s := newStore(t, base)
		if got := s.Name(); got != wantName {
			t.Errorf("Name() = %q, want %q", got, wantName)
		}
		if err := s.Ping(context.Background()); err != nil {
			t.Errorf("Ping() = %v, want nil", err)
		}
	})

	t.Run("claim, in flight, seen", func(t *testing.T) {
		t.Parallel()
		s := newStore(t, base)
		k := newKey(t)
		fp := newKey(t)
		l := mustClaim(t, s, k, Claimed)
		mustClaim(t, s, k, InFlight)
		mustClaim(t, s, k, InFlight)
		mustMarkSeen(t, s, l, fp)
		mustSeen(t, s, k, fp)
		mustSeen(t, s, k, fp)
		mustClaim(t, s, newKey(t), Claimed) // other keys are unaffected
	})

	t.Run("release makes the key claimable again", func(t *testing.T) {
		t.Parallel()
		s := newStore(t, base)
		k := newKey(t)
		l := mustClaim(t, s, k, Claimed)
		mustRelease(t, s, l)
		l2 := mustClaim(t, s, k, Claimed)
		if l2 == l {
			t.Errorf("second lease %+v equals the released one", l2)
		}
		mustClaim(t, s, k, InFlight)
		mustRelease(t, s, l) // the old lease again: must not free l2
		mustClaim(t, s, k, InFlight)
	})

	t.Run("release after mark seen keeps seen", func(t *testing.T) {
		t.Parallel()
		s := newStore(t, base)
		k := newKey(t)
		fp := newKey(t)
		l := mustClaim(t, s, k, Claimed)
		mustMarkSeen(t, s, l, fp)
		mustRelease(t, s, l)
		mustSeen(t, s, k, fp)
	})

	t.Run("release without a claimed lease", func(t *testing.T) {
		t.Parallel()
		s := newStore(t, base)
		k := newKey(t)
		mustClaim(t, s, k, Claimed)
		inflight := mustClaim(t, s, k, InFlight)
		for _, l := range []Lease{{Key: k}, inflight} {
			if err := s.Release(context.Background(), l); !errors.Is(err, ErrNoLease) {
				t.Errorf("Release(%+v) = %v, want %v", l, err, ErrNoLease)
			}
		}
		mustClaim(t, s, k, InFlight)
	})

	t.Run("mark seen with a bare key", func(t *testing.T) {
		t.Parallel()
		s := newStore(t, base)
		free, held := newKey(t), newKey(t)
		mustClaim(t, s, held, Claimed)
		mustMarkSeen(t, s, Lease{Key: free}, "f1") // published while the store was down
		mustMarkSeen(t, s, Lease{Key: held}, "f2")
		mustSeen(t, s, free, "f1")
		mustSeen(t, s, held, "f2")
	})

	t.Run("abandoned claim expires after claim TTL", func(t *testing.T) {
		t.Parallel()
		o := base
		o.ClaimTTL = 500 * time.Millisecond
		s := newStore(t, o)
		k := newKey(t)
		start := time.Now()
		mustClaim(t, s, k, Claimed) // holder dies: no MarkSeen, no Release
		mustClaim(t, s, k, InFlight)
		_, at := waitClaimed(t, s, k, 10*time.Second)
		if waited := at.Sub(start); waited < o.ClaimTTL-50*time.Millisecond {
			t.Errorf("claim taken over after %v, want at least the claim TTL %v", waited, o.ClaimTTL)
		}
		mustClaim(t, s, k, InFlight) // the new lease is live
	})

	t.Run("stale holder cannot release the new owner", func(t *testing.T) {
		t.Parallel()
		o := base
		o.ClaimTTL = 300 * time.Millisecond
		s := newStore(t, o)
		k := newKey(t)
		stale := mustClaim(t, s, k, Claimed)
		owner, _ := waitClaimed(t, s, k, 10*time.Second)
		mustRelease(t, s, stale)
		if _, st, err := s.Claim(context.Background(), k); err != nil || st != InFlight {
			t.Fatalf("Claim after a stale Release = %v, %v; want %v (the new owner's lease deleted)", st, err, InFlight)
		}
		mustMarkSeen(t, s, owner, "owner")
		mustRelease(t, s, stale)
		mustRelease(t, s, owner)
		mustSeen(t, s, k, "owner")
	})

	t.Run("slow holder still marks seen", func(t *testing.T) {
		t.Parallel()
		o := base
		o.ClaimTTL = 300 * time.Millisecond
		s := newStore(t, o)
		k := newKey(t)
		slow := mustClaim(t, s, k, Claimed)
		waitClaimed(t, s, k, 10*time.Second) // a retry took the expired lease over
		mustMarkSeen(t, s, slow, "slow")     // the slow publish was acknowledged after all
		mustSeen(t, s, k, "slow")
	})

	t.Run("seen expires after seen TTL", func(t *testing.T) {
		t.Parallel()
		o := base
		o.ClaimTTL = 200 * time.Millisecond
		o.SeenTTL = time.Second
		s := newStore(t, o)
		k := newKey(t)
		l := mustClaim(t, s, k, Claimed)
		mustMarkSeen(t, s, l, "")
		marked := time.Now()
		mustSeen(t, s, k, "")
		_, at := waitClaimed(t, s, k, 15*time.Second)
		if kept := at.Sub(marked); kept < o.SeenTTL-50*time.Millisecond {
			t.Errorf("seen forgotten after %v, want at least the seen TTL %v", kept, o.SeenTTL)
		}
	})

	t.Run("concurrent claims of one key", func(t *testing.T) {
		t.Parallel()
		s := newStore(t, base)
		k := newKey(t)
		claimConcurrently(t, s, k)
	})

	t.Run("concurrent takeover of an abandoned claim", func(t *testing.T) {
		t.Parallel()
		o := base
		o.ClaimTTL = 300 * time.Millisecond
		s := newStore(t, o)
		k := newKey(t)
		mustClaim(t, s, k, Claimed)
		// Polling Claim would take the lease over itself: wait it out.
		time.Sleep(o.ClaimTTL + 50*time.Millisecond)
		claimConcurrently(t, s, k)
	})

	t.Run("concurrent claims of distinct keys", func(t *testing.T) {
		t.Parallel()
		s := newStore(t, base)
		const n = 200
		keys := make([]string, n)
		for i := range keys {
			keys[i] = newKey(t)
		}
		forAll := func(f func(k string) error) {
			t.Helper()
			var wg sync.WaitGroup
			errc := make(chan error, n)
			for _, k := range keys {
				wg.Go(func() { errc <- f(k) })
			}
			wg.Wait()
			close(errc)
			for err := range errc {
				if err != nil {
					t.Fatal(err)
				}
			}
		}
		leases := sync.Map{}
		claimAs := func(want Status) func(string) error {
			return func(k string) error {
				l, st, err := s.Claim(context.Background(), k)
				if err != nil {
					return err
				}
				if st != want {
					return errors.New("Claim(" + k + ") = " + st.String() + ", want " + want.String())
				}
				leases.Store(k, l)
				return nil
			}
		}
		forAll(claimAs(Claimed))
		forAll(func(k string) error {
			l, _ := leases.Load(k)
			return s.MarkSeen(context.Background(), l.(Lease), "fp"+k)
		})
		forAll(claimAs(Seen))
		leases.Range(func(k, l any) bool {
			if got, want := l.(Lease).Fingerprint, "fp"+k.(string); got != want {
				t.Errorf("Claim(%s) fingerprint = %q, want %q", k, got, want)
			}
			return true
		})
	})

	t.Run("fingerprint round trip", func(t *testing.T) {
		t.Parallel()
		s := newStore(t, base)
		for _, fp := range []string{newKey(t), "", "0123456789abcdef0123456789abcdef"} {
			k := newKey(t)
			l := mustClaim(t, s, k, Claimed)
			if l.Fingerprint != "" {
				t.Errorf("Claimed lease fingerprint = %q, want none", l.Fingerprint)
			}
			if in := mustClaim(t, s, k, InFlight); in.Fingerprint != "" {
				t.Errorf("InFlight lease fingerprint = %q, want none", in.Fingerprint)
			}
			mustMarkSeen(t, s, l, fp)
			mustSeen(t, s, k, fp)
			mustSeen(t, s, k, fp)
			// A later MarkSeen (a copy published while the store was down)
			// is the truth from then on.
			mustMarkSeen(t, s, Lease{Key: k}, "later")
			mustSeen(t, s, k, "later")
		}
	})

	t.Run("legacy seen mark", func(t *testing.T) {
		t.Parallel()
		s := newStore(t, base)
		k := newKey(t)
		s.(rawPutter).putRaw(t, k, "1") // written by a version without fingerprints
		mustSeen(t, s, k, "")
		mustSeen(t, s, k, "")
		mustClaim(t, s, newKey(t), Claimed)
	})

	t.Run("every waiter sees the fingerprint", func(t *testing.T) {
		t.Parallel()
		s := newStore(t, base)
		k, fp := newKey(t), newKey(t)
		l := mustClaim(t, s, k, Claimed)
		const n = 20
		var waiting, done sync.WaitGroup
		got := make([]Lease, n)
		errs := make([]error, n)
		waiting.Add(n)
		for i := range n {
			done.Go(func() {
				deadline := time.Now().Add(suiteTimeout)
				first := true
				for {
					lease, st, err := s.Claim(context.Background(), k)
					if first {
						first = false
						waiting.Done()
					}
					switch {
					case err != nil:
						errs[i] = err
						return
					case st == Seen:
						got[i] = lease
						return
					case st != InFlight:
						errs[i] = errors.New("Claim = " + st.String() + " while the first copy was in flight")
						return
					case time.Now().After(deadline):
						errs[i] = errors.New("still in flight at the deadline")
						return
					}
					time.Sleep(5 * time.Millisecond)
				}
			})
		}
		waiting.Wait() // every waiter has seen the lease in flight
		mustMarkSeen(t, s, l, fp)
		done.Wait()
		for i := range n {
			if errs[i] != nil {
				t.Errorf("waiter %d: %v", i, errs[i])
			} else if got[i].Fingerprint != fp {
				t.Errorf("waiter %d: fingerprint %q, want %q", i, got[i].Fingerprint, fp)
			}
		}
	})
}

// claimConcurrently has 50 callers claim k at once: exactly one may own it.
func claimConcurrently(t *testing.T, s Store, k string) {
	t.Helper()
	const n = 50
	var (
		wg    sync.WaitGroup
		start = make(chan struct{})
		mu    sync.Mutex
		count = map[Status]int{}
		errs  []error
	)
	for range n {
		wg.Go(func() {
			<-start
			_, st, err := s.Claim(context.Background(), k)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			count[st]++
		})
	}
	close(start)
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("%d claims failed, first: %v", len(errs), errs[0])
	}
	if count[Claimed] != 1 || count[InFlight] != n-1 {
		t.Errorf("%d concurrent claims: %v, want exactly 1 %v and %d %v", n, count, Claimed, n-1, InFlight)
	}
}

// A lease token must never read as a seen mark, or a copy in flight would be
// answered as already published.
func TestTokensAreNeverSeenMarks(t *testing.T) {
	for range 10000 {
		tok := newToken()
		if fp, seen := parseSeen(tok); seen {
			t.Fatalf("token %q parses as a seen mark with fingerprint %q", tok, fp)
		}
	}
	for _, fp := range []string{"", "0123456789abcdef0123456789abcdef"} {
		if got, seen := parseSeen(seenMark(fp)); !seen || got != fp {
			t.Errorf("parseSeen(seenMark(%q)) = %q, %v", fp, got, seen)
		}
	}
	if got, seen := parseSeen(legacySeen); !seen || got != "" {
		t.Errorf("parseSeen(%q) = %q, %v; want a seen mark without fingerprint", legacySeen, got, seen)
	}
}

func TestStatusString(t *testing.T) {
	for _, tc := range []struct {
		s    Status
		want string
	}{
		{Claimed, "claimed"},
		{Seen, "seen"},
		{InFlight, "in_flight"},
		{0, "Status(0)"},
		{7, "Status(7)"},
	} {
		if got := tc.s.String(); got != tc.want {
			t.Errorf("Status(%d).String() = %q, want %q", int(tc.s), got, tc.want)
		}
	}
}
