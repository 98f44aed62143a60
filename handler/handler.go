// Package handler is the notification URL over HTTP: gin routes, reading the
// body within its limits, and answering. What happens to a notification is
// decided by notify.Process; this package turns the request into a
// notify.Request and the notify.Outcome into a status, in one function
// (statusOf).
package handler

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/paycomet-notify/paycomet-notify/notify"
	"github.com/paycomet-notify/paycomet-notify/secret"
	"github.com/paycomet-notify/paycomet-notify/tracing"
)

// Path is the notification URL (with "/<URL_TOKEN>" appended when set).
const Path = "/paycomet/notifications"

// Config is the handler's share of the service configuration.
type Config struct {
	URLToken       secret.Value
	TrustedProxies []netip.Prefix // whose X-Forwarded-For is believed
	MaxBodyBytes   int64          // MAX_BODY_BYTES
	RetryAfter     time.Duration  // the Retry-After of a 503
	// Tracing continues the trace of an incoming traceparent header; nil:
	// off, the headers are not looked at.
	Tracing *tracing.Tracing
}

func (c *Config) defaults() {
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = 65536
	}
	if c.RetryAfter <= 0 {
		c.RetryAfter = 5 * time.Second
	}
}

// handler serves the notification URL.
type handler struct {
	cfg        Config
	path       *notify.Path
	m          *notify.Metrics
	log        *slog.Logger
	retryAfter string // the Retry-After header value, formatted once
}

// New builds the gin engine of the public listener. The http.Server in
// front sets ReadTimeout (15 s, contract section 4): a body that has not
// arrived by then is answered 408.
func New(cfg Config, p *notify.Path, m *notify.Metrics, log *slog.Logger) (http.Handler, error) {
	cfg.defaults()
	h := &handler{cfg: cfg, path: p, m: m, log: log, retryAfter: strconv.Itoa(int(cfg.RetryAfter.Seconds()))}
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.HandleMethodNotAllowed = true
	r.RemoteIPHeaders = []string{"X-Forwarded-For"}
	var proxies []string // nil: trust nobody's X-Forwarded-For
	for _, p := range cfg.TrustedProxies {
		proxies = append(proxies, p.String())
	}
	if err := r.SetTrustedProxies(proxies); err != nil {
		return nil, fmt.Errorf("TRUSTED_PROXIES: %w", err)
	}
	r.Use(gin.CustomRecoveryWithWriter(io.Discard, func(c *gin.Context, rec any) {
		h.log.Error("panic in handler", "panic", fmt.Sprint(rec), "path", c.FullPath())
		h.write(c, http.StatusInternalServerError, "internal error")
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
// so the URL does not confirm that a token exists. Such a request is not a
// notification and is not quarantined.
func (h *handler) requireToken(c *gin.Context) {
	got, want := c.Param("token"), h.cfg.URLToken.Reveal()
	if subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
		c.AbortWithStatus(http.StatusNotFound)
		c.Writer.WriteString("not found")
		return
	}
	c.Set(viaToken, true)
}

// pingOnly answers PAYCOMET's URL check on GET; notifications are POSTed.
func (h *handler) pingOnly(c *gin.Context) {
	if c.Query("ping") == "1" && c.Query("TransactionType") == "" {
		c.String(http.StatusOK, "PING OK")
		return
	}
	c.String(http.StatusMethodNotAllowed, "method not allowed: notifications are POSTed")
}

func (h *handler) notify(c *gin.Context) {
	start := time.Now()
	r := c.Request
	body, truncated, readErr := h.readBody(c)
	o := h.path.Process(h.cfg.Tracing.ExtractHTTP(r.Context(), r.Header), notify.Request{
		Body:         body,
		Truncated:    truncated,
		Query:        r.URL.RawQuery,
		ContentType:  r.Header.Get("Content-Type"),
		URLTokenPath: c.GetBool(viaToken),
		Source:       h.clientIP(c),
		ReceivedAt:   start,
		ReadErr:      readErr,
	})
	status := statusOf(o)
	switch status {
	case http.StatusServiceUnavailable:
		c.Header("Retry-After", h.retryAfter)
	case http.StatusRequestTimeout, http.StatusRequestEntityTooLarge:
		// The rest of the body is not read: the connection cannot carry
		// another request.
		c.Header("Connection", "close")
	}
	h.write(c, status, answerBody(o))
	h.m.Answered(status, time.Since(start))
}

// statusOf maps every outcome of the notification path to its HTTP status;
// it is the only place that does.
func statusOf(o notify.Outcome) int {
	switch o.Kind {
	case notify.Accepted, notify.Duplicate, notify.Ping:
		return http.StatusOK
	case notify.Rejected:
		return o.Status
	case notify.Unavailable:
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}

// answerBody is what PAYCOMET (or whoever sent it) reads: OK, PING OK, or
// the path's sentence, which names the field at fault and no internal
// address.
func answerBody(o notify.Outcome) string {
	switch o.Kind {
	case notify.Accepted, notify.Duplicate:
		return "OK"
	case notify.Ping:
		return "PING OK"
	}
	if o.Detail == "" {
		return "internal error"
	}
	return o.Detail
}

func (h *handler) write(c *gin.Context, status int, body string) {
	c.Header("Content-Type", "text/plain; charset=utf-8")
	c.String(status, body)
}

// clientIP is the peer address, or the X-Forwarded-For hop a trusted proxy
// vouches for.
func (h *handler) clientIP(c *gin.Context) netip.Addr {
	a, err := netip.ParseAddr(c.ClientIP())
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap()
}

// readBody reads at most MaxBodyBytes. A longer body keeps its first
// MaxBodyBytes bytes (truncated, notify.ErrTooLarge), so the quarantine
// holds what was sent; a body that stops arriving before the server's
// ReadTimeout is notify.ErrBodyTimeout.
func (h *handler) readBody(c *gin.Context) ([]byte, bool, error) {
	r, max := c.Request, h.cfg.MaxBodyBytes
	if r.ContentLength == 0 {
		return nil, false, nil
	}
	var buf []byte
	if r.ContentLength > 0 && r.ContentLength <= max {
		// The common case: one allocation of the announced size; net/http
		// never lets more than Content-Length through.
		buf = make([]byte, r.ContentLength)
		n, err := io.ReadFull(r.Body, buf)
		if err != nil {
			return buf[:n], false, readError(err)
		}
		return buf, false, nil
	}
	n := max + 1
	if r.ContentLength > 0 {
		n = min(r.ContentLength, max+1)
	}
	buf = make([]byte, 0, min(n, 512))
	buf, err := readUpTo(r.Body, buf, max+1)
	if err != nil {
		return buf, false, readError(err)
	}
	if int64(len(buf)) > max {
		return buf[:max], true, notify.ErrTooLarge
	}
	return buf, false, nil
}

// readUpTo appends from r to buf until EOF or limit bytes.
func readUpTo(r io.Reader, buf []byte, limit int64) ([]byte, error) {
	for int64(len(buf)) < limit {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		room := min(int64(cap(buf)), limit)
		n, err := r.Read(buf[len(buf):room])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
	return buf, nil
}

// readError says what a failed body read means for the path: a deadline
// passed (the server's ReadTimeout) is a body that did not arrive in time.
// The error itself, which names socket addresses, goes nowhere.
func readError(err error) error {
	var ne net.Error
	if errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return notify.ErrBodyTimeout
	}
	return errors.New("the request body could not be read")
}
