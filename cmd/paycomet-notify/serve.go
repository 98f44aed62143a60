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
	"net/http/pprof"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"

	"github.com/paycomet-notify/paycomet-notify/config"
	"github.com/paycomet-notify/paycomet-notify/dedupe"
	"github.com/paycomet-notify/paycomet-notify/demo"
	"github.com/paycomet-notify/paycomet-notify/events"
	"github.com/paycomet-notify/paycomet-notify/handler"
	"github.com/paycomet-notify/paycomet-notify/publisher"
)

// claimTTL is how long a dedupe claim lives without being marked seen: longer
// than any publish wait, far shorter than the JetStream duplicate window.
func claimTTL(cfg config.Config) time.Duration { return cfg.PublishTimeout + 10*time.Second }

func newLogger(w io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("LOG_LEVEL: %q is not debug, info, warn or error", level)
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l})), nil
}

// loadConfig parses flags common to the long-running commands and the
// environment; --demo fills in the demo terminal.
func loadConfig(name string, args []string, env map[string]string, stderr io.Writer) (config.Config, bool, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	demo := fs.Bool("demo", false, "run on the embedded default with a public demo terminal (never for real money)")
	if err := fs.Parse(args); err != nil {
		return config.Config{}, false, err
	}
	if fs.NArg() > 0 {
		return config.Config{}, false, fmt.Errorf("%s: unexpected argument %q", name, fs.Arg(0))
	}
	cfg, err := config.Load(env, nil)
	if err != nil {
		return cfg, false, err
	}
	if *demo {
		cfg.ApplyDemo()
	} else if err := cfg.RequireTerminals(); err != nil {
		return cfg, false, err
	}
	return cfg, *demo, nil
}

func runServe(ctx context.Context, args []string, env map[string]string, stdout, stderr io.Writer) int {
	cfg, demo, err := loadConfig("serve", args, env, stderr)
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(stderr, "paycomet-notify serve: %v\n", err)
		}
		return 1
	}
	log, err := newLogger(stderr, cfg.LogLevel)
	if err != nil {
		fmt.Fprintf(stderr, "paycomet-notify serve: %v\n", err)
		return 1
	}
	tuneGC(env)
	r, err := openReceiver(ctx, cfg, log)
	if err != nil {
		log.Error("start failed", "err", err)
		return 1
	}
	if demo {
		printDemoBanner(stdout, cfg, r)
	}
	log.Info("serving", "notification_url", r.notificationURL(false), "admin", r.adminLn.Addr().String(),
		"nats", r.natsDesc(), "dedupe", r.store.Name(), "config", cfg)
	err = r.serve(ctx)
	if err != nil {
		log.Error("stopped", "err", err)
		return 1
	}
	log.Info("stopped")
	return 0
}

func printDemoBanner(w io.Writer, cfg config.Config, r *receiver) {
	fmt.Fprintf(w, `
!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!
!! DEMO MODE: a public demo terminal. Never point a real PAYCOMET terminal !!
!! at this receiver and never use these credentials for real money.       !!
!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!
  merchant code     %s
  terminal          %s
  password          %s
  notification URL  %s
  URL for type 108  %s
  NATS              %s   (try: nats -s %s sub '%s.>')
  dedupe            %s
  admin             http://%s/metrics

Send a signed sample:  paycomet-notify send --demo --type 1

`, cfg.MerchantCode, demo.Terminal, demo.Password, r.notificationURL(false), r.notificationURL(true),
		cfg.NATSServers(), cfg.NATSServers(), cfg.SubjectPrefix, r.store.Name(), r.adminLn.Addr())
}

// store is what the receiver needs of a dedupe store.
type store interface {
	handler.Deduper
	Ping(ctx context.Context) error
}

// receiver owns every resource of `serve`, opened in order and closed in
// reverse.
type receiver struct {
	cfg      config.Config
	log      *slog.Logger
	embedded *natsserver.Server
	nc       *nats.Conn
	js       jetstream.JetStream
	rdb      redis.UniversalClient
	store    store
	public   *http.Server
	admin    *http.Server
	publicLn net.Listener
	adminLn  net.Listener
}

func openReceiver(ctx context.Context, cfg config.Config, log *slog.Logger) (_ *receiver, err error) {
	r := &receiver{cfg: cfg, log: log}
	defer func() {
		if err != nil {
			r.closeBackends()
		}
	}()
	if cfg.NATSURL.IsZero() {
		if r.embedded, err = startEmbeddedNATS(cfg); err != nil {
			return nil, err
		}
	}
	r.nc, err = nats.Connect(cfg.NATSServers().Reveal(),
		nats.Name("paycomet-notify serve"),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250*time.Millisecond),
		// No reconnect buffer: a publish while disconnected fails at once
		// (503) instead of being sent later, after we answered.
		nats.ReconnectBufSize(-1),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("nats disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(c *nats.Conn) { log.Info("nats reconnected", "server", c.ConnectedUrlRedacted()) }),
	)
	if err != nil {
		return nil, fmt.Errorf("connect NATS %s: %w", cfg.NATSServers().String(), err)
	}
	if r.js, err = jetstream.New(r.nc); err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	sctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if _, err = publisher.EnsureStream(sctx, r.js, r.streamConfig()); err != nil {
		return nil, err
	}
	opts := dedupe.Options{ClaimTTL: claimTTL(cfg), SeenTTL: cfg.DedupeTTL}
	if url := cfg.RedisURL.Reveal(); url != "" {
		redis.SetLogger(redisLogger{log})
		if r.rdb, err = dedupe.NewRedisClient(url); err != nil {
			return nil, fmt.Errorf("REDIS_URL: %w", err)
		}
		r.store = dedupe.NewRedis(r.rdb, opts)
		if err := r.store.Ping(sctx); err != nil {
			// Not fatal: the receiver publishes with JetStream dedupe only
			// until Redis answers, and /readyz says so.
			log.Warn("redis not reachable at start", "err", err)
		}
	} else {
		kv, err := dedupe.NewJetStreamKV(sctx, r.js, cfg.StreamName+"_DEDUPE", cfg.StreamReplicas, opts)
		if err != nil {
			return nil, fmt.Errorf("dedupe bucket: %w", err)
		}
		r.store = kv
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	h, err := handler.New(handler.Config{
		Prefix:         cfg.SubjectPrefix,
		URLToken:       cfg.URLToken,
		AllowedIPs:     cfg.AllowedIPs,
		TrustedProxies: cfg.TrustedProxies,
		MaxBodyBytes:   cfg.MaxBodyBytes,
		InFlightWait:   cfg.InFlightWait,
		PublishTimeout: cfg.PublishTimeout,
	}, events.NewVerifier(cfg.MerchantCode, cfg.Terminals), r.store, publisher.New(r.js, cfg.StreamName), handler.NewMetrics(reg), log)
	if err != nil {
		return nil, err
	}
	if r.publicLn, err = net.Listen("tcp", cfg.ListenAddr); err != nil {
		return nil, fmt.Errorf("LISTEN_ADDR: %w", err)
	}
	if r.adminLn, err = net.Listen("tcp", cfg.AdminAddr); err != nil {
		r.publicLn.Close()
		return nil, fmt.Errorf("ADMIN_ADDR: %w", err)
	}
	r.public = &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      cfg.PublishTimeout + cfg.InFlightWait + 10*time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	mux.HandleFunc("GET /readyz", r.readyz)
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	// Profiles on the admin listener only (loopback by default), never on the
	// public one: they are how the hot path was measured and tuned.
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	// WriteTimeout leaves room for a 30s CPU profile.
	r.admin = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, WriteTimeout: 45 * time.Second}
	return r, nil
}

func (r *receiver) streamConfig() publisher.StreamConfig {
	return publisher.StreamConfig{Name: r.cfg.StreamName, Prefix: r.cfg.SubjectPrefix,
		Replicas: r.cfg.StreamReplicas, DuplicateWindow: r.cfg.DuplicateWindow}
}

// serve runs both listeners until ctx ends, then shuts down in order: stop
// accepting and let in-flight notifications reach their acks, drain NATS,
// close Redis, stop the embedded server.
func (r *receiver) serve(ctx context.Context) error {
	errc := make(chan error, 2)
	go func() { errc <- r.public.Serve(r.publicLn) }()
	go func() { errc <- r.admin.Serve(r.adminLn) }()
	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
	}
	r.log.Info("shutting down: finishing in-flight notifications")
	sctx, cancel := context.WithTimeout(context.Background(), r.cfg.PublishTimeout+r.cfg.InFlightWait+5*time.Second)
	defer cancel()
	if err := r.public.Shutdown(sctx); err != nil {
		r.log.Error("public listener shutdown", "err", err)
	}
	_ = r.admin.Shutdown(sctx)
	r.closeBackends()
	if errors.Is(serveErr, http.ErrServerClosed) {
		serveErr = nil
	}
	return serveErr
}

func (r *receiver) closeBackends() {
	if r.nc != nil {
		if err := r.nc.Drain(); err == nil {
			select {
			case <-r.nc.StatusChanged(nats.CLOSED):
			case <-time.After(10 * time.Second):
			}
		}
		r.nc.Close()
	}
	if r.rdb != nil {
		r.rdb.Close()
	}
	if r.embedded != nil {
		r.embedded.Shutdown()
		r.embedded.WaitForShutdown()
	}
}

type check struct {
	Name  string `json:"name"`
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
}

func (r *receiver) readyz(w http.ResponseWriter, req *http.Request) {
	ctx, cancel := context.WithTimeout(req.Context(), 2*time.Second)
	defer cancel()
	checks := []check{{Name: "nats", OK: r.nc.IsConnected()}}
	if !checks[0].OK {
		checks[0].Error = r.nc.Status().String()
	}
	c := check{Name: "stream", OK: true}
	if _, err := publisher.EnsureStream(ctx, r.js, r.streamConfig()); err != nil {
		c.OK, c.Error = false, err.Error()
	}
	checks = append(checks, c)
	c = check{Name: "dedupe_" + r.store.Name(), OK: true}
	if err := r.store.Ping(ctx); err != nil {
		c.OK, c.Error = false, err.Error()
	}
	checks = append(checks, c)
	status := http.StatusOK
	for _, c := range checks {
		if !c.OK {
			status = http.StatusServiceUnavailable
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"ready": status == http.StatusOK, "checks": checks})
}

func (r *receiver) notificationURL(withToken bool) string {
	host, port, _ := net.SplitHostPort(r.publicLn.Addr().String())
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	u := "http://" + net.JoinHostPort(host, port) + handler.Path
	if !r.cfg.URLToken.IsZero() {
		if withToken {
			return u + "/" + r.cfg.URLToken.Reveal()
		}
		return u + "/<URL_TOKEN>"
	}
	return u
}

func (r *receiver) natsDesc() string {
	if r.embedded != nil {
		return "embedded " + r.cfg.NATSServers().String()
	}
	return r.cfg.NATSServers().String()
}

// redactURL drops user:password from server URLs before they are logged.
func redactURL(s string) string {
	parts := strings.Split(s, ",")
	for i, p := range parts {
		if at := strings.LastIndex(p, "@"); at >= 0 {
			if scheme := strings.Index(p, "://"); scheme >= 0 && scheme < at {
				parts[i] = p[:scheme+3] + "[redacted]@" + p[at+1:]
			}
		}
	}
	return strings.Join(parts, ",")
}

// startEmbeddedNATS runs an in-process JetStream server with its store under
// DATA_DIR, listening on EMBEDDED_NATS_ADDR for the refresher and `nats sub`.
func startEmbeddedNATS(cfg config.Config) (*natsserver.Server, error) {
	host, portStr, err := net.SplitHostPort(cfg.EmbeddedNATSAddr)
	if err != nil {
		return nil, fmt.Errorf("EMBEDDED_NATS_ADDR: %w", err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("EMBEDDED_NATS_ADDR: port %q: %w", portStr, err)
	}
	dir := filepath.Join(cfg.DataDir, "jetstream")
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("DATA_DIR: %w", err)
	}
	ns, err := natsserver.NewServer(&natsserver.Options{
		ServerName: "paycomet-notify-embedded",
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   dir,
		NoSigs:     true,
		NoLog:      true,
	})
	if err != nil {
		return nil, fmt.Errorf("embedded NATS: %w", err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		return nil, fmt.Errorf("embedded NATS did not start on %s (is the port in use? set EMBEDDED_NATS_ADDR)", cfg.EmbeddedNATSAddr)
	}
	return ns, nil
}

// redisLogger sends go-redis's own messages (pool and dial trouble) to the
// JSON log instead of its plain-text default.
type redisLogger struct{ log *slog.Logger }

func (l redisLogger) Printf(_ context.Context, format string, v ...any) {
	l.log.Warn("redis client", "detail", fmt.Sprintf(format, v...))
}
