// Package testenv starts the real dependencies integration tests need: a
// redis-server process on a free port and an in-process nats-server with
// JetStream. Both can be stopped and started again on the same address, for
// fault tests. Nothing here touches the machine's own Redis or NATS.
//
// A missing redis-server fails the test (never skips): the test command
// (scripts/test.sh) installs it where it is missing.
package testenv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/redis/go-redis/v9"
)

// FreePort asks the kernel for a TCP port on 127.0.0.1 that is free at the
// moment of asking. Nothing holds it afterwards: another process may bind
// it before the caller does (the listen-close-rebind race), so use it only
// for an address nothing should listen on (a "connection refused" case) or
// for a server that retries on a clash. Code under test that can take a
// listener gets one from Listen instead; StartRedis and StartNATS retry.
func FreePort(t testing.TB) int {
	t.Helper()
	l := Listen(t)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Listen returns a TCP listener on a kernel-chosen port of 127.0.0.1,
// closed at test cleanup. Handing it to the code under test (an
// http.Server's Serve, a function that takes a net.Listener) leaves no
// window in which another process could take the port.
func Listen(t testing.TB) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen on 127.0.0.1:0: %v", err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

// startDeadline bounds a server start, retries on a port clash included. It
// is generous because -race builds on a busy two-core machine start slowly.
const startDeadline = 30 * time.Second

// Hooks for the tests of the retries: pickPort is FreePort, and clashed
// (when set) is called after a start failed because its port was taken.
var (
	pickPort = FreePort
	clashed  func()
)

// errAddrInUse is a start that failed because the port was taken.
var errAddrInUse = errors.New("address already in use")

// Redis is a redis-server child process owned by one test.
type Redis struct {
	t    testing.TB
	Port int
	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited (and been waited for)
	dir  string
	opts RedisOptions
	// TLSPort is the TLS port when RedisOptions.CA is set.
	TLSPort int
	// sentinel, when set, makes this process a Sentinel monitoring that
	// master (sentinel.go).
	sentinel *sentinelConf
}

// StartRedis starts redis-server on a free port, stopped at test cleanup.
func StartRedis(t testing.TB) *Redis {
	t.Helper()
	_, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redis-server is not installed (run the tests with scripts/test.sh, which installs it): %v", err)
	}
	r := &Redis{t: t, dir: t.TempDir()}
	r.Start()
	t.Cleanup(r.Stop)
	return r
}

// RedisOptions changes how StartRedisWith runs redis-server.
type RedisOptions struct {
	// CA, when set, adds a TLS port (Redis.TLSPort) with a server
	// certificate from CA; the plain port stays for the test's own checks.
	CA *CA
	// ClientCerts makes the TLS port require client certificates signed by
	// CA (redis-server's default, tls-auth-clients yes).
	ClientCerts bool
	// ReplicaOf makes the server a replica of that one.
	ReplicaOf *Redis
	// Password is requirepass (and masterauth, for a replica).
	Password string
}

// StartRedisWith is StartRedis with TLS, replication or a password.
func StartRedisWith(t testing.TB, opts RedisOptions) *Redis {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatalf("redis-server is not installed (run the tests with scripts/test.sh, which installs it): %v", err)
	}
	r := &Redis{t: t, dir: t.TempDir(), opts: opts}
	r.Start()
	t.Cleanup(r.Stop)
	return r
}

// TLSAddr is host:port of the TLS port.
func (r *Redis) TLSAddr() string { return "127.0.0.1:" + strconv.Itoa(r.TLSPort) }

// args are redis-server's arguments for r's options.
func (r *Redis) args() []string {
	if r.sentinel != nil {
		return r.sentinel.args(r)
	}
	a := []string{"--port", strconv.Itoa(r.Port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", r.dir,
		"--logfile", filepath.Join(r.dir, "redis.log")}
	o := r.opts
	if o.CA != nil {
		if r.TLSPort == 0 {
			r.TLSPort = pickPort(r.t)
		}
		cert, key := o.CA.Issue(r.t, "redis-"+strconv.Itoa(r.Port))
		auth := "no"
		if o.ClientCerts {
			auth = "yes"
		}
		a = append(a, "--tls-port", strconv.Itoa(r.TLSPort), "--tls-cert-file", cert, "--tls-key-file", key,
			"--tls-ca-cert-file", o.CA.CertFile, "--tls-auth-clients", auth)
	}
	if o.ReplicaOf != nil {
		a = append(a, "--replicaof", "127.0.0.1", strconv.Itoa(o.ReplicaOf.Port))
	}
	if o.Password != "" {
		a = append(a, "--requirepass", o.Password, "--masterauth", o.Password)
	}
	return a
}

// URL is the redis:// URL of the server.
func (r *Redis) URL() string { return fmt.Sprintf("redis://127.0.0.1:%d/0", r.Port) }

// Addr is host:port.
func (r *Redis) Addr() string { return "127.0.0.1:" + strconv.Itoa(r.Port) }

// Start (re)starts the server and waits until it answers PING. redis-server
// cannot take a listener, so the first start binds a port FreePort found
// free; when another process took it in between (redis-server exits with
// "Address already in use"), it starts again on a new port. A restart keeps
// the port, because clients hold the address, and retries on it until
// startDeadline.
func (r *Redis) Start() {
	r.t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd != nil {
		return
	}
	first := r.Port == 0
	deadline := time.Now().Add(startDeadline)
	for {
		if first {
			r.Port, r.TLSPort = pickPort(r.t), 0
		}
		err := r.start(deadline)
		if err == nil {
			return
		}
		if !errors.Is(err, errAddrInUse) || time.Now().After(deadline) {
			r.t.Fatalf("redis-server on %d: %v", r.Port, err)
		}
		if clashed != nil {
			clashed()
		}
		if !first {
			time.Sleep(50 * time.Millisecond) // wait for the port's holder to let go
		}
	}
}

// start runs one redis-server process on r.Port and waits until it answers
// PING as itself: a PING answered by another process that holds the port
// (another test's Redis) does not count.
func (r *Redis) start(deadline time.Time) error {
	logPath := filepath.Join(r.dir, "redis.log")
	_ = os.Remove(logPath)
	cmd := exec.Command("redis-server", r.args()...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start: %w", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	pid := "process_id:" + strconv.Itoa(cmd.Process.Pid)
	c := redis.NewClient(&redis.Options{Addr: r.Addr(), MaxRetries: -1, Password: r.opts.Password})
	defer c.Close()
	for {
		select {
		case <-done:
			log, _ := os.ReadFile(logPath)
			if strings.Contains(strings.ToLower(string(log)), "address already in use") {
				return errAddrInUse
			}
			return fmt.Errorf("exited before answering: %s\n%s", cmd.ProcessState, log)
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		info, err := c.Info(ctx, "server").Result()
		cancel()
		if err == nil && strings.Contains(info, pid+"\r\n") {
			r.cmd, r.done = cmd, done
			return nil
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-done
			log, _ := os.ReadFile(logPath)
			if err == nil {
				err = errors.New("another process answers on the port")
			}
			return fmt.Errorf("did not answer: %w\n%s", err, log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Pause freezes the server process (SIGSTOP): the kernel still accepts
// connections and takes writes, but nothing is answered until Resume, as
// with a Redis that hangs. Its data is kept.
func (r *Redis) Pause() { r.signal(syscall.SIGSTOP) }

// Resume lets a paused server go on (SIGCONT).
func (r *Redis) Resume() { r.signal(syscall.SIGCONT) }

func (r *Redis) signal(sig syscall.Signal) {
	r.t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd == nil {
		r.t.Fatalf("redis-server on %d is not running", r.Port)
	}
	if err := r.cmd.Process.Signal(sig); err != nil {
		r.t.Fatalf("signal redis-server: %v", err)
	}
}

// Stop kills the server (its data is lost: it keeps nothing on disk), paused
// or not.
func (r *Redis) Stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd == nil {
		return
	}
	_ = r.cmd.Process.Kill()
	<-r.done
	r.cmd, r.done = nil, nil
}

// NATS is an in-process nats-server with JetStream, owned by one test.
type NATS struct {
	t    testing.TB
	Port int
	Dir  string
	mu   sync.Mutex
	srv  *natsserver.Server
	// configure, when set, changes the server's options before each start
	// (authentication, TLS).
	configure func(*natsserver.Options)
}

// StartNATS starts a JetStream-enabled server on a free port with its store in
// a temporary directory, shut down at test cleanup.
func StartNATS(t testing.TB) *NATS { return StartNATSWith(t, nil) }

// StartNATSWith is StartNATS with configure applied to the server's options
// (users, nkeys, TLS) before every start.
func StartNATSWith(t testing.TB, configure func(*natsserver.Options)) *NATS {
	t.Helper()
	n := &NATS{t: t, Dir: t.TempDir(), configure: configure}
	n.Start()
	t.Cleanup(n.Stop)
	return n
}

// NewNATS is a server that is not started yet, on a port FreePort found
// free, so that a test can start a client first and the server later
// (Start). A clash on the port at Start is retried until startDeadline.
func NewNATS(t testing.TB, configure func(*natsserver.Options)) *NATS {
	t.Helper()
	n := &NATS{t: t, Dir: t.TempDir(), configure: configure, Port: FreePort(t)}
	t.Cleanup(n.Stop)
	return n
}

// Server is the running server (nil while stopped), for tests that inspect
// or kick its connections.
func (n *NATS) Server() *natsserver.Server {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.srv
}

// Addr is host:port.
func (n *NATS) Addr() string { return fmt.Sprintf("127.0.0.1:%d", n.Port) }

// URL is the nats:// URL of the server.
func (n *NATS) URL() string { return fmt.Sprintf("nats://127.0.0.1:%d", n.Port) }

// Start (re)starts the server on the same port and store directory. The
// first start lets the server bind a port of the kernel's choosing
// (RANDOM_PORT), so no other process can take it between choice and bind; a
// restart binds that port again, retrying until startDeadline if something
// else holds it meanwhile.
func (n *NATS) Start() {
	n.t.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.srv != nil {
		return
	}
	deadline := time.Now().Add(startDeadline)
	for {
		srv, err := n.start(deadline)
		if err == nil {
			n.srv = srv
			return
		}
		if !errors.Is(err, errAddrInUse) || time.Now().After(deadline) {
			n.t.Fatalf("nats-server on %d: %v", n.Port, err)
		}
		if clashed != nil {
			clashed()
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (n *NATS) start(deadline time.Time) (*natsserver.Server, error) {
	port := n.Port
	if port == 0 {
		port = natsserver.RANDOM_PORT
	}
	opts := &natsserver.Options{
		Host:      "127.0.0.1",
		Port:      port,
		JetStream: true,
		StoreDir:  n.Dir,
		NoLog:     true,
		NoSigs:    true,
	}
	if n.configure != nil {
		n.configure(opts)
	}
	srv, err := natsserver.NewServer(opts)
	if err != nil {
		return nil, err
	}
	// A listen failure reaches only the server's logger (Fatalf, which
	// does not exit here); catch it there.
	l := &natsFatal{}
	srv.SetLoggerV2(l, false, false, false)
	go srv.Start()
	for !srv.ReadyForConnections(50 * time.Millisecond) {
		msg, failed := l.get()
		if failed || time.Now().After(deadline) {
			srv.Shutdown()
			srv.WaitForShutdown()
			if strings.Contains(strings.ToLower(msg), "address already in use") {
				return nil, errAddrInUse
			}
			if !failed {
				msg = "not ready"
			}
			return nil, errors.New(msg)
		}
	}
	if n.Port == 0 {
		n.Port = srv.Addr().(*net.TCPAddr).Port
	}
	return srv, nil
}

// natsFatal is a nats-server logger that keeps the first fatal message and
// drops everything else (the servers run with NoLog).
type natsFatal struct {
	mu     sync.Mutex
	msg    string
	failed bool
}

func (l *natsFatal) Fatalf(format string, v ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.failed {
		l.msg, l.failed = fmt.Sprintf(format, v...), true
	}
}

func (l *natsFatal) get() (string, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.msg, l.failed
}

func (*natsFatal) Noticef(string, ...any) {}
func (*natsFatal) Warnf(string, ...any)   {}
func (*natsFatal) Errorf(string, ...any)  {}
func (*natsFatal) Debugf(string, ...any)  {}
func (*natsFatal) Tracef(string, ...any)  {}

// Stop shuts the server down; Start brings it back with its stored streams.
func (n *NATS) Stop() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.srv == nil {
		return
	}
	n.srv.Shutdown()
	n.srv.WaitForShutdown()
	n.srv = nil
}

// Connect opens a client connection closed at test cleanup. It reconnects
// forever, so it survives Stop/Start.
func (n *NATS) Connect(t testing.TB) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(n.URL(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatalf("connect %s: %v", n.URL(), err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// Eventually polls cond every 10ms until it holds or timeout passes.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
