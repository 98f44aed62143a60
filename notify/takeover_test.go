package notify_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
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
	"github.com/paycomet-notify/paycomet-notify/secret"
)

const (
	tkMerchant = "MCTAKE01"
	tkTerminal = "5101"
	tkPassword = "takeover-terminal-pw"
	// The old behaviour answered 503 until the dead holder's claim expired.
	tkClaimTTL     = 15 * time.Second
	tkInFlightWait = 300 * time.Millisecond
)

type tkRig struct {
	path   *notify.Path
	store  notify.Deduper
	pub    *publisher.Publisher
	stream jetstream.Stream
	reg    *prometheus.Registry
}

type failingPublisher struct{}

func (failingPublisher) Publish(context.Context, string, string, []byte) (publisher.Ack, error) {
	return publisher.Ack{}, errors.New("no JetStream")
}

func newTakeoverRig(t *testing.T, useRedis bool, pub notify.Publisher) *tkRig {
	t.Helper()
	ctx := context.Background()
	nc := testenv.StartNATS(t).Connect(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	sc := publisher.StreamsConfig{Name: "PAYCOMET", Prefix: "paycomet", Replicas: 1, DuplicateWindow: 10 * time.Minute,
		RejectedMaxBytes: 1 << 20, RejectedMaxAge: time.Hour}
	streams, err := publisher.EnsureStreams(ctx, js, sc)
	if err != nil {
		t.Fatal(err)
	}
	dopts := dedupe.Options{ClaimTTL: tkClaimTTL, SeenTTL: time.Hour}
	var store notify.Deduper
	if useRedis {
		rdb, err := dedupe.NewRedisClient(testenv.StartRedis(t).URL())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { rdb.Close() })
		s := dedupe.NewRedis(rdb, dopts)
		t.Cleanup(func() { s.Close() })
		store = s
	} else {
		kv, err := dedupe.NewJetStreamKV(ctx, js, "PAYCOMET_DEDUPE", 1, dopts)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { kv.Close() })
		store = kv
	}
	r := &tkRig{store: store, pub: publisher.New(js, sc.Name), stream: streams.Events, reg: prometheus.NewRegistry()}
	if pub == nil {
		pub = r.pub
	}
	v := events.NewVerifier(tkMerchant, map[string]secret.Value{tkTerminal: secret.New(tkPassword)})
	cfg := notify.Config{Prefix: "paycomet", InFlightWait: tkInFlightWait, PublishTimeout: 2 * time.Second,
		StoreTimeout: time.Second, Terminals: []string{tkTerminal}}
	r.path = notify.New(cfg, v, store, pub, publisher.New(js, sc.RejectedName()), notify.NewMetrics(r.reg),
		slog.New(slog.NewJSONHandler(io.Discard, nil)))
	return r
}

// event is what the receiver makes of body: its id and encoded event.
func tkEvent(t *testing.T, body string) (events.Event, []byte) {
	t.Helper()
	form, err := events.DecodeForm([]byte(body), "")
	if err != nil {
		t.Fatal(err)
	}
	v := events.NewVerifier(tkMerchant, map[string]secret.Value{tkTerminal: secret.New(tkPassword)})
	auth, err := v.Authenticate(form.Values(), events.Channel{})
	if err != nil {
		t.Fatal(err)
	}
	ev, err := events.Parse(form, auth, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	enc, err := ev.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return ev, enc
}

func (r *tkRig) process(body string) (notify.Outcome, time.Duration) {
	t0 := time.Now()
	o := r.path.Process(context.Background(), notify.Request{Body: []byte(body),
		ContentType: "application/x-www-form-urlencoded", Source: netip.MustParseAddr("127.0.0.1")})
	return o, time.Since(t0)
}

// eventsWithID counts the stream's messages carrying Nats-Msg-Id id.
func (r *tkRig) eventsWithID(t *testing.T, id string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	info, err := r.stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && seq > 0; seq++ {
		m, err := r.stream.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		if m.Header.Get(jetstream.MsgIDHeader) == id {
			n++
		}
	}
	return n
}

// TestCopyOfADeadHoldersClaim: a receiver killed mid-publish leaves a claim
// that lives the claim TTL. A copy of that notification (PAYCOMET's retry,
// on another receiver) is accepted after INFLIGHT_WAIT and one publish, not
// after the claim TTL, with exactly one event whether or not the dead
// holder's publish had landed; and never before JetStream acknowledged it.
// Before the takeover the copy was answered 503 for the claim's whole life.
func TestCopyOfADeadHoldersClaim(t *testing.T) {
	for _, useRedis := range []bool{true, false} {
		for _, landed := range []bool{false, true} {
			t.Run(fmt.Sprintf("redis=%v/holder_published=%v", useRedis, landed), func(t *testing.T) {
				r := newTakeoverRig(t, useRedis, nil)
				body := demo.Sample(demo.SampleOptions{Type: 1, MerchantCode: tkMerchant, Terminal: tkTerminal,
					Password: tkPassword, Order: fmt.Sprintf("TK%v%v", useRedis, landed), When: time.Now()}).Encode()
				ev, enc := tkEvent(t, body)
				ctx := context.Background()
				// The dead holder: claimed, maybe published, never marked.
				if _, st, err := r.store.Claim(ctx, ev.ID); err != nil || st != dedupe.Claimed {
					t.Fatalf("holder's claim = %v, %v", st, err)
				}
				if landed {
					if _, err := r.pub.Publish(ctx, ev.Topic("paycomet"), ev.ID, enc); err != nil {
						t.Fatal(err)
					}
				}

				o, took := r.process(body)
				want := notify.Accepted
				if landed {
					want = notify.Duplicate
				}
				if o.Kind != want {
					t.Fatalf("copy of a dead holder's notification: %v (%s), want %v", o.Kind, o.Detail, want)
				}
				if took < tkInFlightWait || took > 5*time.Second {
					t.Errorf("copy answered after %v, want between INFLIGHT_WAIT (%v) and well under the claim TTL (%v)",
						took, tkInFlightWait, tkClaimTTL)
				}
				if n := r.eventsWithID(t, ev.ID); n != 1 {
					t.Errorf("%d events for the notification, want 1", n)
				}
				if got := testenv.Metric(t, r.reg, notify.MetricInflightWaits, "result", "takeover"); got != 1 {
					t.Errorf("%s{result=takeover} = %v, want 1", notify.MetricInflightWaits, got)
				}

				// The takeover that stored the event marked it seen: the next
				// copy is a duplicate at once. (After a duplicate ack the
				// mark is the holder's to write; this one is dead, so the
				// next copy takes over again, with the same one event.)
				o, took = r.process(body)
				if o.Kind != notify.Duplicate {
					t.Fatalf("next copy: %v (%s), want duplicate", o.Kind, o.Detail)
				}
				if !landed && took >= tkInFlightWait {
					t.Errorf("next copy waited %v: the takeover did not mark the key seen", took)
				}
				if n := r.eventsWithID(t, ev.ID); n != 1 {
					t.Errorf("%d events after the next copy, want 1", n)
				}
			})
		}
	}
}

// TestTakeoverPublishFails: a copy that takes over and cannot publish is
// answered 503, like a first copy; nothing is remembered.
func TestTakeoverPublishFails(t *testing.T) {
	r := newTakeoverRig(t, true, failingPublisher{})
	body := demo.Sample(demo.SampleOptions{Type: 1, MerchantCode: tkMerchant, Terminal: tkTerminal,
		Password: tkPassword, Order: "TKFAIL", When: time.Now()}).Encode()
	ev, _ := tkEvent(t, body)
	if _, st, err := r.store.Claim(context.Background(), ev.ID); err != nil || st != dedupe.Claimed {
		t.Fatalf("holder's claim = %v, %v", st, err)
	}
	if o, _ := r.process(body); o.Kind != notify.Unavailable {
		t.Fatalf("takeover without JetStream: %v, want unavailable", o.Kind)
	}
	if n := r.eventsWithID(t, ev.ID); n != 0 {
		t.Errorf("%d events, want 0", n)
	}
}

// inProcessPublisher answers the first n publishes as a clustered stream
// answers one whose Nats-Msg-Id it is still committing, then publishes.
type inProcessPublisher struct {
	next  notify.Publisher
	n     int
	calls int
}

func (p *inProcessPublisher) Publish(ctx context.Context, subject, id string, body []byte) (publisher.Ack, error) {
	p.calls++
	if p.calls <= p.n {
		return publisher.Ack{}, fmt.Errorf("publish %s: %w", subject,
			fmt.Errorf("nats: %w", &jetstream.APIError{Code: 409, ErrorCode: 10158, Description: "duplicate message id is in process"}))
	}
	return p.next.Publish(ctx, subject, id, body)
}

// TestPublishRetriedWhileTheSameIDIsCommitting: "duplicate message id is in
// process" (a takeover racing the first copy's publish on a cluster) is
// neither durable nor a failure: the publish is tried again until its
// outcome is known.
func TestPublishRetriedWhileTheSameIDIsCommitting(t *testing.T) {
	p := &inProcessPublisher{n: 3}
	r := newTakeoverRig(t, true, p)
	p.next = r.pub
	body := demo.Sample(demo.SampleOptions{Type: 1, MerchantCode: tkMerchant, Terminal: tkTerminal,
		Password: tkPassword, Order: "TKINPROC", When: time.Now()}).Encode()
	ev, _ := tkEvent(t, body)
	if o, _ := r.process(body); o.Kind != notify.Accepted {
		t.Fatalf("outcome %v (%s), want accepted after the in-process answers", o.Kind, o.Detail)
	}
	if p.calls != 4 {
		t.Errorf("%d publishes, want 4 (3 in process, then stored)", p.calls)
	}
	if n := r.eventsWithID(t, ev.ID); n != 1 {
		t.Errorf("%d events, want 1", n)
	}
}

// TestConflictingCopyQuarantineUnavailable: a conflicting copy of an
// accepted notification is answered 200 (its event is durable) even when
// its quarantine message cannot be stored; that loss is counted, never
// silent.
func TestConflictingCopyQuarantineUnavailable(t *testing.T) {
	r := newTakeoverRig(t, true, nil)
	// The same store and event publisher, but a quarantine that fails.
	reg := prometheus.NewRegistry()
	v := events.NewVerifier(tkMerchant, map[string]secret.Value{tkTerminal: secret.New(tkPassword)})
	path := notify.New(notify.Config{Prefix: "paycomet", InFlightWait: tkInFlightWait, PublishTimeout: 2 * time.Second,
		StoreTimeout: time.Second, Terminals: []string{tkTerminal}}, v, r.store, r.pub, failingPublisher{},
		notify.NewMetrics(reg), slog.New(slog.NewJSONHandler(io.Discard, nil)))
	process := func(body string) notify.Outcome {
		return path.Process(context.Background(), notify.Request{Body: []byte(body),
			ContentType: "application/x-www-form-urlencoded", Source: netip.MustParseAddr("127.0.0.1")})
	}
	f := demo.Sample(demo.SampleOptions{Type: 1, MerchantCode: tkMerchant, Terminal: tkTerminal,
		Password: tkPassword, Order: "TKCONFLICT", When: time.Now()})
	if o := process(f.Encode()); o.Kind != notify.Accepted {
		t.Fatalf("first copy: %v (%s), want accepted", o.Kind, o.Detail)
	}
	f.Set("AuthCode", "edited-by-a-replayer") // unsigned: same event id, other fields
	if o := process(f.Encode()); o.Kind != notify.Duplicate {
		t.Fatalf("conflicting copy with the quarantine down: %v (%s), want duplicate (200)", o.Kind, o.Detail)
	}
	if got := testenv.Metric(t, reg, notify.MetricConflictingCopies); got != 1 {
		t.Errorf("%s = %v, want 1", notify.MetricConflictingCopies, got)
	}
	if got := testenv.Metric(t, reg, notify.MetricRejectedNotStored, "cause", notify.CauseQuarantineUnavailable); got != 1 {
		t.Errorf("%s{cause=%s} = %v, want 1", notify.MetricRejectedNotStored, notify.CauseQuarantineUnavailable, got)
	}
}
