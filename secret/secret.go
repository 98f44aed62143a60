// Package secret holds values that must never reach logs, errors, events or
// metrics: terminal passwords, the notification URL token, ADMIN_TOKEN, and
// (type URL) the user information of NATS_URL and REDIS_URL.
//
// A Value prints as "[redacted]" through fmt, slog and encoding/json, so a
// config struct that holds one can be logged whole at start-up. The clear text
// is reachable only through Reveal, which makes every use easy to audit.
package secret

import "log/slog"

const redacted = "[redacted]"

// Value is a secret string.
type Value struct{ s string }

// New wraps s.
func New(s string) Value { return Value{s: s} }

// Reveal returns the clear text. Call it only where the secret is used
// (hashing, comparing), never where it is shown.
func (v Value) Reveal() string { return v.s }

// IsZero reports whether the secret is empty.
func (v Value) IsZero() bool { return v.s == "" }

// String redacts.
func (v Value) String() string {
	if v.s == "" {
		return ""
	}
	return redacted
}

// GoString redacts, so %#v does not leak either.
func (v Value) GoString() string { return v.String() }

// LogValue redacts for slog.
func (v Value) LogValue() slog.Value { return slog.StringValue(v.String()) }

// MarshalText redacts for encoding/json and friends.
func (v Value) MarshalText() ([]byte, error) { return []byte(v.String()), nil }

// UnmarshalText lets caarlos0/env and flag parsing fill a Value.
func (v *Value) UnmarshalText(b []byte) error {
	v.s = string(b)
	return nil
}
