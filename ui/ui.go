// Package ui is the operator page on the admin listener (/ui): recent
// events with filters, one event in full, rejected notifications and dead
// letters with a replay action, expiring cards, the state of NATS, the
// streams and the dedupe store, and the main counters. Pages are rendered
// on the server with html/template and their stylesheet is embedded, so the
// page works on a closed network with no script at all.
//
// Access needs ADMIN_TOKEN, as a bearer header or through the login form,
// which sets an HttpOnly, SameSite=Strict session cookie. Every action is a
// POST form; a POST from another origin, or a cookie-authenticated POST
// without the session's form token, is refused with 403 and changes
// nothing. Nothing secret is shown: no password, no TokenUser (masked in
// every event and rejected request), the URL token masked.
package ui

import (
	"context"
	"crypto/subtle"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/paycomet-notify/paycomet-notify/ops"
	"github.com/paycomet-notify/paycomet-notify/secret"
)

//go:embed templates/*.html static/*
var files embed.FS

// Replayer is what the page's actions need: *ops.Replayer built on the
// receiver's notification path with the current configuration.
type Replayer interface {
	ReplayRejectedAt(ctx context.Context, seqs []uint64, acceptStale bool) []ops.Result
	ReplayDeadLetterAt(ctx context.Context, seq uint64) ops.Result
	Marks() *ops.Marks
}

// State is the live state of the receiver's backends, from the process
// that serves the page.
type State struct {
	NATSConnected bool
	NATSServer    string // the connected server, credentials redacted
	NATSVersion   string
	DedupeStore   string // "redis" or "jetstream_kv"
	DedupeUp      bool
}

// Config is what the page reads and acts through.
type Config struct {
	Token    secret.Value // ADMIN_TOKEN; empty disables the page
	Reader   *ops.Reader
	Replayer Replayer
	State    func() State
	Gatherer prometheus.Gatherer // the receiver's metrics (the main counters)
	// NotificationPath is the notification URL's path, with the URL token
	// (if any) already masked by the caller.
	NotificationPath string
	Log              *slog.Logger
	Now              func() time.Time
}

// UI is the page's handler; mount it at /ui/ (and /ui).
type UI struct {
	cfg   Config
	auth  *auth
	pages map[string]*template.Template
	mux   *http.ServeMux
	login *rate.Limiter
}

// New parses the templates (a broken one fails here, not on a request).
func New(cfg Config) (*UI, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.State == nil {
		cfg.State = func() State { return State{} }
	}
	u := &UI{cfg: cfg, auth: newAuth(cfg.Token.Reveal(), cfg.Now), pages: map[string]*template.Template{},
		// Guessing ADMIN_TOKEN through the form is bounded: 1 try a second
		// (bursts of 10) for everyone together.
		login: rate.NewLimiter(1, 10)}
	names, err := fs.Glob(files, "templates/*.html")
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		if n == "templates/layout.html" {
			continue
		}
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(files, "templates/layout.html", n)
		if err != nil {
			return nil, fmt.Errorf("ui: template %s: %w", n, err)
		}
		u.pages[strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")] = t
	}
	static, _ := fs.Sub(files, "static")
	m := http.NewServeMux()
	m.Handle("GET /ui/static/", http.StripPrefix("/ui/static/", http.FileServerFS(static)))
	m.HandleFunc("GET /ui/login", u.loginPage)
	m.HandleFunc("POST /ui/login", u.loginPost)
	m.HandleFunc("POST /ui/logout", u.logout)
	m.HandleFunc("GET /ui", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/ui/", http.StatusFound) })
	m.HandleFunc("GET /ui/{$}", u.dashboard)
	m.HandleFunc("GET /ui/events", u.events)
	m.HandleFunc("GET /ui/events/{seq}", u.event)
	m.HandleFunc("GET /ui/rejected", u.rejected)
	m.HandleFunc("GET /ui/rejected/{seq}", u.rejectedOne)
	m.HandleFunc("POST /ui/rejected/replay", u.replayRejected)
	m.HandleFunc("GET /ui/dlq", u.dlq)
	m.HandleFunc("POST /ui/dlq/replay", u.replayDLQ)
	m.HandleFunc("GET /ui/cards", u.cards)
	u.mux = m
	return u, nil
}

// ServeHTTP applies the page's security rules, then routes.
func (u *UI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
	if !u.auth.enabled {
		http.Error(w, "the operator page needs ADMIN_TOKEN: set it and restart", http.StatusForbidden)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead && !sameOrigin(r) {
		http.Error(w, "forbidden: cross-origin request", http.StatusForbidden)
		return
	}
	open := strings.HasPrefix(r.URL.Path, "/ui/static/") || r.URL.Path == "/ui/login"
	how, session := u.auth.identify(r)
	if !open && how == nobody {
		if r.Method == http.MethodGet {
			http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
			return
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="paycomet-notify admin"`)
		http.Error(w, "unauthorized: log in at /ui/login or send ADMIN_TOKEN as a bearer token", http.StatusUnauthorized)
		return
	}
	if !open && how == byCookie && r.Method == http.MethodPost {
		if !hmacEqual(r.PostFormValue("csrf"), u.auth.formToken(session)) {
			http.Error(w, "forbidden: missing or wrong form token (reload the page)", http.StatusForbidden)
			return
		}
	}
	r = r.WithContext(context.WithValue(r.Context(), sessionKey{}, session))
	u.mux.ServeHTTP(w, r)
}

type sessionKey struct{}

func hmacEqual(a, b string) bool {
	return a != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// view is what every template gets.
type view struct {
	Title   string
	Nav     string
	CSRF    string
	Error   string
	Flash   string
	Session bool
	Data    any
}

func (u *UI) render(w http.ResponseWriter, r *http.Request, page string, status int, v view) {
	t, ok := u.pages[page]
	if !ok {
		http.Error(w, "no such page", http.StatusInternalServerError)
		return
	}
	if s, _ := r.Context().Value(sessionKey{}).(string); s != "" {
		v.CSRF, v.Session = u.auth.formToken(s), true
	}
	if v.Nav == "" {
		v.Nav = page
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := t.Execute(w, v); err != nil {
		u.cfg.Log.Warn("ui: render", "page", page, "err", err)
	}
}

// fail shows a backend error on the page, never an internal address.
func (u *UI) fail(w http.ResponseWriter, r *http.Request, page string, err error) {
	u.cfg.Log.Warn("ui: request failed", "path", r.URL.Path, "err", err)
	u.render(w, r, page, http.StatusServiceUnavailable, view{Title: "Unavailable", Error: "NATS could not be read: " + err.Error()})
}

func (u *UI) loginPage(w http.ResponseWriter, r *http.Request) {
	u.render(w, r, "login", http.StatusOK, view{Title: "Log in"})
}

func (u *UI) loginPost(w http.ResponseWriter, r *http.Request) {
	if !u.login.Allow() {
		u.render(w, r, "login", http.StatusTooManyRequests, view{Title: "Log in", Error: "Too many attempts; wait a few seconds."})
		return
	}
	if !u.auth.tokenOK(r.PostFormValue("token")) {
		u.render(w, r, "login", http.StatusUnauthorized, view{Title: "Log in", Error: "That is not the admin token."})
		return
	}
	u.auth.setCookie(w, r, u.auth.newSession(), int(sessionTTL.Seconds()))
	http.Redirect(w, r, "/ui/", http.StatusSeeOther)
}

func (u *UI) logout(w http.ResponseWriter, r *http.Request) {
	u.auth.setCookie(w, r, "", -1)
	http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
}

func parseSeq(s string) (uint64, bool) {
	n, err := strconv.ParseUint(s, 10, 64)
	return n, err == nil && n > 0
}
