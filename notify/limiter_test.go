package notify

import (
	"net/netip"
	"sync"
	"testing"
	"time"
)

// clock is a manual time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func addr(i int) netip.Addr {
	return netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 12: byte(i >> 24), 13: byte(i >> 16), 14: byte(i >> 8), 15: byte(i)})
}

// TestSourceLimiterBurstAndRate: a source gets a burst of ten times the
// rate, then the rate; sources do not share buckets.
func TestSourceLimiterBurstAndRate(t *testing.T) {
	c := &clock{t: time.Unix(1_800_000_000, 0)}
	l := newSourceLimiter(2, 100, c.now)
	a, b := addr(1), addr(2)
	allowed := 0
	for range 50 {
		if l.allow(a) {
			allowed++
		}
	}
	if allowed != 20 {
		t.Errorf("burst allowed %d, want 20 (10 x 2/s)", allowed)
	}
	if !l.allow(b) {
		t.Errorf("another source was limited by the first one's burst")
	}
	c.add(time.Second)
	allowed = 0
	for range 10 {
		if l.allow(a) {
			allowed++
		}
	}
	if allowed != 2 {
		t.Errorf("after 1 s allowed %d, want 2", allowed)
	}
}

// TestSourceLimiterBoundedMemory: a flood from many addresses does not grow
// the map past its cap; while it is full of busy sources new ones share one
// bucket (no fresh burst per address), and idle sources are forgotten.
func TestSourceLimiterBoundedMemory(t *testing.T) {
	c := &clock{t: time.Unix(1_800_000_000, 0)}
	const max = 50
	l := newSourceLimiter(1, max, c.now)
	for i := range max {
		l.allow(addr(i)) // busy: each took a token
	}
	stored := 0
	for i := max; i < max+10_000; i++ {
		if l.allow(addr(i)) {
			stored++
		}
		if n := l.size(); n > max {
			t.Fatalf("limiter remembers %d sources, cap %d", n, max)
		}
	}
	if stored != 10 {
		t.Errorf("10,000 new addresses stored %d rejections, want the one shared burst of 10", stored)
	}
	// Once the first sources are idle again (their buckets full), they are
	// forgotten and new addresses get buckets of their own.
	c.add(time.Minute)
	if !l.allow(addr(1_000_000)) {
		t.Errorf("a new source after the flood was refused")
	}
	if n := l.size(); n != 1 {
		t.Errorf("after a sweep the limiter remembers %d sources, want 1", n)
	}
}

// TestLogLimiter: one line per key and interval, with the count held back.
func TestLogLimiter(t *testing.T) {
	c := &clock{t: time.Unix(1_800_000_000, 0)}
	l := newLogLimiter(time.Second, c.now)
	if _, ok := l.allow("reject:bad_signature"); !ok {
		t.Fatal("first line held back")
	}
	for range 5 {
		if _, ok := l.allow("reject:bad_signature"); ok {
			t.Fatal("a second line within the interval")
		}
	}
	if _, ok := l.allow("reject:stale"); !ok {
		t.Error("another key was held back")
	}
	c.add(time.Second)
	if n, ok := l.allow("reject:bad_signature"); !ok || n != 5 {
		t.Errorf("after the interval = %d, %v; want 5 suppressed, allowed", n, ok)
	}
}
