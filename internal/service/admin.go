package service

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/paycomet-notify/paycomet-notify/secret"
)

// AdminConfig is one subcommand's admin listener.
type AdminConfig struct {
	// Addr is where it listens; Variable names the setting (ADMIN_ADDR,
	// REFRESHER_ADMIN_ADDR) in errors.
	Addr, Variable string
	// Token, when set, is the bearer token every route but /healthz and
	// /readyz needs (ADMIN_TOKEN).
	Token secret.Value
	// Pprof serves /debug/pprof (ADMIN_PPROF).
	Pprof bool
	// Gatherer is what /metrics shows.
	Gatherer prometheus.Gatherer
	// Ready answers /readyz. It must only read: a probe never creates or
	// changes anything.
	Ready func(ctx context.Context) Readiness
	// Log receives the listener's own errors.
	Log *slog.Logger
}

// Readiness is /readyz's JSON. Ready decides the status (200 or 503);
// Status says "ok", "degraded" (ready, but a check that does not make the
// service unready failed, such as the dedupe store) or "unavailable".
type Readiness struct {
	Ready  bool    `json:"ready"`
	Status string  `json:"status"`
	Checks []Check `json:"checks"`
}

// Check is one dependency in /readyz. Optional checks do not make the
// service unready when they fail; their State is then "degraded".
type Check struct {
	Name     string `json:"name"`
	OK       bool   `json:"ok"`
	Optional bool   `json:"optional,omitempty"`
	State    string `json:"state"` // "up", "down" or "degraded"
	Error    string `json:"error,omitempty"`
}

// NewReadiness sums checks up: ready unless a required check failed.
func NewReadiness(checks ...Check) Readiness {
	r := Readiness{Ready: true, Status: "ok", Checks: checks}
	for i, c := range r.Checks {
		switch {
		case c.OK:
			r.Checks[i].State = "up"
		case c.Optional:
			r.Checks[i].State = "degraded"
			if r.Status == "ok" {
				r.Status = "degraded"
			}
		default:
			r.Checks[i].State = "down"
			r.Ready, r.Status = false, "unavailable"
		}
	}
	return r
}

// Admin is an admin listener: health, readiness and metrics for operators
// and probes, never on the public listener.
type Admin struct {
	cfg AdminConfig
	ln  net.Listener
	mux *http.ServeMux
	srv *http.Server
	// tokenSum is the SHA-256 of the token: comparing fixed-size sums in
	// constant time leaks neither the token nor its length.
	tokenSum [sha256.Size]byte
	pages    []string // path prefixes that check the token themselves (HandlePage)
}

// ListenAdmin binds the admin listener; Serve serves it.
func ListenAdmin(cfg AdminConfig) (*Admin, error) {
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.Variable, err)
	}
	a := &Admin{cfg: cfg, ln: ln, mux: http.NewServeMux()}
	if !cfg.Token.IsZero() {
		a.tokenSum = sha256.Sum256([]byte(cfg.Token.Reveal()))
	}
	a.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	a.mux.HandleFunc("GET /readyz", a.readyz)
	a.mux.Handle("GET /metrics", promhttp.HandlerFor(cfg.Gatherer, promhttp.HandlerOpts{}))
	if cfg.Pprof {
		// Profiles are how the hot path was measured and tuned; they also
		// show memory and goroutines, so they are opt-in.
		a.mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		a.mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
		a.mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		a.mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		a.mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
	var errLog = slog.NewLogLogger(slog.DiscardHandler, slog.LevelWarn)
	if cfg.Log != nil {
		errLog = slog.NewLogLogger(cfg.Log.Handler(), slog.LevelWarn)
	}
	// WriteTimeout leaves room for a 30s CPU profile.
	a.srv = &http.Server{Handler: a, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
		WriteTimeout: 45 * time.Second, IdleTimeout: 120 * time.Second, MaxHeaderBytes: 16 << 10, ErrorLog: errLog}
	return a, nil
}

// Handle adds a route (the operator page, say). Like every route but
// /healthz and /readyz it needs the token when one is set.
func (a *Admin) Handle(pattern string, h http.Handler) { a.mux.Handle(pattern, h) }

// HandlePage adds a page under prefix (the operator page, "/ui/") that
// authenticates its own requests with the same token: bearer header or its
// login form and session cookie. The listener's bearer check skips it, or
// the login form could never be reached.
func (a *Admin) HandlePage(prefix string, h http.Handler) {
	a.mux.Handle(prefix, h)
	a.pages = append(a.pages, strings.TrimSuffix(prefix, "/"))
}

func (a *Admin) ownAuth(path string) bool {
	for _, p := range a.pages {
		if path == p || strings.HasPrefix(path, p+"/") {
			return true
		}
	}
	return false
}

// Addr is the bound address (useful when Addr asked for port 0).
func (a *Admin) Addr() net.Addr { return a.ln.Addr() }

// Serve serves until Shutdown; it returns http.ErrServerClosed then.
func (a *Admin) Serve() error { return a.srv.Serve(a.ln) }

// Shutdown stops accepting and waits for requests in progress, within ctx.
func (a *Admin) Shutdown(ctx context.Context) error { return a.srv.Shutdown(ctx) }

// Task is the listener as a Run task.
func (a *Admin) Task() Task {
	return Task{Name: "admin listener", Run: a.Serve, Stop: a.Shutdown}
}

// ServeHTTP checks the token, then routes. Probes (/healthz, /readyz) stay
// open so that a load balancer or kubelet needs no secret; everything else,
// unknown paths included, answers 401 without the token.
func (a *Admin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !a.cfg.Token.IsZero() && r.URL.Path != "/healthz" && r.URL.Path != "/readyz" && !a.ownAuth(r.URL.Path) && !a.Authorized(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="paycomet-notify admin"`)
		http.Error(w, "unauthorized: this route needs ADMIN_TOKEN as a bearer token", http.StatusUnauthorized)
		return
	}
	a.mux.ServeHTTP(w, r)
}

// Authorized reports whether r carries the admin token as
// "Authorization: Bearer <token>" (always true when no token is set).
func (a *Admin) Authorized(r *http.Request) bool {
	if a.cfg.Token.IsZero() {
		return true
	}
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(tok)))
	return subtle.ConstantTimeCompare(sum[:], a.tokenSum[:]) == 1
}

func (a *Admin) readyz(w http.ResponseWriter, req *http.Request) {
	ctx, cancel := context.WithTimeout(req.Context(), 2*time.Second)
	defer cancel()
	rd := a.cfg.Ready(ctx)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if !rd.Ready {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	_ = json.NewEncoder(w).Encode(rd)
}
