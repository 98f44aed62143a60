package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/paycomet-notify/paycomet-notify/config"
	"github.com/paycomet-notify/paycomet-notify/events"
	"github.com/paycomet-notify/paycomet-notify/internal/service"
	"github.com/paycomet-notify/paycomet-notify/paycometrest"
	"github.com/paycomet-notify/paycomet-notify/publisher"
	"github.com/paycomet-notify/paycomet-notify/reconcile"
	"github.com/paycomet-notify/paycomet-notify/secret"
	"github.com/paycomet-notify/paycomet-notify/tracing"
)

const reconcileUsage = `usage: paycomet-notify reconcile (--from T --to T | --last D) [--every D] [--settle D]
                                 [--publish-missing] [--terminal N]... [--demo]

Compares PAYCOMET's own record of operations (REST /v1/payments/search) with
the events on the stream and reports, per terminal, the operations whose
notification never arrived (contract section 11). Each one is published
once as a paycomet.reconcile.missing event on
<prefix>.<terminal>.reconcile.missing; checking a window again publishes
nothing new.

  --from, --to        the window, RFC 3339 (half-open: --to is excluded)
  --last D            the window that ends now less --settle (24h, 1h)
  --every D           keep running, checking the last --last every D, with
                      /healthz and /metrics on ADMIN_ADDR
  --settle D          with --last, how long before now the window ends, so a
                      notification still on its way is not reported (2m)
  --publish-missing   also publish each missing operation's own event through
                      the receiver's notification path (authenticated_by
                      reconciliation); the real notification arriving later
                      is a copy of it
  --terminal N        only this configured terminal (repeatable)
  --demo              the demo terminal, and paycomet-fake's key and URL

Configuration: RECONCILE_API_KEY (a REST key with the Query privilege only)
or PAYCOMET_API_KEY, PAYCOMET_REST_URL, RECONCILE_CURRENCIES (EUR),
PAYCOMET_MERCHANT_CODE, PAYCOMET_TERMINALS, NATS_URL, SUBJECT_PREFIX,
STREAM_NAME, DEDUPE_TTL and REDIS_URL (--publish-missing), ADMIN_ADDR (--every).

Standard output gets a table per run; standard error a progress line.
Exit status: 0 the run completed, whatever it found; 1 bad input or
configuration; 3 a PAYCOMET REST call failed, timed out or was unreadable, or
NATS failed (the findings of the windows that completed are published; the
failed ones are never taken for "nothing missing").
`

// Exit codes of reconcile (contract section 11).
const (
	reconcileExitOK      = 0
	reconcileExitInput   = 1
	reconcileExitBackend = 3
)

// reconcileFlags is what the command line chose.
type reconcileFlags struct {
	from, to       time.Time
	last, every    time.Duration
	settle         time.Duration
	publishMissing bool
	terminals      []string
	demo           bool
}

func parseReconcileFlags(args []string, stderr io.Writer) (reconcileFlags, error) {
	var f reconcileFlags
	fs := flag.NewFlagSet("reconcile", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, reconcileUsage) }
	from := fs.String("from", "", "window start, RFC 3339")
	to := fs.String("to", "", "window end (excluded), RFC 3339")
	fs.DurationVar(&f.last, "last", 0, "the window ending now")
	fs.DurationVar(&f.every, "every", 0, "run again every D")
	fs.DurationVar(&f.settle, "settle", 2*time.Minute, "with --last, end the window this long before now")
	fs.BoolVar(&f.publishMissing, "publish-missing", false, "also publish each missing operation's own event")
	fs.Func("terminal", "only this terminal (repeatable)", func(v string) error { f.terminals = append(f.terminals, v); return nil })
	fs.BoolVar(&f.demo, "demo", false, "demo terminal, key and fake URL")
	if err := fs.Parse(args); err != nil {
		return f, err
	}
	if fs.NArg() > 0 {
		return f, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	fixed := *from != "" || *to != ""
	switch {
	case fixed && f.last != 0:
		return f, errors.New("give either --from and --to or --last, not both")
	case fixed && f.every != 0:
		return f, errors.New("--every checks the last --last each time; a fixed --from/--to would be checked again and again")
	case !fixed && f.last == 0:
		return f, errors.New("give the window: --from and --to (RFC 3339) or --last (24h)")
	case f.last < 0 || f.every < 0 || f.settle < 0:
		return f, errors.New("--last, --every and --settle must be positive")
	}
	if fixed {
		var err error
		if f.from, err = time.Parse(time.RFC3339, *from); err != nil {
			return f, fmt.Errorf("--from %q is not an RFC 3339 time (2026-03-01T00:00:00+01:00)", *from)
		}
		if f.to, err = time.Parse(time.RFC3339, *to); err != nil {
			return f, fmt.Errorf("--to %q is not an RFC 3339 time (2026-03-02T00:00:00+01:00)", *to)
		}
		if !f.to.After(f.from) {
			return f, errors.New("--to must be after --from")
		}
	}
	return f, nil
}

// reconcileEnv is reconcile's share of the environment (contract section
// 3), read from the same injected map as config.Load.
type reconcileEnv struct {
	key        secret.Value
	keyName    string
	restURL    string
	currencies []string
	tracing    *tracing.Tracing // --publish-missing's path; nil: off
}

func loadReconcileEnv(env map[string]string, demoMode bool) (reconcileEnv, error) {
	e := reconcileEnv{key: secret.New(env["RECONCILE_API_KEY"]), keyName: "RECONCILE_API_KEY", restURL: env["PAYCOMET_REST_URL"]}
	if e.key.IsZero() {
		e.key, e.keyName = secret.New(env["PAYCOMET_API_KEY"]), "PAYCOMET_API_KEY"
	}
	if demoMode {
		if e.key.IsZero() {
			e.key, e.keyName = secret.New(paycometrest.DemoAPIKey), "the demo key"
		}
		if e.restURL == "" {
			e.restURL = paycometrest.DemoURL
		}
	}
	if e.key.IsZero() {
		return e, errors.New("set RECONCILE_API_KEY (a PAYCOMET REST key with the Query privilege) or PAYCOMET_API_KEY, or run with --demo")
	}
	if e.restURL == "" {
		e.restURL = paycometrest.DefaultURL
	}
	cur := env["RECONCILE_CURRENCIES"]
	if strings.TrimSpace(cur) == "" {
		cur = "EUR"
	}
	seen := map[string]bool{}
	for _, c := range strings.Split(cur, ",") {
		c = strings.TrimSpace(c)
		if len(c) != 3 || strings.ToUpper(c) != c || strings.ContainsFunc(c, func(r rune) bool { return r < 'A' || r > 'Z' }) {
			return e, fmt.Errorf("RECONCILE_CURRENCIES must be comma-separated ISO 4217 codes (EUR,USD), got %q", c)
		}
		if !seen[c] {
			seen[c] = true
			e.currencies = append(e.currencies, c)
		}
	}
	return e, nil
}

// runReconcile is `paycomet-notify reconcile`.
func runReconcile(ctx context.Context, args []string, env map[string]string, stdout, stderr io.Writer) int {
	fail := func(code int, format string, a ...any) int {
		fmt.Fprintf(stderr, "paycomet-notify reconcile: "+format+"\n", a...)
		return code
	}
	f, err := parseReconcileFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return reconcileExitOK
	}
	if err != nil {
		return fail(reconcileExitInput, "%v", err)
	}
	cfg, err := config.Load(env, nil)
	if err != nil {
		return fail(reconcileExitInput, "%v", err)
	}
	if f.demo {
		cfg.ApplyDemo()
	} else if err := cfg.RequireTerminals(); err != nil {
		return fail(reconcileExitInput, "%v", err)
	}
	terminals := cfg.Terminals.IDs()
	if len(f.terminals) > 0 {
		for _, t := range f.terminals {
			if _, ok := cfg.Terminals[t]; !ok {
				return fail(reconcileExitInput, "--terminal %s is not in PAYCOMET_TERMINALS", t)
			}
		}
		terminals = f.terminals
	}
	renv, err := loadReconcileEnv(env, f.demo)
	if err != nil {
		return fail(reconcileExitInput, "%v", err)
	}
	// PAYCOMET's plugins wait 120 s for an answer; a search of 10000 rows
	// may take a while, and 429 is waited out on top of that.
	rest, err := paycometrest.New(renv.restURL, renv.key, paycometrest.WithHTTPClient(&http.Client{Timeout: 120 * time.Second}))
	if err != nil {
		return fail(reconcileExitInput, "PAYCOMET_REST_URL or %s: %v", renv.keyName, err)
	}
	log, err := service.NewLogger(stderr, cfg.LogLevel)
	if err != nil {
		return fail(reconcileExitInput, "%v", err)
	}
	// The copies --publish-missing publishes are traced when OTEL_* say
	// so; the spans are flushed before the command exits.
	if renv.tracing, err = tracing.Setup(ctx, env, tracing.Options{ServiceName: "paycomet-notify-reconcile", Version: version, Log: log}); err != nil {
		return fail(reconcileExitInput, "%v", err)
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := renv.tracing.Shutdown(sctx); err != nil {
			log.Warn("spans not flushed", "err", err)
		}
	}()
	var admin *service.Admin
	reg := prometheus.NewRegistry()
	if f.every > 0 {
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		// Bound before NATS: a taken port is bad configuration (exit 1).
		ac := adminConfig(cfg, cfg.AdminAddr, "ADMIN_ADDR")
		ac.Gatherer, ac.Log = reg, log
		var nc *nats.Conn
		var mu sync.Mutex
		ac.Ready = func(context.Context) service.Readiness {
			mu.Lock()
			defer mu.Unlock()
			ok := nc != nil && nc.IsConnected()
			c := service.Check{Name: "nats", OK: ok}
			if !ok {
				c.Error = "not connected"
			}
			return service.NewReadiness(c)
		}
		if admin, err = service.ListenAdmin(ac); err != nil {
			return fail(reconcileExitInput, "%v", err)
		}
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = admin.Shutdown(sctx)
		}()
		go func() {
			if err := admin.Serve(); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("admin listener", "err", err)
			}
		}()
		// Long-running: wait for NATS like serve and the refresher do.
		var conn *opsConn
		if err := service.Wait(ctx, log, nil, "NATS "+cfg.NATSServers().String(), func(context.Context) (err error) {
			conn, err = openOps("reconcile", cfg)
			return err
		}); err != nil {
			return fail(reconcileExitBackend, "%v", err)
		}
		defer conn.close()
		mu.Lock()
		nc = conn.nc
		mu.Unlock()
		return reconcileLoop(ctx, f, cfg, terminals, renv, rest, conn, reg, stdout, stderr, log)
	}
	conn, err := openOps("reconcile", cfg)
	if err != nil {
		return fail(reconcileExitBackend, "%v", err)
	}
	defer conn.close()
	return reconcileLoop(ctx, f, cfg, terminals, renv, rest, conn, reg, stdout, stderr, log)
}

// reconcileLoop runs once, or every --every until ctx ends.
func reconcileLoop(ctx context.Context, f reconcileFlags, cfg config.Config, terminals []string, renv reconcileEnv,
	rest *paycometrest.Client, conn *opsConn, reg *prometheus.Registry, stdout, stderr io.Writer, log *slog.Logger) int {
	fail := func(code int, format string, a ...any) int {
		fmt.Fprintf(stderr, "paycomet-notify reconcile: "+format+"\n", a...)
		return code
	}
	sctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	_, err := publisher.EnsureStreams(sctx, conn.js, streamsConfig(cfg))
	cancel()
	if err != nil {
		return fail(reconcileExitBackend, "streams: %v", err)
	}
	var copier reconcile.Copier
	if f.publishMissing {
		c, closeCopier, err := openReconcileCopier(ctx, cfg, conn, log, renv.tracing)
		if err != nil {
			return fail(reconcileExitBackend, "%v", err)
		}
		defer closeCopier()
		copier = c
	}
	pr := newReconcileProgress(stderr)
	rc, err := reconcile.New(reconcile.Config{Prefix: cfg.SubjectPrefix, Stream: cfg.StreamName, Terminals: terminals,
		Currencies: renv.currencies, PublishTimeout: cfg.PublishTimeout, Progress: pr.show}, rest, conn.js,
		publisher.New(conn.js, cfg.StreamName), copier)
	if err != nil {
		return fail(reconcileExitInput, "%v", err)
	}
	m := reconcile.NewMetrics(reg, terminals)
	once := func() int {
		from, to := f.from, f.to
		if f.last > 0 {
			to = time.Now().Add(-f.settle)
			from = to.Add(-f.last)
		}
		start := time.Now()
		rep, err := rc.Run(ctx, from, to)
		pr.done()
		m.Observe(rep, err, time.Since(start), time.Now())
		if rep != nil {
			writeReconcileTable(stdout, rep)
		}
		code := reconcileExitOK
		if rep != nil && rep.Failed() {
			for _, t := range rep.Terminals {
				if t.Err != nil {
					fmt.Fprintf(stderr, "paycomet-notify reconcile: terminal %s: %s\n", t.Terminal, paycometError(t.Err))
				}
			}
			code = reconcileExitBackend
		}
		if err != nil {
			fmt.Fprintf(stderr, "paycomet-notify reconcile: %v\n", err)
			code = reconcileExitBackend
		}
		log.Info("reconcile run", "from", from, "to", to, "missing", missingCount(rep), "failed", code != reconcileExitOK,
			"took_seconds", time.Since(start).Seconds())
		return code
	}
	if f.every == 0 {
		return once()
	}
	t := time.NewTicker(f.every)
	defer t.Stop()
	for {
		once() // a failed run is counted and alerted on; the next one tries again
		select {
		case <-ctx.Done():
			return reconcileExitOK
		case <-t.C:
		}
	}
}

func missingCount(rep *reconcile.Report) int {
	if rep == nil {
		return 0
	}
	return rep.Missing()
}

// paycometError says what PAYCOMET answered, with the code's meaning.
func paycometError(err error) string {
	var pe *paycometrest.Error
	if errors.As(err, &pe) {
		return fmt.Sprintf("%v (PAYCOMET error %d: %s)", err, pe.Code, pe.Meaning())
	}
	return err.Error()
}

// writeReconcileTable prints one run: per terminal operations, matched,
// missing and events without an operation, then the missing ones.
func writeReconcileTable(w io.Writer, rep *reconcile.Report) {
	fmt.Fprintf(w, "reconcile %s to %s (%d events read)\n", rep.From.In(paycometrest.Madrid).Format(time.RFC3339),
		rep.To.In(paycometrest.Madrid).Format(time.RFC3339), rep.Events)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TERMINAL\tOPERATIONS\tMATCHED\tMISSING\tEVENTS WITHOUT OPERATION\tSTATUS")
	for _, t := range rep.Terminals {
		status, without := "complete", fmt.Sprint(t.EventsWithoutOperation)
		if t.Err != nil {
			status, without = fmt.Sprintf("FAILED (%d windows not searched)", len(t.Unsearched)), "?"
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\t%s\n", t.Terminal, t.Operations, t.Matched, len(t.Missing), without, status)
	}
	tw.Flush()
	for _, t := range rep.Terminals {
		if len(t.Missing) == 0 {
			continue
		}
		fmt.Fprintf(w, "missing on terminal %s:\n", t.Terminal)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  TIME\tORDER\tOPERATION\tOUTCOME\tAMOUNT (minor units)\tPAYCOMET ID\tFINDING")
		for _, m := range t.Missing {
			finding := "published " + m.FindingID
			if !m.New {
				finding = "reported before " + m.FindingID
			}
			if m.Copy != "" {
				finding += ", event " + m.Copy
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%d %s\t%d\t%s\n", m.Time.In(paycometrest.Madrid).Format(time.RFC3339), m.Order,
				events.OperationName(m.Type), m.Outcome, m.Amount, m.Currency, m.PaycometID, finding)
		}
		tw.Flush()
	}
}

// reconcileProgress is the progress line on standard error: one updating
// line on a terminal, a line every few seconds otherwise.
type reconcileProgress struct {
	w     io.Writer
	tty   bool
	mu    sync.Mutex
	last  time.Time
	shown bool
}

func newReconcileProgress(w io.Writer) *reconcileProgress {
	tty := false
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			tty = true
		}
	}
	return &reconcileProgress{w: w, tty: tty}
}

func (p *reconcileProgress) show(pg reconcile.Progress) {
	p.mu.Lock()
	defer p.mu.Unlock()
	every := 5 * time.Second
	if p.tty {
		every = 200 * time.Millisecond
	}
	if time.Since(p.last) < every {
		return
	}
	p.last = time.Now()
	line := fmt.Sprintf("reconcile: %s", pg.Phase)
	if pg.Terminal != "" {
		line += " terminal " + pg.Terminal
	}
	if !pg.Through.IsZero() && pg.Phase == "search" {
		line += " through " + pg.Through.In(paycometrest.Madrid).Format(time.RFC3339)
	}
	line += fmt.Sprintf(", %d search calls, %d operations, %d events", pg.Calls, pg.Operations, pg.Events)
	if p.tty {
		fmt.Fprintf(p.w, "\r\033[K%s", line)
		p.shown = true
		return
	}
	fmt.Fprintln(p.w, line)
}

func (p *reconcileProgress) done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty && p.shown {
		fmt.Fprint(p.w, "\r\033[K")
	}
	p.shown = false
	p.last = time.Time{}
}
