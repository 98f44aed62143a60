package main

import (
	"strconv"
	"strings"
	"testing"

	"github.com/paycomet-notify/paycomet-notify/internal/testenv"
)

// TestLoadgenAgainstServe is the README's load command at a small count:
// serve with external NATS and Redis and a URL token, loadgen from the same
// environment, a verified PASS, and the token nowhere in the output.
func TestLoadgenAgainstServe(t *testing.T) {
	n := testenv.StartNATS(t)
	r := testenv.StartRedis(t)
	const token = "cli-loadgen-token-0123456789"
	env := map[string]string{
		"PAYCOMET_MERCHANT_CODE": "MC000009",
		"PAYCOMET_TERMINALS":     "31:pw-thirty-one,32:pw-thirty-two,33:pw-thirty-three",
		"URL_TOKEN":              token,
		"NATS_URL":               n.URL(),
		"REDIS_URL":              r.URL(),
	}
	s := startServe(t, env)
	code, out, errOut := runCmd(t, env, "loadgen", "--count", "400", "--connections", "4", "--terminals", "2", "--settle", "100ms")
	if code != 0 {
		t.Fatalf("loadgen = %d\n%s\n%s", code, out, errOut)
	}
	for _, want := range []string{"result        PASS", "terminals 31,32", "lost 0  duplicated 0  unexpected 0", "throughput", "p99", "answers       200: 400"} {
		if !strings.Contains(out, want) {
			t.Errorf("loadgen output lacks %q:\n%s", want, out)
		}
	}
	for _, secret := range []string{token, "pw-thirty"} {
		if strings.Contains(out, secret) || strings.Contains(errOut, secret) {
			t.Errorf("loadgen output contains a secret %q", secret)
		}
	}
	_, metrics := s.get(t, "/metrics")
	if !strings.Contains(metrics, `paycomet_notify_http_responses_total{status="200"} 400`) {
		t.Errorf("serve's /metrics does not count the 400 answers loadgen saw")
	}
	// The URL of serve without the token answers 404: loadgen reports the
	// 4xx as a failure, without printing the token it was not given.
	code, out, _ = runCmd(t, env, "loadgen", "--count", "5", "--connections", "1", "--no-verify", "--quiet",
		"--url", "http://"+env["LISTEN_ADDR"]+"/paycomet/notifications")
	if code != 1 || !strings.Contains(out, "404: 5") || !strings.Contains(out, "FAIL") {
		t.Errorf("loadgen at the wrong URL = %d\n%s", code, out)
	}
}

func TestLoadgenFlags(t *testing.T) {
	code, _, errOut := runCmd(t, map[string]string{}, "loadgen", "--help")
	if code != 0 {
		t.Errorf("loadgen --help = %d", code)
	}
	for _, flag := range []string{"-url", "-connections", "-duration", "-count", "-dup-share", "-terminals", "-nats", "-stream", "-prefix", "-max-retries", "-retry-backoff", "-demo", "-no-verify", "published without 200"} {
		if !strings.Contains(errOut, flag) {
			t.Errorf("loadgen --help does not document %s", flag)
		}
	}
	for name, c := range map[string]struct {
		args []string
		env  map[string]string
		want string
	}{
		"no terminals":  {[]string{"--count", "1"}, map[string]string{}, "PAYCOMET_TERMINALS"},
		"bad backoff":   {[]string{"--demo", "--retry-backoff", "soon"}, map[string]string{}, "--retry-backoff"},
		"too many":      {[]string{"--demo", "--terminals", "3"}, map[string]string{}, "--terminals 3"},
		"bad dup share": {[]string{"--demo", "--dup-share", "1.5", "--no-verify"}, map[string]string{}, "dup share"},
		"no receiver": {[]string{"--demo", "--count", "2", "--max-retries", "0", "--quiet",
			"--url", "http://127.0.0.1:" + strconv.Itoa(testenv.FreePort(t)) + "/paycomet/notifications", "--nats", "nats://127.0.0.1:" + strconv.Itoa(testenv.FreePort(t))},
			map[string]string{}, "NATS"},
	} {
		code, out, errOut := runCmd(t, c.env, append([]string{"loadgen"}, c.args...)...)
		if code != 1 || !strings.Contains(errOut, c.want) {
			t.Errorf("%s: loadgen %v = %d, stderr %q, stdout %q; want 1 naming %q", name, c.args, code, errOut, out, c.want)
		}
	}
}
