package notify

import (
	"context"
	"errors"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/paycomet-notify/paycomet-notify/events"
)

// rejection is what the path knows about a request it refuses.
type rejection struct {
	req     *Request
	form    events.Form
	auth    events.Auth // Type and Terminal, as far as authentication got
	reason  string      // events.Reason*
	status  int         // the HTTP status answered (200 for a conflicting copy)
	detail  string
	eventID string // for a conflicting copy: the accepted event it copies
}

// rejectErr rejects for an error of the events package: its reason code
// and status follow from the error's type.
func (p *Path) rejectErr(ctx context.Context, rej rejection, err error) Outcome {
	rej.reason = events.ReasonOf(err)
	if rej.reason == "" {
		rej.reason = events.ReasonMalformed
	}
	rej.status = http.StatusBadRequest
	var ae *events.AuthError
	if errors.As(err, &ae) {
		rej.status = http.StatusUnauthorized
	}
	rej.detail = err.Error()
	return p.reject(ctx, rej)
}

// reject answers a rejection and quarantines the request with its exact
// bytes on <prefix>.rejected, unless its source is past
// REJECTED_RATE_PER_SOURCE. When the quarantine cannot be published the
// outcome is Unavailable, so nothing PAYCOMET sent is dropped silently.
func (p *Path) reject(ctx context.Context, rej rejection) Outcome {
	conflicting := rej.reason == events.ReasonConflictingCopy || rej.reason == events.ReasonReconciledCopy // answered 200: the event is durable
	ts := p.m.types(rej.auth.Type)
	if rej.status == http.StatusUnauthorized {
		t := "other"
		if p.terminals[rej.auth.Terminal] {
			t = rej.auth.Terminal
		}
		p.m.unauthorized.WithLabelValues(t).Inc()
	}
	out := Outcome{Kind: Rejected, Reason: rej.reason, Detail: rej.detail, Status: rej.status}
	if !p.limiter.allow(rej.req.Source) {
		p.m.notStoredRateLimited.Inc()
		if !conflicting {
			ts.rejected.Inc()
		}
		p.logRejection(rej, "", false)
		return out
	}
	ev := events.Rejected(events.RejectedInput{
		Reason: rej.reason, Detail: rej.detail, Status: rej.status, Form: rej.form,
		Request: events.RejectedRequest{Body: rej.req.Body, Truncated: rej.req.Truncated, Query: rej.req.Query,
			ContentType: rej.req.ContentType, URLTokenPath: rej.req.URLTokenPath},
		Source: sourceString(rej), ReceivedAt: rej.req.ReceivedAt, Terminal: rej.auth.Terminal, EventID: rej.eventID,
	})
	ev.TraceParent = p.traceParent(ctx)
	body, err := ev.Encode()
	if err == nil {
		pctx, cancel := context.WithTimeout(ctx, p.cfg.PublishTimeout)
		_, err = p.quarantine.Publish(pctx, ev.Topic(p.cfg.Prefix), ev.ID, body)
		cancel()
	}
	if err != nil {
		p.warnf("quarantine", "rejected request could not be quarantined",
			"err", err, "reason", rej.reason, "status", rej.status, "source", sourceString(rej))
		if conflicting {
			// The notification's event is durable: answer 200 all the same.
			p.m.notStoredUnavailable.Inc()
			return out
		}
		ts.unavailable.Inc()
		return Outcome{Kind: Unavailable, Reason: rej.reason, Detail: "the rejected notification could not be quarantined; retry"}
	}
	if !conflicting {
		ts.rejected.Inc()
	}
	p.m.quarantined.WithLabelValues(rej.reason).Inc()
	p.logRejection(rej, ev.ID, true)
	out.QuarantineID = ev.ID
	return out
}

func sourceString(rej rejection) string {
	if !rej.req.Source.IsValid() {
		return ""
	}
	return rej.req.Source.String()
}

// logRejection writes at most one line per second per reason: a flood of
// bad requests must not become a flood of log lines. It names no secret and
// never TokenUser: only the reason, the source and the fields that say
// which notification it was meant to be.
func (p *Path) logRejection(rej rejection, quarantineID string, stored bool) {
	n, ok := p.warn.allow("reject:" + rej.reason)
	if !ok {
		return
	}
	v := rej.form.Values()
	attrs := []any{"reason", rej.reason, "status", rej.status, "source", sourceString(rej),
		"transaction_type", clip(v.Get("TransactionType")), "order", clip(v.Get("Order")), "terminal", clip(rej.auth.Terminal),
		"stored", stored}
	if quarantineID != "" {
		attrs = append(attrs, "quarantine_id", quarantineID)
	}
	if rej.eventID != "" {
		attrs = append(attrs, "event_id", rej.eventID)
	}
	if n > 0 {
		attrs = append(attrs, "suppressed", n)
	}
	msg := "notification rejected and quarantined"
	switch {
	case rej.reason == events.ReasonConflictingCopy:
		msg = "conflicting copy of an accepted notification quarantined"
	case !stored:
		msg = "notification rejected; not stored (source over REJECTED_RATE_PER_SOURCE)"
	}
	p.log.Warn(msg, attrs...)
}

// clip bounds what an attacker-controlled value puts in a log line.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

// defaultMaxSources bounds the limiter map: past it idle sources are
// forgotten, and while every entry is busy new sources share one bucket.
const defaultMaxSources = 10000

// sourceLimiter is REJECTED_RATE_PER_SOURCE: a token bucket per source
// address, in a map whose size is bounded whatever the number of addresses
// sending. An address whose bucket is full again is idle, and forgetting it
// changes nothing; when the map is full of busy sources, new ones share the
// overflow bucket, so many addresses cannot buy many fresh bursts.
type sourceLimiter struct {
	limit    rate.Limit
	burst    int
	max      int
	now      func() time.Time
	mu       sync.Mutex
	buckets  map[[16]byte]*rate.Limiter
	overflow *rate.Limiter
	swept    time.Time // last sweep that found the map full
}

func newSourceLimiter(perSecond float64, max int, now func() time.Time) *sourceLimiter {
	l := &sourceLimiter{limit: rate.Limit(perSecond), max: max, now: now, buckets: map[[16]byte]*rate.Limiter{}}
	if perSecond >= float64(rate.Inf) {
		l.limit = rate.Inf
	}
	b := 10 * perSecond
	switch {
	case b < 1:
		l.burst = 1
	case b > 1e9:
		l.burst = 1e9
	default:
		l.burst = int(b + 0.999999)
	}
	l.overflow = rate.NewLimiter(l.limit, l.burst)
	return l
}

// allow takes one token of src's bucket.
func (l *sourceLimiter) allow(src netip.Addr) bool {
	if l.limit == rate.Inf {
		return true
	}
	now := l.now()
	key := src.As16()
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets[key]
	if !ok {
		if len(l.buckets) >= l.max {
			l.sweep(now)
		}
		if len(l.buckets) >= l.max {
			return l.overflow.AllowN(now, 1)
		}
		b = rate.NewLimiter(l.limit, l.burst)
		l.buckets[key] = b
	}
	return b.AllowN(now, 1)
}

// sweep forgets idle sources, at most once a second while the map stays
// full of busy ones, so a flood does not turn every request into a scan.
func (l *sourceLimiter) sweep(now time.Time) {
	if now.Sub(l.swept) < time.Second {
		return
	}
	for k, b := range l.buckets {
		if b.TokensAt(now) >= float64(l.burst) {
			delete(l.buckets, k)
		}
	}
	if len(l.buckets) >= l.max {
		l.swept = now
	}
}

// size is the number of sources remembered, for tests.
func (l *sourceLimiter) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}

// logLimiter lets one line per key through per interval and counts the
// ones it held back.
type logLimiter struct {
	every time.Duration
	now   func() time.Time
	mu    sync.Mutex
	keys  map[string]*logSlot
}

type logSlot struct {
	last       atomic.Int64
	suppressed atomic.Int64
}

func newLogLimiter(every time.Duration, now func() time.Time) *logLimiter {
	return &logLimiter{every: every, now: now, keys: map[string]*logSlot{}}
}

// allow reports whether a line for key may be written now, and how many
// were held back since the last one. Keys are a small fixed set (reasons
// and a few path steps), so the map stays small.
func (l *logLimiter) allow(key string) (int64, bool) {
	l.mu.Lock()
	s, ok := l.keys[key]
	if !ok {
		if len(l.keys) >= 64 {
			key = "other"
			s = l.keys[key]
		}
		if s == nil {
			s = &logSlot{}
			l.keys[key] = s
		}
	}
	l.mu.Unlock()
	now := l.now().UnixNano()
	last := s.last.Load()
	if last != 0 && now-last < int64(l.every) || !s.last.CompareAndSwap(last, now) {
		s.suppressed.Add(1)
		return 0, false
	}
	return s.suppressed.Swap(0), true
}
