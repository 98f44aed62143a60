package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/paycomet-notify/paycomet-notify/bankstore"
	"github.com/paycomet-notify/paycomet-notify/config"
	"github.com/paycomet-notify/paycomet-notify/demo"
	"github.com/paycomet-notify/paycomet-notify/publisher"
	"github.com/paycomet-notify/paycomet-notify/refresher"
)

// refresherCallTimeout bounds one BankStore call of the refresher.
const refresherCallTimeout = 20 * time.Second

// runRefresher is `paycomet-notify refresher [--demo]`: the card-token
// refresh consumer beside `serve`, with its own admin listener
// (REFRESHER_ADMIN_ADDR). With --demo it uses the demo terminal and, unless
// NATS_URL is set, the embedded NATS of `serve --demo`.
func runRefresher(ctx context.Context, args []string, env map[string]string, stdout, stderr io.Writer) int {
	cfg, demo, err := loadConfig("refresher", args, env, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "paycomet-notify refresher: %v\n", err)
		return 1
	}
	log, err := newLogger(stderr, cfg.LogLevel)
	if err != nil {
		fmt.Fprintf(stderr, "paycomet-notify refresher: %v\n", err)
		return 1
	}
	c, err := openRefresher(ctx, cfg, log)
	if err != nil {
		log.Error("start failed", "err", err)
		return 1
	}
	if demo {
		printRefresherBanner(stdout, cfg, c)
	}
	log.Info("refreshing", "subjects", strings.Join(c.rcfg.Subjects(), " "), "dead_letters", c.rcfg.DeadLetterSubject(),
		"nats", cfg.NATSServers().String(), "bankstore", cfg.BankstoreURL, "admin", c.adminLn.Addr().String(), "config", cfg)
	if err := c.run(ctx); err != nil {
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
			"  !! run the fake (go run ./cmd/bankstore-fake) and set BANKSTORE_URL to its URL.\n"
	}
	fmt.Fprintf(w, `
DEMO MODE: refresher for the public demo terminal %s (never for real money).
  NATS          %s
  consuming     %s
  dead letters  %s
  BankStore     %s
  admin         http://%s/metrics
%s
`, demo.Terminal, cfg.NATSServers().String(), strings.Join(c.rcfg.Subjects(), " "), c.rcfg.DeadLetterSubject(),
		cfg.BankstoreURL, c.adminLn.Addr(), warn)
}

// refresherCmd owns every resource of `refresher`, opened in order and
// closed in reverse.
type refresherCmd struct {
	log     *slog.Logger
	rcfg    refresher.Config
	nc      *nats.Conn
	r       *refresher.Refresher
	admin   *http.Server
	adminLn net.Listener
}

func openRefresher(ctx context.Context, cfg config.Config, log *slog.Logger) (_ *refresherCmd, err error) {
	c := &refresherCmd{log: log}
	defer func() {
		if err != nil {
			c.closeNATS()
		}
	}()
	c.nc, err = nats.Connect(cfg.NATSServers().Reveal(),
		nats.Name("paycomet-notify refresher"),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250*time.Millisecond),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("nats disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) { log.Info("nats reconnected", "server", nc.ConnectedUrlRedacted()) }),
	)
	if err != nil {
		hint := ""
		if cfg.NATSURL.IsZero() {
			hint = " (is `paycomet-notify serve --demo` running? the refresher uses its embedded NATS when NATS_URL is empty)"
		}
		return nil, fmt.Errorf("connect NATS %s: %w%s", cfg.NATSServers().String(), err, hint)
	}
	js, err := jetstream.New(c.nc)
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	sctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	// The same stream serve creates, so either may start first.
	if _, err := publisher.EnsureStream(sctx, js, publisher.StreamConfig{Name: cfg.StreamName, Prefix: cfg.SubjectPrefix,
		Replicas: cfg.StreamReplicas, DuplicateWindow: cfg.DuplicateWindow}); err != nil {
		return nil, err
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
	if c.adminLn, err = net.Listen("tcp", cfg.RefresherAdminAddr); err != nil {
		return nil, fmt.Errorf("REFRESHER_ADMIN_ADDR: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	mux.HandleFunc("GET /readyz", c.readyz)
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	c.admin = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, WriteTimeout: 10 * time.Second}
	return c, nil
}

// run consumes until ctx ends, then shuts down in order: stop pulling and
// finish the message in hand (Run returns only then), close the admin
// listener, drain NATS.
func (c *refresherCmd) run(ctx context.Context) error {
	adminErr := make(chan error, 1)
	go func() { adminErr <- c.admin.Serve(c.adminLn) }()
	rctx, stop := context.WithCancel(ctx)
	defer stop()
	runErr := make(chan error, 1)
	go func() { runErr <- c.r.Run(rctx) }()

	var err error
	select {
	case err = <-runErr:
	case err = <-adminErr:
		stop()
		if rerr := <-runErr; rerr != nil {
			err = errors.Join(err, rerr)
		}
	}
	if ctx.Err() != nil {
		c.log.Info("shutting down: in-flight message finished")
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = c.admin.Shutdown(sctx)
	c.closeNATS()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

func (c *refresherCmd) closeNATS() {
	if c.nc == nil {
		return
	}
	if err := c.nc.Drain(); err == nil {
		select {
		case <-c.nc.StatusChanged(nats.CLOSED):
		case <-time.After(10 * time.Second):
		}
	}
	c.nc.Close()
}

func (c *refresherCmd) readyz(w http.ResponseWriter, req *http.Request) {
	ctx, cancel := context.WithTimeout(req.Context(), 2*time.Second)
	defer cancel()
	ch := check{Name: "refresher", OK: true}
	if err := c.r.Ready(ctx); err != nil {
		ch.OK, ch.Error = false, err.Error()
	}
	status := http.StatusOK
	if !ch.OK {
		status = http.StatusServiceUnavailable
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"ready": ch.OK, "checks": []check{ch}})
}
