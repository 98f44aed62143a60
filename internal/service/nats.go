package service

import (
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/paycomet-notify/paycomet-notify/config"
	"github.com/paycomet-notify/paycomet-notify/secret"
)

// MinServerVersion is the oldest nats-server paycomet-notify runs on: the
// refresher's durable consumer filters on several subjects (FilterSubjects,
// new in nats-server 2.10), which an older server refuses with an error that
// does not say why. Every subcommand checks it at start-up, so one NATS
// cluster is either fit for all of them or refused by all.
const MinServerVersion = "2.10.0"

// ErrServerTooOld is returned by ConnectNATS (wrapped, with both versions)
// when the server is older than MinServerVersion.
var ErrServerTooOld = errors.New("nats-server too old")

// NATSConfig is one subcommand's NATS connection.
type NATSConfig struct {
	// Name is the client name the server shows (`paycomet-notify serve`).
	Name string
	// URL is NATS_URL (or the embedded server's address): credentials in it
	// are used and never logged.
	URL secret.URL
	// NoReconnectBuffer makes a publish while disconnected fail at once
	// instead of being sent after the reconnect: the receiver must answer
	// 503 then, not 200 for a message that may never arrive.
	NoReconnectBuffer bool
	// Hint is added to a connection failure (where the server should be).
	Hint string
	// MinVersion overrides MinServerVersion (tests).
	MinVersion string
	// Timeout bounds the first connection; zero means nats.go's 2s.
	Timeout time.Duration
	// Auth is NATS_CREDS, NATS_NKEY_SEED, NATS_USER/NATS_PASSWORD and
	// NATS_TLS_* (config.Config.NATS): every subcommand passes it.
	Auth config.NATSAuth
}

// AuthOptions are the nats.go options for auth (credentials file, nkey
// seed, user and password, TLS). Their errors name the variable, never a
// secret.
func AuthOptions(auth config.NATSAuth) ([]nats.Option, error) {
	var opts []nats.Option
	switch {
	case auth.Creds != "":
		opts = append(opts, nats.UserCredentials(auth.Creds))
	case auth.NKeySeed != "":
		o, err := nats.NkeyOptionFromSeed(auth.NKeySeed)
		if err != nil {
			// nats.go's message names the file and the problem, not the seed.
			return nil, fmt.Errorf("NATS_NKEY_SEED %s: %w", auth.NKeySeed, err)
		}
		opts = append(opts, o)
	case auth.User != "":
		opts = append(opts, nats.UserInfo(auth.User, auth.Password.Reveal()))
	}
	tlsCfg, err := auth.TLSConfig()
	if err != nil {
		return nil, err
	}
	if tlsCfg != nil {
		opts = append(opts, nats.Secure(tlsCfg))
	}
	return opts, nil
}

// ConnectNATS connects, reconnecting forever afterwards, and refuses a server
// older than MinServerVersion. Every log line and error shows the servers
// with their user information redacted, and client errors are scrubbed of
// the URL's credentials.
func ConnectNATS(cfg NATSConfig, log *slog.Logger) (*nats.Conn, error) {
	scrub := func(s string) string {
		s = cfg.URL.Scrub(s)
		if p := cfg.Auth.Password.Reveal(); p != "" {
			s = strings.ReplaceAll(s, p, "[redacted]")
		}
		return s
	}
	auth, err := AuthOptions(cfg.Auth)
	if err != nil {
		return nil, &permanent{err}
	}
	opts := []nats.Option{
		nats.Name(cfg.Name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("nats disconnected", "err", scrub(err.Error()))
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.Info("nats reconnected", "server", secret.RedactURL(nc.ConnectedUrl()), "server_version", nc.ConnectedServerVersion())
			if err := CheckServerVersion(nc.ConnectedServerVersion(), cfg.MinVersion); err != nil {
				// Refusing here would take a running service down for a
				// rolling downgrade; say it loudly instead.
				log.Error("nats reconnected to an older server", "err", err)
			}
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subject := ""
			if sub != nil {
				subject = sub.Subject
			}
			log.Warn("nats async error", "subject", subject, "err", scrub(err.Error()))
		}),
	}
	opts = append(opts, auth...)
	if cfg.NoReconnectBuffer {
		opts = append(opts, nats.ReconnectBufSize(-1))
	}
	if cfg.Timeout > 0 {
		opts = append(opts, nats.Timeout(cfg.Timeout))
	}
	nc, err := nats.Connect(cfg.URL.Reveal(), opts...)
	if err != nil {
		return nil, &scrubbed{msg: fmt.Sprintf("connect NATS %s: %s%s", cfg.URL, scrub(err.Error()), cfg.Hint), err: err}
	}
	if err := CheckServerVersion(nc.ConnectedServerVersion(), cfg.MinVersion); err != nil {
		nc.Close()
		return nil, &permanent{fmt.Errorf("NATS %s: %w", cfg.URL, err)}
	}
	return nc, nil
}

// CheckServerVersion refuses a nats-server version older than min
// (MinServerVersion when empty). A version that does not parse is refused
// too: the server would not be one we know.
func CheckServerVersion(version, min string) error {
	if min == "" {
		min = MinServerVersion
	}
	want, ok := parseVersion(min)
	if !ok {
		return fmt.Errorf("minimum NATS server version %q does not parse", min)
	}
	have, ok := parseVersion(version)
	if !ok {
		return fmt.Errorf("%w: the server reports version %q, which does not parse; paycomet-notify needs nats-server %s or later",
			ErrServerTooOld, version, shortVersion(min))
	}
	for i := range have {
		if have[i] != want[i] {
			if have[i] < want[i] {
				return fmt.Errorf("%w: the server runs nats-server %s; paycomet-notify needs nats-server %s or later (upgrade the NATS server)",
					ErrServerTooOld, version, shortVersion(min))
			}
			return nil
		}
	}
	return nil
}

// parseVersion reads "2.10.3", "v2.10.3" or "2.11.0-RC.1" (the
// pre-release counts as its release) into major, minor, patch.
func parseVersion(v string) ([3]int, bool) {
	var out [3]int
	v = strings.TrimPrefix(v, "v")
	if i := strings.IndexAny(v, "-+"); i >= 0 {
		v = v[:i]
	}
	parts := strings.Split(v, ".")
	if len(parts) < 2 || len(parts) > 3 {
		return out, false
	}
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 {
			return out, false
		}
		out[i] = n
	}
	return out, true
}

// shortVersion writes "2.10.0" as "2.10", the way people name releases.
func shortVersion(v string) string { return strings.TrimSuffix(v, ".0") }

// DrainNATS drains nc (pending subscriptions finish, pending publishes are
// flushed) and waits for it to close, at most timeout.
func DrainNATS(nc *nats.Conn, timeout time.Duration) {
	if nc == nil {
		return
	}
	closed := nc.StatusChanged(nats.CLOSED)
	if err := nc.Drain(); err == nil {
		select {
		case <-closed:
		case <-time.After(timeout):
		}
	}
	nc.Close()
}

// scrubbed is an error whose message has had credentials removed; the
// original stays reachable for errors.Is.
type scrubbed struct {
	msg string
	err error
}

func (e *scrubbed) Error() string { return e.msg }
func (e *scrubbed) Unwrap() error { return e.err }
