package secret

import (
	"log/slog"
	"net/url"
	"sort"
	"strings"
)

// URL is a server URL, or a comma-separated list of them as NATS_URL takes,
// whose user information (user:password@) is a secret. Unlike Value it
// prints the rest (scheme, host, port, path), which an operator needs in a
// log line to see where a service connects; the user information prints as
// "[redacted]".
type URL struct{ s string }

// NewURL wraps s.
func NewURL(s string) URL { return URL{s: s} }

// Reveal returns the URL with its credentials, for the client that dials it.
func (u URL) Reveal() string { return u.s }

// IsZero reports whether the URL is empty.
func (u URL) IsZero() bool { return u.s == "" }

// String redacts the user information.
func (u URL) String() string { return RedactURL(u.s) }

// GoString redacts, so %#v does not leak either.
func (u URL) GoString() string { return u.String() }

// LogValue redacts for slog.
func (u URL) LogValue() slog.Value { return slog.StringValue(u.String()) }

// MarshalText redacts for encoding/json and friends.
func (u URL) MarshalText() ([]byte, error) { return []byte(u.String()), nil }

// UnmarshalText lets caarlos0/env fill a URL.
func (u *URL) UnmarshalText(b []byte) error {
	u.s = string(b)
	return nil
}

// Scrub replaces, in text (an error message from a client library, say),
// every credential of u: each server's whole user information and its
// password alone, raw and percent-decoded. Use it on text that may quote the
// URL; RedactURL is for the URL itself.
func (u URL) Scrub(text string) string {
	for _, c := range u.credentials() {
		text = strings.ReplaceAll(text, c, redacted)
	}
	return text
}

// credentials lists the secret substrings of u, longest first so that a
// password inside a user information is replaced as part of the whole.
func (u URL) credentials() []string {
	var out []string
	for _, r := range userinfoRanges(u.s) {
		info := u.s[r[0]:r[1]]
		out = append(out, info)
		if _, pw, ok := strings.Cut(info, ":"); ok && pw != "" {
			out = append(out, pw)
			if dec, err := url.PathUnescape(pw); err == nil && dec != pw {
				out = append(out, dec)
			}
		}
		if dec, err := url.PathUnescape(info); err == nil && dec != info {
			out = append(out, dec)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out
}

// userinfoRanges finds the user information of every URL in s: for each '@',
// what stands between the nearest "scheme://" before it (or the start of s)
// and the '@'. Ranges that share a start (a password holding an unescaped
// '@') merge to the last '@'. Working on bytes, not on url.Parse, keeps it
// right for text that does not parse and for a password holding a ','.
func userinfoRanges(s string) [][2]int {
	var out [][2]int
	for at := 0; at < len(s); at++ {
		if s[at] != '@' {
			continue
		}
		start := 0
		if i := strings.LastIndex(s[:at], "://"); i >= 0 {
			start = i + 3
		}
		if n := len(out); n > 0 && start < out[n-1][1] {
			start = out[n-1][0]
			out = out[:n-1]
		}
		if start < at {
			out = append(out, [2]int{start, at})
		}
	}
	return out
}

// RedactURL replaces the user information of each URL in s (one URL or a
// comma-separated list) with "[redacted]": "nats://u:p@h:4222,nats://h2:4222"
// becomes "nats://[redacted]@h:4222,nats://h2:4222". It works on text that
// does not parse as a URL too, so a malformed URL is redacted as well as a
// good one; when in doubt it redacts more.
func RedactURL(s string) string {
	var b strings.Builder
	last := 0
	for _, r := range userinfoRanges(s) {
		b.WriteString(s[last:r[0]])
		b.WriteString(redacted)
		last = r[1]
	}
	b.WriteString(s[last:])
	return b.String()
}
