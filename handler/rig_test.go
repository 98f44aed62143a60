package handler

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/paycomet-notify/paycomet-notify/dedupe"
	"github.com/paycomet-notify/paycomet-notify/demo"
	"github.com/paycomet-notify/paycomet-notify/events"
	"github.com/paycomet-notify/paycomet-notify/internal/testenv"
	"github.com/paycomet-notify/paycomet-notify/notify"
	"github.com/paycomet-notify/paycomet-notify/publisher"
	"github.com/paycomet-notify/paycomet-notify/schemas"
	"github.com/paycomet-notify/paycomet-notify/secret"
	"github.com/paycomet-notify/paycomet-notify/tracing"
)

const (
	merchant  = "MC1234AB"
	terminal  = "4321"
	password  = "s3cret-terminal-password"
	terminal2 = "9876"
	password2 = "other-terminal-password"
	urlToken  = "tok-0123456789abcdef-xyz"
	prefix    = "paycomet"
	maxBody   = 4096
)

// rig is one receiver over a real NATS server and a real dedupe store.
type rig struct {
	t          *testing.T
	nats       *testenv.NATS
	redis      *testenv.Redis // nil with the JetStream KV store
	js         jetstream.JetStream
	stream     jetstream.Stream // the event stream
	quarantine jetstream.Stream // <STREAM>_REJECTED
	srv        *httptest.Server
	reg        *prometheus.Registry
	metrics    *notify.Metrics
	path       *notify.Path
	logs       *testenv.Buffer
	url        string // notification URL, with the token when set
}

// setup is what a rigOpt may change before the receiver is built.
type setup struct {
	path    notify.Config
	http    Config
	streams publisher.StreamsConfig
	wrap    func(notify.Publisher) notify.Publisher
	server  func(*http.Server) // adjusts the server before it starts
}

type rigOpt func(*setup)

func withToken(s *setup) { s.http.URLToken = secret.New(urlToken) }

// withPublisher puts wrap around the real event publisher.
func withPublisher(wrap func(notify.Publisher) notify.Publisher) rigOpt {
	return func(s *setup) { s.wrap = wrap }
}

func withAllowed(cidr string) rigOpt {
	return func(s *setup) { s.path.AllowedIPs = []netip.Prefix{netip.MustParsePrefix(cidr)} }
}

func withRate(perSecond float64) rigOpt {
	return func(s *setup) { s.path.RejectedRatePerSource = perSecond }
}

func withRejectedMaxBytes(n int64) rigOpt {
	return func(s *setup) { s.streams.RejectedMaxBytes = n }
}

// withMaxBody sets MAX_BODY_BYTES.
func withMaxBody(n int64) rigOpt {
	return func(s *setup) { s.path.MaxBodyBytes, s.http.MaxBodyBytes = n, n }
}

func withServer(f func(*http.Server)) rigOpt { return func(s *setup) { s.server = f } }

// withTracing turns tracing on in the path, the handler and both publishers.
func withTracing(tr *tracing.Tracing) rigOpt {
	return func(s *setup) { s.path.Tracing, s.http.Tracing = tr, tr }
}

// newRig starts NATS (and Redis when useRedis) and a receiver in front.
// The quarantine rate is unlimited unless withRate says otherwise, so tests
// that send many bad requests see each of them stored.
func newRig(t *testing.T, useRedis bool, opts ...rigOpt) *rig {
	t.Helper()
	r := &rig{t: t, nats: testenv.StartNATS(t), logs: &testenv.Buffer{}}
	nc := r.nats.Connect(t)
	var err error
	if r.js, err = jetstream.New(nc); err != nil {
		t.Fatal(err)
	}
	st := setup{
		path: notify.Config{Prefix: prefix, MaxBodyBytes: maxBody, InFlightWait: 5 * time.Second, PublishTimeout: 2 * time.Second,
			StoreTimeout: 500 * time.Millisecond, DedupeTTL: 168 * time.Hour, RejectedRatePerSource: math.Inf(1),
			Terminals: []string{terminal, terminal2}},
		http: Config{MaxBodyBytes: maxBody},
		streams: publisher.StreamsConfig{Name: "PAYCOMET", Prefix: prefix, Replicas: 1, DuplicateWindow: 10 * time.Minute,
			RejectedMaxBytes: 64 << 20, RejectedMaxAge: time.Hour},
	}
	for _, o := range opts {
		o(&st)
	}
	ctx := context.Background()
	streams, err := publisher.EnsureStreams(ctx, r.js, st.streams)
	if err != nil {
		t.Fatal(err)
	}
	r.stream, r.quarantine = streams.Events, streams.Rejected
	dopts := dedupe.Options{ClaimTTL: 10 * time.Second, SeenTTL: time.Hour}
	var store notify.Deduper
	if useRedis {
		r.redis = testenv.StartRedis(t)
		rdb, err := dedupe.NewRedisClient(r.redis.URL())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { rdb.Close() })
		s := dedupe.NewRedis(rdb, dopts)
		t.Cleanup(func() { s.Close() })
		store = s
	} else {
		kv, err := dedupe.NewJetStreamKV(ctx, r.js, "PAYCOMET_DEDUPE", 1, dopts)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { kv.Close() })
		store = kv
	}
	var pub notify.Publisher = publisher.New(r.js, st.streams.Name).Traced(st.path.Tracing)
	if st.wrap != nil {
		pub = st.wrap(pub)
	}
	r.reg = prometheus.NewRegistry()
	r.metrics = notify.NewMetrics(r.reg)
	log := slog.New(slog.NewJSONHandler(r.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	v := events.NewVerifier(merchant, map[string]secret.Value{terminal: secret.New(password), terminal2: secret.New(password2)})
	p := notify.New(st.path, v, store, pub, publisher.New(r.js, st.streams.RejectedName()).Traced(st.path.Tracing), r.metrics, log)
	r.path = p
	h, err := New(st.http, p, r.metrics, log)
	if err != nil {
		t.Fatal(err)
	}
	r.srv = httptest.NewUnstartedServer(h)
	if st.server != nil {
		st.server(r.srv.Config)
	}
	r.srv.Start()
	t.Cleanup(r.srv.Close)
	r.url = r.srv.URL + Path
	if !st.http.URLToken.IsZero() {
		r.url += "/" + st.http.URLToken.Reveal()
	}
	return r
}

// sample is a correctly signed notification for this rig's terminal,
// stamped now (a fixed stamp would become stale).
func sample(typ int, order string, mod ...func(*demo.SampleOptions)) url.Values {
	o := demo.SampleOptions{Type: typ, MerchantCode: merchant, Terminal: terminal, Password: password,
		Order: order, Response: "OK", Amount: 1250, Currency: "EUR", IdUser: 70001, TokenUser: "TOKENabc123XYZ",
		MonthsToExpire: 2, When: time.Now()}
	for _, m := range mod {
		m(&o)
	}
	return demo.Sample(o)
}

type answer struct {
	status int
	body   string
	header http.Header
}

func (r *rig) post(u string, contentType string, body string) answer {
	r.t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(body))
	if err != nil {
		r.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, string(b), resp.Header}
}

func (r *rig) send(form url.Values) answer {
	r.t.Helper()
	return r.post(r.url, "application/x-www-form-urlencoded", form.Encode())
}

// storedEvent is one message of a stream, decoded.
type storedEvent struct {
	Subject string
	MsgID   string
	CT      string
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
	Raw []byte
}

// rejection is the data of a quarantine message.
type rejection struct {
	Reason     string              `json:"reason"`
	Detail     string              `json:"detail"`
	Status     int                 `json:"status"`
	Source     string              `json:"source"`
	ReceivedAt string              `json:"received_at"`
	Terminal   string              `json:"terminal"`
	EventID    string              `json:"event_id"`
	Fields     map[string][]string `json:"fields"`
	Request    struct {
		Body         []byte `json:"body"`
		Truncated    bool   `json:"truncated"`
		Query        string `json:"query"`
		ContentType  string `json:"content_type"`
		URLTokenPath bool   `json:"url_token_path"`
	} `json:"request"`
}

func (e storedEvent) rejection(t *testing.T) rejection {
	t.Helper()
	var d rejection
	if err := json.Unmarshal(e.Event.Data, &d); err != nil {
		t.Fatalf("quarantine data: %v\n%s", err, e.Raw)
	}
	return d
}

// events returns every message of the event stream, each checked against
// the CloudEvents attributes the contract promises and its data's schema.
func (r *rig) events() []storedEvent { return r.read(r.stream) }

// quarantined returns every message of the quarantine stream, checked the
// same way.
func (r *rig) quarantined() []storedEvent {
	out := r.read(r.quarantine)
	for _, e := range out {
		if e.Subject != prefix+".rejected" || e.Event.Type != "paycomet.rejected" {
			r.t.Errorf("quarantine message on %s of type %s", e.Subject, e.Event.Type)
		}
	}
	return out
}

func (r *rig) read(s jetstream.Stream) []storedEvent {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	info, err := s.Info(ctx)
	if err != nil {
		r.t.Fatal(err)
	}
	var out []storedEvent
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			r.t.Fatalf("get msg %d: %v", seq, err)
		}
		var se storedEvent
		se.Subject, se.MsgID, se.CT, se.Raw = m.Subject, m.Header.Get("Nats-Msg-Id"), m.Header.Get("Content-Type"), m.Data
		se.TraceParent = m.Header.Get(tracing.TraceParentHeader)
		if err := json.Unmarshal(m.Data, &se.Event); err != nil {
			r.t.Fatalf("message %d is not JSON: %v", seq, err)
		}
		e := se.Event
		if e.SpecVersion != "1.0" || e.ID == "" || e.ID != se.MsgID || se.CT != "application/cloudevents+json" ||
			e.DataContentType != "application/json" || !strings.HasPrefix(e.Type, "paycomet.") || e.DataSchema == "" {
			r.t.Errorf("message %d on %s breaks the event contract: msg-id %q content-type %q event %s", seq, m.Subject, se.MsgID, se.CT, m.Data)
		}
		if _, err := time.Parse(time.RFC3339, e.Time); err != nil {
			r.t.Errorf("message %d time %q: %v", seq, e.Time, err)
		}
		if err := schemas.Validate(e.DataSchema, e.Data); err != nil {
			r.t.Errorf("message %d data does not validate against %s: %v\n%s", seq, e.DataSchema, err, e.Data)
		}
		out = append(out, se)
	}
	return out
}

func (r *rig) eventsOn(subject string) []storedEvent {
	var out []storedEvent
	for _, e := range r.events() {
		if e.Subject == subject {
			out = append(out, e)
		}
	}
	return out
}

func (r *rig) counter(name string, labels ...string) float64 {
	r.t.Helper()
	return testenv.Metric(r.t, r.reg, name, labels...)
}
