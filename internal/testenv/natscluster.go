package testenv

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// nats-server as a program: the cluster tests run real server processes,
// built once per test binary from the module graph (the version in go.mod),
// as scripts/perf.sh does.
var (
	natsBinOnce sync.Once
	natsBin     string
	natsBinErr  error
)

// NATSServerBinary builds github.com/nats-io/nats-server/v2 at the version
// go.mod requires, once per test binary, into a directory of the user's
// cache shared by every test binary (the go command's own cache makes the
// rebuild of an unchanged version a link only). The file is written under a
// temporary name and renamed, so parallel test binaries never run a half
// written program.
func NATSServerBinary(t testing.TB) string {
	t.Helper()
	natsBinOnce.Do(func() {
		goBin, err := exec.LookPath("go")
		if err != nil {
			natsBinErr = fmt.Errorf("building nats-server needs the go command: %w", err)
			return
		}
		cache, err := os.UserCacheDir()
		if err != nil {
			cache = os.TempDir()
		}
		dir := filepath.Join(cache, "paycomet-notify-testenv")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			natsBinErr = err
			return
		}
		tmp, err := os.CreateTemp(dir, "nats-server-*.tmp")
		if err != nil {
			natsBinErr = err
			return
		}
		tmp.Close()
		defer os.Remove(tmp.Name())
		out, err := exec.Command(goBin, "build", "-o", tmp.Name(), "github.com/nats-io/nats-server/v2").CombinedOutput()
		if err != nil {
			natsBinErr = fmt.Errorf("go build nats-server: %v\n%s", err, out)
			return
		}
		bin := filepath.Join(dir, "nats-server")
		if err := os.Rename(tmp.Name(), bin); err != nil {
			natsBinErr = err
			return
		}
		natsBin = bin
	})
	if natsBinErr != nil {
		t.Fatal(natsBinErr)
	}
	return natsBin
}

// NATSCluster is a cluster of nats-server processes with JetStream, routed
// to each other, owned by one test. Nodes can be killed (SIGKILL) and
// started again on the same ports and store.
type NATSCluster struct {
	t     testing.TB
	Name  string
	Nodes []*NATSNode
}

// NATSNode is one server process of a cluster.
type NATSNode struct {
	c           *NATSCluster
	Name        string // server_name, as stream info's Cluster.Leader names it
	Port        int    // client port
	ClusterPort int    // route port
	Dir         string // store and config
	mu          sync.Mutex
	cmd         *exec.Cmd
	done        chan struct{}
}

// StartNATSCluster starts n clustered JetStream servers on free ports, each
// storing under its own t.TempDir(), and waits until JetStream has a meta
// leader, so streams of up to n replicas can be created. They are killed at
// test cleanup.
func StartNATSCluster(t testing.TB, n int) *NATSCluster {
	t.Helper()
	bin := NATSServerBinary(t)
	// Names unique to this cluster: a node answering on a port is known to
	// be this one's, not another test's that took the port meanwhile.
	c := &NATSCluster{t: t, Name: "pcn-" + strings.ToLower(rand.Text()[:6])}
	for i := range n {
		c.Nodes = append(c.Nodes, &NATSNode{c: c, Name: c.Name + "-n" + strconv.Itoa(i+1), Dir: t.TempDir()})
	}
	t.Cleanup(c.Stop)
	deadline := time.Now().Add(startDeadline)
	for {
		// Ports are chosen free and then bound by another process (the
		// listen-close-rebind race): a clash on any node starts the whole
		// cluster again on new ports, since every node's routes name them.
		used := map[int]bool{}
		pick := func() int {
			for {
				if p := pickPort(t); !used[p] {
					used[p] = true
					return p
				}
			}
		}
		for _, nd := range c.Nodes {
			nd.Port, nd.ClusterPort = pick(), pick()
		}
		err := c.startAll(bin, deadline)
		if err == nil {
			break
		}
		c.Stop()
		if !errors.Is(err, errAddrInUse) || time.Now().After(deadline) {
			t.Fatalf("nats cluster: %v", err)
		}
		if clashed != nil {
			clashed()
		}
	}
	c.WaitJetStream(t, startDeadline)
	return c
}

func (c *NATSCluster) startAll(bin string, deadline time.Time) error {
	for _, nd := range c.Nodes {
		if err := nd.spawn(bin); err != nil {
			return err
		}
	}
	for _, nd := range c.Nodes {
		if err := nd.waitListening(deadline); err != nil {
			return err
		}
	}
	return nil
}

// URL is every node's client URL, comma separated, as NATS_URL takes it.
func (c *NATSCluster) URL() string {
	urls := make([]string, len(c.Nodes))
	for i, nd := range c.Nodes {
		urls[i] = nd.URL()
	}
	return strings.Join(urls, ",")
}

// Node is the node named name (a stream's Cluster.Leader), or nil.
func (c *NATSCluster) Node(name string) *NATSNode {
	for _, nd := range c.Nodes {
		if nd.Name == name {
			return nd
		}
	}
	return nil
}

// Connect opens a client connection to the cluster that reconnects forever,
// closed at test cleanup.
func (c *NATSCluster) Connect(t testing.TB) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(c.URL(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond), nats.Timeout(2*time.Second))
	if err != nil {
		t.Fatalf("connect to the nats cluster: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// WaitJetStream waits until the cluster's JetStream answers account info
// (a meta leader is elected).
func (c *NATSCluster) WaitJetStream(t testing.TB, timeout time.Duration) {
	t.Helper()
	nc := c.Connect(t)
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	Eventually(t, timeout, "the NATS cluster's JetStream meta leader", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err := js.AccountInfo(ctx)
		return err == nil
	})
}

// StreamLeader is the node leading stream's replicas, waiting up to
// timeout for the stream to have a leader and every replica current.
func (c *NATSCluster) StreamLeader(t testing.TB, js jetstream.JetStream, stream string, timeout time.Duration) *NATSNode {
	t.Helper()
	var leader *NATSNode
	Eventually(t, timeout, "stream "+stream+" to have a leader and current replicas", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		s, err := js.Stream(ctx, stream)
		if err != nil {
			return false
		}
		info, err := s.Info(ctx)
		if err != nil || info.Cluster == nil || info.Cluster.Leader == "" {
			return false
		}
		for _, p := range info.Cluster.Replicas {
			if !p.Current || p.Offline {
				return false
			}
		}
		leader = c.Node(info.Cluster.Leader)
		return leader != nil && len(info.Cluster.Replicas) == len(c.Nodes)-1
	})
	return leader
}

// Stop kills every node.
func (c *NATSCluster) Stop() {
	for _, nd := range c.Nodes {
		nd.Kill()
	}
}

// URL is the node's client URL.
func (nd *NATSNode) URL() string { return "nats://127.0.0.1:" + strconv.Itoa(nd.Port) }

func (nd *NATSNode) logPath() string { return filepath.Join(nd.Dir, "nats.log") }

// config is the node's configuration file: client and route listeners on
// loopback, JetStream storing in its own directory, routes to every node.
func (nd *NATSNode) config() string {
	var routes []string
	for _, o := range nd.c.Nodes {
		routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", o.ClusterPort))
	}
	return fmt.Sprintf(`server_name: %q
listen: "127.0.0.1:%d"
jetstream { store_dir: %q }
cluster {
  name: %q
  listen: "127.0.0.1:%d"
  routes: [%s]
}
`, nd.Name, nd.Port, filepath.Join(nd.Dir, "js"), nd.c.Name, nd.ClusterPort, strings.Join(routes, ", "))
}

func (nd *NATSNode) spawn(bin string) error {
	nd.mu.Lock()
	defer nd.mu.Unlock()
	if nd.cmd != nil {
		return nil
	}
	conf := filepath.Join(nd.Dir, "nats.conf")
	if err := os.WriteFile(conf, []byte(nd.config()), 0o600); err != nil {
		return err
	}
	_ = os.Remove(nd.logPath())
	cmd := exec.Command(bin, "-c", conf, "-l", nd.logPath())
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start nats-server %s: %w", nd.Name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	nd.cmd, nd.done = cmd, done
	return nil
}

// waitListening waits until the node answers the client protocol as
// itself (its INFO names it), or reports why it exited.
func (nd *NATSNode) waitListening(deadline time.Time) error {
	nd.mu.Lock()
	done := nd.done
	nd.mu.Unlock()
	for {
		select {
		case <-done:
			log, _ := os.ReadFile(nd.logPath())
			nd.mu.Lock()
			nd.cmd, nd.done = nil, nil
			nd.mu.Unlock()
			if strings.Contains(strings.ToLower(string(log)), "address already in use") {
				return errAddrInUse
			}
			return fmt.Errorf("nats-server %s exited:\n%s", nd.Name, log)
		default:
		}
		nc, err := nats.Connect(nd.URL(), nats.Timeout(200*time.Millisecond), nats.NoReconnect())
		if err == nil {
			name := nc.ConnectedServerName()
			nc.Close()
			if name == nd.Name {
				return nil
			}
			err = fmt.Errorf("another server (%q) answers on port %d", name, nd.Port)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("nats-server %s not listening: %w", nd.Name, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Running reports whether the node's process is up.
func (nd *NATSNode) Running() bool {
	nd.mu.Lock()
	defer nd.mu.Unlock()
	return nd.cmd != nil
}

// Kill sends SIGKILL and waits for the process to go: no shutdown, no
// leadership handed over, as when a machine is lost.
func (nd *NATSNode) Kill() {
	nd.mu.Lock()
	defer nd.mu.Unlock()
	if nd.cmd == nil {
		return
	}
	_ = nd.cmd.Process.Signal(syscall.SIGKILL)
	<-nd.done
	nd.cmd, nd.done = nil, nil
}

// Start starts a killed node again on its ports and store, retrying while
// another process holds a port, and waits until it answers clients.
func (nd *NATSNode) Start() {
	t := nd.c.t
	t.Helper()
	bin := NATSServerBinary(t)
	deadline := time.Now().Add(startDeadline)
	for {
		err := nd.spawn(bin)
		if err == nil {
			err = nd.waitListening(deadline)
		}
		if err == nil {
			return
		}
		if !errors.Is(err, errAddrInUse) || time.Now().After(deadline) {
			t.Fatalf("restart %s: %v", nd.Name, err)
		}
		if clashed != nil {
			clashed()
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Log is the node's log so far, for a failure report.
func (nd *NATSNode) Log() string {
	b, _ := os.ReadFile(nd.logPath())
	return string(b)
}
