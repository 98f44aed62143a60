package faulttest

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/paycomet-notify/paycomet-notify/bankstore/bankstoretest"
	"github.com/paycomet-notify/paycomet-notify/internal/testenv"
	"github.com/paycomet-notify/paycomet-notify/loadgen"
	"github.com/paycomet-notify/paycomet-notify/notify"
)

// phases splits one loadgen run into the periods between faults and tells,
// per period, the availability (share of first attempts answered 200) and
// the latency of the 200 answers. An attempt belongs to the phase in which
// it was sent.
type phases struct {
	mu       sync.Mutex
	names    []string
	starts   []time.Time
	attempts []loadgen.Attempt
}

func (p *phases) begin(name string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.names = append(p.names, name)
	p.starts = append(p.starts, time.Now())
}

func (p *phases) record(a loadgen.Attempt) {
	p.mu.Lock()
	p.attempts = append(p.attempts, a)
	p.mu.Unlock()
}

type phaseStats struct {
	name                  string
	took                  time.Duration
	first, firstOK, retry int
	conn, unavailable     int
	backends              [2]int // attempts sent to each receiver
	p99OK, maxOK          time.Duration
}

func (s phaseStats) availability() float64 {
	if s.first == 0 {
		return 0
	}
	return float64(s.firstOK) / float64(s.first)
}

func (p *phases) stats(end time.Time) []phaseStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]phaseStats, len(p.names))
	oks := make([][]time.Duration, len(p.names))
	for i, n := range p.names {
		out[i].name = n
		next := end
		if i+1 < len(p.starts) {
			next = p.starts[i+1]
		}
		out[i].took = next.Sub(p.starts[i])
	}
	for _, a := range p.attempts {
		i := -1
		for j, s := range p.starts {
			if !a.Start.Before(s) {
				i = j
			}
		}
		if i < 0 {
			continue // before the first phase: load starting
		}
		s := &out[i]
		if a.Backend < len(s.backends) {
			s.backends[a.Backend]++
		}
		switch {
		case a.Retry == 0:
			s.first++
			if a.Status == 200 {
				s.firstOK++
			}
		default:
			s.retry++
		}
		switch a.Status {
		case 200:
			oks[i] = append(oks[i], a.Latency)
		case 0:
			s.conn++
		case 503:
			s.unavailable++
		}
	}
	for i, l := range oks {
		if len(l) == 0 {
			continue
		}
		slices.Sort(l)
		out[i].p99OK = l[min(len(l)-1, len(l)*99/100)]
		out[i].maxOK = l[len(l)-1]
	}
	return out
}

func phaseTable(st []phaseStats) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-22s %6s %6s %13s %8s %5s %5s %10s %10s %12s\n",
		"phase", "took", "first", "availability", "retries", "503", "conn", "p99 (200)", "max (200)", "r1/r2 sent")
	for _, s := range st {
		fmt.Fprintf(&b, "%-22s %6s %6d %12.1f%% %8d %5d %5d %10s %10s %12s\n", s.name, s.took.Round(100*time.Millisecond),
			s.first, 100*s.availability(), s.retry, s.unavailable, s.conn, s.p99OK.Round(time.Millisecond), s.maxOK.Round(time.Millisecond),
			fmt.Sprintf("%d/%d", s.backends[0], s.backends[1]))
	}
	return b.String()
}

// TestClusterFaultsUnderLoad is the production shape (contract section
// 13): three nats-server processes clustered with JetStream, R3 streams,
// two receivers behind loadgen's connections (a dead one's connections
// move to the other, as behind a load balancer), the refresher and Redis.
// Under steady load it kills the event stream's leader, then a follower,
// then restarts Redis (forgetting every remembered notification), then
// kills a receiver, each once the previous fault has healed. Every
// notification answered 200 has exactly one event, none is duplicated;
// the table in the log gives availability and p99 per phase.
func TestClusterFaultsUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("the cluster fault test runs three NATS servers, two receivers and the refresher")
	}
	cl := testenv.StartNATSCluster(t, 3)
	redis := testenv.StartRedis(t)
	bank := bankstoretest.NewServer(t, merchant, "4101", "fault-pw-one")
	env := []string{"STREAM_REPLICAS=3", "PUBLISH_TIMEOUT=2s"}
	// The first receiver creates the R3 streams; the second finds them.
	r1 := startChild(t, "serve", cl.URL(), redis, env...)
	r2 := startChild(t, "serve", cl.URL(), redis, env...)
	ref := startChild(t, "refresher", cl.URL(), redis, append(env, "BANKSTORE_URL="+bank.URL)...)

	js, err := jetstream.New(cl.Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	leader := cl.StreamLeader(t, js, "PAYCOMET", 30*time.Second)

	var ph phases
	o := loadOptions(r1.url(), cl.URL())
	o.Backends = []string{r2.url()}
	o.Connections, o.Rate = 8, 300
	o.OnAttempt = ph.record
	l := runLoad(t, o)
	l.waitOK(t, 200, "load flowing")

	// healed waits until the load flows again and the stream's three
	// replicas are current, so the next fault starts from a whole cluster.
	healed := func(what string) *testenv.NATSNode {
		l.waitOK(t, 300, "load flowing again after "+what)
		return cl.StreamLeader(t, js, "PAYCOMET", 60*time.Second)
	}

	ph.begin("steady")
	l.waitOK(t, 600, "steady load")

	ph.begin("stream leader killed")
	t.Logf("killing the stream leader %s", leader.Name)
	leader.Kill()
	l.waitOK(t, 300, "load flowing with a new stream leader")
	leader.Start()
	leader = healed("the old leader rejoined")

	ph.begin("follower killed")
	var follower *testenv.NATSNode
	for _, nd := range cl.Nodes {
		if nd != leader {
			follower = nd
			break
		}
	}
	t.Logf("killing the follower %s (leader %s)", follower.Name, leader.Name)
	follower.Kill()
	l.waitOK(t, 600, "load flowing without a follower")
	follower.Start()
	healed("the follower rejoined")

	ph.begin("redis restarted")
	claimErrors := func() float64 {
		return r1.metric(notify.MetricDedupeErrors+`{op="claim"}`) + r2.metric(notify.MetricDedupeErrors+`{op="claim"}`)
	}
	before := claimErrors()
	redis.Stop() // every remembered notification is lost with it
	testenv.Eventually(t, 30*time.Second, "claims to fail while Redis is down", func() bool { return claimErrors() >= before+50 })
	redis.Start()
	healed("Redis came back")

	ph.begin("receiver killed")
	takeoversBefore := r1.metric(notify.MetricInflightWaits + `{result="takeover"}`)
	failed := l.failed.Load() // before the kill: its connections fail at once
	r2.kill()
	if !waitFor(30*time.Second, func() bool { return l.failed.Load() > failed }) {
		t.Fatalf("killing a receiver was not felt by the load:\n%s", phaseTable(ph.stats(time.Now())))
	}
	l.waitOK(t, 600, "load flowing on the surviving receiver")
	ph.begin("after the faults")
	l.waitOK(t, 300, "load after the faults")
	takeovers := r1.metric(notify.MetricInflightWaits+`{result="takeover"}`) - takeoversBefore

	rep := l.verify(t)
	st := ph.stats(time.Now())
	t.Logf("cluster fault phases (zero lost, zero duplicated over the whole run: %d notifications answered 200, %d events found):\n%s",
		rep.Verification.Expected, rep.Verification.Found, phaseTable(st))
	t.Logf("copies of the killed receiver's in-flight notifications taken over by the survivor: %v", takeovers)
	for _, s := range st {
		if s.first == 0 || s.firstOK == 0 {
			t.Errorf("phase %q: %d first attempts, %d answered 200: no load got through", s.name, s.first, s.firstOK)
		}
	}
	if st[0].availability() < 0.99 {
		t.Errorf("steady phase availability %.1f%%, want at least 99%%", 100*st[0].availability())
	}
	// The killed receiver's claims do not hold its notifications' retries
	// on the survivor (before the takeover they were answered 503 until
	// the claims expired, PUBLISH_TIMEOUT+10s).
	// (Seen failing with the takeover disabled, in the runs where the
	// receiver died holding a claim.)
	late := 0
	for _, s := range st[len(st)-2:] { // receiver killed, after the faults
		late += s.unavailable
	}
	if late > 0 {
		t.Errorf("%d answers 503 after a receiver was killed: copies waited for its claims", late)
	}
	if rep.GaveUp != 0 {
		t.Errorf("%d notifications never answered 200 despite %d retries each", rep.GaveUp, o.MaxRetries)
	}
	if code, body := get(ref.admin, "/readyz"); code != http.StatusOK {
		t.Errorf("refresher /readyz after the faults = %d %s", code, body)
	}
	for _, r := range []*receiver{r1, ref} {
		select {
		case err := <-r.exited:
			r.exited <- err // for its cleanup
			t.Errorf("%s exited during the faults: %v", r.sub, err)
		default:
		}
	}
}

// waitFor polls cond until it holds or timeout passes.
func waitFor(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}
