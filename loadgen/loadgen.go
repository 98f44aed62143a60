// Package loadgen drives a paycomet-notify receiver the way PAYCOMET does —
// correctly signed notifications of every type and outcome from several
// terminals, exact duplicates, retries of 503s and broken connections — over
// a fixed number of keep-alive connections, measures the answers, and then
// reads the JetStream stream to prove the receiver's promise: every
// notification answered 200 produced exactly one event, and no event exists
// that this run did not cause.
//
// It is the engine of `paycomet-notify loadgen` and of the fault tests, which
// run it while they restart NATS, Redis and the receiver itself.
package loadgen

import (
	"context"
	crand "crypto/rand"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/paycomet-notify/paycomet-notify/secret"
)

// Options configures one run. Zero values take the defaults documented on
// each field.
type Options struct {
	// URL is the notification URL, with the URL token when the receiver has
	// one. http or https.
	URL string
	// Backends are further notification URLs of the same deployment (other
	// receivers): the connections are spread over URL and Backends in turn,
	// and a connection whose request got no answer moves to the next one,
	// as a load balancer stops sending to a dead backend. Empty: URL only.
	Backends []string
	// URLToken is the receiver's URL_TOKEN: it never appears in the report
	// or in errors, and when set the mix includes unsigned card-expiry
	// notices (108), which the receiver accepts only through the token.
	URLToken secret.Value
	// MerchantCode and Terminals sign the notifications (PAYCOMET_*).
	MerchantCode string
	Terminals    map[string]secret.Value

	// Connections is the number of keep-alive connections, each with one
	// request at a time; default 32.
	Connections int
	// Duration and Count bound the run: it stops at whichever comes first.
	// Count counts notifications sent (duplicates included, retries not).
	// With neither, the run lasts 10s; with only Count, at most MaxDuration.
	Duration time.Duration
	Count    int64
	// MaxDuration caps a Count run; default 10m.
	MaxDuration time.Duration
	// Rate caps notifications per second across all connections (retries
	// included); 0 sends as fast as the answers come back.
	Rate float64
	// DupShare is the share of sends that are an exact copy of a notification
	// sent shortly before (0 to 1).
	DupShare float64

	// MaxRetries is how many times a notification answered 503, or whose
	// connection failed, is sent again; 0 never.
	MaxRetries int
	// RetryBackoff is the wait before retry 1, 2, ...; the last one repeats.
	// Default 100ms, 200ms, 500ms, 1s, 2s. PAYCOMET's real schedule is not
	// published, and Retry-After is ignored for the same reason.
	RetryBackoff []time.Duration
	// RequestTimeout bounds one request; default 15s (longer than the
	// receiver's publish timeout plus its in-flight wait).
	RequestTimeout time.Duration

	// NoVerify skips reading the stream.
	NoVerify bool
	// NATSURL, Stream and Prefix locate the events (NATS_URL, STREAM_NAME,
	// SUBJECT_PREFIX).
	NATSURL string
	Stream  string
	Prefix  string
	// NATSOptions are added to the verifier's connection (NATS_CREDS,
	// NATS_TLS_* and the rest, from service.AuthOptions).
	NATSOptions []nats.Option
	// Settle is how long to wait after the last answer before reading the
	// stream, so that a publish answered 503 but stored late is seen;
	// default 2s.
	Settle time.Duration
	// VerifyTimeout bounds reading the stream; default 5m.
	VerifyTimeout time.Duration

	// Progress receives a live progress line (carriage return, no newline)
	// every ProgressEvery (default 1s); nil for none.
	Progress      io.Writer
	ProgressEvery time.Duration

	// Stop, when closed, ends the sending early as Duration would: the
	// notifications in flight finish their retries, then the run is verified.
	Stop <-chan struct{}
	// OnAnswer, when set, is called after every request with its status (0
	// for a connection error), from every connection at once: it lets a
	// caller watch a run, as the fault tests do to break a dependency only
	// once load flows and restore it only once the break was felt.
	OnAnswer func(status int)
	// OnAttempt, when set, is called after every request as OnAnswer is,
	// with when it was sent, how long it took and whether it was a first
	// attempt: what a fault test needs to tell availability and latency
	// per phase of a run.
	OnAttempt func(Attempt)

	// RunID prefixes every Order of the run, so verification counts only
	// this run's events; default "LG" and 8 random characters.
	RunID string
}

// Attempt is one request of a run, as Options.OnAttempt sees it.
type Attempt struct {
	Start   time.Time
	Latency time.Duration
	Status  int // 0: connection error
	Retry   int // 0 for the first attempt of a send
	Backend int // index of the URL it went to: 0 URL, i Backends[i-1]
}

// DefaultRetryBackoff is the retry schedule when Options.RetryBackoff is empty.
var DefaultRetryBackoff = []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 500 * time.Millisecond, time.Second, 2 * time.Second}

func (o *Options) defaults() error {
	if o.Connections <= 0 {
		o.Connections = 32
	}
	if o.MaxDuration <= 0 {
		o.MaxDuration = 10 * time.Minute
	}
	if o.Duration <= 0 {
		if o.Count > 0 {
			o.Duration = o.MaxDuration
		} else {
			o.Duration = 10 * time.Second
		}
	}
	if len(o.RetryBackoff) == 0 {
		o.RetryBackoff = DefaultRetryBackoff
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = 15 * time.Second
	}
	if o.Settle <= 0 {
		o.Settle = 2 * time.Second
	}
	if o.VerifyTimeout <= 0 {
		o.VerifyTimeout = 5 * time.Minute
	}
	if o.ProgressEvery <= 0 {
		o.ProgressEvery = time.Second
	}
	if o.Prefix == "" {
		o.Prefix = "paycomet"
	}
	if o.Stream == "" {
		o.Stream = "PAYCOMET"
	}
	if o.RunID == "" {
		o.RunID = "LG" + strings.ToUpper(crand.Text()[:8])
	}
	var errs []error
	if o.URL == "" {
		errs = append(errs, errors.New("no URL"))
	}
	if o.MerchantCode == "" || len(o.Terminals) == 0 {
		errs = append(errs, errors.New("no merchant code or terminals to sign with"))
	}
	if o.DupShare < 0 || o.DupShare >= 1 {
		errs = append(errs, fmt.Errorf("dup share must be at least 0 and below 1, got %v", o.DupShare))
	}
	if o.Count < 0 || o.Count >= 1<<32 {
		errs = append(errs, fmt.Errorf("count must be between 0 and %d", int64(1<<32-1)))
	}
	if o.MaxRetries < 0 {
		errs = append(errs, errors.New("max retries must not be negative"))
	}
	if o.Rate < 0 {
		errs = append(errs, errors.New("rate must not be negative"))
	}
	for _, d := range o.RetryBackoff {
		if d < 0 {
			errs = append(errs, errors.New("retry backoff must not be negative"))
			break
		}
	}
	if o.RunID != "" && strings.ContainsAny(o.RunID, "&=%+ \t\r\n[]") {
		errs = append(errs, errors.New("run id must be plain characters"))
	}
	if !o.NoVerify && o.NATSURL == "" {
		errs = append(errs, errors.New("no NATS URL to verify against (or turn verification off)"))
	}
	return errors.Join(errs...)
}

// Run sends notifications until Duration or Count, then (unless NoVerify)
// reads the stream and checks every accepted notification produced exactly
// one event. The error is for a run that could not be carried out (bad
// options, NATS unreachable, ctx cancelled); a receiver that loses or
// duplicates events is a Report whose Failed() is true.
func Run(ctx context.Context, o Options) (Report, error) {
	if err := o.defaults(); err != nil {
		return Report{}, fmt.Errorf("loadgen: %w", err)
	}
	var tgts []*target
	var err error
	for _, u := range append([]string{o.URL}, o.Backends...) {
		tgt, err := parseTarget(u)
		if err != nil {
			return Report{}, fmt.Errorf("loadgen: %w", err)
		}
		tgts = append(tgts, tgt)
	}
	ids := make([]string, 0, len(o.Terminals))
	for id := range o.Terminals {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	terms := make([]terminal, 0, len(ids))
	for _, id := range ids {
		terms = append(terms, terminal{id: id, pw: o.Terminals[id].Reveal()})
	}
	start := time.Now()
	gen := newGenerator(o.RunID, o.MerchantCode, terms, start.Truncate(time.Second), !o.URLToken.IsZero(), o.Prefix)

	rep := Report{RunID: o.RunID, Target: redact(o.URL, o.URLToken), Connections: o.Connections,
		DupShare: o.DupShare, Terminals: ids, MaxRetries: o.MaxRetries}

	var v *verifier
	if !o.NoVerify {
		vctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		v, err = openVerifier(vctx, o, gen)
		cancel()
		if err != nil {
			return rep, fmt.Errorf("loadgen: %s", redact(err.Error(), o.URLToken))
		}
		defer v.close()
	}

	r := newRunner(o, tgts, gen)
	r.run(ctx)
	r.fill(&rep)
	if err := ctx.Err(); err != nil {
		return rep, fmt.Errorf("loadgen: interrupted: %w", err)
	}
	if v == nil {
		return rep, nil
	}
	select {
	case <-time.After(o.Settle):
	case <-ctx.Done():
		return rep, fmt.Errorf("loadgen: interrupted: %w", ctx.Err())
	}
	vctx, cancel := context.WithTimeout(ctx, o.VerifyTimeout)
	defer cancel()
	res, err := v.verify(vctx, r.originals(), r.ackedSet())
	if err != nil {
		return rep, fmt.Errorf("loadgen: verify: %s", redact(err.Error(), o.URLToken))
	}
	rep.Verification = &res
	return rep, nil
}

func redact(s string, tok secret.Value) string {
	if t := tok.Reveal(); t != "" {
		s = strings.ReplaceAll(s, t, "<URL_TOKEN>")
	}
	return s
}

// runner is the load loop of one run.
type runner struct {
	o     Options
	tgts  []*target
	gen   *generator
	pace  pacer
	ring  dupRing
	start time.Time
	end   time.Time
	stop  atomic.Bool

	nextSeq   atomic.Uint64 // originals handed out
	sent      atomic.Int64  // notifications sent: originals and copies
	copies    atomic.Int64
	requests  atomic.Int64
	retries   atomic.Int64
	gaveUp    atomic.Int64      // sends that never got 200 after every retry
	status    [600]atomic.Int64 // answers by status; [0] is connection errors
	latency   histogram         // every answer
	latencyOK histogram         // 200 answers
	acked     [][]uint32        // per worker: seqs answered 200
	errMu     sync.Mutex        // guards errSamples
	errs      map[string]int    // first distinct errors and non-200 answers
}

const maxErrSamples = 8

func newRunner(o Options, tgts []*target, gen *generator) *runner {
	r := &runner{o: o, tgts: tgts, gen: gen, errs: map[string]int{}}
	if o.Rate > 0 {
		r.pace.interval = int64(float64(time.Second) / o.Rate)
	}
	r.ring.slots = make([]dupSlot, 4096)
	r.acked = make([][]uint32, o.Connections)
	return r
}

func (r *runner) run(ctx context.Context) {
	r.start = time.Now()
	deadline := r.start.Add(r.o.Duration)
	stopProgress := make(chan struct{})
	progressDone := make(chan struct{})
	go func() {
		defer close(progressDone)
		r.progress(stopProgress)
	}()
	var wg sync.WaitGroup
	for w := range r.o.Connections {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.worker(ctx, w, deadline)
		}()
	}
	wg.Wait()
	r.end = time.Now()
	close(stopProgress)
	<-progressDone
}

// take reserves the next send, or reports that the run is over.
func (r *runner) take(ctx context.Context, deadline time.Time) bool {
	stopped := false
	select {
	case <-r.o.Stop:
		stopped = true
	default:
	}
	if stopped || r.stop.Load() || ctx.Err() != nil || !time.Now().Before(deadline) {
		r.stop.Store(true)
		return false
	}
	if n := r.sent.Add(1); r.o.Count > 0 && n > r.o.Count {
		r.sent.Add(-1)
		r.stop.Store(true)
		return false
	}
	return true
}

func (r *runner) worker(ctx context.Context, w int, deadline time.Time) {
	c := &conn{target: r.tgts[w%len(r.tgts)], backend: w % len(r.tgts), timeout: r.o.RequestTimeout}
	defer c.close()
	rnd := rand.New(rand.NewPCG(uint64(w), uint64(time.Now().UnixNano())))
	for r.take(ctx, deadline) {
		var seq uint64
		var body string
		if r.o.DupShare > 0 && rnd.Float64() < r.o.DupShare {
			if s, b, ok := r.ring.pick(rnd); ok {
				seq, body = s, b
				r.copies.Add(1)
			}
		}
		if body == "" {
			seq = r.nextSeq.Add(1) - 1
			body = r.gen.body(seq)
			r.ring.put(seq, body)
		}
		if r.deliver(ctx, c, body) {
			r.acked[w] = append(r.acked[w], uint32(seq))
		}
	}
}

// deliver posts body until it is answered 200, retrying 503 and connection
// errors up to MaxRetries times, and reports whether it got 200.
func (r *runner) deliver(ctx context.Context, c *conn, body string) bool {
	for attempt := 0; ; attempt++ {
		if err := r.pace.wait(ctx); err != nil {
			return false
		}
		r.requests.Add(1)
		if attempt > 0 {
			r.retries.Add(1)
		}
		t0 := time.Now()
		status, text, err := c.post(ctx, body)
		d := time.Since(t0)
		if ctx.Err() != nil {
			return false
		}
		r.status[min(status, len(r.status)-1)].Add(1)
		if r.o.OnAnswer != nil {
			r.o.OnAnswer(status)
		}
		if r.o.OnAttempt != nil {
			r.o.OnAttempt(Attempt{Start: t0, Latency: d, Status: status, Retry: attempt, Backend: c.backend})
		}
		if err != nil && len(r.tgts) > 1 {
			c.backend = (c.backend + 1) % len(r.tgts)
			c.target = r.tgts[c.backend]
		}
		if err == nil {
			r.latency.record(d)
		}
		if status == 200 {
			r.latencyOK.record(d)
			return true
		}
		if err != nil {
			r.sample("connection error: " + redact(err.Error(), r.o.URLToken))
		} else {
			r.sample(fmt.Sprintf("%d %s", status, strings.TrimSpace(text)))
		}
		if (err == nil && status != 503) || attempt >= r.o.MaxRetries {
			r.gaveUp.Add(1)
			return false
		}
		wait := r.o.RetryBackoff[min(attempt, len(r.o.RetryBackoff)-1)]
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return false
		}
	}
}

// localAddr is the client side of a connection in an error ("tcp
// 127.0.0.1:46218->"): dropped, so one kind of error is one sample line.
var localAddr = regexp.MustCompile(`tcp \S+->`)

func (r *runner) sample(s string) {
	s = localAddr.ReplaceAllString(s, "tcp ")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	r.errMu.Lock()
	defer r.errMu.Unlock()
	if _, ok := r.errs[s]; ok || len(r.errs) < maxErrSamples {
		r.errs[s]++
	}
}

func (r *runner) originals() uint64 { return r.nextSeq.Load() }

// ackedSet is one bit per original: answered 200 at least once.
func (r *runner) ackedSet() []bool {
	set := make([]bool, r.nextSeq.Load())
	for _, l := range r.acked {
		for _, s := range l {
			set[s] = true
		}
	}
	return set
}

// progress writes the live line until stop is closed.
func (r *runner) progress(stop <-chan struct{}) {
	if r.o.Progress == nil {
		<-stop
		return
	}
	t := time.NewTicker(r.o.ProgressEvery)
	defer t.Stop()
	last, lastAt := int64(0), time.Now()
	for {
		select {
		case <-stop:
			fmt.Fprint(r.o.Progress, "\n")
			return
		case now := <-t.C:
			req := r.requests.Load()
			rps := float64(req-last) / now.Sub(lastAt).Seconds()
			last, lastAt = req, now
			var c2, c4, c5 int64
			for code := range r.status {
				switch n := r.status[code].Load(); code / 100 {
				case 2:
					c2 += n
				case 4:
					c4 += n
				case 5:
					c5 += n
				}
			}
			fmt.Fprintf(r.o.Progress, "\rsent %d  %6.0f req/s  2xx %d  4xx %d  5xx %d  conn err %d  p99 %s   ",
				r.sent.Load(), rps, c2, c4, c5, r.status[0].Load(), fmtDur(r.latency.quantile(0.99)))
		}
	}
}

// pacer spaces sends Rate apart across all connections; it never bursts to
// catch up after a slow answer.
type pacer struct {
	interval int64 // ns; 0 = no pacing
	next     atomic.Int64
}

func (p *pacer) wait(ctx context.Context) error {
	if p.interval == 0 {
		return nil
	}
	for {
		n := p.next.Load()
		now := time.Now().UnixNano()
		at := max(n, now)
		if p.next.CompareAndSwap(n, at+p.interval) {
			if d := time.Duration(at - now); d > 0 {
				t := time.NewTimer(d)
				select {
				case <-t.C:
				case <-ctx.Done():
					t.Stop()
					return ctx.Err()
				}
			}
			return nil
		}
	}
}

// dupRing remembers the last sends, for exact duplicates: a copy may reach
// the receiver while its original is still in flight, as PAYCOMET's retries
// sometimes do.
type dupRing struct {
	mu    sync.Mutex
	slots []dupSlot
	n     uint64
}

type dupSlot struct {
	seq  uint64
	body string
}

func (d *dupRing) put(seq uint64, body string) {
	d.mu.Lock()
	d.slots[d.n%uint64(len(d.slots))] = dupSlot{seq, body}
	d.n++
	d.mu.Unlock()
}

func (d *dupRing) pick(rnd *rand.Rand) (uint64, string, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.n == 0 {
		return 0, "", false
	}
	s := d.slots[rnd.Uint64N(min(d.n, uint64(len(d.slots))))]
	return s.seq, s.body, true
}
