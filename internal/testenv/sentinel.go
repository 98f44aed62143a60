package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// sentinelConf is what a Sentinel process monitors.
type sentinelConf struct {
	master   string
	of       *Redis
	password string
	ca       *CA
}

// args write the Sentinel's configuration file (Sentinel rewrites it to
// keep its state, so it must be a file of its own) and run redis-server in
// Sentinel mode on it.
func (c *sentinelConf) args(r *Redis) []string {
	conf := filepath.Join(r.dir, "sentinel.conf")
	text := fmt.Sprintf(`port %d
bind 127.0.0.1
dir %s
logfile %s
sentinel monitor %s 127.0.0.1 %d 1
sentinel down-after-milliseconds %s 1000
sentinel failover-timeout %s 10000
sentinel parallel-syncs %s 1
`, r.Port, r.dir, filepath.Join(r.dir, "redis.log"), c.master, c.of.Port, c.master, c.master, c.master)
	if c.password != "" {
		text += fmt.Sprintf("sentinel auth-pass %s %s\n", c.master, c.password)
	}
	if c.ca != nil {
		// TLS for clients (a TLS port beside the plain one, kept for the
		// start check) and for the Sentinel's own links to the master,
		// which it monitors on its TLS port.
		if r.TLSPort == 0 {
			r.TLSPort = pickPort(r.t)
		}
		cert, key := c.ca.Issue(r.t, "sentinel-"+strconv.Itoa(r.Port))
		text = strings.Replace(text, fmt.Sprintf("127.0.0.1 %d 1", c.of.Port), fmt.Sprintf("127.0.0.1 %d 1", c.of.TLSPort), 1)
		text += fmt.Sprintf("tls-port %d\ntls-cert-file %s\ntls-key-file %s\ntls-ca-cert-file %s\ntls-replication yes\ntls-auth-clients yes\n",
			r.TLSPort, cert, key, c.ca.CertFile)
	}
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		r.t.Fatalf("write sentinel.conf: %v", err)
	}
	return []string{conf, "--sentinel"}
}

// StartSentinel starts a Sentinel (redis-server --sentinel) on a free port
// that monitors master under the name masterName with quorum 1, stopped at
// test cleanup. password is the master's requirepass, if any. A restart
// begins from the initial configuration again.
func StartSentinel(t testing.TB, masterName string, master *Redis, password string) *Redis {
	t.Helper()
	return StartSentinelTLS(t, masterName, master, password, nil)
}

// StartSentinelTLS is StartSentinel with TLS from ca (when not nil): a TLS
// port (TLSPort) that requires client certificates, and the master
// (started with RedisOptions.CA) monitored on its TLS port.
func StartSentinelTLS(t testing.TB, masterName string, master *Redis, password string, ca *CA) *Redis {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatalf("redis-server is not installed (run the tests with scripts/test.sh, which installs it): %v", err)
	}
	r := &Redis{t: t, dir: t.TempDir(), sentinel: &sentinelConf{master: masterName, of: master, password: password, ca: ca}}
	r.Start()
	t.Cleanup(r.Stop)
	return r
}

// SentinelAddrs lists the Sentinels' host:port, for REDIS_SENTINEL_ADDRS.
func SentinelAddrs(ss ...*Redis) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = "127.0.0.1:" + strconv.Itoa(s.Port)
	}
	return out
}
