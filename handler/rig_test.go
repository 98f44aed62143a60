package handler

import (
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

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/paycomet-notify/paycomet-notify/config"
	"github.com/paycomet-notify/paycomet-notify/dedupe"
	"github.com/paycomet-notify/paycomet-notify/demo"
	"github.com/paycomet-notify/paycomet-notify/events"
	"github.com/paycomet-notify/paycomet-notify/internal/testenv"
	"github.com/paycomet-notify/paycomet-notify/publisher"
	"github.com/paycomet-notify/paycomet-notify/schemas"
	"github.com/paycomet-notify/paycomet-notify/secret"
)

const (
	merchant  = "MC1234AB"
	terminal  = "4321"
	password  = "s3cret-terminal-password"
	terminal2 = "9876"
	password2 = "other-terminal-password"
	urlToken  = "tok-0123456789abcdef-xyz"
	prefix    = "paycomet"
)

// rig is one receiver over a real NATS server and a real dedupe store.
type rig struct {
	t       *testing.T
	nats    *testenv.NATS
	redis   *testenv.Redis // nil with the JetStream KV store
	js      jetstream.JetStream
	stream  jetstream.Stream
	srv     *httptest.Server
	reg     *prometheus.Registry
	metrics *Metrics
	logs    *testenv.Buffer
	url     string // notification URL, with the token when set
}

// setup is what a rigOpt may change before the receiver is built.
type setup struct {
	cfg  Config
	wrap func(Publisher) Publisher
}

type rigOpt func(*setup)

func withToken(s *setup) { s.cfg.URLToken = secret.New(urlToken) }

// withPublisher puts wrap around the real publisher.
func withPublisher(wrap func(Publisher) Publisher) rigOpt {
	return func(s *setup) { s.wrap = wrap }
}

func withAllowed(cidr string) rigOpt {
	return func(s *setup) {
		var p config.Prefixes
		if err := p.UnmarshalText([]byte(cidr)); err != nil {
			panic(err)
		}
		s.cfg.AllowedIPs = p
	}
}

// newRig starts NATS (and Redis when useRedis) and a receiver in front.
func newRig(t *testing.T, useRedis bool, opts ...rigOpt) *rig {
	t.Helper()
	r := &rig{t: t, nats: testenv.StartNATS(t), logs: &testenv.Buffer{}}
	nc := r.nats.Connect(t)
	var err error
	if r.js, err = jetstream.New(nc); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if r.stream, err = publisher.EnsureStream(ctx, r.js, publisher.StreamConfig{Name: "PAYCOMET", Prefix: prefix, Replicas: 1, DuplicateWindow: 10 * time.Minute}); err != nil {
		t.Fatal(err)
	}
	dopts := dedupe.Options{ClaimTTL: 10 * time.Second, SeenTTL: time.Hour}
	var store Deduper
	if useRedis {
		r.redis = testenv.StartRedis(t)
		rdb, err := dedupe.NewRedisClient(r.redis.URL())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { rdb.Close() })
		store = dedupe.NewRedis(rdb, dopts)
	} else {
		kv, err := dedupe.NewJetStreamKV(ctx, r.js, "PAYCOMET_DEDUPE", 1, dopts)
		if err != nil {
			t.Fatal(err)
		}
		store = kv
	}
	st := setup{cfg: Config{Prefix: prefix, MaxBodyBytes: 4096, InFlightWait: 5 * time.Second, PublishTimeout: 2 * time.Second, StoreTimeout: 500 * time.Millisecond}}
	for _, o := range opts {
		o(&st)
	}
	cfg := st.cfg
	var pub Publisher = publisher.New(r.js, "PAYCOMET")
	if st.wrap != nil {
		pub = st.wrap(pub)
	}
	r.reg = prometheus.NewRegistry()
	r.metrics = NewMetrics(r.reg)
	v := events.NewVerifier(merchant, map[string]secret.Value{terminal: secret.New(password), terminal2: secret.New(password2)})
	h, err := New(cfg, v, store, pub, r.metrics, slog.New(slog.NewJSONHandler(r.logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	r.srv = httptest.NewServer(h)
	t.Cleanup(r.srv.Close)
	r.url = r.srv.URL + Path
	if !cfg.URLToken.IsZero() {
		r.url += "/" + cfg.URLToken.Reveal()
	}
	return r
}

// sample is a correctly signed notification for this rig's terminal.
func sample(typ int, order string, mod ...func(*demo.SampleOptions)) url.Values {
	o := demo.SampleOptions{Type: typ, MerchantCode: merchant, Terminal: terminal, Password: password,
		Order: order, Response: "OK", Amount: 1250, Currency: "EUR", IdUser: 70001, TokenUser: "TOKENabc123XYZ",
		MonthsToExpire: 2, When: time.Date(2026, 11, 20, 10, 30, 0, 0, time.UTC)}
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

// storedEvent is one message of the stream, decoded.
type storedEvent struct {
	Subject string
	MsgID   string
	CT      string
	Event   struct {
		SpecVersion     string          `json:"specversion"`
		ID              string          `json:"id"`
		Source          string          `json:"source"`
		Type            string          `json:"type"`
		Subject         string          `json:"subject"`
		Time            string          `json:"time"`
		DataContentType string          `json:"datacontenttype"`
		DataSchema      string          `json:"dataschema"`
		Data            json.RawMessage `json:"data"`
	}
	Raw []byte
}

// events returns every message in the stream, each checked against the
// CloudEvents attributes the contract promises and its data's JSON Schema.
func (r *rig) events() []storedEvent {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	info, err := r.stream.Info(ctx)
	if err != nil {
		r.t.Fatal(err)
	}
	var out []storedEvent
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := r.stream.GetMsg(ctx, seq)
		if err != nil {
			r.t.Fatalf("get msg %d: %v", seq, err)
		}
		var se storedEvent
		se.Subject, se.MsgID, se.CT, se.Raw = m.Subject, m.Header.Get("Nats-Msg-Id"), m.Header.Get("Content-Type"), m.Data
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
