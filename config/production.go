package config

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"

	"github.com/nats-io/nkeys"

	"github.com/paycomet-notify/paycomet-notify/secret"
)

// NATSAuth is how every subcommand authenticates to a NATS cluster and
// secures the connection (contract section 3): one of a credentials file
// (JWT and seed, the operator/account mode), an nkey seed file, or a user
// and password; and TLS with a CA and, when the server verifies clients, a
// client certificate and key. Paths are not secrets and may be logged; the
// password and the files' contents never are.
type NATSAuth struct {
	Creds    string       `env:"NATS_CREDS"`
	NKeySeed string       `env:"NATS_NKEY_SEED"`
	User     string       `env:"NATS_USER"`
	Password secret.Value `env:"NATS_PASSWORD"`
	TLSCA    string       `env:"NATS_TLS_CA"`
	TLSCert  string       `env:"NATS_TLS_CERT"`
	TLSKey   string       `env:"NATS_TLS_KEY"`
}

// IsZero reports that nothing is set: no authentication, plain TCP unless
// NATS_URL says tls://.
func (a NATSAuth) IsZero() bool { return a == NATSAuth{} }

// TLSConfig is the client TLS configuration from NATS_TLS_*, nil when none
// is set. It reads the files now (they may have been rotated since start-up).
func (a NATSAuth) TLSConfig() (*tls.Config, error) {
	return loadTLS(os.ReadFile, "NATS_TLS", a.TLSCA, a.TLSCert, a.TLSKey)
}

// RedisConn is Redis as production runs it besides a plain REDIS_URL:
// through Sentinel (REDIS_SENTINEL_MASTER and REDIS_SENTINEL_ADDRS, instead
// of REDIS_URL), with the password from REDIS_PASSWORD (also for a REDIS_URL
// without one, so that the URL can live in a config map and the password in
// a secret) and the Sentinels' own from REDIS_SENTINEL_PASSWORD, and TLS
// files for rediss:// or for Sentinel (TLS is on with Sentinel when a
// REDIS_TLS_* file is set).
type RedisConn struct {
	SentinelMaster   string       `env:"REDIS_SENTINEL_MASTER"`
	SentinelAddrs    []string     `env:"REDIS_SENTINEL_ADDRS"`
	Password         secret.Value `env:"REDIS_PASSWORD"`
	SentinelPassword secret.Value `env:"REDIS_SENTINEL_PASSWORD"`
	TLSCA            string       `env:"REDIS_TLS_CA"`
	TLSCert          string       `env:"REDIS_TLS_CERT"`
	TLSKey           string       `env:"REDIS_TLS_KEY"`
}

// Sentinel reports that Redis is reached through Sentinel.
func (r RedisConn) Sentinel() bool { return r.SentinelMaster != "" }

// TLSConfig is the client TLS configuration from REDIS_TLS_*, nil when none
// is set.
func (r RedisConn) TLSConfig() (*tls.Config, error) {
	return loadTLS(os.ReadFile, "REDIS_TLS", r.TLSCA, r.TLSCert, r.TLSKey)
}

func (r RedisConn) tlsSet() bool { return r.TLSCA != "" || r.TLSCert != "" || r.TLSKey != "" }

// RedisConfigured reports that a Redis dedupe store is configured, by
// REDIS_URL or through Sentinel; otherwise dedupe is the JetStream KV bucket.
func (c Config) RedisConfigured() bool { return !c.RedisURL.IsZero() || c.Redis.Sentinel() }

// RedisDesc names the Redis store for logs, without credentials.
func (c Config) RedisDesc() string {
	if c.Redis.Sentinel() {
		return fmt.Sprintf("sentinel master %s via %s", c.Redis.SentinelMaster, strings.Join(c.Redis.SentinelAddrs, ","))
	}
	return c.RedisURL.String()
}

// ScrubRedis removes every Redis secret (the password in REDIS_URL,
// REDIS_PASSWORD, REDIS_SENTINEL_PASSWORD) from text, such as a client
// error.
func (c Config) ScrubRedis(text string) string {
	text = c.RedisURL.Scrub(text)
	for _, s := range []secret.Value{c.Redis.Password, c.Redis.SentinelPassword} {
		if p := s.Reveal(); p != "" {
			text = strings.ReplaceAll(text, p, "[redacted]")
		}
	}
	return text
}

// ScrubNATS removes every NATS secret (the password in NATS_URL and
// NATS_PASSWORD) from text.
func (c Config) ScrubNATS(text string) string {
	text = c.NATSServers().Scrub(text)
	if p := c.NATS.Password.Reveal(); p != "" {
		text = strings.ReplaceAll(text, p, "[redacted]")
	}
	return text
}

// checkProduction refuses NATS and Redis connection settings that cannot
// be right, reading the files they name with readFile. No message quotes a
// password or a file's content.
func (c Config) checkProduction(readFile func(string) ([]byte, error)) []error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }

	n := c.NATS
	var methods []string
	for _, m := range []struct{ name, value string }{{"NATS_CREDS", n.Creds}, {"NATS_NKEY_SEED", n.NKeySeed}, {"NATS_USER", n.User}} {
		if m.value != "" {
			methods = append(methods, m.name)
		}
	}
	if len(methods) > 1 {
		add("%s are each a way to authenticate to NATS: set only one", strings.Join(methods, " and "))
	}
	switch {
	case n.User != "" && n.Password.IsZero():
		add("NATS_USER is set without NATS_PASSWORD")
	case n.User == "" && !n.Password.IsZero():
		add("NATS_PASSWORD is set without NATS_USER")
	}
	if n.User != "" && urlsHaveUser(c.NATSURL.Reveal()) {
		add("NATS_USER is set and NATS_URL holds a user too: set one")
	}
	if !n.IsZero() && c.NATSURL.IsZero() {
		add("NATS_CREDS, NATS_NKEY_SEED, NATS_USER and NATS_TLS_* are for a NATS cluster: they need NATS_URL (the embedded server uses neither)")
	}
	if n.Creds != "" {
		if b, err := readFile(n.Creds); err != nil {
			add("NATS_CREDS: %s", fileErr(err))
		} else if err := checkCreds(b); err != nil {
			add("NATS_CREDS %s: %v", n.Creds, err)
		}
	}
	if n.NKeySeed != "" {
		if b, err := readFile(n.NKeySeed); err != nil {
			add("NATS_NKEY_SEED: %s", fileErr(err))
		} else if err := checkUserSeed(b); err != nil {
			add("NATS_NKEY_SEED %s: %v", n.NKeySeed, err)
		}
	}
	if _, err := loadTLS(readFile, "NATS_TLS", n.TLSCA, n.TLSCert, n.TLSKey); err != nil {
		errs = append(errs, err)
	}

	r := c.Redis
	switch {
	case r.SentinelMaster != "" && len(r.SentinelAddrs) == 0:
		add("REDIS_SENTINEL_MASTER is set without REDIS_SENTINEL_ADDRS (the Sentinels' host:port list)")
	case r.SentinelMaster == "" && len(r.SentinelAddrs) > 0:
		add("REDIS_SENTINEL_ADDRS is set without REDIS_SENTINEL_MASTER (the master's name the Sentinels monitor)")
	}
	if r.Sentinel() && !c.RedisURL.IsZero() {
		add("REDIS_SENTINEL_MASTER is instead of REDIS_URL: set one (the password goes in REDIS_PASSWORD with Sentinel)")
	}
	for i, a := range r.SentinelAddrs {
		if host, port, err := net.SplitHostPort(strings.TrimSpace(a)); err != nil || host == "" || port == "" {
			add("REDIS_SENTINEL_ADDRS entry %d must be host:port, got %q", i+1, a)
		}
	}
	if !r.SentinelPassword.IsZero() && !r.Sentinel() {
		add("REDIS_SENTINEL_PASSWORD is set without REDIS_SENTINEL_MASTER")
	}
	if !r.Password.IsZero() {
		if !c.RedisConfigured() {
			add("REDIS_PASSWORD is set without REDIS_URL or REDIS_SENTINEL_MASTER")
		} else if u, err := url.Parse(c.RedisURL.Reveal()); err == nil && u.User != nil {
			if _, has := u.User.Password(); has {
				add("REDIS_PASSWORD is set and REDIS_URL holds a password too: set one")
			}
		}
	}
	if r.tlsSet() {
		switch {
		case !c.RedisConfigured():
			add("REDIS_TLS_* is set without REDIS_URL or REDIS_SENTINEL_MASTER")
		case !r.Sentinel() && !strings.HasPrefix(strings.ToLower(c.RedisURL.Reveal()), "rediss://"):
			add("REDIS_TLS_* is set but REDIS_URL is not a rediss:// URL: use rediss:// for TLS")
		}
	}
	if _, err := loadTLS(readFile, "REDIS_TLS", r.TLSCA, r.TLSCert, r.TLSKey); err != nil {
		errs = append(errs, err)
	}
	return errs
}

// urlsHaveUser reports whether any URL of a NATS_URL list holds user
// information.
func urlsHaveUser(raw string) bool {
	for _, p := range strings.Split(raw, ",") {
		p = strings.TrimSpace(p)
		if !strings.Contains(p, "://") {
			p = "nats://" + p
		}
		if u, err := url.Parse(p); err == nil && u.User != nil {
			return true
		}
	}
	return false
}

// loadTLS builds a client TLS configuration from a CA bundle and a client
// certificate and key (PEM files, each optional, the certificate and key
// both or neither), nil when none is set. prefix names the variables
// (NATS_TLS, REDIS_TLS). Its errors name the variable and the path, never
// a file's content (a key is a secret).
func loadTLS(readFile func(string) ([]byte, error), prefix, ca, cert, key string) (*tls.Config, error) {
	if ca == "" && cert == "" && key == "" {
		return nil, nil
	}
	if (cert == "") != (key == "") {
		return nil, fmt.Errorf("%s_CERT and %s_KEY go together (a client certificate and its key): set both or neither", prefix, prefix)
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if ca != "" {
		b, err := readFile(ca)
		if err != nil {
			return nil, fmt.Errorf("%s_CA: %s", prefix, fileErr(err))
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("%s_CA %s holds no PEM certificate", prefix, ca)
		}
		cfg.RootCAs = pool
	}
	if cert != "" {
		cb, err := readFile(cert)
		if err != nil {
			return nil, fmt.Errorf("%s_CERT: %s", prefix, fileErr(err))
		}
		kb, err := readFile(key)
		if err != nil {
			return nil, fmt.Errorf("%s_KEY: %s", prefix, fileErr(err))
		}
		pair, err := tls.X509KeyPair(cb, kb)
		if err != nil {
			// crypto/tls's messages describe the problem, never the key.
			return nil, fmt.Errorf("%s_CERT %s and %s_KEY %s are not a PEM certificate and its private key: %v", prefix, cert, prefix, key, err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}

// fileErr says why a file could not be read; *PathError names the path
// (not a secret) and the reason.
func fileErr(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return fmt.Sprintf("cannot read %s: %v", pe.Path, pe.Err)
	}
	return err.Error()
}

// checkCreds checks that a NATS credentials file holds a user JWT and a
// user seed, the way nats.go reads it.
func checkCreds(b []byte) error {
	if !strings.Contains(string(b), "BEGIN NATS USER JWT") {
		return errors.New("is not a NATS credentials file (no user JWT in it; the content is not shown)")
	}
	kp, err := nkeys.ParseDecoratedNKey(b)
	if err != nil {
		return errors.New("is not a NATS credentials file (no user seed in it; the content is not shown)")
	}
	kp.Wipe()
	return nil
}

// checkUserSeed checks that a file holds one nkey user seed ("SU...").
func checkUserSeed(b []byte) error {
	kp, err := nkeys.ParseDecoratedNKey(b)
	if err != nil {
		return errors.New("holds no nkey seed (the content is not shown)")
	}
	defer kp.Wipe()
	if _, err := kp.Seed(); err != nil {
		return errors.New("holds a public key, not a seed")
	}
	pub, err := kp.PublicKey()
	if err != nil || !nkeys.IsValidPublicUserKey(pub) {
		return errors.New("holds a seed that is not a user seed (it must begin with SU)")
	}
	return nil
}
