// Package config reads paycomet-notify's environment (contract section 3) into
// one struct, with caarlos0/env from an injected map so tests never touch the
// process environment. Load refuses a value that cannot be right, naming the
// variable and never echoing a secret.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"net/url"
	"os"
	"reflect"
	"sort"
	"strings"
	"time"
	"unicode"

	"github.com/caarlos0/env/v11"

	"github.com/paycomet-notify/paycomet-notify/demo"
	"github.com/paycomet-notify/paycomet-notify/secret"
)

// DefaultBankstoreURL is PAYCOMET's XML BankStore endpoint.
const DefaultBankstoreURL = "https://api.paycomet.com/gateway/xml-bankstore"

// Config is every setting of every subcommand. Secrets are secret.Value and
// URLs that may carry credentials secret.URL, so the whole struct can be
// logged.
type Config struct {
	MerchantCode  string     `env:"PAYCOMET_MERCHANT_CODE"`
	Terminals     Terminals  `env:"PAYCOMET_TERMINALS"`
	TerminalsFile string     `env:"PAYCOMET_TERMINALS_FILE"`
	ListenAddr    string     `env:"LISTEN_ADDR" envDefault:":8080"`
	AdminAddr     string     `env:"ADMIN_ADDR" envDefault:"127.0.0.1:9090"`
	NATSURL       secret.URL `env:"NATS_URL"` // may carry user:password
	// EmbeddedNATSAddr is where the embedded server (NATS_URL empty) listens,
	// so the refresher, `send` and `events tail` can reach it. Not 4222, which a
	// machine with NATS installed already uses.
	EmbeddedNATSAddr string        `env:"EMBEDDED_NATS_ADDR" envDefault:"127.0.0.1:4223"`
	RedisURL         secret.URL    `env:"REDIS_URL"` // may carry a password
	DataDir          string        `env:"DATA_DIR" envDefault:"./data"`
	SubjectPrefix    string        `env:"SUBJECT_PREFIX" envDefault:"paycomet"`
	StreamName       string        `env:"STREAM_NAME" envDefault:"PAYCOMET"`
	StreamReplicas   int           `env:"STREAM_REPLICAS" envDefault:"1"`
	DedupeTTL        time.Duration `env:"DEDUPE_TTL" envDefault:"168h"`
	MaxBodyBytes     int64         `env:"MAX_BODY_BYTES" envDefault:"65536"`
	URLToken         secret.Value  `env:"URL_TOKEN"`
	AllowedIPs       Prefixes      `env:"ALLOWED_IPS"`
	TrustedProxies   Prefixes      `env:"TRUSTED_PROXIES"`
	BankstoreURL     string        `env:"BANKSTORE_URL" envDefault:"https://api.paycomet.com/gateway/xml-bankstore"`
	LogLevel         string        `env:"LOG_LEVEL" envDefault:"info"`

	// DuplicateWindow is JetStream's Nats-Msg-Id window: the second line of
	// dedupe, the only one while the dedupe store is unreachable.
	DuplicateWindow time.Duration `env:"STREAM_DUPLICATE_WINDOW" envDefault:"10m"`
	// InFlightWait is how long a copy that arrives while the first copy is
	// still being published waits for it before answering 503.
	InFlightWait time.Duration `env:"INFLIGHT_WAIT" envDefault:"3s"`
	// PublishTimeout bounds the wait for the JetStream ack.
	PublishTimeout time.Duration `env:"PUBLISH_TIMEOUT" envDefault:"5s"`

	// The quarantine stream <STREAM_NAME>_REJECTED is bounded by size and
	// age (oldest discarded first), and each source address may store only
	// RejectedRatePerSource rejections a second (bursts up to ten times
	// that), so nobody can fill the disk through it.
	RejectedMaxBytes      int64         `env:"REJECTED_MAX_BYTES" envDefault:"1073741824"`
	RejectedMaxAge        time.Duration `env:"REJECTED_MAX_AGE" envDefault:"720h"`
	RejectedRatePerSource float64       `env:"REJECTED_RATE_PER_SOURCE" envDefault:"10"`

	// AdminPprof serves /debug/pprof on the admin listener.
	AdminPprof bool `env:"ADMIN_PPROF"`
	// AdminToken, when set, is the bearer token every admin route but
	// /healthz and /readyz needs; required when an admin listener is not on
	// a loopback address.
	AdminToken secret.Value `env:"ADMIN_TOKEN"`

	RefresherMaxDeliver int             `env:"REFRESHER_MAX_DELIVER" envDefault:"10"`
	RefresherBackoff    []time.Duration `env:"REFRESHER_BACKOFF" envDefault:"5s,30s,2m,10m,30m"`
	RefresherAdminAddr  string          `env:"REFRESHER_ADMIN_ADDR" envDefault:"127.0.0.1:9091"`

	// NATS is NATS_CREDS, NATS_NKEY_SEED, NATS_USER/NATS_PASSWORD and
	// NATS_TLS_*: how every subcommand authenticates to a NATS cluster.
	NATS NATSAuth
	// Redis is Sentinel, REDIS_PASSWORD and REDIS_TLS_*.
	Redis RedisConn
}

// Load parses environ (the process environment as a map) and checks it.
// readFile reads PAYCOMET_TERMINALS_FILE and the NATS and Redis credential
// and TLS files; nil means os.ReadFile.
func Load(environ map[string]string, readFile func(string) ([]byte, error)) (Config, error) {
	var c Config
	if err := env.ParseWithOptions(&c, env.Options{Environment: environ}); err != nil {
		return Config{}, fmt.Errorf("config: %w", nameVariables(err))
	}
	if readFile == nil {
		readFile = os.ReadFile
	}
	if c.TerminalsFile != "" {
		b, err := readFile(c.TerminalsFile)
		if err != nil {
			return Config{}, fmt.Errorf("config: PAYCOMET_TERMINALS_FILE: %w", err)
		}
		// One pair per line, or comma separated, or both.
		more, err := parseTerminals(strings.NewReplacer("\r\n", ",", "\n", ",").Replace(string(b)))
		if err != nil {
			return Config{}, fmt.Errorf("config: PAYCOMET_TERMINALS_FILE: %w", err)
		}
		for _, id := range more.IDs() {
			if c.Terminals == nil {
				c.Terminals = Terminals{}
			}
			if _, dup := c.Terminals[id]; dup {
				return Config{}, fmt.Errorf("config: terminal %s is in both PAYCOMET_TERMINALS and PAYCOMET_TERMINALS_FILE", id)
			}
			c.Terminals[id] = more[id]
		}
	}
	if err := errors.Join(append(c.check(), c.checkProduction(readFile)...)...); err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	return c, nil
}

// check lists every value of c that cannot be right. No message quotes a
// secret or a URL (which may hold one).
func (c Config) check() []error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	errs = append(errs, positiveDurations(c)...)
	// A copy that finds a claim in flight past INFLIGHT_WAIT publishes the
	// same event again; JetStream drops the second publish only while the
	// first's Nats-Msg-Id is in its window. The first publish started at
	// most a claim's life (PUBLISH_TIMEOUT+10s) earlier and the second may
	// take PUBLISH_TIMEOUT itself.
	if need := 2*c.PublishTimeout + 10*time.Second; c.DuplicateWindow > 0 && c.PublishTimeout > 0 && c.DuplicateWindow <= need {
		add("STREAM_DUPLICATE_WINDOW must be longer than twice PUBLISH_TIMEOUT plus 10s (%s), got %s: a copy that takes over a dead receiver's claim relies on it", need, c.DuplicateWindow)
	}
	if c.StreamReplicas < 1 || c.StreamReplicas > 5 {
		add("STREAM_REPLICAS must be 1 to 5, got %d", c.StreamReplicas)
	}
	if c.MaxBodyBytes <= 0 {
		add("MAX_BODY_BYTES must be positive, got %d", c.MaxBodyBytes)
	}
	if c.RejectedMaxBytes <= 0 {
		add("REJECTED_MAX_BYTES must be positive, got %d", c.RejectedMaxBytes)
	}
	if r := c.RejectedRatePerSource; !(r > 0) || math.IsInf(r, 0) {
		add("REJECTED_RATE_PER_SOURCE must be a positive number of rejections per second, got %v", r)
	}
	if c.SubjectPrefix == "" || strings.ContainsAny(c.SubjectPrefix, " .*>\t") {
		add("SUBJECT_PREFIX must be one subject token without '.', '*', '>' or spaces, got %q", c.SubjectPrefix)
	}
	if c.StreamName == "" || strings.ContainsAny(c.StreamName, " .*>\t/\\") {
		add("STREAM_NAME %q is not a valid stream name", c.StreamName)
	}
	if c.RefresherMaxDeliver < 1 {
		add("REFRESHER_MAX_DELIVER must be at least 1, got %d", c.RefresherMaxDeliver)
	}
	if tok := c.URLToken.Reveal(); tok != "" && (len(tok) < 16 || strings.ContainsAny(tok, "/?#% \t")) {
		add("URL_TOKEN must be at least 16 characters with no '/', '?', '#', '%%' or spaces (the value is not shown)")
	}
	if tok := c.AdminToken.Reveal(); tok != "" && (len(tok) < 16 || strings.ContainsFunc(tok, unicode.IsSpace)) {
		add("ADMIN_TOKEN must be at least 16 characters with no spaces (the value is not shown)")
	}
	var lvl slog.Level
	if lvl.UnmarshalText([]byte(c.LogLevel)) != nil {
		add("LOG_LEVEL must be debug, info, warn or error, got %q", c.LogLevel)
	}
	for _, a := range []struct{ name, value string }{
		{"LISTEN_ADDR", c.ListenAddr}, {"EMBEDDED_NATS_ADDR", c.EmbeddedNATSAddr},
	} {
		if _, _, err := net.SplitHostPort(a.value); err != nil {
			add("%s must be host:port (host may be empty), got %q", a.name, a.value)
		}
	}
	// Admin listeners serve metrics, profiles and the operator page: off
	// the loopback interface they need a token.
	for _, a := range []struct{ name, value string }{
		{"ADMIN_ADDR", c.AdminAddr}, {"REFRESHER_ADMIN_ADDR", c.RefresherAdminAddr},
	} {
		host, _, err := net.SplitHostPort(a.value)
		if err != nil {
			add("%s must be host:port, got %q", a.name, a.value)
			continue
		}
		if !IsLoopback(host) && c.AdminToken.IsZero() {
			add("%s %q is not a loopback address, so it needs ADMIN_TOKEN (an empty host listens on every interface): "+
				"set ADMIN_TOKEN or listen on 127.0.0.1", a.name, a.value)
		}
	}
	if err := checkURLs("NATS_URL", c.NATSURL.Reveal(), true, "nats", "tls", "ws", "wss"); err != nil {
		errs = append(errs, err)
	}
	if err := checkURLs("REDIS_URL", c.RedisURL.Reveal(), false, "redis", "rediss", "unix"); err != nil {
		errs = append(errs, err)
	}
	if err := checkURLs("BANKSTORE_URL", c.BankstoreURL, false, "http", "https"); err != nil {
		errs = append(errs, err)
	}
	return errs
}

// IsLoopback reports whether host (of a host:port listen address) listens on
// the loopback interface only. An empty host listens on every interface;
// "localhost" is loopback; any other name could resolve anywhere.
func IsLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}

// positiveDurations refuses every zero or negative duration of c, found by
// type so that a duration variable added later is checked too.
func positiveDurations(c Config) []error {
	var errs []error
	v, t := reflect.ValueOf(c), reflect.TypeOf(c)
	for i := 0; i < t.NumField(); i++ {
		name := t.Field(i).Tag.Get("env")
		switch d := v.Field(i).Interface().(type) {
		case time.Duration:
			if d <= 0 {
				errs = append(errs, fmt.Errorf("%s must be a positive duration, got %s", name, d))
			}
		case []time.Duration:
			for j, e := range d {
				if e <= 0 {
					errs = append(errs, fmt.Errorf("%s entry %d must be a positive duration, got %s", name, j+1, e))
				}
			}
		}
	}
	return errs
}

// checkURLs checks that raw (one URL, or a comma-separated list when list)
// parses, has one of schemes and a host (a path for unix). Its messages
// never quote the URL: Go's url.Parse error does, password included.
func checkURLs(variable, raw string, list bool, schemes ...string) error {
	if raw == "" {
		return nil
	}
	parts := []string{raw}
	if list {
		parts = strings.Split(raw, ",")
	}
	where := func(i int) string {
		if len(parts) == 1 {
			return variable
		}
		return fmt.Sprintf("%s entry %d", variable, i+1)
	}
	for i, p := range parts {
		p = strings.TrimSpace(p)
		if list && !strings.Contains(p, "://") {
			p = schemes[0] + "://" + p // as nats.go reads a bare host:port
		}
		u, err := url.Parse(p)
		if err != nil || p == "" {
			return fmt.Errorf("%s does not parse as a URL (the value is not shown: it may hold a password)", where(i))
		}
		scheme := strings.ToLower(u.Scheme)
		ok := false
		for _, s := range schemes {
			ok = ok || scheme == s
		}
		switch {
		case !ok:
			return fmt.Errorf("%s must be a %s:// URL (the value is not shown: it may hold a password)", where(i), strings.Join(schemes, ":// or "))
		case scheme == "unix" && u.Path == "":
			return fmt.Errorf("%s: a unix:// URL needs a socket path", where(i))
		case scheme != "unix" && u.Hostname() == "":
			return fmt.Errorf("%s has no host (the value is not shown: it may hold a password)", where(i))
		}
	}
	return nil
}

// nameVariables rewrites caarlos0/env's parse errors, which name Go fields, to
// name the environment variable the operator has to fix.
func nameVariables(err error) error {
	var agg env.AggregateError
	if !errors.As(err, &agg) {
		return err
	}
	var out []error
	for _, e := range agg.Errors {
		var pe env.ParseError
		if errors.As(e, &pe) {
			if f, ok := reflect.TypeOf(Config{}).FieldByName(pe.Name); ok {
				out = append(out, fmt.Errorf("%s: %w", f.Tag.Get("env"), pe.Err))
				continue
			}
		}
		out = append(out, e)
	}
	return errors.Join(out...)
}

// NATSServers is NATS_URL, or the embedded server's address when it is
// empty. It stays a secret.URL so that printing it never shows credentials.
func (c Config) NATSServers() secret.URL {
	if !c.NATSURL.IsZero() {
		return c.NATSURL
	}
	return secret.NewURL("nats://" + c.EmbeddedNATSAddr)
}

// RequireTerminals reports, naming the variables, that no terminal is set.
func (c Config) RequireTerminals() error {
	var missing []string
	if c.MerchantCode == "" {
		missing = append(missing, "PAYCOMET_MERCHANT_CODE")
	}
	if len(c.Terminals) == 0 {
		missing = append(missing, "PAYCOMET_TERMINALS (or PAYCOMET_TERMINALS_FILE)")
	}
	if len(missing) > 0 {
		return fmt.Errorf("config: set %s (terminal:password pairs, comma separated), or run with --demo", strings.Join(missing, " and "))
	}
	return nil
}

// Terminals maps a PAYCOMET terminal number to its password.
type Terminals map[string]secret.Value

// UnmarshalText parses "terminal:password,terminal:password". Spaces around
// a comma are allowed; a password may not contain a list separator (',', ';',
// ':') or whitespace, which is how a mis-written list shows ("1000:a;2000:b",
// "1000: a"). No message quotes a password, or a terminal that is not a
// number (it may be a password written first).
func (t *Terminals) UnmarshalText(b []byte) error {
	out, err := parseTerminals(string(b))
	if err != nil {
		return err
	}
	*t = out
	return nil
}

func parseTerminals(s string) (Terminals, error) {
	out := Terminals{}
	for i, pair := range strings.Split(s, ",") {
		pair = strings.TrimSpace(pair)
		if pair == "" {
			continue
		}
		n := i + 1
		id, pw, ok := strings.Cut(pair, ":")
		switch {
		case !ok:
			return nil, fmt.Errorf("entry %d is not terminal:password (pairs are comma separated)", n)
		case id == "":
			return nil, fmt.Errorf("entry %d has no terminal number before ':'", n)
		case strings.ContainsFunc(id, func(r rune) bool { return r < '0' || r > '9' }):
			return nil, fmt.Errorf("entry %d: the terminal is not a number (want terminal:password, comma separated; the value is not shown)", n)
		case pw == "":
			return nil, fmt.Errorf("entry %d (terminal %s) has no password", n, id)
		case strings.TrimFunc(pw, unicode.IsSpace) != pw:
			return nil, fmt.Errorf("entry %d (terminal %s): the password has surrounding spaces", n, id)
		case strings.ContainsFunc(pw, unicode.IsSpace):
			return nil, fmt.Errorf("entry %d (terminal %s): the password contains whitespace (a mis-written list?)", n, id)
		case strings.ContainsAny(pw, ";:"):
			sep := pw[strings.IndexAny(pw, ";:")]
			return nil, fmt.Errorf("entry %d (terminal %s): the password contains %q, a list separator: pairs are terminal:password separated by ','", n, id, sep)
		}
		if _, dup := out[id]; dup {
			return nil, fmt.Errorf("terminal %s appears twice", id)
		}
		out[id] = secret.New(pw)
	}
	return out, nil
}

// IDs lists the terminal numbers, sorted.
func (t Terminals) IDs() []string {
	ids := make([]string, 0, len(t))
	for id := range t {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// Prefixes is a CIDR list; a bare address counts as a single-host prefix.
type Prefixes []netip.Prefix

// UnmarshalText parses "10.0.0.0/8, 192.0.2.7".
func (p *Prefixes) UnmarshalText(b []byte) error {
	var out Prefixes
	for _, s := range strings.Split(string(b), ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if !strings.Contains(s, "/") {
			a, err := netip.ParseAddr(s)
			if err != nil {
				return fmt.Errorf("%q is neither a CIDR nor an address", s)
			}
			out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
			continue
		}
		pf, err := netip.ParsePrefix(s)
		if err != nil {
			return fmt.Errorf("%q is not a CIDR: %w", s, err)
		}
		out = append(out, pf.Masked())
	}
	*p = out
	return nil
}

// Contains reports whether a is in any prefix.
func (p Prefixes) Contains(a netip.Addr) bool {
	a = a.Unmap()
	for _, pf := range p {
		if pf.Contains(a) {
			return true
		}
	}
	return false
}

// ApplyDemo fills what --demo provides when the environment leaves it unset
// (the public credentials of package demo):
// the demo terminal and the demo URL token (so type 108 can be tried).
func (c *Config) ApplyDemo() {
	if c.MerchantCode == "" {
		c.MerchantCode = demo.MerchantCode
	}
	if len(c.Terminals) == 0 {
		c.Terminals = Terminals{demo.Terminal: secret.New(demo.Password)}
	}
	if c.URLToken.IsZero() {
		c.URLToken = secret.New(demo.URLToken)
	}
}
