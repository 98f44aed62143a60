package events

import (
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"testing"
)

func benchForm(b *testing.B) url.Values {
	b.Helper()
	body, err := os.ReadFile(filepath.Join(fixtureDir, "authorization_ok.form"))
	if err != nil {
		b.Fatal(err)
	}
	f, err := url.ParseQuery(string(body))
	if err != nil {
		b.Fatal(err)
	}
	return f
}

// BenchmarkAuthenticateParseEncode is the receiver's per-request work in
// this package for one type-1 notification.
func BenchmarkAuthenticateParseEncode(b *testing.B) {
	v := demoVerifier()
	f := FormFromValues(benchForm(b))
	b.ReportAllocs()
	for b.Loop() {
		a, err := v.Authenticate(f.Values(), Channel{})
		if err != nil {
			b.Fatal(err)
		}
		e, err := Parse(f, a, receivedAt)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := e.Encode(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAuthenticate is the part that runs for forged requests too.
func BenchmarkAuthenticate(b *testing.B) {
	v := demoVerifier()
	f := benchForm(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Authenticate(f, Channel{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAuthenticateBadSignature: a forged request costs no more than a
// genuine one.
func BenchmarkAuthenticateBadSignature(b *testing.B) {
	v := demoVerifier()
	f := benchForm(b)
	f.Set("Amount", "1")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Authenticate(f, Channel{}); !errors.Is(err, ErrBadSignature) {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeForm is DecodeForm on a type-1 body, next to
// BenchmarkParseQuery (what the handler called before).
func BenchmarkDecodeForm(b *testing.B) {
	body, err := os.ReadFile(filepath.Join(fixtureDir, "authorization_ok.form"))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeForm(body, "tpvLstr=notify"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseQuery(b *testing.B) {
	body, err := os.ReadFile(filepath.Join(fixtureDir, "authorization_ok.form"))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		f, err := url.ParseQuery(string(body))
		if err != nil {
			b.Fatal(err)
		}
		q, _ := url.ParseQuery("tpvLstr=notify")
		for k, vs := range q {
			f[k] = append(f[k], vs...)
		}
	}
}

// BenchmarkFingerprint is what the receiver adds per accepted notification
// to tell identical copies from conflicting ones.
func BenchmarkFingerprint(b *testing.B) {
	f := benchForm(b)
	b.ReportAllocs()
	for b.Loop() {
		_ = Fingerprint(f)
	}
}
