// Package config reads paycomet-notify's environment (contract section 3) into
// one struct, with caarlos0/env from an injected map so tests never touch the
// process environment.
package config

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"

	"github.com/paycomet-notify/paycomet-notify/demo"
	"github.com/paycomet-notify/paycomet-notify/secret"
)

// DefaultBankstoreURL is PAYCOMET's XML BankStore endpoint.
const DefaultBankstoreURL = "https://api.paycomet.com/gateway/xml-bankstore"

// Config is every setting of every subcommand. Secrets are secret.Value, so
// the whole struct can be logged.
type Config struct {
	MerchantCode  string    `env:"PAYCOMET_MERCHANT_CODE"`
	Terminals     Terminals `env:"PAYCOMET_TERMINALS"`
	TerminalsFile string    `env:"PAYCOMET_TERMINALS_FILE"`
	ListenAddr    string    `env:"LISTEN_ADDR" envDefault:":8080"`
	AdminAddr     string    `env:"ADMIN_ADDR" envDefault:"127.0.0.1:9090"`
	NATSURL       string    `env:"NATS_URL"`
	// EmbeddedNATSAddr is where the embedded server (NATS_URL empty) listens,
	// so the refresher, `send` and `nats sub` can reach it. Not 4222, which a
	// machine with NATS installed already uses.
	EmbeddedNATSAddr string        `env:"EMBEDDED_NATS_ADDR" envDefault:"127.0.0.1:4223"`
	RedisURL         secret.Value  `env:"REDIS_URL"` // may carry a password
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

	RefresherMaxDeliver int             `env:"REFRESHER_MAX_DELIVER" envDefault:"10"`
	RefresherBackoff    []time.Duration `env:"REFRESHER_BACKOFF" envDefault:"5s,30s,2m,10m,30m"`
	RefresherAdminAddr  string          `env:"REFRESHER_ADMIN_ADDR" envDefault:"127.0.0.1:9091"`
}

// Load parses environ (the process environment as a map) and checks it.
// readFile reads PAYCOMET_TERMINALS_FILE; nil means os.ReadFile.
func Load(environ map[string]string, readFile func(string) ([]byte, error)) (Config, error) {
	var c Config
	if err := env.ParseWithOptions(&c, env.Options{Environment: environ}); err != nil {
		return Config{}, fmt.Errorf("config: %w", nameVariables(err))
	}
	if c.TerminalsFile != "" {
		if readFile == nil {
			readFile = os.ReadFile
		}
		b, err := readFile(c.TerminalsFile)
		if err != nil {
			return Config{}, fmt.Errorf("config: PAYCOMET_TERMINALS_FILE: %w", err)
		}
		var more Terminals
		if err := more.UnmarshalText([]byte(strings.Join(strings.Fields(string(b)), ","))); err != nil {
			return Config{}, fmt.Errorf("config: PAYCOMET_TERMINALS_FILE: %w", err)
		}
		for id, pw := range more {
			if c.Terminals == nil {
				c.Terminals = Terminals{}
			}
			if _, dup := c.Terminals[id]; dup {
				return Config{}, fmt.Errorf("config: terminal %s is in both PAYCOMET_TERMINALS and PAYCOMET_TERMINALS_FILE", id)
			}
			c.Terminals[id] = pw
		}
	}
	var errs []error
	if c.StreamReplicas < 1 || c.StreamReplicas > 5 {
		errs = append(errs, fmt.Errorf("STREAM_REPLICAS must be 1 to 5, got %d", c.StreamReplicas))
	}
	if c.DedupeTTL <= 0 {
		errs = append(errs, errors.New("DEDUPE_TTL must be positive"))
	}
	if c.MaxBodyBytes <= 0 {
		errs = append(errs, errors.New("MAX_BODY_BYTES must be positive"))
	}
	if c.DuplicateWindow <= 0 {
		errs = append(errs, errors.New("STREAM_DUPLICATE_WINDOW must be positive"))
	}
	if c.SubjectPrefix == "" || strings.ContainsAny(c.SubjectPrefix, " .*>\t") {
		errs = append(errs, fmt.Errorf("SUBJECT_PREFIX must be one subject token without '.', '*', '>' or spaces, got %q", c.SubjectPrefix))
	}
	if c.StreamName == "" || strings.ContainsAny(c.StreamName, " .*>\t/\\") {
		errs = append(errs, fmt.Errorf("STREAM_NAME %q is not a valid stream name", c.StreamName))
	}
	if c.RefresherMaxDeliver < 1 {
		errs = append(errs, errors.New("REFRESHER_MAX_DELIVER must be at least 1"))
	}
	for _, d := range c.RefresherBackoff {
		if d <= 0 {
			errs = append(errs, errors.New("REFRESHER_BACKOFF durations must be positive"))
			break
		}
	}
	if tok := c.URLToken.Reveal(); tok != "" && (len(tok) < 16 || strings.ContainsAny(tok, "/?#% ")) {
		errs = append(errs, errors.New("URL_TOKEN must be at least 16 characters with no '/', '?', '#', '%' or spaces"))
	}
	if err := errors.Join(errs...); err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	return c, nil
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

// NATSServers is NATS_URL, or the embedded server's address when it is empty.
func (c Config) NATSServers() string {
	if c.NATSURL != "" {
		return c.NATSURL
	}
	return "nats://" + c.EmbeddedNATSAddr
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

// UnmarshalText parses "terminal:password,terminal:password".
func (t *Terminals) UnmarshalText(b []byte) error {
	out := Terminals{}
	for i, pair := range strings.Split(string(b), ",") {
		pair = strings.TrimSpace(pair)
		if pair == "" {
			continue
		}
		id, pw, ok := strings.Cut(pair, ":")
		id = strings.TrimSpace(id)
		if !ok || id == "" || pw == "" {
			return fmt.Errorf("PAYCOMET_TERMINALS entry %d is not terminal:password", i+1)
		}
		for _, r := range id {
			if r < '0' || r > '9' {
				return fmt.Errorf("PAYCOMET_TERMINALS entry %d: terminal %q is not a number", i+1, id)
			}
		}
		if _, dup := out[id]; dup {
			return fmt.Errorf("PAYCOMET_TERMINALS: terminal %s appears twice", id)
		}
		out[id] = secret.New(pw)
	}
	*t = out
	return nil
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
