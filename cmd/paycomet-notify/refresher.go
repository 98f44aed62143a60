package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/paycomet-notify/paycomet-notify/bankstore"
	"github.com/paycomet-notify/paycomet-notify/config"
	"github.com/paycomet-notify/paycomet-notify/demo"
	"github.com/paycomet-notify/paycomet-notify/internal/service"
	"github.com/paycomet-notify/paycomet-notify/refresher"
	"github.com/paycomet-notify/paycomet-notify/secret"
)

// refresherCallTimeout bounds one BankStore call of the refresher.
const refresherCallTimeout = 20 * time.Second

// runRefresher is `paycomet-notify refresher [--demo]`: the card-token
// refresh consumer beside `serve`, with its own admin listener
// (REFRESHER_ADMIN_ADDR). With --demo it uses the demo terminal and, unless
// NATS_URL is set, the embedded NATS of `serve --demo`.
func runRefresher(ctx context.Context, args []string, env map[string]string, stdout, stderr io.Writer) int {
	cfg, demoMode, err := loadConfig("refresher", args, env, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "paycomet-notify refresher: %v\n", err)
		return 1
	}
	log, err := service.NewLogger(stderr, cfg.LogLevel)
	if err != nil {
		fmt.Fprintf(stderr, "paycomet-notify refresher: %v\n", err)
		return 1
	}
	tr, traceTask, err := service.SetupTracing(ctx, env, "paycomet-notify-refresher", version, log)
	if err != nil {
		log.Error("start failed", "err", err)
		return 1
	}
	c, err := newRefresherCmd(cfg, log)
	if err != nil {
		log.Error("start failed", "err", err)
		return 1
	}
	c.rcfg.Tracing = tr
	// /healthz answers from here on, and /readyz says what start-up waits
	// for until the consumer is there.
	adminTask := c.admin.Start()
	if err := c.open(ctx, cfg, log); err != nil {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = adminTask.Stop(sctx)
		cancel()
		service.DrainNATS(c.nc, 10*time.Second)
		if ctx.Err() != nil && !service.IsPermanent(err) {
			log.Info("stopped before start-up finished", "waiting_for", err.Error())
			return 0
		}
		log.Error("start failed", "err", err)
		return 1
	}
	if demoMode {
		printRefresherBanner(stdout, cfg, c)
	}
	log.Info("refreshing", "subjects", strings.Join(c.rcfg.Subjects(), " "), "dead_letters", c.rcfg.DeadLetterSubject(),
		"nats", cfg.NATSServers(), "bankstore", secret.RedactURL(cfg.BankstoreURL), "admin", c.admin.Addr().String(), "config", cfg)
	// Stop pulling and finish the message in hand (Run returns only then),
	// then the admin listener; NATS is drained last.
	rctx, stop := context.WithCancel(context.Background())
	defer stop()
	err = service.Run(ctx, log, refresherCallTimeout+5*time.Second,
		service.Task{Name: "consumer", Run: func() error { return c.r.Run(rctx) }, Stop: func(context.Context) error { stop(); return nil }},
		adminTask,
		traceTask)
	service.DrainNATS(c.nc, 10*time.Second)
	if err != nil {
		log.Error("stopped", "err", err)
		return 1
	}
	log.Info("stopped")
	return 0
}

func printRefresherBanner(w io.Writer, cfg config.Config, c *refresherCmd) {
	warn := ""
	if cfg.BankstoreURL == config.DefaultBankstoreURL {
		warn = "\n  !! BANKSTORE_URL is PAYCOMET's real endpoint, which refuses the demo terminal:\n" +
			"  !! run the fake (go run ./cmd/paycomet-fake) and set BANKSTORE_URL to its URL.\n"
	}
	fmt.Fprintf(w, `
DEMO MODE: refresher for the public demo terminal %s (never for real money).
  NATS          %s
  consuming     %s
  dead letters  %s
  BankStore     %s
  admin         http://%s/metrics
%s
`, demo.Terminal, cfg.NATSServers(), strings.Join(c.rcfg.Subjects(), " "), c.rcfg.DeadLetterSubject(),
		secret.RedactURL(cfg.BankstoreURL), c.admin.Addr(), warn)
}

// refresherCmd owns every resource of `refresher`.
type refresherCmd struct {
	rcfg    refresher.Config
	reg     *prometheus.Registry
	startup *service.Startup
	nc      *nats.Conn
	r       *refresher.Refresher
	admin   *service.Admin
}

// newRefresherCmd checks the BankStore settings and binds the admin
// listener (a port that is taken is refused at once); nothing here waits.
func newRefresherCmd(cfg config.Config, log *slog.Logger) (*refresherCmd, error) {
	c := &refresherCmd{reg: prometheus.NewRegistry(), startup: service.NewStartup()}
	c.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	c.rcfg = refresher.Config{
		Prefix:      cfg.SubjectPrefix,
		Stream:      cfg.StreamName,
		Replicas:    cfg.StreamReplicas,
		MaxDeliver:  cfg.RefresherMaxDeliver,
		Backoff:     cfg.RefresherBackoff,
		CallTimeout: refresherCallTimeout,
	}
	acfg := adminConfig(cfg, cfg.RefresherAdminAddr, "REFRESHER_ADMIN_ADDR")
	acfg.Gatherer, acfg.Log = c.reg, log
	acfg.Ready = func(ctx context.Context) service.Readiness {
		if !c.startup.Finished() {
			return c.startup.Readiness()
		}
		ch := service.Check{Name: "refresher", OK: true}
		if err := c.r.Ready(ctx); err != nil {
			ch.OK, ch.Error = false, cfg.ScrubNATS(err.Error())
		}
		return service.NewReadiness(ch)
	}
	var err error
	if c.admin, err = service.ListenAdmin(acfg); err != nil {
		return nil, err
	}
	return c, nil
}

// open connects to NATS, sets up the streams and opens the consumer,
// waiting (with a backoff, saying what for) while they are not there yet,
// and returning at once for what waiting cannot fix.
func (c *refresherCmd) open(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	hint := ""
	if cfg.NATSURL.IsZero() {
		hint = " (is `paycomet-notify serve --demo` running? the refresher uses its embedded NATS when NATS_URL is empty)"
	}
	if err := service.Wait(ctx, log, c.startup, "NATS "+cfg.NATSServers().String(), func(context.Context) error {
		nc, err := service.ConnectNATS(service.NATSConfig{Name: "paycomet-notify refresher", URL: cfg.NATSServers(), Hint: hint, Auth: cfg.NATS}, log)
		c.nc = nc
		return err
	}); err != nil {
		return err
	}
	js, err := jetstream.New(c.nc)
	if err != nil {
		return service.Permanent(fmt.Errorf("jetstream: %w", err))
	}
	sc := streamsConfig(cfg)
	// The same streams serve sets up, so either may start first.
	if err := waitForStreams(ctx, log, c.startup, js, sc); err != nil {
		return err
	}

	banks := map[string]refresher.BankStore{}
	for _, id := range cfg.Terminals.IDs() {
		// Retries belong to JetStream (Nak with backoff, then the
		// dead-letter subject), so the client tries each call once.
		b, err := bankstore.New(cfg.BankstoreURL,
			bankstore.Credentials{MerchantCode: cfg.MerchantCode, Terminal: id, Password: cfg.Terminals[id]},
			bankstore.WithHTTPClient(&http.Client{Timeout: refresherCallTimeout}),
			bankstore.WithInfoUserRetry(1, 0))
		if err != nil {
			return service.Permanent(fmt.Errorf("BANKSTORE_URL / terminal %s: %w", id, err))
		}
		banks[id] = b
	}
	m := refresher.NewMetrics(c.reg, cfg.Terminals.IDs())
	if err := service.Wait(ctx, log, c.startup, "consumer "+cmp.Or(c.rcfg.Durable, refresher.DefaultDurable)+" on stream "+cfg.StreamName, func(ctx context.Context) error {
		actx, cancel := context.WithTimeout(ctx, streamAttempt)
		defer cancel()
		r, err := refresher.Open(actx, c.rcfg, js, banks, m, log, time.Now)
		c.r = r
		return err
	}); err != nil {
		return err
	}
	c.startup.Done()
	return nil
}
