// Package handler is the notification URL: gin routes and the one fixed path
// every notification takes — size limit, raw form, authenticate, parse, dedupe
// claim, publish and wait for the JetStream ack, mark seen, answer. PAYCOMET
// gets 200 only for an event that is durable; every 4xx is quarantined on
// <prefix>.rejected; our own failures are 503 so PAYCOMET retries.
package handler

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/paycomet-notify/paycomet-notify/config"
	"github.com/paycomet-notify/paycomet-notify/dedupe"
	"github.com/paycomet-notify/paycomet-notify/events"
	"github.com/paycomet-notify/paycomet-notify/publisher"
	"github.com/paycomet-notify/paycomet-notify/secret"
)

// Path is the notification URL (with "/<URL_TOKEN>" appended when set).
const Path = "/paycomet/notifications"

// Deduper is the part of a dedupe store the handler uses.
type Deduper interface {
	Claim(ctx context.Context, key string) (dedupe.Lease, dedupe.Status, error)
	MarkSeen(ctx context.Context, l dedupe.Lease, fingerprint string) error
	Release(ctx context.Context, l dedupe.Lease) error
	Name() string
}

// Publisher publishes one event and returns once JetStream acknowledged it.
type Publisher interface {
	Publish(ctx context.Context, subject, id string, body []byte) (publisher.Ack, error)
}

// Config is the handler's share of the service configuration.
type Config struct {
	Prefix         string
	URLToken       secret.Value
	AllowedIPs     config.Prefixes
	TrustedProxies config.Prefixes
	MaxBodyBytes   int64
	InFlightWait   time.Duration // how long a copy waits for the first copy's publish
	PublishTimeout time.Duration // bound on the wait for the JetStream ack
	StoreTimeout   time.Duration // bound on each dedupe store call
	RetryAfter     time.Duration // the Retry-After of a 503
}

func (c *Config) defaults() {
	if c.InFlightWait <= 0 {
		c.InFlightWait = 3 * time.Second
	}
	if c.PublishTimeout <= 0 {
		c.PublishTimeout = 5 * time.Second
	}
	if c.StoreTimeout <= 0 {
		c.StoreTimeout = time.Second
	}
	if c.RetryAfter <= 0 {
		c.RetryAfter = 5 * time.Second
	}
}

// Handler serves the notification URL.
type Handler struct {
	cfg        Config
	verifier   *events.Verifier
	store      Deduper
	pub        Publisher
	m          *Metrics
	log        *slog.Logger
	now        func() time.Time
	retryAfter string       // the Retry-After header value, formatted once
	lastWarn   atomic.Int64 // unix nanos of the last dedupe-store warning, to keep logs readable during an outage
}

// New builds the gin engine of the public listener.
func New(cfg Config, v *events.Verifier, store Deduper, pub Publisher, m *Metrics, log *slog.Logger) (http.Handler, error) {
	cfg.defaults()
	h := &Handler{cfg: cfg, verifier: v, store: store, pub: pub, m: m, log: log, now: time.Now,
		retryAfter: strconv.Itoa(int(cfg.RetryAfter.Seconds()))}
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.HandleMethodNotAllowed = true
	r.RemoteIPHeaders = []string{"X-Forwarded-For"}
	proxies := make([]string, 0, len(cfg.TrustedProxies))
	for _, p := range cfg.TrustedProxies {
		proxies = append(proxies, p.String())
	}
	if len(proxies) == 0 {
		proxies = nil // trust nobody's X-Forwarded-For
	}
	if err := r.SetTrustedProxies(proxies); err != nil {
		return nil, fmt.Errorf("TRUSTED_PROXIES: %w", err)
	}
	r.Use(gin.CustomRecoveryWithWriter(io.Discard, func(c *gin.Context, rec any) {
		h.log.Error("panic in handler", "panic", fmt.Sprint(rec), "path", c.FullPath())
		h.answer(c, http.StatusInternalServerError, "internal error")
	}))
	if cfg.URLToken.IsZero() {
		r.POST(Path, h.notify)
		r.GET(Path, h.pingOnly)
	} else {
		r.POST(Path+"/:token", h.requireToken, h.notify)
		r.GET(Path+"/:token", h.requireToken, h.pingOnly)
	}
	r.NoRoute(func(c *gin.Context) { c.String(http.StatusNotFound, "not found") })
	r.NoMethod(func(c *gin.Context) {
		c.String(http.StatusMethodNotAllowed, "method not allowed: notifications are POSTed")
	})
	return r, nil
}

const viaToken = "via_url_token"

// requireToken answers 404, like any unknown path, when the token is wrong,
// so the URL does not confirm that a token exists.
func (h *Handler) requireToken(c *gin.Context) {
	got, want := c.Param("token"), h.cfg.URLToken.Reveal()
	if subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
		c.AbortWithStatus(http.StatusNotFound)
		c.Writer.WriteString("not found")
		return
	}
	c.Set(viaToken, true)
}

// pingOnly answers PAYCOMET's URL check on GET; notifications are POSTed.
func (h *Handler) pingOnly(c *gin.Context) {
	if c.Query("ping") == "1" && c.Query("TransactionType") == "" {
		c.String(http.StatusOK, "PING OK")
		return
	}
	c.String(http.StatusMethodNotAllowed, "method not allowed: notifications are POSTed")
}

// Errors of the request itself, before the events package sees it.
var (
	errForbidden    = errors.New("source address is not in ALLOWED_IPS")
	errTooLarge     = errors.New("body is larger than MAX_BODY_BYTES")
	errMediaType    = errors.New("Content-Type must be application/x-www-form-urlencoded")
	errMalformed    = errors.New("body is not valid form encoding")
	errUnavailable  = errors.New("the event could not be made durable; retry")
	errEncodeFailed = errors.New("the event could not be encoded")
)

// statusOf maps every error of the notification path to its HTTP status; it
// is the only place that does.
func statusOf(err error) int {
	var fe *events.FieldError
	var ae *events.AuthError
	switch {
	case errors.As(err, &fe), errors.Is(err, errMalformed):
		return http.StatusBadRequest
	case errors.As(err, &ae):
		return http.StatusUnauthorized
	case errors.Is(err, errForbidden):
		return http.StatusForbidden
	case errors.Is(err, errTooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, errMediaType):
		return http.StatusUnsupportedMediaType
	case errors.Is(err, errEncodeFailed):
		return http.StatusInternalServerError
	default:
		return http.StatusServiceUnavailable
	}
}

func (h *Handler) notify(c *gin.Context) {
	start := h.now()
	ip := h.clientIP(c)
	form, err := h.readForm(c)
	if err == nil && len(h.cfg.AllowedIPs) > 0 && !h.cfg.AllowedIPs.Contains(ip) {
		err = errForbidden
	}
	if err != nil {
		h.reject(c, err, form, ip, start, 0)
		return
	}
	if form.Get("ping") == "1" && form.Get("TransactionType") == "" {
		h.answer(c, http.StatusOK, "PING OK")
		return
	}
	ch := events.Channel{URLToken: c.GetBool(viaToken), AllowedIP: len(h.cfg.AllowedIPs) > 0}
	auth, err := h.verifier.Authenticate(form, ch)
	if err != nil {
		h.reject(c, err, form, ip, start, auth.Type)
		return
	}
	ev, err := events.Parse(form, auth, start)
	if err != nil {
		h.reject(c, err, form, ip, start, auth.Type)
		return
	}
	body, err := ev.Encode()
	if err != nil {
		h.log.Error("encode event", "err", err, "transaction_type", auth.Type, "event_id", ev.ID)
		h.answer(c, statusOf(errEncodeFailed), errEncodeFailed.Error())
		return
	}
	// The client going away must not abandon a publish half way: the work
	// finishes under our own timeouts and PAYCOMET's retry finds it done.
	ctx := context.WithoutCancel(c.Request.Context())
	if h.deliver(ctx, ev, body, auth.Type) == http.StatusOK {
		h.answer(c, http.StatusOK, "OK")
		h.m.okSeconds.Observe(h.now().Sub(start).Seconds())
		return
	}
	c.Header("Retry-After", h.retryAfter)
	h.answer(c, http.StatusServiceUnavailable, errUnavailable.Error())
	h.m.unavailableSeconds.Observe(h.now().Sub(start).Seconds())
}

// deliver runs claim → publish → mark seen and returns the status to answer.
func (h *Handler) deliver(ctx context.Context, ev events.Event, body []byte, typ int) int {
	tl := typeLabel(typ)
	lease, held, status := h.claim(ctx, ev.ID)
	switch status {
	case http.StatusOK:
		h.m.notifications.WithLabelValues(tl, "duplicate").Inc()
		return http.StatusOK
	case http.StatusServiceUnavailable:
		h.m.notifications.WithLabelValues(tl, "unavailable").Inc()
		return status
	}

	pctx, cancel := context.WithTimeout(ctx, h.cfg.PublishTimeout)
	t0 := h.now()
	ack, err := h.pub.Publish(pctx, ev.Topic(h.cfg.Prefix), ev.ID, body)
	cancel()
	if err != nil {
		if held {
			h.release(ctx, lease)
		}
		h.m.notifications.WithLabelValues(tl, "unavailable").Inc()
		h.log.Warn("publish failed; answering 503 so PAYCOMET retries",
			"err", err, "event_id", ev.ID, "transaction_type", typ, "order", ev.Subject, "terminal", ev.Terminal)
		return http.StatusServiceUnavailable
	}
	h.m.publishSeconds.Observe(h.now().Sub(t0).Seconds())
	if ack.Duplicate {
		h.m.duplicates.WithLabelValues("jetstream").Inc()
		h.m.notifications.WithLabelValues(tl, "duplicate").Inc()
	} else {
		h.m.notifications.WithLabelValues(tl, "published").Inc()
	}
	if held {
		sctx, cancel := context.WithTimeout(ctx, h.cfg.StoreTimeout)
		err := h.store.MarkSeen(sctx, lease, "")
		cancel()
		if err != nil {
			// The event is durable; only the long-lived memory of it is
			// missing, and JetStream's window still catches quick retries.
			h.m.dedupeErrors.WithLabelValues("mark_seen").Inc()
			h.warnStore("mark seen failed after publish", err, ev.ID)
		}
	}
	return http.StatusOK
}

// claim takes the dedupe lease. It returns held=false when the store is
// unreachable (publish anyway: JetStream's Nats-Msg-Id window dedupes), and
// status 200 for a notification already published, 503 when a copy in
// flight did not finish within InFlightWait, 0 to go on and publish.
func (h *Handler) claim(ctx context.Context, id string) (dedupe.Lease, bool, int) {
	deadline := h.now().Add(h.cfg.InFlightWait)
	pause := 2 * time.Millisecond
	waited := false
	for {
		sctx, cancel := context.WithTimeout(ctx, h.cfg.StoreTimeout)
		lease, st, err := h.store.Claim(sctx, id)
		cancel()
		if err != nil {
			h.m.dedupeErrors.WithLabelValues("claim").Inc()
			h.m.withoutDedupe.Inc()
			h.warnStore("dedupe store unreachable; publishing with JetStream dedupe only", err, id)
			return dedupe.Lease{}, false, 0
		}
		switch st {
		case dedupe.Claimed:
			if waited {
				h.m.inflightWaits.WithLabelValues("claimed").Inc()
			}
			return lease, true, 0
		case dedupe.Seen:
			h.m.duplicates.WithLabelValues(h.store.Name()).Inc()
			if waited {
				h.m.inflightWaits.WithLabelValues("seen").Inc()
			}
			return dedupe.Lease{}, false, http.StatusOK
		}
		// InFlight: the first copy is being published. Wait for it to
		// become durable (Seen) or to give up (Claimed), never answer 200
		// before that.
		waited = true
		if h.now().Add(pause).After(deadline) {
			h.m.inflightWaits.WithLabelValues("timeout").Inc()
			return dedupe.Lease{}, false, http.StatusServiceUnavailable
		}
		time.Sleep(pause)
		pause = min(pause*2, 50*time.Millisecond)
	}
}

func (h *Handler) release(ctx context.Context, l dedupe.Lease) {
	sctx, cancel := context.WithTimeout(ctx, h.cfg.StoreTimeout)
	defer cancel()
	if err := h.store.Release(sctx, l); err != nil {
		// The lease expires by itself after the claim TTL; until then a
		// retry waits and gets 503.
		h.m.dedupeErrors.WithLabelValues("release").Inc()
		h.warnStore("release after failed publish failed", err, l.Key)
	}
}

// warnStore logs dedupe-store trouble at most once a second: during an outage
// every request hits it, and the metric carries the count.
func (h *Handler) warnStore(msg string, err error, id string) {
	now := h.now().UnixNano()
	last := h.lastWarn.Load()
	if now-last < int64(time.Second) || !h.lastWarn.CompareAndSwap(last, now) {
		return
	}
	h.log.Warn(msg, "err", err, "event_id", id, "store", h.store.Name())
}

// reject answers a 4xx and quarantines the notification on <prefix>.rejected;
// when the quarantine cannot be published the answer is 503, so nothing
// PAYCOMET sent is dropped silently.
func (h *Handler) reject(c *gin.Context, err error, form url.Values, ip netip.Addr, received time.Time, typ int) {
	status := statusOf(err)
	reason := err.Error()
	ev := events.Rejected(reason, status, form, ip.String(), received)
	body, encErr := ev.Encode()
	var pubErr error
	if encErr == nil {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(c.Request.Context()), h.cfg.PublishTimeout)
		_, pubErr = h.pub.Publish(ctx, ev.Topic(h.cfg.Prefix), ev.ID, body)
		cancel()
	} else {
		pubErr = encErr
	}
	attrs := []any{"reason", reason, "status", status, "remote", ip.String(),
		"transaction_type", form.Get("TransactionType"), "order", form.Get("Order"), "terminal", terminalOf(form)}
	if pubErr != nil {
		h.m.notifications.WithLabelValues(typeLabel(typ), "unavailable").Inc()
		h.log.Warn("rejected notification could not be quarantined; answering 503", append(attrs, "err", pubErr)...)
		c.Header("Retry-After", h.retryAfter)
		h.answer(c, http.StatusServiceUnavailable, errUnavailable.Error())
		return
	}
	h.m.notifications.WithLabelValues(typeLabel(typ), "rejected").Inc()
	h.m.quarantined.WithLabelValues(strconv.Itoa(status)).Inc()
	h.log.Warn("notification rejected and quarantined", append(attrs, "event_id", ev.ID)...)
	h.answer(c, status, reason)
}

func terminalOf(form url.Values) string {
	if t := form.Get("TpvID"); t != "" {
		return t
	}
	return form.Get("Terminal")
}

func (h *Handler) answer(c *gin.Context, status int, body string) {
	h.m.answered(status)
	c.Header("Content-Type", "text/plain; charset=utf-8")
	c.String(status, body)
}

// clientIP is the peer address, or the X-Forwarded-For hop a trusted proxy
// vouches for.
func (h *Handler) clientIP(c *gin.Context) netip.Addr {
	a, err := netip.ParseAddr(c.ClientIP())
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap()
}

// readForm reads at most MaxBodyBytes and merges the query string into the
// body's fields, as PAYCOMET's own plugins do. An empty body needs no
// Content-Type (a ping may come as a bare query).
func (h *Handler) readForm(c *gin.Context) (url.Values, error) {
	r := c.Request
	if r.ContentLength > h.cfg.MaxBodyBytes {
		return nil, errTooLarge
	}
	raw, err := io.ReadAll(http.MaxBytesReader(c.Writer, r.Body, h.cfg.MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, errTooLarge
		}
		return nil, fmt.Errorf("%w: %v", errMalformed, err)
	}
	query, qerr := url.ParseQuery(r.URL.RawQuery)
	if len(raw) > 0 {
		mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if err != nil || mt != "application/x-www-form-urlencoded" {
			return nil, errMediaType
		}
	}
	form, err := url.ParseQuery(string(raw))
	if err != nil {
		return form, fmt.Errorf("%w: %v", errMalformed, err)
	}
	if qerr != nil {
		return form, fmt.Errorf("%w: query string: %v", errMalformed, qerr)
	}
	for k, vs := range query {
		form[k] = append(form[k], vs...)
	}
	return form, nil
}
