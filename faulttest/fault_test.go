package faulttest

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/paycomet-notify/paycomet-notify/handler"
	"github.com/paycomet-notify/paycomet-notify/internal/testenv"
	"github.com/paycomet-notify/paycomet-notify/loadgen"
	"github.com/paycomet-notify/paycomet-notify/notify"
	"github.com/paycomet-notify/paycomet-notify/secret"
)

var (
	buildOnce sync.Once
	binDir    string
	binPath   string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// binary builds cmd/paycomet-notify once per test run.
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "faulttest-bin-")
		if buildErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "paycomet-notify")
		args := []string{"build", "-o", binPath}
		if raceEnabled {
			args = append(args, "-race")
		}
		args = append(args, "github.com/paycomet-notify/paycomet-notify/cmd/paycomet-notify")
		goBin, err := exec.LookPath("go")
		if err != nil {
			buildErr = fmt.Errorf("the fault tests build the binary with the go command: %v", err)
			return
		}
		out, err := exec.Command(goBin, args...).CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

const (
	merchant = "MCFAULT1"
	urlToken = "fault-test-url-token-0123456789"
)

var terminals = map[string]secret.Value{"4101": secret.New("fault-pw-one"), "4102": secret.New("fault-pw-two")}

// receiver is one `serve` child process; start it again after kill on the
// same addresses.
type receiver struct {
	t      *testing.T
	bin    string
	sub    string // the subcommand: serve (default) or refresher
	env    []string
	listen string
	admin  string
	logs   *testenv.Buffer
	cmd    *exec.Cmd
	exited chan error
}

func freeAddr(t *testing.T) string { return "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t)) }

func newReceiver(t *testing.T, nats *testenv.NATS, redis *testenv.Redis) *receiver {
	return startChild(t, "serve", nats.URL(), redis)
}

// startChild runs subcommand sub (serve or refresher) against natsURL and
// redis, with extra environment after the defaults (a later entry wins).
func startChild(t *testing.T, sub, natsURL string, redis *testenv.Redis, extra ...string) *receiver {
	r := &receiver{t: t, bin: binary(t), sub: sub, listen: freeAddr(t), admin: freeAddr(t), logs: &testenv.Buffer{}}
	r.env = []string{
		"PAYCOMET_MERCHANT_CODE=" + merchant,
		"PAYCOMET_TERMINALS=4101:fault-pw-one,4102:fault-pw-two",
		"URL_TOKEN=" + urlToken,
		"NATS_URL=" + natsURL,
		"REDIS_URL=" + redis.URL(),
		"LISTEN_ADDR=" + r.listen,
		"ADMIN_ADDR=" + r.admin,
		"DATA_DIR=" + t.TempDir(),
		"LOG_LEVEL=info",
		// Short bounds keep a scenario to seconds: a claim left by a killed
		// receiver lives PUBLISH_TIMEOUT+10s.
		"PUBLISH_TIMEOUT=1s",
		"INFLIGHT_WAIT=300ms",
		"GORACE=halt_on_error=1",
		"REFRESHER_ADMIN_ADDR=" + r.admin,
	}
	r.env = append(r.env, extra...)
	r.start()
	t.Cleanup(func() {
		r.stop()
		if t.Failed() {
			t.Logf("%s logs (last 40 lines):\n%s", r.sub, tail(r.logs, 40))
		}
	})
	return r
}

func (r *receiver) url() string { return "http://" + r.listen + handler.Path + "/" + urlToken }

// start runs serve and waits until /readyz answers 200.
func (r *receiver) start() {
	r.t.Helper()
	cmd := exec.Command(r.bin, r.sub)
	cmd.Env = r.env
	cmd.Stdout, cmd.Stderr = r.logs, r.logs
	if err := cmd.Start(); err != nil {
		r.t.Fatalf("start serve: %v", err)
	}
	r.cmd, r.exited = cmd, make(chan error, 1)
	go func(c *exec.Cmd, done chan error) { done <- c.Wait() }(cmd, r.exited)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if code, _ := get(r.admin, "/readyz"); code == http.StatusOK {
			return
		}
		select {
		case err := <-r.exited:
			r.t.Fatalf("serve exited before ready: %v\n%s", err, tail(r.logs, 40))
		default:
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("serve not ready after 30s:\n%s", tail(r.logs, 40))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill sends SIGKILL: no shutdown, no drain, in-flight requests cut.
func (r *receiver) kill() {
	r.t.Helper()
	if err := r.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		r.t.Fatalf("kill serve: %v", err)
	}
	<-r.exited
	r.cmd = nil
}

// stop sends SIGTERM and expects a clean exit.
func (r *receiver) stop() {
	if r.cmd == nil {
		return
	}
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-r.exited:
		if err != nil {
			r.t.Errorf("serve exited with %v after SIGTERM", err)
		}
	case <-time.After(30 * time.Second):
		_ = r.cmd.Process.Kill()
		<-r.exited
		r.t.Errorf("serve did not stop within 30s of SIGTERM")
	}
	r.cmd = nil
}

// metric is the sum of a Prometheus series' samples whose line starts with
// name (labels included in name when given).
func (r *receiver) metric(name string) float64 {
	r.t.Helper()
	code, body := get(r.admin, "/metrics")
	if code != http.StatusOK {
		r.t.Fatalf("/metrics = %d", code)
	}
	var sum float64
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name) || strings.HasPrefix(line, "#") {
			continue
		}
		rest := line[len(name):]
		if rest != "" && rest[0] != ' ' && rest[0] != '{' {
			continue // a longer metric name
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			r.t.Fatalf("metric line %q: %v", line, err)
		}
		sum += v
	}
	return sum
}

func get(addr, path string) (int, string) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + addr + path)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// load is loadgen running in the background at a steady, modest rate.
type load struct {
	ok, failed atomic.Int64 // 200 answers; 503s and connection errors
	stop       chan struct{}
	done       chan struct{}
	rep        loadgen.Report
	err        error
}

func startLoad(t *testing.T, r *receiver, nats *testenv.NATS) *load {
	return runLoad(t, loadOptions(r.url(), nats.URL()))
}

// loadOptions is the fault tests' steady load at url, verified on natsURL.
func loadOptions(url, natsURL string) loadgen.Options {
	return loadgen.Options{
		URL: url, URLToken: secret.New(urlToken), MerchantCode: merchant, Terminals: terminals,
		Connections: 8, Rate: 400, Duration: 90 * time.Second, DupShare: 0.2,
		// Enough retries to outlast a claim left by the killed receiver
		// (PUBLISH_TIMEOUT+10s), as PAYCOMET's retries would.
		MaxRetries: 60, RetryBackoff: []time.Duration{20 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond, 250 * time.Millisecond},
		RequestTimeout: 5 * time.Second,
		NATSURL:        natsURL, Stream: "PAYCOMET", Prefix: "paycomet", Settle: 1500 * time.Millisecond,
	}
}

// runLoad runs loadgen with o in the background until finish; it counts
// the answers for waitOK and waitFailed (o.OnAnswer is replaced).
func runLoad(t *testing.T, o loadgen.Options) *load {
	l := &load{stop: make(chan struct{}), done: make(chan struct{})}
	o.Stop = l.stop
	o.OnAnswer = func(status int) {
		switch status {
		case 200:
			l.ok.Add(1)
		case 0, 503:
			l.failed.Add(1)
		}
	}
	go func() {
		defer close(l.done)
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		l.rep, l.err = loadgen.Run(ctx, o)
	}()
	t.Cleanup(func() { l.finish(t) })
	return l
}

// waitOK waits until n more notifications than now were answered 200.
func (l *load) waitOK(t *testing.T, n int64, what string) {
	t.Helper()
	target := l.ok.Load() + n
	testenv.Eventually(t, 30*time.Second, what, func() bool { return l.ok.Load() >= target })
}

// waitFailed waits until n more requests than now failed (503 or no answer):
// the fault was felt by the load.
func (l *load) waitFailed(t *testing.T, n int64, what string) {
	t.Helper()
	target := l.failed.Load() + n
	testenv.Eventually(t, 30*time.Second, what, func() bool { return l.failed.Load() >= target })
}

func (l *load) finish(t *testing.T) loadgen.Report {
	t.Helper()
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	select {
	case <-l.done:
	case <-time.After(2 * time.Minute):
		t.Fatal("loadgen did not finish within 2 minutes of stop")
	}
	return l.rep
}

// verify is the promise: nothing lost, nothing duplicated, nothing invented
// among the acknowledged notifications, and the load really ran.
func (l *load) verify(t *testing.T) loadgen.Report {
	t.Helper()
	rep := l.finish(t)
	var out bytes.Buffer
	rep.WriteText(&out)
	if l.err != nil {
		t.Fatalf("loadgen: %v\n%s", l.err, out.String())
	}
	v := rep.Verification
	if v == nil || v.Lost != 0 || v.Duplicated != 0 || v.Unexpected != 0 || rep.Failed() {
		t.Errorf("events lost or duplicated under the fault:\n%s", out.String())
	}
	if v != nil && (v.Expected < 300 || int64(v.Expected) > rep.Originals) {
		t.Errorf("only %d notifications accepted:\n%s", v.Expected, out.String())
	}
	t.Logf("\n%s", out.String())
	return rep
}

func TestNATSRestartUnderLoad(t *testing.T) {
	nats, redis := testenv.StartNATS(t), testenv.StartRedis(t)
	rcv := newReceiver(t, nats, redis)
	l := startLoad(t, rcv, nats)
	l.waitOK(t, 200, "load flowing")

	nats.Stop()
	l.waitFailed(t, 20, "503s while NATS is down")
	testenv.Eventually(t, 10*time.Second, "/readyz to say NATS is down", func() bool {
		code, _ := get(rcv.admin, "/readyz")
		return code == http.StatusServiceUnavailable
	})
	nats.Start()
	l.waitOK(t, 300, "load flowing again after NATS came back")

	rep := l.verify(t)
	if rep.ByStatus[503] == 0 || rep.Retries == 0 {
		t.Errorf("NATS down produced no 503 and no retry: %v", rep.ByStatus)
	}
}

func TestRedisRestartUnderLoad(t *testing.T) {
	nats, redis := testenv.StartNATS(t), testenv.StartRedis(t)
	rcv := newReceiver(t, nats, redis)
	l := startLoad(t, rcv, nats)
	l.waitOK(t, 200, "load flowing")

	claimErrors := rcv.metric(notify.MetricDedupeErrors + `{op="claim"}`)
	redis.Stop() // every remembered notification is lost with it
	testenv.Eventually(t, 30*time.Second, "claims to fail while Redis is down", func() bool {
		return rcv.metric(notify.MetricDedupeErrors+`{op="claim"}`) >= claimErrors+50
	})
	redis.Start()
	withoutStore := rcv.metric(notify.MetricWithoutDedupe)
	l.waitOK(t, 300, "load flowing after Redis came back")

	rep := l.verify(t)
	if withoutStore == 0 {
		t.Errorf("nothing was published without the dedupe store while Redis was down")
	}
	// Copies of notifications remembered only by the lost Redis reached
	// JetStream again; its Nats-Msg-Id window dropped them.
	if d := rcv.metric(notify.MetricDuplicates + `{layer="jetstream"}`); d == 0 {
		t.Errorf("no duplicate was caught by JetStream's window after Redis forgot; copies sent %d", rep.Copies)
	}
}

func TestReceiverKilledUnderLoad(t *testing.T) {
	nats, redis := testenv.StartNATS(t), testenv.StartRedis(t)
	rcv := newReceiver(t, nats, redis)
	l := startLoad(t, rcv, nats)
	l.waitOK(t, 200, "load flowing")

	rcv.kill()
	l.waitFailed(t, 20, "connection errors while the receiver is dead")
	if c, err := net.DialTimeout("tcp", rcv.listen, time.Second); err == nil {
		c.Close()
		t.Fatal("the killed receiver's port still accepts connections")
	}
	rcv.start()
	l.waitOK(t, 300, "load flowing after the receiver restarted")

	rep := l.verify(t)
	if rep.ByStatus[0] == 0 || rep.Retries == 0 {
		t.Errorf("killing the receiver produced no connection error and no retry: %v", rep.ByStatus)
	}
}

// tail is the last n lines of a child's output, for a failure report.
func tail(b *testenv.Buffer, n int) string {
	lines := strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
