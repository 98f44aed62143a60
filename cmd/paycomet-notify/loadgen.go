package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime/debug"
	"strings"
	"time"

	"github.com/paycomet-notify/paycomet-notify/config"
	"github.com/paycomet-notify/paycomet-notify/internal/service"
	"github.com/paycomet-notify/paycomet-notify/loadgen"
	"github.com/paycomet-notify/paycomet-notify/secret"
)

const loadgenUsage = `usage: paycomet-notify loadgen [flags]

Posts correctly signed PAYCOMET notifications at a receiver over N keep-alive
connections: a realistic mix of every TransactionType (authorisations,
refunds, preauthorisations and their confirms and cancels, subscriptions,
chargebacks, card registrations, an unknown type, and card-expiry notices
when URL_TOKEN is set), about 15% refused (KO), from the configured
terminals, with a share of exact duplicates. A 503 or a broken connection is
retried with the same body, as PAYCOMET does. Then it reads the JetStream
stream and checks that every notification answered 200 produced exactly one
event, and that no event of this run exists that it did not send.

Credentials come from the same environment as serve (PAYCOMET_MERCHANT_CODE,
PAYCOMET_TERMINALS or PAYCOMET_TERMINALS_FILE, URL_TOKEN), or --demo. Every
Order of a run starts with the run id it prints, so older events in the
stream do not count.

Verification categories:
  found         answered 200, exactly one event (what must happen)
  lost          answered 200, no event                        -> exit 1
  duplicated    more than one event for one notification      -> exit 1
  unexpected    an event of this run that matches nothing sent -> exit 1
  not accepted  never answered 200 and no event: the receiver kept its promise
                (503 means nothing was stored); PAYCOMET would keep retrying
  published without 200
                never answered 200 but one event: the publish was stored and
                its ack came too late (503 after a timeout, or the connection
                broke). PAYCOMET's next retry gets 200 as a duplicate. Reported,
                not a failure.
Any 4xx answer, or no 200 at all, also exits 1: every notification sent is
well formed and signed.

Output: a live progress line on stderr every second (sent, requests/s,
answers by class, p99 so far), then the report on stdout: throughput,
p50/p95/p99/max latency, answers by status, retries, verification.

Flags:
`

func runLoadgen(ctx context.Context, args []string, env map[string]string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), loadgenUsage)
		fs.PrintDefaults()
	}
	target := fs.String("url", "", "notification URL (default: http://127.0.0.1<LISTEN_ADDR>/paycomet/notifications[/URL_TOKEN])")
	conns := fs.Int("connections", 32, "keep-alive connections, one request in flight on each")
	duration := fs.Duration("duration", 0, "how long to send (default 10s when --count is not given)")
	count := fs.Int64("count", 0, "how many notifications to send, duplicates included (stops at --duration or 10m, whichever first)")
	rate := fs.Float64("rate", 0, "at most this many requests per second in total (0: as fast as answers come)")
	dupShare := fs.Float64("dup-share", 0.1, "share of sends that are an exact copy of a recent notification (0 to <1)")
	terminals := fs.Int("terminals", 0, "use the first N configured terminals, by number (0: all)")
	natsURL := fs.String("nats", "", "NATS URL to read the stream from for verification (default NATS_URL, or the embedded server's EMBEDDED_NATS_ADDR)")
	stream := fs.String("stream", "", "stream to verify (default STREAM_NAME)")
	prefix := fs.String("prefix", "", "subject prefix (default SUBJECT_PREFIX)")
	maxRetries := fs.Int("max-retries", 10, "retries of a notification answered 503 or whose connection failed")
	backoff := fs.String("retry-backoff", "100ms,200ms,500ms,1s,2s", "waits before retry 1, 2, ... (the last repeats); PAYCOMET's real schedule is not published, and Retry-After is ignored")
	timeout := fs.Duration("timeout", 15*time.Second, "bound on one request")
	settle := fs.Duration("settle", 2*time.Second, "wait after the last answer before reading the stream, so late-stored publishes are seen")
	demo := fs.Bool("demo", false, "use the demo merchant, terminal and URL token (like send --demo and serve --demo)")
	noVerify := fs.Bool("no-verify", false, "do not read the stream; only measure")
	quiet := fs.Bool("quiet", false, "no progress line")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 1
	}
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "paycomet-notify loadgen: "+format+"\n", a...)
		return 1
	}
	if fs.NArg() > 0 {
		return fail("unexpected argument %q", fs.Arg(0))
	}
	cfg, err := config.Load(env, nil)
	if err != nil {
		return fail("%v", err)
	}
	if *demo {
		cfg.ApplyDemo()
	} else if err := cfg.RequireTerminals(); err != nil {
		return fail("%v", err)
	}
	ids := cfg.Terminals.IDs()
	if *terminals < 0 || *terminals > len(ids) {
		return fail("--terminals %d: %d terminals are configured", *terminals, len(ids))
	}
	if *terminals > 0 {
		ids = ids[:*terminals]
	}
	use := make(map[string]secret.Value, len(ids))
	for _, id := range ids {
		use[id] = cfg.Terminals[id]
	}
	var waits []time.Duration
	for _, s := range strings.Split(*backoff, ",") {
		d, err := time.ParseDuration(strings.TrimSpace(s))
		if err != nil || d < 0 {
			return fail("--retry-backoff: %q is not a duration", s)
		}
		waits = append(waits, d)
	}
	o := loadgen.Options{
		URL:            *target,
		URLToken:       cfg.URLToken,
		MerchantCode:   cfg.MerchantCode,
		Terminals:      use,
		Connections:    *conns,
		Duration:       *duration,
		Count:          *count,
		Rate:           *rate,
		DupShare:       *dupShare,
		MaxRetries:     *maxRetries,
		RetryBackoff:   waits,
		RequestTimeout: *timeout,
		NoVerify:       *noVerify,
		NATSURL:        *natsURL,
		Stream:         *stream,
		Prefix:         *prefix,
		Settle:         *settle,
	}
	if o.URL == "" {
		o.URL = defaultNotificationURL(cfg)
	}
	if o.NATSURL == "" {
		o.NATSURL = cfg.NATSServers().Reveal()
	}
	if o.NATSOptions, err = service.AuthOptions(cfg.NATS); err != nil {
		fmt.Fprintf(stderr, "paycomet-notify loadgen: %v\n", err)
		return 1
	}
	if o.Stream == "" {
		o.Stream = cfg.StreamName
	}
	if o.Prefix == "" {
		o.Prefix = cfg.SubjectPrefix
	}
	if !*quiet {
		o.Progress = stderr
	}
	// loadgen shares the machine with what it measures: a GC that runs less
	// often leaves more CPU to the receiver (no memory limit: verification
	// of a long run holds every notification's id).
	if _, set := env["GOGC"]; !set {
		debug.SetGCPercent(defaultGOGC)
	}
	rep, err := loadgen.Run(ctx, o)
	if rep.RunID != "" && rep.Sent > 0 {
		rep.WriteText(stdout)
	}
	if err != nil {
		return fail("%s", secret.RedactURL(err.Error()))
	}
	if rep.Failed() {
		return 1
	}
	return 0
}
