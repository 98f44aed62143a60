package service

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Start-up waits: a long-running subcommand started before NATS, its
// stream or its consumer is there (a cluster still electing, an R3 stream
// being created by another replica) retries until it is, instead of exiting
// for what time fixes. Bad configuration is not waited out: it exits at once.

// permanent marks an error that waiting will not fix.
type permanent struct{ err error }

func (p *permanent) Error() string { return p.err.Error() }
func (p *permanent) Unwrap() error { return p.err }

// Permanent marks err as one that retrying will not fix (bad configuration),
// so Wait returns it at once. Nil stays nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanent{err}
}

// JetStream API error codes that say the configuration is wrong, not that
// the cluster is not ready yet.
var permanentJSCodes = map[jetstream.ErrorCode]bool{
	10074: true, // replicas > 1 not supported in non-clustered mode (STREAM_REPLICAS on a single server)
	10065: true, // subjects overlap with an existing stream
	10052: true, // invalid stream configuration
	10058: true, // stream name already in use with a different configuration
}

// IsPermanent reports whether waiting will not fix err: marked Permanent, a
// NATS authentication or authorization failure, a TLS certificate problem
// on either side, a server older than MinServerVersion, or JetStream
// refusing a stream's configuration. Everything else (refused or timed-out
// connections, a JetStream not ready, a stream look-up that timed out while
// a cluster creates it) is waited out.
func IsPermanent(err error) bool {
	var p *permanent
	if errors.As(err, &p) {
		return true
	}
	for _, e := range []error{nats.ErrAuthorization, nats.ErrAuthExpired, nats.ErrAuthRevoked, nats.ErrAccountAuthExpired,
		nats.ErrSecureConnRequired, nats.ErrSecureConnWanted, nats.ErrClientCertOrRootCAsRequired, ErrServerTooOld} {
		if errors.Is(err, e) {
			return true
		}
	}
	var (
		unknownCA *x509.UnknownAuthorityError
		hostname  x509.HostnameError
		invalid   x509.CertificateInvalidError
		verify    *tls.CertificateVerificationError
		alert     tls.AlertError
		op        *net.OpError
		api       *jetstream.APIError
	)
	switch {
	case errors.As(err, &unknownCA), errors.As(err, &hostname), errors.As(err, &invalid),
		errors.As(err, &verify), errors.As(err, &alert):
		return true
	case errors.Is(err, nats.ErrTLS):
		// The handshake failed, or the server hung up right after it
		// (it refused our certificate); a handshake that timed out on a
		// busy server is the exception.
		var ne net.Error
		return !(errors.As(err, &ne) && ne.Timeout())
	case errors.As(err, &op) && op.Op == "remote error":
		// A TLS alert from the server: it refused our certificate (or
		// its absence) or our TLS parameters.
		return true
	case errors.As(err, &api):
		return permanentJSCodes[api.ErrorCode]
	}
	return false
}

// Startup is what a subcommand is waiting for while it starts, for
// /readyz: nothing is ready until Done.
type Startup struct {
	mu       sync.Mutex
	what     string
	err      string
	attempts int
	done     bool
}

// NewStartup is a start-up that has not begun waiting yet.
func NewStartup() *Startup { return &Startup{what: "start-up"} }

func (s *Startup) set(what string, attempts int, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.what, s.err, s.attempts = what, "", attempts
	if err != nil {
		s.err = err.Error()
	}
}

// Done records that start-up has finished: Check is ok from now on.
func (s *Startup) Done() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.done = true
}

// Finished reports whether Done was called.
func (s *Startup) Finished() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.done
}

// Readiness is /readyz while starting: not ready, one check "startup" that
// says what it waits for and the last error.
func (s *Startup) Readiness() Readiness {
	s.mu.Lock()
	defer s.mu.Unlock()
	msg := "waiting for " + s.what
	if s.err != "" {
		msg += fmt.Sprintf(" (%d attempts): %s", s.attempts, s.err)
	}
	return NewReadiness(Check{Name: "startup", OK: false, Error: msg})
}

// Wait policy: the first retry after minBackoff, doubling up to maxBackoff;
// a failure is logged at once and then at most once per logEvery.
const (
	minBackoff = 100 * time.Millisecond
	maxBackoff = 5 * time.Second
	logEvery   = 15 * time.Second
)

// Wait calls fn until it succeeds, fails with a permanent error (returned
// at once), or ctx ends (ctx's error, joined with the last failure). Each
// attempt gets the context it is given; fn bounds its own attempt. what
// names what it waits for, in the log and in /readyz (through st, which may
// be nil). It logs the first failure and then one line per logEvery (with
// the number of attempts), not one per retry, and one line when what it
// waited for is there. Errors must already be free of secrets.
func Wait(ctx context.Context, log *slog.Logger, st *Startup, what string, fn func(ctx context.Context) error) error {
	start := time.Now()
	backoff := minBackoff
	var lastLog time.Time
	attempts := 0
	for {
		if st != nil && attempts == 0 {
			st.set(what, 0, nil)
		}
		err := fn(ctx)
		attempts++
		if err == nil {
			if attempts > 1 {
				log.Info("start-up: "+what+" is there", "waited", time.Since(start).Round(time.Millisecond).String(), "attempts", attempts)
			}
			return nil
		}
		if IsPermanent(err) {
			return err
		}
		if ctx.Err() != nil {
			return errors.Join(fmt.Errorf("gave up waiting for %s: %w", what, ctx.Err()), err)
		}
		if st != nil {
			st.set(what, attempts, err)
		}
		if lastLog.IsZero() || time.Since(lastLog) >= logEvery {
			log.Warn("start-up: waiting for "+what, "err", err.Error(), "attempts", attempts,
				"waiting", time.Since(start).Round(time.Millisecond).String())
			lastLog = time.Now()
		}
		// Jitter keeps replicas started together from retrying in step.
		d := backoff/2 + rand.N(backoff/2+1)
		select {
		case <-ctx.Done():
			return errors.Join(fmt.Errorf("gave up waiting for %s: %w", what, ctx.Err()), err)
		case <-time.After(d):
		}
		backoff = min(backoff*2, maxBackoff)
	}
}

// Start serves the admin listener now, before the rest of a subcommand has
// started, so that /healthz answers and /readyz says what start-up waits
// for. The returned Task's Run waits for the listener to end; its Stop
// shuts it down.
func (a *Admin) Start() Task {
	done := make(chan error, 1)
	go func() { done <- a.Serve() }()
	return Task{Name: "admin listener", Run: func() error { return <-done }, Stop: func(ctx context.Context) error {
		err := a.Shutdown(ctx)
		return err
	}}
}
