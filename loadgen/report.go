package loadgen

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"
)

// Report is the outcome of a run.
type Report struct {
	RunID       string // prefix of every Order sent
	Target      string // the URL, URL token redacted
	Connections int
	DupShare    float64
	Terminals   []string
	MaxRetries  int

	Elapsed   time.Duration // first send to last answer
	Sent      int64         // notifications sent: originals and exact duplicates
	Originals int64
	Copies    int64 // exact duplicates sent on purpose
	Requests  int64 // HTTP requests, retries included
	Retries   int64
	GaveUp    int64 // sends that never got 200, after every retry
	// ByStatus counts answers by HTTP status; 0 is a connection error (no
	// answer at all).
	ByStatus map[int]int64
	Accepted int64 // 200 answers
	// Latency is over every answer; LatencyOK over the 200s.
	Latency   Latency
	LatencyOK Latency
	// Errors are the first distinct non-200 answers and connection errors,
	// with how often each happened.
	Errors map[string]int

	Verification *Verification // nil when not verified
}

// AcceptedPerSecond is the throughput: 200 answers per second.
func (r Report) AcceptedPerSecond() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Accepted) / r.Elapsed.Seconds()
}

// Rejected counts 4xx answers: every notification loadgen sends is correctly
// signed and well formed, so any 4xx means a credential or receiver problem.
func (r Report) Rejected() int64 {
	var n int64
	for code, c := range r.ByStatus {
		if code >= 400 && code < 500 {
			n += c
		}
	}
	return n
}

// Failed reports what makes `loadgen` exit 1: a lost, duplicated or
// unexpected event, a 4xx answer, or nothing accepted at all.
func (r Report) Failed() bool {
	if r.Accepted == 0 || r.Rejected() > 0 {
		return true
	}
	return r.Verification != nil && r.Verification.Failed()
}

func (r *runner) fill(rep *Report) {
	rep.Elapsed = r.end.Sub(r.start)
	rep.Sent = r.sent.Load()
	rep.Originals = int64(r.nextSeq.Load())
	rep.Copies = r.copies.Load()
	rep.Requests = r.requests.Load()
	rep.Retries = r.retries.Load()
	rep.GaveUp = r.gaveUp.Load()
	rep.ByStatus = map[int]int64{}
	for code := range r.status {
		if n := r.status[code].Load(); n > 0 {
			rep.ByStatus[code] = n
		}
	}
	rep.Accepted = rep.ByStatus[200]
	rep.Latency = r.latency.summary()
	rep.LatencyOK = r.latencyOK.summary()
	r.errMu.Lock()
	rep.Errors = maps.Clone(r.errs)
	r.errMu.Unlock()
}

func fmtDur(d time.Duration) string {
	switch {
	case d >= time.Second:
		return fmt.Sprintf("%.2fs", d.Seconds())
	case d >= time.Millisecond:
		return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
	default:
		return fmt.Sprintf("%dµs", d/time.Microsecond)
	}
}

func fmtLatency(l Latency) string {
	return fmt.Sprintf("p50 %s  p95 %s  p99 %s  max %s", fmtDur(l.P50), fmtDur(l.P95), fmtDur(l.P99), fmtDur(l.Max))
}

// WriteText writes the human report `loadgen` prints on stdout.
func (r Report) WriteText(w io.Writer) {
	p := func(format string, a ...any) { fmt.Fprintf(w, format+"\n", a...) }
	p("paycomet-notify loadgen: run %s against %s", r.RunID, r.Target)
	p("  %d connections, dup share %.2f, terminals %s, max retries %d", r.Connections, r.DupShare, strings.Join(r.Terminals, ","), r.MaxRetries)
	p("sent          %d notifications (%d originals, %d exact duplicates) in %s", r.Sent, r.Originals, r.Copies, r.Elapsed.Round(time.Millisecond))
	p("requests      %d (%d retries; %d notifications never answered 200)", r.Requests, r.Retries, r.GaveUp)
	rps := 0.0
	if r.Elapsed > 0 {
		rps = float64(r.Requests) / r.Elapsed.Seconds()
	}
	p("throughput    %.0f accepted/s (200 answers), %.0f requests/s", r.AcceptedPerSecond(), rps)
	p("latency       %s   (200 answers)", fmtLatency(r.LatencyOK))
	p("              %s   (every answer)", fmtLatency(r.Latency))
	codes := slices.Sorted(maps.Keys(r.ByStatus))
	parts := make([]string, 0, len(codes))
	for _, c := range codes {
		if c == 0 {
			continue
		}
		parts = append(parts, fmt.Sprintf("%d: %d", c, r.ByStatus[c]))
	}
	if n := r.ByStatus[0]; n > 0 {
		parts = append(parts, fmt.Sprintf("connection errors: %d", n))
	}
	p("answers       %s", strings.Join(parts, "  "))
	if len(r.Errors) > 0 {
		keys := slices.Sorted(maps.Keys(r.Errors))
		for _, k := range keys {
			p("              %6d × %s", r.Errors[k], k)
		}
	}
	if v := r.Verification; v != nil {
		p("verification  stream sequences %d..%d: %d events of this run, %d of other traffic", v.StartSeq, v.EndSeq, v.Events, v.Others)
		p("              expected %d (notifications answered 200)  found %d  lost %d  duplicated %d  unexpected %d",
			v.Expected, v.Found, v.Lost, v.Duplicated, v.Unexpected)
		p("              never answered 200: %d without an event, %d published without 200 (ack too late; not a failure)",
			v.NotAccepted, v.PublishedWithout200)
		if v.Quarantined > 0 {
			p("              quarantined on <prefix>.rejected: %d", v.Quarantined)
		}
		for _, e := range v.Examples {
			p("              %s", e)
		}
	} else {
		p("verification  skipped")
	}
	switch {
	case r.Accepted == 0:
		p("result        FAIL: no notification was accepted")
	case r.Rejected() > 0:
		p("result        FAIL: %d answers were 4xx to correctly signed notifications", r.Rejected())
	case r.Failed():
		p("result        FAIL: events lost, duplicated or unexpected")
	default:
		p("result        PASS")
	}
}
