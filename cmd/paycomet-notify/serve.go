package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"

	"github.com/paycomet-notify/paycomet-notify/config"
	"github.com/paycomet-notify/paycomet-notify/dedupe"
	"github.com/paycomet-notify/paycomet-notify/demo"
	"github.com/paycomet-notify/paycomet-notify/events"
	"github.com/paycomet-notify/paycomet-notify/handler"
	"github.com/paycomet-notify/paycomet-notify/internal/service"
	"github.com/paycomet-notify/paycomet-notify/notify"
	"github.com/paycomet-notify/paycomet-notify/publisher"
	"github.com/paycomet-notify/paycomet-notify/tracing"
)

// streamGaugesEvery is how often the stream storage gauges are refreshed:
// one STREAM.INFO per stream, whatever the scrape rate.
const streamGaugesEvery = 15 * time.Second

// claimTTL is how long a dedupe claim lives without being marked seen: longer
// than any publish wait, far shorter than the JetStream duplicate window.
func claimTTL(cfg config.Config) time.Duration { return cfg.PublishTimeout + 10*time.Second }

func runServe(ctx context.Context, args []string, env map[string]string, stdout, stderr io.Writer) int {
	cfg, demoMode, err := loadConfig("serve", args, env, stderr)
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(stderr, "paycomet-notify serve: %v\n", err)
		}
		return 1
	}
	log, err := service.NewLogger(stderr, cfg.LogLevel)
	if err != nil {
		fmt.Fprintf(stderr, "paycomet-notify serve: %v\n", err)
		return 1
	}
	tuneGC(env)
	tr, traceTask, err := service.SetupTracing(ctx, env, "paycomet-notify-serve", version, log)
	if err != nil {
		log.Error("start failed", "err", err)
		return 1
	}
	r, err := newReceiver(cfg, log)
	if err != nil {
		log.Error("start failed", "err", err)
		return 1
	}
	r.tracing = tr
	// Both listeners serve from here on: /healthz answers, /readyz says
	// 503 and what start-up waits for, and a notification is answered 503
	// (PAYCOMET retries; a load balancer moves on at once instead of
	// waiting on a port that accepts and never answers) until the
	// receiver is ready.
	publicTask := r.startPublic()
	adminTask := r.admin.Start()
	if err := r.open(ctx); err != nil {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = publicTask.Stop(sctx)
		_ = adminTask.Stop(sctx)
		cancel()
		r.close()
		if ctx.Err() != nil && !service.IsPermanent(err) {
			log.Info("stopped before start-up finished", "waiting_for", err.Error())
			return 0
		}
		log.Error("start failed", "err", err)
		return 1
	}
	if demoMode {
		printDemoBanner(stdout, cfg, r)
	}
	log.Info("serving", "notification_url", r.notificationURL(false), "admin", r.admin.Addr().String(),
		"nats", r.natsDesc(), "dedupe", r.store.Name(), "config", cfg)
	// Stop accepting notifications and let those in flight reach their
	// acks first; the gauges and the admin listener go after, then the
	// spans are flushed; NATS, Redis and the embedded server last (close).
	err = service.Run(ctx, log, cfg.PublishTimeout+cfg.InFlightWait+5*time.Second,
		publicTask,
		r.gauges,
		adminTask,
		traceTask)
	r.close()
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
  NATS              %s
  dedupe            %s
  admin             http://%s/metrics  (operator page /ui/ with ADMIN_TOKEN)

Watch the events:      paycomet-notify events tail
Send a signed sample:  paycomet-notify send --demo --type 1

`, cfg.MerchantCode, demo.Terminal, demo.Password, r.notificationURL(false), r.notificationURL(true),
		cfg.NATSServers(), r.store.Name(), r.admin.Addr())
}

// store is what the receiver needs of a dedupe store.
type store interface {
	notify.Deduper
	Ping(ctx context.Context) error
	Close() error
}

// receiver owns every resource of `serve`, opened in order and closed in
// reverse.
type receiver struct {
	cfg      config.Config
	log      *slog.Logger
	tracing  *tracing.Tracing // nil: off
	startup  *service.Startup
	reg      *prometheus.Registry
	embedded *natsserver.Server
	nc       *nats.Conn
	js       jetstream.JetStream
	rdb      redis.UniversalClient
	store    store
	public   *http.Server
	publicLn net.Listener
	// handler is the notification handler once open has built it; until
	// then the public listener answers 503.
	handler atomic.Pointer[http.Handler]
	admin   *service.Admin
	gauges  service.Task
}

// streamAttempt bounds one attempt at setting up a stream or the dedupe
// bucket while start-up waits for them (an R3 stream on a cluster that is
// still forming can take seconds).
const streamAttempt = 10 * time.Second

// newReceiver binds both listeners, so that a port that is taken is
// refused at once, and prepares the admin listener, whose /readyz says what
// start-up waits for until open has finished. Nothing here waits for NATS
// or Redis.
func newReceiver(cfg config.Config, log *slog.Logger) (_ *receiver, err error) {
	r := &receiver{cfg: cfg, log: log, startup: service.NewStartup(), reg: prometheus.NewRegistry()}
	defer func() {
		if err != nil {
			r.close()
		}
	}()
	r.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if r.publicLn, err = net.Listen("tcp", cfg.ListenAddr); err != nil {
		return nil, fmt.Errorf("LISTEN_ADDR: %w", err)
	}
	acfg := adminConfig(cfg, cfg.AdminAddr, "ADMIN_ADDR")
	acfg.Gatherer, acfg.Ready, acfg.Log = r.reg, r.ready, log
	if r.admin, err = service.ListenAdmin(acfg); err != nil {
		return nil, err
	}
	r.public = &http.Server{
		Handler:           http.HandlerFunc(r.serveNotification),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second, // a body not in by then is answered 408
		WriteTimeout:      cfg.PublishTimeout + cfg.InFlightWait + 20*time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	return r, nil
}

// serveNotification is the public listener: the notification handler once
// the receiver is ready, 503 before (nothing can be made durable yet).
func (r *receiver) serveNotification(w http.ResponseWriter, req *http.Request) {
	if h := r.handler.Load(); h != nil {
		(*h).ServeHTTP(w, req)
		return
	}
	w.Header().Set("Retry-After", "1")
	http.Error(w, "starting: not ready to accept notifications", http.StatusServiceUnavailable)
}

// startPublic serves the public listener now; the Task's Run waits for it
// to end and its Stop shuts it down.
func (r *receiver) startPublic() service.Task {
	done := make(chan error, 1)
	go func() { done <- r.public.Serve(r.publicLn) }()
	return service.Task{Name: "public listener", Run: func() error { return <-done }, Stop: r.public.Shutdown}
}

// open connects to NATS, sets up the streams and the dedupe store, and
// builds the notification path. It waits, retrying with a backoff and
// saying what it waits for, while NATS or the streams are not there yet
// (a cluster still forming, a stream another replica is creating); it
// returns at once for what waiting cannot fix (refused credentials, a
// stream with other subjects, a server too old), or when ctx ends. Redis
// is not waited for: the receiver publishes through the JetStream window
// until it answers, and /readyz says so.
func (r *receiver) open(ctx context.Context) (err error) {
	cfg, log := r.cfg, r.log
	if cfg.NATSURL.IsZero() {
		if r.embedded, err = startEmbeddedNATS(cfg); err != nil {
			return service.Permanent(err)
		}
	}
	// No reconnect buffer: a publish while disconnected fails at once (503)
	// instead of being sent later, after we answered.
	if err := service.Wait(ctx, log, r.startup, "NATS "+cfg.NATSServers().String(), func(context.Context) error {
		nc, err := service.ConnectNATS(service.NATSConfig{Name: "paycomet-notify serve", URL: cfg.NATSServers(), NoReconnectBuffer: true, Auth: cfg.NATS}, log)
		r.nc = nc
		return err
	}); err != nil {
		return err
	}
	if r.js, err = jetstream.New(r.nc); err != nil {
		return service.Permanent(fmt.Errorf("jetstream: %w", err))
	}
	sc := streamsConfig(cfg)
	if err := waitForStreams(ctx, log, r.startup, r.js, sc); err != nil {
		return err
	}
	opts := dedupe.Options{ClaimTTL: claimTTL(cfg), SeenTTL: cfg.DedupeTTL}
	if cfg.RedisConfigured() {
		redis.SetLogger(redisLogger{log: log, scrub: cfg.ScrubRedis})
		if r.rdb, err = newRedisClient(cfg); err != nil {
			return service.Permanent(err)
		}
		r.store = dedupe.NewRedis(r.rdb, opts)
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		if err := r.store.Ping(pctx); err != nil {
			// Not fatal: the receiver publishes with JetStream dedupe only
			// until Redis answers, and /readyz says so.
			log.Warn("redis not reachable at start", "redis", cfg.RedisDesc(), "err", cfg.ScrubRedis(err.Error()))
		}
		cancel()
	} else {
		bucket := cfg.StreamName + "_DEDUPE"
		if err := service.Wait(ctx, log, r.startup, "dedupe bucket "+bucket, func(ctx context.Context) error {
			actx, cancel := context.WithTimeout(ctx, streamAttempt)
			defer cancel()
			kv, err := dedupe.NewJetStreamKV(actx, r.js, bucket, cfg.StreamReplicas, opts)
			if err != nil {
				return fmt.Errorf("dedupe bucket: %w", err)
			}
			r.store = kv
			return nil
		}); err != nil {
			return err
		}
	}

	m := notify.NewMetrics(r.reg)
	path := notify.New(pathConfig(cfg, r.tracing), events.NewVerifier(cfg.MerchantCode, cfg.Terminals), r.store,
		publisher.New(r.js, cfg.StreamName).Traced(r.tracing), publisher.New(r.js, sc.RejectedName()).Traced(r.tracing), m, log)
	h, err := handler.New(handler.Config{
		URLToken:       cfg.URLToken,
		TrustedProxies: []netip.Prefix(cfg.TrustedProxies),
		MaxBodyBytes:   cfg.MaxBodyBytes,
		Tracing:        r.tracing,
	}, path, m, log)
	if err != nil {
		return service.Permanent(err)
	}
	gauges := service.NewStreamGauges(r.reg)
	r.gauges = gauges.Task(r.js, streamGaugesEvery, log, cfg.StreamName, sc.RejectedName())
	if err = mountOpsPage(r.admin, cfg, r.nc, r.js, r.store, r.reg, log, r.tracing); err != nil {
		return service.Permanent(err)
	}
	var hh http.Handler = h
	r.handler.Store(&hh)
	r.startup.Done()
	return nil
}

// close releases the backends in reverse order of opening: the store's
// background work, NATS (drained), Redis, the embedded server. The
// listeners are closed by their Shutdown (or, on a failed start, here).
func (r *receiver) close() {
	if r.store != nil {
		_ = r.store.Close()
		r.store = nil
	}
	if r.publicLn != nil && r.public == nil {
		r.publicLn.Close()
	}
	service.DrainNATS(r.nc, 10*time.Second)
	r.nc = nil
	if r.rdb != nil {
		r.rdb.Close()
		r.rdb = nil
	}
	if r.embedded != nil {
		r.embedded.Shutdown()
		r.embedded.WaitForShutdown()
		r.embedded = nil
	}
}

// ready is /readyz: read-only (a probe never creates or changes a stream).
// NATS and both streams decide it; the dedupe store only degrades it,
// because without it the receiver still publishes through the JetStream
// duplicate window, and a load balancer must not take every replica out.
func (r *receiver) ready(ctx context.Context) service.Readiness {
	if !r.startup.Finished() {
		return r.startup.Readiness()
	}
	nc := service.Check{Name: "nats", OK: r.nc.IsConnected()}
	st := service.Check{Name: "streams", OK: nc.OK}
	if !nc.OK {
		nc.Error, st.Error = r.nc.Status().String(), "nats not connected"
	} else if err := publisher.CheckStreams(ctx, r.js, streamsConfig(r.cfg)); err != nil {
		st.OK, st.Error = false, err.Error()
	}
	dd := service.Check{Name: "dedupe_" + r.store.Name(), Optional: true, OK: r.store.Up()}
	if !dd.OK {
		dd.Error = "unreachable: publishing with JetStream's duplicate window only"
	} else {
		pctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		if err := r.store.Ping(pctx); err != nil {
			dd.OK, dd.Error = false, r.cfg.ScrubRedis(err.Error())
		}
		cancel()
	}
	return service.NewReadiness(nc, st, dd)
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

// startEmbeddedNATS runs an in-process JetStream server with its store under
// DATA_DIR, listening on EMBEDDED_NATS_ADDR for the refresher and `events tail`.
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
// JSON log instead of its plain-text default, scrubbed of REDIS_URL's
// password.
type redisLogger struct {
	log   *slog.Logger
	scrub func(string) string
}

func (l redisLogger) Printf(_ context.Context, format string, v ...any) {
	l.log.Warn("redis client", "detail", l.scrub(fmt.Sprintf(format, v...)))
}

// pathConfig is the notification path's share of the configuration, the
// same for serve and for every caller that runs notifications through it
// (quarantine replay, the operator page, reconcile --publish-missing).
func pathConfig(cfg config.Config, tr *tracing.Tracing) notify.Config {
	return notify.Config{
		Prefix:                cfg.SubjectPrefix,
		AllowedIPs:            []netip.Prefix(cfg.AllowedIPs),
		MaxBodyBytes:          cfg.MaxBodyBytes,
		DedupeTTL:             cfg.DedupeTTL,
		InFlightWait:          cfg.InFlightWait,
		PublishTimeout:        cfg.PublishTimeout,
		RejectedRatePerSource: cfg.RejectedRatePerSource,
		Terminals:             cfg.Terminals.IDs(),
		Tracing:               tr,
	}
}
