package loadgen

import (
	"math/bits"
	"sync/atomic"
	"time"
)

// histogram records latencies in microseconds in log-linear buckets: exact
// below 128µs, then 64 buckets per power of two, so any quantile it reports
// is within 1/64 (1.6%) of the true value. Recording is one atomic add, so
// every connection records into the same histogram and the progress line can
// read it while the run goes on.
type histogram struct {
	counts [histBuckets]atomic.Uint64
	total  atomic.Uint64
	max    atomic.Int64 // nanoseconds, exact
}

const (
	subBits     = 6
	subCount    = 1 << subBits // 64
	histBuckets = 2*subCount + 40*subCount
)

func bucketOf(us uint64) int {
	if us < 2*subCount {
		return int(us)
	}
	shift := bits.Len64(us) - subBits - 1 // top = us>>shift is in [64, 128)
	idx := 2*subCount + (shift-1)*subCount + int(us>>shift) - subCount
	if idx >= histBuckets {
		return histBuckets - 1
	}
	return idx
}

// bucketValue is the middle of bucket i, in microseconds.
func bucketValue(i int) float64 {
	if i < 2*subCount {
		return float64(i) + 0.5
	}
	shift := (i-2*subCount)/subCount + 1
	top := uint64((i-2*subCount)%subCount + subCount)
	lo := top << shift
	return float64(lo) + float64(uint64(1)<<shift)/2
}

func (h *histogram) record(d time.Duration) {
	if d < 0 {
		d = 0
	}
	h.counts[bucketOf(uint64(d/time.Microsecond))].Add(1)
	h.total.Add(1)
	for {
		m := h.max.Load()
		if int64(d) <= m || h.max.CompareAndSwap(m, int64(d)) {
			return
		}
	}
}

// quantile returns the q-quantile (0 < q <= 1) of what was recorded, 0 when
// nothing was.
func (h *histogram) quantile(q float64) time.Duration {
	n := h.total.Load()
	if n == 0 {
		return 0
	}
	rank := uint64(q*float64(n) + 0.5)
	if rank < 1 {
		rank = 1
	}
	var seen uint64
	for i := range h.counts {
		seen += h.counts[i].Load()
		if seen >= rank {
			v := time.Duration(bucketValue(i) * float64(time.Microsecond))
			if m := time.Duration(h.max.Load()); v > m {
				v = m
			}
			return v
		}
	}
	return time.Duration(h.max.Load())
}

// Latency summarises a latency distribution.
type Latency struct {
	Count uint64
	P50   time.Duration
	P95   time.Duration
	P99   time.Duration
	Max   time.Duration
}

func (h *histogram) summary() Latency {
	return Latency{
		Count: h.total.Load(),
		P50:   h.quantile(0.50),
		P95:   h.quantile(0.95),
		P99:   h.quantile(0.99),
		Max:   time.Duration(h.max.Load()),
	}
}
