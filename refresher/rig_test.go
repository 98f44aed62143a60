package refresher_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/paycomet-notify/paycomet-notify/bankstore"
	"github.com/paycomet-notify/paycomet-notify/bankstore/bankstoretest"
	"github.com/paycomet-notify/paycomet-notify/dedupe"
	"github.com/paycomet-notify/paycomet-notify/demo"
	"github.com/paycomet-notify/paycomet-notify/events"
	"github.com/paycomet-notify/paycomet-notify/handler"
	"github.com/paycomet-notify/paycomet-notify/internal/testenv"
	"github.com/paycomet-notify/paycomet-notify/notify"
	"github.com/paycomet-notify/paycomet-notify/publisher"
	"github.com/paycomet-notify/paycomet-notify/refresher"
	"github.com/paycomet-notify/paycomet-notify/schemas"
	"github.com/paycomet-notify/paycomet-notify/secret"
	"github.com/paycomet-notify/paycomet-notify/tracing"
)

const (
	merchant = "MC1234AB"
	terminal = "4321"
	password = "s3cret-terminal-password"
	// terminal2 is configured at the receiver but has no BankStore
	// credentials at the refresher.
	terminal2 = "9876"
	password2 = "other-terminal-password"
	urlToken  = "tok-0123456789abcdef-xyz"
	prefix    = "paycomet"
	stream    = "PAYCOMET"
)

// now is the refresher's clock in these tests.
var now = time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)

// rig is the whole path over real dependencies: a receiver (handler,
// publisher, JetStream KV dedupe) on httptest, a real NATS server, the
// BankStore fake over HTTP, and the refresher under test on its own NATS
// connection.
type rig struct {
	t       *testing.T
	nats    *testenv.NATS
	js      jetstream.JetStream // the test's own connection
	stream  jetstream.Stream
	url     string // notification URL with the URL token
	bank    *bankstoretest.Server
	reg     *prometheus.Registry
	metrics *refresher.Metrics
	banks   map[string]refresher.BankStore
	logs    *testenv.Buffer
	cfg     refresher.Config
	secrets []string   // must never appear in the refresher's logs
	nc      *nats.Conn // the refresher's
	stop    context.CancelFunc
	done    chan error
}

type rigOptions struct {
	maxDeliver  int
	backoff     []time.Duration
	callTimeout time.Duration
	password    string // the refresher's terminal password; default the right one
	// recvTracing and refTracing turn tracing on at the receiver and at
	// the refresher (two providers, as two processes have).
	recvTracing, refTracing *tracing.Tracing
}

type rigOpt func(*rigOptions)

func withMaxDeliver(n int) rigOpt            { return func(o *rigOptions) { o.maxDeliver = n } }
func withCallTimeout(d time.Duration) rigOpt { return func(o *rigOptions) { o.callTimeout = d } }
func withBackoff(d ...time.Duration) rigOpt  { return func(o *rigOptions) { o.backoff = d } }
func withRefresherPassword(p string) rigOpt  { return func(o *rigOptions) { o.password = p } }
func withTracing(recv, ref *tracing.Tracing) rigOpt {
	return func(o *rigOptions) { o.recvTracing, o.refTracing = recv, ref }
}

func newRig(t *testing.T, opts ...rigOpt) *rig {
	t.Helper()
	o := rigOptions{maxDeliver: 3, backoff: []time.Duration{50 * time.Millisecond, 100 * time.Millisecond},
		callTimeout: 2 * time.Second, password: password}
	for _, f := range opts {
		f(&o)
	}
	r := &rig{t: t, nats: testenv.StartNATS(t), logs: &testenv.Buffer{}, secrets: []string{password, password2, o.password}}
	ctx := context.Background()
	var err error
	if r.js, err = jetstream.New(r.nats.Connect(t)); err != nil {
		t.Fatal(err)
	}

	// The receiver, as serve wires it.
	recvJS, err := jetstream.New(r.nats.Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	streams, err := publisher.EnsureStreams(ctx, recvJS, publisher.StreamsConfig{Name: stream, Prefix: prefix, Replicas: 1,
		DuplicateWindow: 10 * time.Minute, RejectedMaxBytes: 1 << 20, RejectedMaxAge: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	r.stream = streams.Events
	kv, err := dedupe.NewJetStreamKV(ctx, recvJS, stream+"_DEDUPE", 1, dedupe.Options{ClaimTTL: 10 * time.Second, SeenTTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { kv.Close() })
	recvMetrics := notify.NewMetrics(prometheus.NewRegistry())
	path := notify.New(notify.Config{Prefix: prefix, MaxBodyBytes: 8192, PublishTimeout: 2 * time.Second, DedupeTTL: 168 * time.Hour,
		Terminals: []string{terminal, terminal2}, Tracing: o.recvTracing},
		events.NewVerifier(merchant, map[string]secret.Value{terminal: secret.New(password), terminal2: secret.New(password2)}),
		kv, publisher.New(recvJS, stream).Traced(o.recvTracing), publisher.New(recvJS, stream+publisher.RejectedSuffix), recvMetrics, slog.New(slog.DiscardHandler))
	h, err := handler.New(handler.Config{URLToken: secret.New(urlToken), MaxBodyBytes: 8192, Tracing: o.recvTracing}, path, recvMetrics, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	r.url = srv.URL + handler.Path + "/" + urlToken

	// The BankStore fake and a client for the one terminal it serves.
	r.bank = bankstoretest.NewServer(t, merchant, terminal, password)
	client, err := bankstore.New(r.bank.URL, bankstore.Credentials{MerchantCode: merchant, Terminal: terminal, Password: secret.New(o.password)},
		bankstore.WithHTTPClient(&http.Client{Timeout: o.callTimeout}), bankstore.WithInfoUserRetry(1, 0))
	if err != nil {
		t.Fatal(err)
	}

	// The refresher.
	r.reg = prometheus.NewRegistry()
	r.metrics = refresher.NewMetrics(r.reg, []string{terminal})
	r.banks = map[string]refresher.BankStore{terminal: client}
	r.cfg = refresher.Config{Prefix: prefix, Stream: stream, MaxDeliver: o.maxDeliver, Backoff: o.backoff,
		CallTimeout: o.callTimeout, PublishTimeout: 2 * time.Second, Tracing: o.refTracing}
	r.start()
	t.Cleanup(func() {
		r.shutdown()
		r.checkLogs()
	})
	return r
}

// start opens a refresher on its own NATS connection and runs it.
func (r *rig) start() {
	r.t.Helper()
	// Its own connection, closed by shutdown once Run has returned (a
	// t.Cleanup would close it first when start runs after newRig).
	nc, err := nats.Connect(r.nats.URL(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		r.t.Fatal(err)
	}
	r.nc = nc
	js, err := jetstream.New(nc)
	if err != nil {
		r.t.Fatal(err)
	}
	log := slog.New(slog.NewJSONHandler(r.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ref, err := refresher.Open(context.Background(), r.cfg, js, r.banks, r.metrics, log, func() time.Time { return now })
	if err != nil {
		r.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.stop, r.done = cancel, make(chan error, 1)
	go func() { r.done <- ref.Run(ctx) }()
}

// shutdown cancels Run and waits for it to return nil, as a graceful stop
// must.
func (r *rig) shutdown() {
	r.t.Helper()
	if r.stop == nil {
		return
	}
	r.stop()
	r.stop = nil
	select {
	case err := <-r.done:
		if err != nil {
			r.t.Errorf("Run() = %v after cancel, want nil", err)
		}
	case <-time.After(10 * time.Second):
		r.t.Error("Run did not return within 10s of cancel")
	}
	r.nc.Close()
}

// checkLogs fails the test if a token or password reached the log.
func (r *rig) checkLogs() {
	r.t.Helper()
	logs := r.logs.String()
	for _, s := range r.secrets {
		if s != "" && strings.Contains(logs, s) {
			r.t.Errorf("the refresher's log contains the secret %q:\n%s", s, logs)
		}
	}
}

// card registers a card at the fake, as PAYCOMET would hold it, and
// remembers its token as a secret for the log check.
func (r *rig) card(id int64, token, pan, mmyy string) {
	r.t.Helper()
	if err := r.bank.AddUser(id, token, pan, mmyy); err != nil {
		r.t.Fatal(err)
	}
	r.secrets = append(r.secrets, token)
}

// notify POSTs a signed notification for the rig's terminal through the
// receiver's URL and requires 200 OK.
func (r *rig) notify(typ int, mod func(*demo.SampleOptions)) url.Values {
	r.t.Helper()
	o := demo.SampleOptions{Type: typ, MerchantCode: merchant, Terminal: terminal, Password: password,
		MonthsToExpire: 1, When: time.Now()} // the receiver refuses stale signed notifications by its own clock
	if mod != nil {
		mod(&o)
	}
	if o.TokenUser != "" {
		r.secrets = append(r.secrets, o.TokenUser)
	}
	form := demo.Sample(o)
	resp, err := http.Post(r.url, "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
	if err != nil {
		r.t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		r.t.Fatalf("POST TransactionType %d = %d %s, want 200", typ, resp.StatusCode, body)
	}
	return form
}

// register posts a 107 OK for id with token under order.
func (r *rig) register(order string, id int64, token string) {
	r.t.Helper()
	r.notify(events.TypeCardRegistration, func(o *demo.SampleOptions) { o.Order, o.IdUser, o.TokenUser = order, id, token })
}

// expiry posts a 108 for id.
func (r *rig) expiry(id int64, months int) {
	r.t.Helper()
	r.notify(events.TypeCardExpiry, func(o *demo.SampleOptions) { o.IdUser, o.MonthsToExpire = id, months })
}

// renewal publishes a card.renewal_started message, as a merchant's
// consumer would.
func (r *rig) renewal(body string) {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := r.js.Publish(ctx, prefix+"."+terminal+".card.renewal_started", []byte(body)); err != nil {
		r.t.Fatal(err)
	}
}

// message is one stored message of the stream.
type message struct {
	Subject string
	Seq     uint64
	MsgID   string
	Data    []byte
	// TraceParent is the message's traceparent header.
	TraceParent string
	Event       struct {
		SpecVersion     string          `json:"specversion"`
		ID              string          `json:"id"`
		Source          string          `json:"source"`
		Type            string          `json:"type"`
		Subject         string          `json:"subject"`
		Time            string          `json:"time"`
		DataContentType string          `json:"datacontenttype"`
		DataSchema      string          `json:"dataschema"`
		TraceParent     string          `json:"traceparent"`
		Data            json.RawMessage `json:"data"`
	}
}

// messages returns the stream's messages whose subject matches keep.
func (r *rig) messages(keep func(subject string) bool) []message {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	info, err := r.stream.Info(ctx)
	if err != nil {
		r.t.Fatal(err)
	}
	var out []message
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := r.stream.GetMsg(ctx, seq)
		if err != nil {
			r.t.Fatalf("get message %d: %v", seq, err)
		}
		if keep(m.Subject) {
			out = append(out, message{Subject: m.Subject, Seq: seq, MsgID: m.Header.Get(jetstream.MsgIDHeader), Data: m.Data,
				TraceParent: m.Header.Get(tracing.TraceParentHeader)})
		}
	}
	return out
}

// outputs are the refresher's events: card.* except the renewal_started
// input, and the dead letters. Each is checked against the event contract
// and its data against its JSON Schema.
func (r *rig) outputs() []message {
	r.t.Helper()
	msgs := r.messages(func(s string) bool {
		return s == r.cfg.DeadLetterSubject() || (strings.HasPrefix(s, prefix+".") && strings.Contains(s, ".card.") && !strings.HasSuffix(s, ".renewal_started"))
	})
	for i := range msgs {
		m := &msgs[i]
		if err := json.Unmarshal(m.Data, &m.Event); err != nil {
			r.t.Fatalf("output %d on %s is not JSON: %v", m.Seq, m.Subject, err)
		}
		e := m.Event
		if e.SpecVersion != "1.0" || e.ID == "" || e.ID != m.MsgID || e.DataContentType != "application/json" ||
			!strings.HasPrefix(e.Type, "paycomet.card.") || e.DataSchema == "" || e.Source == "" {
			r.t.Errorf("output %d on %s breaks the event contract (msg id %q): %s", m.Seq, m.Subject, m.MsgID, m.Data)
		}
		if _, err := time.Parse(time.RFC3339, e.Time); err != nil {
			r.t.Errorf("output %d time %q: %v", m.Seq, e.Time, err)
		}
		if err := schemas.Validate(e.DataSchema, e.Data); err != nil {
			r.t.Errorf("output %d data does not validate against %s: %v\n%s", m.Seq, e.DataSchema, err, e.Data)
		}
	}
	return msgs
}

// waitOutputs polls until there are n outputs and returns them.
func (r *rig) waitOutputs(n int) []message {
	r.t.Helper()
	var out []message
	testenv.Eventually(r.t, 10*time.Second, "refresher outputs", func() bool {
		out = r.outputs()
		return len(out) >= n
	})
	if len(out) != n {
		r.t.Fatalf("got %d outputs, want %d: %s", len(out), n, subjects(out))
	}
	return out
}

// settle polls until the refresher's consumer has handled every message
// published so far: the last stream message its filters select is at or
// below its ack floor, and nothing is pending or unacknowledged. NumPending
// alone is not enough: the server counts a new message towards a consumer
// asynchronously, so right after a publish a busy server can still show 0
// pending for a message the consumer has not seen.
func (r *rig) settle() {
	r.t.Helper()
	var last uint64
	for _, m := range r.messages(r.consumed) {
		last = max(last, m.Seq)
	}
	testenv.Eventually(r.t, 10*time.Second, "the refresher's consumer to settle", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		c, err := r.js.Consumer(ctx, stream, refresher.DefaultDurable)
		if err != nil {
			return false
		}
		info, err := c.Info(ctx)
		return err == nil && info.AckFloor.Stream >= last && info.NumPending == 0 && info.NumAckPending == 0
	})
}

// consumed reports whether the refresher's consumer selects subject.
func (r *rig) consumed(subject string) bool {
	for _, f := range r.cfg.Subjects() {
		if subjectMatches(f, subject) {
			return true
		}
	}
	return false
}

// subjectMatches is NATS subject matching: "*" is one token, ">" the rest.
func subjectMatches(filter, subject string) bool {
	f, s := strings.Split(filter, "."), strings.Split(subject, ".")
	for i, tok := range f {
		if tok == ">" {
			return len(s) > i
		}
		if i >= len(s) || (tok != "*" && tok != s[i]) {
			return false
		}
	}
	return len(f) == len(s)
}

// ackPending is how many messages the refresher's consumer has delivered
// and not yet seen acknowledged.
func (r *rig) ackPending() int {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	c, err := r.js.Consumer(ctx, stream, refresher.DefaultDurable)
	if err != nil {
		r.t.Fatal(err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		r.t.Fatal(err)
	}
	return info.NumAckPending
}

// calls are the fake's calls of op.
func (r *rig) calls(op bankstore.Operation) []bankstoretest.Call {
	var out []bankstoretest.Call
	for _, c := range r.bank.Calls() {
		if c.Op == op {
			out = append(out, c)
		}
	}
	return out
}

// metric sums a counter's series whose labels include the given pairs.
func (r *rig) metric(name string, labels ...string) float64 {
	r.t.Helper()
	return testenv.Metric(r.t, r.reg, name, labels...)
}

func subjects(ms []message) string {
	var s []string
	for _, m := range ms {
		s = append(s, m.Subject)
	}
	return strings.Join(s, ", ")
}

// data decodes an output's data.
func data[T any](t *testing.T, m message) T {
	t.Helper()
	var v T
	dec := json.NewDecoder(bytes.NewReader(m.Event.Data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("data of %s: %v\n%s", m.Subject, err, m.Event.Data)
	}
	return v
}

// publishRaw republishes data on subject with a fresh Nats-Msg-Id, as a
// replay or a duplicate from outside the receiver would.
func (r *rig) publishRaw(subject string, body []byte, msgID string) {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	msg := &nats.Msg{Subject: subject, Data: body, Header: nats.Header{}}
	if msgID != "" {
		msg.Header.Set(jetstream.MsgIDHeader, msgID)
	}
	if _, err := r.js.PublishMsg(ctx, msg); err != nil {
		r.t.Fatal(err)
	}
}
