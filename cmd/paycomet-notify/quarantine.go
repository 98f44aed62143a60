package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/paycomet-notify/paycomet-notify/config"
	"github.com/paycomet-notify/paycomet-notify/dedupe"
	"github.com/paycomet-notify/paycomet-notify/events"
	"github.com/paycomet-notify/paycomet-notify/handler"
	"github.com/paycomet-notify/paycomet-notify/notify"
	"github.com/paycomet-notify/paycomet-notify/ops"
	"github.com/paycomet-notify/paycomet-notify/publisher"
	"github.com/paycomet-notify/paycomet-notify/secret"
	"github.com/paycomet-notify/paycomet-notify/tracing"
	"github.com/paycomet-notify/paycomet-notify/ui"
)

const quarantineUsage = `usage:
  paycomet-notify quarantine list [--since D|RFC3339] [--reason CODE]
  paycomet-notify quarantine show ID
  paycomet-notify quarantine replay [--demo] [--since D] [--reason CODE] [--accept-stale] [ID...]

Rejected notifications from the quarantine stream <STREAM_NAME>_REJECTED.
replay runs each again through the receiver's own path with the current
configuration (PAYCOMET_TERMINALS, ALLOWED_IPS against the recorded source,
DEDUPE_TTL, the dedupe store of REDIS_URL or the JetStream bucket) and prints
one line per notification: id, order, then "accepted <event id>", "duplicate"
or "rejected <reason>". With no ID it replays every one that --since and
--reason select. Exit 0 when every replay ran, 1 for bad input, 3 when NATS
or the dedupe store failed.
`

func runQuarantine(ctx context.Context, args []string, env map[string]string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, quarantineUsage)
		return exitInput
	}
	fail := func(code int, format string, a ...any) int {
		fmt.Fprintf(stderr, "paycomet-notify quarantine %s: "+format+"\n", append([]any{args[0]}, a...)...)
		return code
	}
	fs := flag.NewFlagSet("quarantine "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, quarantineUsage) }
	var since, reason *string
	var acceptStale, demoMode *bool
	switch args[0] {
	case "list", "replay":
		since = fs.String("since", "", "only those received since this duration ago (24h) or RFC 3339 time")
		reason = fs.String("reason", "", "only this reason code (bad_signature, stale, ...)")
		if args[0] == "replay" {
			acceptStale = fs.Bool("accept-stale", false, "accept notifications too old to tell from a replay (see the warning)")
			demoMode = fs.Bool("demo", false, "replay with the demo terminal of 'serve --demo'")
		}
	case "show":
	case "help", "-h", "--help":
		fmt.Fprint(stdout, quarantineUsage)
		return exitOK
	default:
		fmt.Fprintf(stderr, "paycomet-notify quarantine: unknown command %q\n\n%s", args[0], quarantineUsage)
		return exitInput
	}
	cfg, err := opsFlags(fs, args[1:], env)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		return fail(exitInput, "%v", err)
	}
	f := ops.RejectedFilter{IDs: fs.Args()}
	if since != nil {
		if f.Since, err = parseSince(*since, time.Now()); err != nil {
			return fail(exitInput, "%v", err)
		}
		f.Reason = *reason
	}
	switch args[0] {
	case "list":
		if fs.NArg() > 0 {
			return fail(exitInput, "unexpected argument %q", fs.Arg(0))
		}
	case "show":
		if fs.NArg() != 1 {
			return fail(exitInput, "give one quarantine id")
		}
	case "replay":
		if *demoMode {
			cfg.ApplyDemo()
		} else if err := cfg.RequireTerminals(); err != nil {
			return fail(exitInput, "%v", err)
		}
	}
	c, err := openOps("quarantine", cfg)
	if err != nil {
		return fail(exitBackend, "%v", err)
	}
	defer c.close()
	switch args[0] {
	case "list":
		return quarantineList(ctx, c, f, stdout, fail)
	case "show":
		return quarantineShow(ctx, c, fs.Arg(0), stdout, stderr, fail)
	}
	// A replay continues the trace of what it replays, when OTEL_* turn
	// tracing on; the spans are flushed before the command exits.
	tr, err := tracing.Setup(ctx, env, tracing.Options{ServiceName: "paycomet-notify-quarantine", Version: version})
	if err != nil {
		return fail(exitInput, "%v", err)
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := tr.Shutdown(sctx); err != nil {
			fmt.Fprintf(stderr, "paycomet-notify quarantine replay: %v\n", err)
		}
	}()
	return quarantineReplay(ctx, c, f, *acceptStale, tr, stdout, stderr, fail)
}

type failFunc func(code int, format string, a ...any) int

func quarantineList(ctx context.Context, c *opsConn, f ops.RejectedFilter, stdout io.Writer, fail failFunc) int {
	marks := ops.NewMarks(c.js, c.reader.Streams())
	err := c.reader.EachRejected(ctx, f, func(q ops.Rejected) error {
		m, err := marks.Get(ctx, "rejected."+q.Event.ID)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(stdout, rejectedLine(q, m))
		return err
	})
	if err != nil {
		return fail(exitBackend, "%v", err)
	}
	return exitOK
}

// rejectedLine is one quarantined request in `quarantine list`: when, its
// id, why, the status answered, terminal, order, source, and what a replay
// did with it.
func rejectedLine(q ops.Rejected, m *ops.Mark) string {
	dash := func(s string) string {
		if s == "" {
			return "-"
		}
		return s
	}
	line := fmt.Sprintf("%s  %s  %-22s  %d  %-8s  %-20s  %s", q.Data.ReceivedAt.Format(time.RFC3339), q.Event.ID,
		q.Data.Reason, q.Data.Status, dash(q.Data.Terminal), dash(q.Order()), dash(q.Data.Source))
	if m != nil {
		line += "  replayed: " + m.Outcome
		if m.EventID != "" {
			line += " " + m.EventID
		}
		if m.Reason != "" {
			line += " " + m.Reason
		}
	}
	return line
}

func quarantineShow(ctx context.Context, c *opsConn, id string, stdout, stderr io.Writer, fail failFunc) int {
	found, err := c.reader.RejectedByID(ctx, id)
	if err != nil {
		return fail(exitBackend, "%v", err)
	}
	q, ok := found[id]
	if !ok {
		return fail(exitInput, "%s is not in the quarantine stream %s", id, c.reader.Streams().Rejected)
	}
	var out bytes.Buffer
	if err := json.Indent(&out, q.Message.Data, "", "  "); err != nil {
		out.Reset()
		out.Write(q.Message.Data)
	}
	fmt.Fprintln(stdout, out.String())
	if m, err := ops.NewMarks(c.js, c.reader.Streams()).Get(ctx, "rejected."+id); err == nil && m != nil {
		fmt.Fprintf(stderr, "replayed %s: %s %s%s\n", m.At.Format(time.RFC3339), m.Outcome, m.EventID, m.Reason)
	}
	return exitOK
}

func quarantineReplay(ctx context.Context, c *opsConn, f ops.RejectedFilter, acceptStale bool, tr *tracing.Tracing, stdout, stderr io.Writer, fail failFunc) int {
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	store, closeStore, err := openDedupe(ctx, c.cfg, c.js)
	if err != nil {
		return fail(exitBackend, "%v", err)
	}
	defer closeStore()
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	err = store.Ping(pctx)
	cancel()
	if err != nil {
		// Without the store a replay could publish a notification that was
		// accepted more than STREAM_DUPLICATE_WINDOW ago a second time.
		return fail(exitBackend, "dedupe store %s unreachable, nothing replayed: %s", store.Name(), c.cfg.ScrubRedis(err.Error()))
	}
	if acceptStale {
		fmt.Fprintf(stderr, "warning: --accept-stale: a stale notification is older than DEDUPE_TTL (%s), so the dedupe store may have\n"+
			"forgotten that it was accepted before; accept it only if you know it was not (check with 'events tail --since').\n", c.cfg.DedupeTTL)
	}
	p := ops.NewReplayer(c.reader, replayPath(c.cfg, store, c.js, log, tr)).Traced(tr)
	code := exitOK
	err = p.ReplayRejected(ctx, f, acceptStale, func(r ops.Result) {
		fmt.Fprintln(stdout, r.Line())
		switch {
		case r.Outcome == ops.OutcomeNotFound:
			code = max(code, exitInput)
		case r.Outcome == ops.OutcomeFailed:
			code = exitBackend
			fmt.Fprintf(stderr, "paycomet-notify quarantine replay: %s: %v\n", r.ID, r.Err)
		case r.Err != nil:
			code = exitBackend
			fmt.Fprintf(stderr, "paycomet-notify quarantine replay: %s: %s, but %v\n", r.ID, r.Outcome, r.Err)
		case r.Outcome == ops.OutcomeRejected && r.Reason == events.ReasonStale && !acceptStale:
			fmt.Fprintf(stderr, "%s is stale: replay it with --accept-stale if it was never accepted\n", r.ID)
		}
	})
	if err != nil {
		return fail(exitBackend, "%v", err)
	}
	return code
}

// dedupeStore is what a replay needs of the dedupe store.
type dedupeStore interface {
	notify.Deduper
	Ping(ctx context.Context) error
	Close() error
}

// openDedupe opens the dedupe store the receiver uses: Redis when
// REDIS_URL or Sentinel is set, else the JetStream bucket <STREAM_NAME>_DEDUPE, so a
// replay sees every mark the receivers wrote.
func openDedupe(ctx context.Context, cfg config.Config, js jetstream.JetStream) (dedupeStore, func(), error) {
	opts := dedupe.Options{ClaimTTL: claimTTL(cfg), SeenTTL: cfg.DedupeTTL}
	if cfg.RedisConfigured() {
		rdb, err := newRedisClient(cfg)
		if err != nil {
			return nil, nil, err
		}
		s := dedupe.NewRedis(rdb, opts)
		return s, func() { _ = s.Close(); _ = rdb.Close() }, nil
	}
	sctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	kv, err := dedupe.NewJetStreamKV(sctx, js, cfg.StreamName+"_DEDUPE", cfg.StreamReplicas, opts)
	if err != nil {
		return nil, nil, fmt.Errorf("dedupe bucket: %w", err)
	}
	return kv, func() { _ = kv.Close() }, nil
}

// replayPath is the receiver's notification path as a replay runs it: the
// current configuration and dedupe store, events published on the event
// stream, and nothing quarantined again (a still-bad notification is
// reported and is in the quarantine already). Its metrics are its own, so a
// replay does not count as traffic on the receiver's series.
func replayPath(cfg config.Config, store notify.Deduper, js jetstream.JetStream, log *slog.Logger, tr *tracing.Tracing) *notify.Path {
	pc := pathConfig(cfg, tr)
	pc.RejectedRatePerSource = math.Inf(1) // nothing is stored, so nothing needs limiting
	return notify.New(pc, events.NewVerifier(cfg.MerchantCode, cfg.Terminals), store,
		publisher.New(js, cfg.StreamName).Traced(tr), ops.Discard{}, notify.NewMetrics(prometheus.NewRegistry()), log)
}

// mountOpsPage puts the operator page (/ui) on serve's admin listener. Its
// replays run through a replay path (replayPath) over serve's own dedupe
// store and NATS connection, with serve's configuration and tracing (a
// replay continues the trace of what it replays).
func mountOpsPage(admin interface{ HandlePage(string, http.Handler) }, cfg config.Config, nc *nats.Conn, js jetstream.JetStream,
	store notify.Deduper, reg prometheus.Gatherer, log *slog.Logger, tr *tracing.Tracing) error {
	reader := ops.NewReader(js, ops.StreamsFor(streamsConfig(cfg)))
	notifyPath := handler.Path
	if !cfg.URLToken.IsZero() {
		notifyPath += "/••••••" // the URL token is a secret
	}
	page, err := ui.New(ui.Config{
		Token:            cfg.AdminToken,
		Reader:           reader,
		Replayer:         ops.NewReplayer(reader, replayPath(cfg, store, js, log, tr)).Traced(tr),
		Gatherer:         reg,
		NotificationPath: notifyPath,
		Log:              log,
		State: func() ui.State {
			return ui.State{NATSConnected: nc.IsConnected(), NATSServer: secret.RedactURL(nc.ConnectedUrl()),
				NATSVersion: nc.ConnectedServerVersion(), DedupeStore: store.Name(), DedupeUp: store.Up()}
		},
	})
	if err != nil {
		return err
	}
	admin.HandlePage("/ui/", page)
	return nil
}
