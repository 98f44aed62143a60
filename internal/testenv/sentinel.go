package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

// sentinelConf is what a Sentinel process monitors.
type sentinelConf struct {
	master   string
	of       *Redis
	password string
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
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatalf("redis-server is not installed (run the tests with scripts/test.sh, which installs it): %v", err)
	}
	r := &Redis{t: t, dir: t.TempDir(), sentinel: &sentinelConf{master: masterName, of: master, password: password}}
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
