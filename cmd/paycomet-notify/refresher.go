package main

import (
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
	"github.com/paycomet-notify/paycomet-notify/publisher"
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
	c, err := openRefresher(ctx, cfg, log)
	if err != nil {
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
		c.admin.Task())
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
	rcfg  refresher.Config
	nc    *nats.Conn
	r     *refresher.Refresher
	admin *service.Admin
}

func openRefresher(ctx context.Context, cfg config.Config, log *slog.Logger) (_ *refresherCmd, err error) {
	c := &refresherCmd{}
	defer func() {
		if err != nil {
			service.DrainNATS(c.nc, 10*time.Second)
		}
	}()
	hint := ""
	if cfg.NATSURL.IsZero() {
		hint = " (is `paycomet-notify serve --demo` running? the refresher uses its embedded NATS when NATS_URL is empty)"
	}
	if c.nc, err = service.ConnectNATS(service.NATSConfig{Name: "paycomet-notify refresher", URL: cfg.NATSServers(), Hint: hint, Auth: cfg.NATS}, log); err != nil {
		return nil, err
	}
	js, err := jetstream.New(c.nc)
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	sctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	// The same streams serve sets up, so either may start first.
	streams, err := publisher.EnsureStreams(sctx, js, streamsConfig(cfg))
	if err != nil {
		return nil, err
	}
	for _, note := range streams.Notes {
		log.Info("stream set-up", "note", note)
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
			return nil, fmt.Errorf("BANKSTORE_URL / terminal %s: %w", id, err)
		}
		banks[id] = b
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	c.rcfg = refresher.Config{
		Prefix:      cfg.SubjectPrefix,
		Stream:      cfg.StreamName,
		Replicas:    cfg.StreamReplicas,
		MaxDeliver:  cfg.RefresherMaxDeliver,
		Backoff:     cfg.RefresherBackoff,
		CallTimeout: refresherCallTimeout,
	}
	if c.r, err = refresher.Open(sctx, c.rcfg, js, banks, refresher.NewMetrics(reg, cfg.Terminals.IDs()), log, time.Now); err != nil {
		return nil, err
	}
	acfg := adminConfig(cfg, cfg.RefresherAdminAddr, "REFRESHER_ADMIN_ADDR")
	acfg.Gatherer, acfg.Log = reg, log
	acfg.Ready = func(ctx context.Context) service.Readiness {
		ch := service.Check{Name: "refresher", OK: true}
		if err := c.r.Ready(ctx); err != nil {
			ch.OK, ch.Error = false, cfg.NATSServers().Scrub(err.Error())
		}
		return service.NewReadiness(ch)
	}
	if c.admin, err = service.ListenAdmin(acfg); err != nil {
		return nil, err
	}
	return c, nil
}
