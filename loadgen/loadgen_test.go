package loadgen

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/paycomet-notify/paycomet-notify/dedupe"
	"github.com/paycomet-notify/paycomet-notify/events"
	"github.com/paycomet-notify/paycomet-notify/handler"
	"github.com/paycomet-notify/paycomet-notify/internal/testenv"
	"github.com/paycomet-notify/paycomet-notify/notify"
	"github.com/paycomet-notify/paycomet-notify/publisher"
	"github.com/paycomet-notify/paycomet-notify/secret"
)

const (
	merchant = "MC7777LG"
	urlToken = "loadgen-test-token-0123456789"
	prefix   = "paycomet"
	stream   = "PAYCOMET"
)

var terminals = map[string]secret.Value{
	"2001": secret.New("pw-2001-not-real"),
	"2002": secret.New("pw-2002-not-real"),
	"2003": secret.New("pw-2003-not-real"),
}

// rig is a real receiver (the handler package, real Redis, real NATS) that a
// test may break on purpose with wrapPub and wrapHTTP.
type rig struct {
	nats *testenv.NATS
	js   jetstream.JetStream
	url  string
}

type rigOpts struct {
	wrapPub  func(notify.Publisher) notify.Publisher
	wrapHTTP func(http.Handler) http.Handler
}

func newRig(t *testing.T, o rigOpts) *rig {
	t.Helper()
	r := &rig{nats: testenv.StartNATS(t)}
	nc := r.nats.Connect(t)
	var err error
	if r.js, err = jetstream.New(nc); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	sc := publisher.StreamsConfig{Name: stream, Prefix: prefix, Replicas: 1, DuplicateWindow: 10 * time.Minute,
		RejectedMaxBytes: 64 << 20, RejectedMaxAge: time.Hour}
	if _, err := publisher.EnsureStreams(ctx, r.js, sc); err != nil {
		t.Fatal(err)
	}
	redis := testenv.StartRedis(t)
	rdb, err := dedupe.NewRedisClient(redis.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rdb.Close() })
	var pub notify.Publisher = publisher.New(r.js, stream)
	if o.wrapPub != nil {
		pub = o.wrapPub(pub)
	}
	store := dedupe.NewRedis(rdb, dedupe.Options{ClaimTTL: 5 * time.Second, SeenTTL: time.Hour})
	t.Cleanup(func() { store.Close() })
	m := notify.NewMetrics(prometheus.NewRegistry())
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	path := notify.New(notify.Config{Prefix: prefix, MaxBodyBytes: 65536, PublishTimeout: 2 * time.Second},
		events.NewVerifier(merchant, terminals), store, pub, publisher.New(r.js, sc.RejectedName()), m, log)
	h, err := handler.New(handler.Config{URLToken: secret.New(urlToken), MaxBodyBytes: 65536}, path, m, log)
	if err != nil {
		t.Fatal(err)
	}
	if o.wrapHTTP != nil {
		h = o.wrapHTTP(h)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	r.url = srv.URL + handler.Path + "/" + urlToken
	return r
}

func (r *rig) options(count int64) Options {
	return Options{
		URL: r.url, URLToken: secret.New(urlToken), MerchantCode: merchant, Terminals: terminals,
		Connections: 6, Count: count, Duration: 60 * time.Second, DupShare: 0.2, MaxRetries: 5,
		RetryBackoff: []time.Duration{5 * time.Millisecond, 20 * time.Millisecond},
		NATSURL:      r.nats.URL(), Stream: stream, Prefix: prefix, Settle: 100 * time.Millisecond,
	}
}

func run(t *testing.T, o Options) Report {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	rep, err := Run(ctx, o)
	if err != nil {
		t.Fatalf("Run() error = %v", err)
	}
	if rep.Verification == nil {
		t.Fatal("Run() did not verify")
	}
	return rep
}

func text(rep Report) string {
	var b bytes.Buffer
	rep.WriteText(&b)
	return b.String()
}

func TestRunAgainstReceiver(t *testing.T) {
	r := newRig(t, rigOpts{})
	var progress bytes.Buffer
	o := r.options(800)
	o.Progress, o.ProgressEvery = &syncWriter{w: &progress}, 20*time.Millisecond
	rep := run(t, o)
	v := rep.Verification
	out := text(rep)
	if rep.Failed() || v.Lost != 0 || v.Duplicated != 0 || v.Unexpected != 0 || v.Quarantined != 0 {
		t.Errorf("a correct receiver failed verification:\n%s", out)
	}
	if rep.Sent != 800 || rep.Originals+rep.Copies != 800 || rep.Copies == 0 {
		t.Errorf("sent %d = %d originals + %d copies, want 800 with some copies", rep.Sent, rep.Originals, rep.Copies)
	}
	if rep.Accepted != rep.Requests || int64(v.Expected) != rep.Originals || v.Found != v.Expected || v.Events != v.Found {
		t.Errorf("want every request accepted and every original found once:\n%s", out)
	}
	if rep.LatencyOK.Count != uint64(rep.Accepted) || rep.LatencyOK.P50 <= 0 || rep.LatencyOK.P99 < rep.LatencyOK.P50 || rep.LatencyOK.Max < rep.LatencyOK.P99 {
		t.Errorf("latency summary %+v", rep.LatencyOK)
	}
	for _, want := range []string{"result        PASS", "<URL_TOKEN>", fmt.Sprintf("found %d  lost 0", v.Found), "p99"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, urlToken) || strings.Contains(progress.String(), urlToken) {
		t.Errorf("output shows the URL token:\n%s", out)
	}
	if !strings.Contains(progress.String(), "\rsent ") {
		t.Errorf("no progress line: %q", progress.String())
	}

	// The mix: every operation of the contract's table, several terminals,
	// both outcomes.
	subjects := r.subjects(t, v.StartSeq, v.EndSeq)
	for _, want := range []string{".authorization.ok", ".authorization.ko", ".card_registration.", ".refund.", ".card_expiry.notice", ".subscription.", ".preauthorization."} {
		found := false
		for s := range subjects {
			found = found || strings.Contains(s, want)
		}
		if !found {
			t.Errorf("no event on *%s* among %d subjects", want, len(subjects))
		}
	}
	for _, term := range []string{"2001", "2002", "2003"} {
		found := false
		for s := range subjects {
			found = found || strings.HasPrefix(s, prefix+"."+term+".")
		}
		if !found {
			t.Errorf("terminal %s sent nothing", term)
		}
	}

	// A second run on the same stream counts only its own events.
	o = r.options(100)
	rep2 := run(t, o)
	if rep2.Failed() || rep2.Verification.Others != 0 || rep2.Verification.StartSeq != v.EndSeq+1 || int64(rep2.Verification.Found) != rep2.Originals {
		t.Errorf("second run:\n%s", text(rep2))
	}
}

func (r *rig) subjects(t *testing.T, from, to uint64) map[string]int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := r.js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for seq := from; seq <= to; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		out[m.Subject]++
	}
	return out
}

// dropping answers 200 for every 7th event without publishing it: a receiver
// that loses events.
type dropping struct {
	next notify.Publisher
	n    atomic.Int64
}

func (d *dropping) Publish(ctx context.Context, subject, id string, body []byte) (publisher.Ack, error) {
	if d.n.Add(1)%7 == 0 {
		return publisher.Ack{Sequence: 1}, nil
	}
	return d.next.Publish(ctx, subject, id, body)
}

func TestRunDetectsLostEvents(t *testing.T) {
	r := newRig(t, rigOpts{wrapPub: func(p notify.Publisher) notify.Publisher { return &dropping{next: p} }})
	rep := run(t, r.options(300))
	v := rep.Verification
	if v.Lost == 0 || !rep.Failed() || v.Found+v.Lost != v.Expected {
		t.Errorf("a receiver dropping every 7th event passed:\n%s", text(rep))
	}
	if out := text(rep); !strings.Contains(out, "answered 200, no event") || !strings.Contains(out, "FAIL") {
		t.Errorf("report does not name a lost notification:\n%s", out)
	}
}

// doubling publishes every 5th event a second time without Nats-Msg-Id, so
// JetStream cannot drop the copy: a receiver that duplicates events.
type doubling struct {
	next notify.Publisher
	nc   *nats.Conn
	n    atomic.Int64
}

func (d *doubling) Publish(ctx context.Context, subject, id string, body []byte) (publisher.Ack, error) {
	ack, err := d.next.Publish(ctx, subject, id, body)
	if err == nil && d.n.Add(1)%5 == 0 {
		js, _ := jetstream.New(d.nc)
		if _, err := js.Publish(ctx, subject, body); err != nil {
			return ack, err
		}
	}
	return ack, err
}

func TestRunDetectsDuplicatedEvents(t *testing.T) {
	var d *doubling
	r := newRig(t, rigOpts{wrapPub: func(p notify.Publisher) notify.Publisher { d = &doubling{next: p}; return d }})
	d.nc = r.nats.Connect(t)
	rep := run(t, r.options(300))
	if v := rep.Verification; v.Duplicated == 0 || v.Unexpected == 0 || !rep.Failed() {
		t.Errorf("a receiver publishing copies without Nats-Msg-Id passed:\n%s", text(rep))
	}
}

// inventing publishes, besides each 9th event, an event nobody sent.
type inventing struct {
	next notify.Publisher
	n    atomic.Int64
}

func (i *inventing) Publish(ctx context.Context, subject, id string, body []byte) (publisher.Ack, error) {
	ack, err := i.next.Publish(ctx, subject, id, body)
	if n := i.n.Add(1); err == nil && n%9 == 0 {
		fakeID := fmt.Sprintf("%032x", n)
		fake := strings.Replace(string(body), `"id":"`+id+`"`, `"id":"`+fakeID+`"`, 1)
		if _, err := i.next.Publish(ctx, subject, fakeID, []byte(fake)); err != nil {
			return ack, err
		}
	}
	return ack, err
}

func TestRunDetectsUnexpectedEvents(t *testing.T) {
	r := newRig(t, rigOpts{wrapPub: func(p notify.Publisher) notify.Publisher { return &inventing{next: p} }})
	rep := run(t, r.options(200))
	if v := rep.Verification; v.Unexpected == 0 || !rep.Failed() || v.Lost != 0 || v.Duplicated != 0 {
		t.Errorf("a receiver inventing events passed:\n%s", text(rep))
	}
}

// flaky answers 503 to the first copy of every body without letting the
// receiver see it, and breaks the connection of the second: loadgen must
// retry both ways, like PAYCOMET.
func flaky(next http.Handler) http.Handler {
	var mu sync.Mutex
	seen := map[[32]byte]int{}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		key := sha256.Sum256(body)
		mu.Lock()
		seen[key]++
		n := seen[key]
		mu.Unlock()
		switch n {
		case 1:
			w.Header().Set("Retry-After", "5")
			http.Error(w, "the event could not be made durable; retry", http.StatusServiceUnavailable)
		case 2:
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				conn.Close()
			}
		default:
			next.ServeHTTP(w, r)
		}
	})
}

func TestRunRetries503AndBrokenConnections(t *testing.T) {
	r := newRig(t, rigOpts{wrapHTTP: flaky})
	o := r.options(200)
	o.DupShare = 0 // each body's first two copies fail; keep the count exact
	rep := run(t, o)
	v := rep.Verification
	if rep.Failed() || rep.Retries != 400 || rep.ByStatus[503] != 200 || rep.ByStatus[0] != 200 || rep.ByStatus[200] != 200 || v.Found != 200 {
		t.Errorf("want 200 notifications each answered 503, then a broken connection, then 200:\n%s", text(rep))
	}
	o = r.options(50)
	o.DupShare, o.MaxRetries = 0, 1
	rep = run(t, o)
	if v := rep.Verification; rep.GaveUp != 50 || v.NotAccepted != 50 || v.Expected != 0 || rep.Retries != 50 {
		t.Errorf("with one retry every notification should be given up, none lost:\n%s", text(rep))
	}
}

// lateAck lets the receiver publish every 4th notification and then answers
// 503 anyway, as when the JetStream ack arrives after the publish timeout.
func lateAck(next http.Handler) http.Handler {
	var n atomic.Int64
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1)%4 != 0 {
			next.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(httptest.NewRecorder(), r)
		http.Error(w, "the event could not be made durable; retry", http.StatusServiceUnavailable)
	})
}

func TestRunPublishedWithout200IsNotAFailure(t *testing.T) {
	r := newRig(t, rigOpts{wrapHTTP: lateAck})
	o := r.options(200)
	o.DupShare, o.MaxRetries = 0, 0
	rep := run(t, o)
	v := rep.Verification
	if v.PublishedWithout200 != 50 || v.Found != 150 || rep.Failed() {
		t.Errorf("want 50 published without 200, reported but not failed:\n%s", text(rep))
	}
}

func TestRunRejectsBadOptions(t *testing.T) {
	for name, o := range map[string]Options{
		"no url":       {MerchantCode: "m", Terminals: terminals, NoVerify: true},
		"no terminals": {URL: "http://127.0.0.1:1/", NoVerify: true},
		"dup share 1":  {URL: "http://127.0.0.1:1/", MerchantCode: "m", Terminals: terminals, DupShare: 1, NoVerify: true},
		"no nats":      {URL: "http://127.0.0.1:1/", MerchantCode: "m", Terminals: terminals},
		"ftp":          {URL: "ftp://127.0.0.1:1/", MerchantCode: "m", Terminals: terminals, NoVerify: true},
	} {
		if _, err := Run(context.Background(), o); err == nil {
			t.Errorf("Run(%s) = nil error", name)
		}
	}
}

func TestRunWithoutReceiverGivesUp(t *testing.T) {
	o := Options{URL: "http://127.0.0.1:" + strconv.Itoa(testenv.FreePort(t)) + "/paycomet/notifications/" + urlToken,
		URLToken: secret.New(urlToken), MerchantCode: merchant, Terminals: terminals, NoVerify: true,
		Connections: 2, Count: 4, MaxRetries: 2, RetryBackoff: []time.Duration{time.Millisecond}}
	rep, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	out := text(rep)
	if rep.ByStatus[0] != 12 || rep.GaveUp != 4 || !rep.Failed() || !strings.Contains(out, "connection errors: 12") || strings.Contains(out, urlToken) {
		t.Errorf("4 notifications × 3 tries to a closed port:\n%s", out)
	}
}

type syncWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// reacting publishes, after every card-expiry notice, the answer a refresher
// would: a paycomet.card.token_unknown event about the same user.
type reacting struct {
	next notify.Publisher
	n    atomic.Int64
}

func (r *reacting) Publish(ctx context.Context, subject, id string, body []byte) (publisher.Ack, error) {
	ack, err := r.next.Publish(ctx, subject, id, body)
	if err != nil || !strings.HasSuffix(subject, ".card_expiry.notice") {
		return ack, err
	}
	var ev struct {
		Subject string `json:"subject"`
		Source  string `json:"source"`
	}
	if err := json.Unmarshal(body, &ev); err != nil {
		return ack, err
	}
	outID := fmt.Sprintf("%032x", 1<<40+r.n.Add(1))
	out := fmt.Sprintf(`{"specversion":"1.0","id":%q,"source":%q,"type":"paycomet.card.token_unknown","subject":%q,"data":{}}`, outID, ev.Source, ev.Subject)
	terminal := strings.Split(subject, ".")[1]
	if _, err := r.next.Publish(ctx, prefix+"."+terminal+".card.token_unknown", outID, []byte(out)); err != nil {
		return ack, err
	}
	return ack, nil
}

// TestRunIgnoresConsumersReactions: a refresher answering the run's 108s
// beside the receiver is other traffic, not an event the run did not cause.
func TestRunIgnoresConsumersReactions(t *testing.T) {
	re := &reacting{}
	r := newRig(t, rigOpts{wrapPub: func(p notify.Publisher) notify.Publisher { re.next = p; return re }})
	rep := run(t, r.options(300))
	v := rep.Verification
	if re.n.Load() == 0 {
		t.Fatalf("the run sent no card-expiry notice; the test proves nothing:\n%s", text(rep))
	}
	if rep.Failed() || v.Unexpected != 0 || v.Others < int(re.n.Load()) {
		t.Errorf("refresher outputs (%d) were not counted as other traffic:\n%s", re.n.Load(), text(rep))
	}
}

// TestRunBackendsFailOver: connections are spread over URL and Backends; a
// connection whose backend is dead moves to the next and its notification
// is retried there, and OnAttempt sees every request with its attempt.
func TestRunBackendsFailOver(t *testing.T) {
	r := newRig(t, rigOpts{})
	o := r.options(100)
	o.Connections, o.DupShare = 2, 0
	o.Backends = []string{r.url}
	o.URL = "http://127.0.0.1:" + strconv.Itoa(testenv.FreePort(t)) + handler.Path + "/" + urlToken
	var mu sync.Mutex
	first, retried, byBackend := 0, 0, map[int]map[int]int{0: {}, 1: {}}
	o.OnAttempt = func(a Attempt) {
		mu.Lock()
		defer mu.Unlock()
		if a.Retry == 0 {
			first++
		} else {
			retried++
		}
		byBackend[a.Backend][a.Status]++
		if a.Start.IsZero() || a.Latency <= 0 {
			t.Errorf("attempt without start or latency: %+v", a)
		}
	}
	rep := run(t, o)
	mu.Lock()
	defer mu.Unlock()
	if rep.Failed() || rep.Accepted != 100 || rep.ByStatus[0] != 1 || rep.Retries != 1 {
		t.Errorf("one connection on a dead backend should fail once and move:\n%s", text(rep))
	}
	if first != 100 || retried != 1 || byBackend[0][0] != 1 || byBackend[1][200] != 100 {
		t.Errorf("OnAttempt: %d first attempts, %d retries, by backend %v", first, retried, byBackend)
	}
}
