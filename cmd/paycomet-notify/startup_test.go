package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/paycomet-notify/paycomet-notify/internal/testenv"
)

// proc is a long-running subcommand started through run() that is not
// waited for: start-up tests watch it become ready.

func launch(t *testing.T, cmd string, env map[string]string, adminVar string) *proc {
	t.Helper()
	p := &proc{name: cmd, stderr: &testenv.Buffer{}, done: make(chan int, 1)}
	if env["LISTEN_ADDR"] == "" {
		env["LISTEN_ADDR"] = freeAddr(t)
	}
	if env[adminVar] == "" {
		env[adminVar] = freeAddr(t)
	}
	p.admin = "http://" + env[adminVar]
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	go func() { p.done <- run(ctx, []string{cmd}, env, nil, &testenv.Buffer{}, p.stderr) }()
	t.Cleanup(func() { p.stop(t) })
	return p
}

// readyz is /readyz's status and body; 0 while the listener is not up.
func (p *proc) readyz() (int, string) {
	resp, err := http.Get(p.admin + "/readyz")
	if err != nil {
		return 0, ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// waitReadyz polls /readyz until it answers want with a body containing
// substr, failing if the command exits meanwhile.
func (p *proc) waitReadyz(t *testing.T, want int, substr string) string {
	t.Helper()
	var body string
	testenv.Eventually(t, 30*time.Second, "/readyz "+http.StatusText(want)+" with "+substr, func() bool {
		select {
		case code := <-p.done:
			p.done <- code
			t.Fatalf("exited with %d, want it to wait:\n%s", code, p.stderr)
		default:
		}
		var code int
		code, body = p.readyz()
		return code == want && strings.Contains(body, substr)
	})
	return body
}

// exited waits for the command to exit on its own within timeout.
func (p *proc) exited(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case code := <-p.done:
		p.done <- code
		return code
	case <-time.After(timeout):
		t.Fatalf("still running after %s, want it to exit at once:\n%s", timeout, p.stderr)
		return -1
	}
}

func receiverEnv(natsURL string) map[string]string {
	return map[string]string{"PAYCOMET_MERCHANT_CODE": "m1", "PAYCOMET_TERMINALS": "1000:termPW-startup", "NATS_URL": natsURL}
}

// TestServeWaitsForNATS: serve started before its NATS server answers
// /healthz at once, /readyz 503 saying it waits for NATS, logs that once
// (not once per retry), and becomes ready when NATS comes up, without a
// restart.
func TestServeWaitsForNATS(t *testing.T) {
	n := testenv.NewNATS(t, nil)
	env := receiverEnv(n.URL())
	p := launch(t, "serve", env, "ADMIN_ADDR")
	body := p.waitReadyz(t, 503, "waiting for NATS")
	var rd struct {
		Ready  bool
		Checks []struct{ Name, Error string }
	}
	if err := json.Unmarshal([]byte(body), &rd); err != nil || rd.Ready || len(rd.Checks) != 1 || rd.Checks[0].Name != "startup" {
		t.Errorf("/readyz while waiting = %s (%v), want not ready with one startup check", body, err)
	}
	if resp, err := http.Get(p.admin + "/healthz"); err != nil || resp.StatusCode != 200 {
		t.Errorf("/healthz while waiting = %v, %v, want 200", resp, err)
	} else {
		resp.Body.Close()
	}
	// A notification meanwhile is answered 503 at once (PAYCOMET retries),
	// not left hanging on a port that accepts and never answers.
	resp, err := http.Post("http://"+env["LISTEN_ADDR"]+"/paycomet/notifications", "application/x-www-form-urlencoded", strings.NewReader("TransactionType=1"))
	if err != nil {
		t.Fatalf("POST while waiting: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 {
		t.Errorf("POST while waiting = %d, want 503", resp.StatusCode)
	}
	// Let it retry a few times (/readyz counts the attempts): still one
	// log line.
	p.waitReadyz(t, 503, "(5 attempts)")
	if got := strings.Count(p.stderr.String(), "start-up: waiting for NATS"); got != 1 {
		t.Errorf("%d waiting lines after 5 attempts, want 1 (one per window, not per retry):\n%s", got, p.stderr)
	}
	n.Start()
	p.waitReadyz(t, 200, `"ready":true`)
	if !strings.Contains(p.stderr.String(), "start-up: NATS "+n.URL()+" is there") {
		t.Errorf("no line saying NATS is there:\n%s", p.stderr)
	}
	if strings.Contains(p.stderr.String(), "termPW-startup") {
		t.Errorf("logs hold the terminal password:\n%s", p.stderr)
	}
	if code := p.stop(t); code != 0 {
		t.Errorf("exit %d after SIGTERM, want 0:\n%s", code, p.stderr)
	}
}

// TestServeWaitsForJetStream: NATS answers but cannot create the streams
// yet (JetStream not enabled, as on a cluster that is still forming): serve
// waits, saying it waits for the streams, and becomes ready once JetStream
// is there. The refresher, started beside it, waits the same way.
func TestServeWaitsForJetStream(t *testing.T) {
	jetStream := false
	n := testenv.StartNATSWith(t, func(o *natsserver.Options) { o.JetStream = jetStream })
	p := launch(t, "serve", receiverEnv(n.URL()), "ADMIN_ADDR")
	renv := receiverEnv(n.URL())
	rp := launch(t, "refresher", renv, "REFRESHER_ADMIN_ADDR")
	p.waitReadyz(t, 503, "waiting for streams PAYCOMET and PAYCOMET_REJECTED")
	rp.waitReadyz(t, 503, "waiting for streams PAYCOMET")
	n.Stop()
	jetStream = true
	n.Start()
	p.waitReadyz(t, 200, `"ready":true`)
	rp.waitReadyz(t, 200, `"ready":true`)
	for _, s := range []*proc{p, rp} {
		if code := s.stop(t); code != 0 {
			t.Errorf("exit %d after SIGTERM, want 0:\n%s", code, s.stderr)
		}
	}
}

// TestServeExitsAtOnceForBadNATSConfig: what waiting cannot fix is not
// waited for: a refused password, three replicas on a single server.
func TestServeExitsAtOnceForBadNATSConfig(t *testing.T) {
	const pass, wrong = "natsPW-right-1", "natsPW-wrong-2"
	n := testenv.StartNATSWith(t, func(o *natsserver.Options) {
		o.Users = []*natsserver.User{{Username: "receiver", Password: pass}}
	})
	for _, tc := range []struct {
		name, want string
		env        map[string]string
	}{
		{"wrong password", "Authorization Violation", map[string]string{"NATS_USER": "receiver", "NATS_PASSWORD": wrong}},
		{"three replicas on one server", "replicas > 1 not supported", map[string]string{"NATS_USER": "receiver", "NATS_PASSWORD": pass, "STREAM_REPLICAS": "3"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := receiverEnv(n.URL())
			for k, v := range tc.env {
				env[k] = v
			}
			p := launch(t, "serve", env, "ADMIN_ADDR")
			if code := p.exited(t, 15*time.Second); code != 1 || !strings.Contains(p.stderr.String(), tc.want) {
				t.Errorf("exit %d, stderr:\n%s\nwant 1 saying %q", code, p.stderr, tc.want)
			}
			for _, s := range []string{pass, wrong} {
				if strings.Contains(p.stderr.String(), s) {
					t.Errorf("stderr holds a password:\n%s", p.stderr)
				}
			}
		})
	}
}

// TestServeAuthenticatedNATS: serve on a server that requires a user and
// TLS with a CA the test makes, end to end through run().
func TestServeAuthenticatedNATS(t *testing.T) {
	const pass = "natsPW-tls-user-3"
	ca := testenv.NewCA(t)
	n := testenv.StartNATSWith(t, func(o *natsserver.Options) {
		o.TLSConfig, o.TLS = ca.ServerTLS(t, false), true
		o.Users = []*natsserver.User{{Username: "receiver", Password: pass}}
	})
	env := receiverEnv(n.URL())
	env["NATS_USER"], env["NATS_PASSWORD"], env["NATS_TLS_CA"] = "receiver", pass, ca.CertFile
	p := launch(t, "serve", env, "ADMIN_ADDR")
	p.waitReadyz(t, 200, `"ready":true`)
	if strings.Contains(p.stderr.String(), pass) {
		t.Errorf("logs hold the NATS password:\n%s", p.stderr)
	}
}

// TestServeRedisProduction: serve's dedupe store through Sentinel (with
// REDIS_PASSWORD) and through rediss:// with REDIS_TLS_*, end to end
// through run(): /readyz shows the store up, and no password is logged.
func TestServeRedisProduction(t *testing.T) {
	const pw = "redisPW-serve-4"
	n := testenv.StartNATS(t)
	master := testenv.StartRedisWith(t, testenv.RedisOptions{Password: pw})
	sentinel := testenv.StartSentinel(t, "dedupe", master, pw)
	ca := testenv.NewCA(t)
	tlsRedis := testenv.StartRedisWith(t, testenv.RedisOptions{CA: ca, ClientCerts: true})
	cert, key := ca.Issue(t, "receiver")
	for _, tc := range []struct {
		name string
		env  map[string]string
	}{
		{"sentinel", map[string]string{"REDIS_SENTINEL_MASTER": "dedupe", "REDIS_SENTINEL_ADDRS": testenv.SentinelAddrs(sentinel)[0], "REDIS_PASSWORD": pw}},
		{"rediss", map[string]string{"REDIS_URL": "rediss://" + tlsRedis.TLSAddr() + "/0", "REDIS_TLS_CA": ca.CertFile, "REDIS_TLS_CERT": cert, "REDIS_TLS_KEY": key}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := receiverEnv(n.URL())
			env["STREAM_NAME"] = "PAYCOMET_" + strings.ToUpper(tc.name)
			env["SUBJECT_PREFIX"] = "p" + tc.name
			for k, v := range tc.env {
				env[k] = v
			}
			p := launch(t, "serve", env, "ADMIN_ADDR")
			p.waitReadyz(t, 200, `{"name":"dedupe_redis","ok":true`)
			if strings.Contains(p.stderr.String(), pw) {
				t.Errorf("logs hold the Redis password:\n%s", p.stderr)
			}
		})
	}
}
