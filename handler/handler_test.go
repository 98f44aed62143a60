package handler

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"github.com/paycomet-notify/paycomet-notify/demo"
	"github.com/paycomet-notify/paycomet-notify/publisher"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/paycomet-notify/paycomet-notify/events"
	"github.com/paycomet-notify/paycomet-notify/internal/testenv"
)

// TestStatusTable drives every row of contract section 4 over real HTTP,
// NATS and dedupe store, and checks what reached the stream.
func TestStatusTable(t *testing.T) {
	plain := newRig(t, false)
	tok := newRig(t, false, withToken)
	allowOther := newRig(t, false, withAllowed("10.0.0.0/8"))
	allowLocal := newRig(t, false, withAllowed("127.0.0.1/32"))

	unknownTerminal := sample(1, "ORD9")
	unknownTerminal.Set("TpvID", "5555")
	missingAmount := sample(1, "ORD10", func(o *demo.SampleOptions) {})
	missingAmount.Del("Amount")
	events.Sign(missingAmount, merchant, password) // signed as sent: the problem is the missing field, not the signature
	wrongHash := sample(1, "ORD11")
	wrongHash.Set("NotificationHash", strings.Repeat("ab", 64))
	noHash := sample(1, "ORD12")
	noHash.Del("NotificationHash")
	tampered := sample(1, "ORD13")
	tampered.Set("Amount", "999999")
	otherTerminalsHash := sample(1, "ORD14")
	otherTerminalsHash.Set("TpvID", terminal2)

	rows := []struct {
		name        string
		rig         *rig
		url         string // default: the rig's notification URL
		ct          string // default: form
		body        string
		status      int
		bodyHas     string
		quarantined bool
		subject     string // the event expected on this subject
	}{
		{name: "ping", rig: plain, body: "ping=1", status: 200, bodyHas: "PING OK"},
		{name: "ping in query, no body", rig: plain, url: plain.url + "?ping=1", ct: "-", status: 200, bodyHas: "PING OK"},
		{name: "authorization OK", rig: plain, body: sample(1, "ORD1").Encode(), status: 200, bodyHas: "OK", subject: "paycomet.4321.authorization.ok"},
		{name: "authorization KO", rig: plain, body: sample(1, "ORD2", func(o *demo.SampleOptions) { o.Response = "KO" }).Encode(), status: 200, subject: "paycomet.4321.authorization.ko"},
		{name: "card registration", rig: plain, body: sample(107, "ORD3").Encode(), status: 200, subject: "paycomet.4321.card_registration.ok"},
		{name: "fields in the query string", rig: plain, url: plain.url + "?" + sample(2, "ORD4").Encode(), ct: "-", status: 200, subject: "paycomet.4321.refund.ok"},
		{name: "no TransactionType", rig: plain, body: "Order=1&Response=OK", status: 400, bodyHas: "TransactionType", quarantined: true},
		{name: "non-numeric TransactionType", rig: plain, body: "TransactionType=abc", status: 400, bodyHas: "TransactionType", quarantined: true},
		{name: "required field missing", rig: plain, body: missingAmount.Encode(), status: 400, bodyHas: "Amount", quarantined: true},
		{name: "malformed form encoding", rig: plain, body: "TransactionType=1&Order=%zz", status: 400, quarantined: true},
		{name: "wrong hash", rig: plain, body: wrongHash.Encode(), status: 401, quarantined: true},
		{name: "missing hash", rig: plain, body: noHash.Encode(), status: 401, bodyHas: "NotificationHash", quarantined: true},
		{name: "tampered amount", rig: plain, body: tampered.Encode(), status: 401, quarantined: true},
		{name: "unknown terminal", rig: plain, body: unknownTerminal.Encode(), status: 401, quarantined: true},
		{name: "hash of another terminal", rig: plain, body: otherTerminalsHash.Encode(), status: 401, quarantined: true},
		{name: "108 without url token", rig: plain, body: sample(108, "").Encode(), status: 401, quarantined: true},
		{name: "108 through url token", rig: tok, body: sample(108, "").Encode(), status: 200, subject: "paycomet.4321.card_expiry.notice"},
		{name: "signed type through url token", rig: tok, body: sample(9, "ORD5").Encode(), status: 200, subject: "paycomet.4321.subscription.ok"},
		{name: "bare path when token set", rig: tok, url: tok.srv.URL + Path, body: sample(1, "ORD6").Encode(), status: 404},
		{name: "wrong token", rig: tok, url: tok.srv.URL + Path + "/not-the-token-0123456789", body: sample(1, "ORD6").Encode(), status: 404},
		{name: "other path", rig: plain, url: plain.srv.URL + "/elsewhere", body: sample(1, "ORD6").Encode(), status: 404},
		{name: "source not allowed", rig: allowOther, body: sample(1, "ORD7").Encode(), status: 403, quarantined: true},
		{name: "108 from allowed source", rig: allowLocal, body: sample(108, "", func(o *demo.SampleOptions) { o.IdUser = 70002 }).Encode(), status: 200, subject: "paycomet.4321.card_expiry.notice"},
		{name: "oversize body", rig: plain, body: sample(1, "ORD8").Encode() + "&Pad=" + strings.Repeat("x", 5000), status: 413, quarantined: true},
		{name: "json body", rig: plain, ct: "application/json", body: `{"TransactionType":"1"}`, status: 415, quarantined: true},
		{name: "unknown positive type kept whole", rig: plain, body: sample(200, "ORD15").Encode(), status: 200, subject: "paycomet.4321.operation_200.ok"},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			r := row.rig
			r.t = t
			u, ct := row.url, row.ct
			if u == "" {
				u = r.url
			}
			switch ct {
			case "":
				ct = "application/x-www-form-urlencoded"
			case "-":
				ct = ""
			}
			before := len(r.events())
			beforeRejected := len(r.eventsOn("paycomet.rejected"))
			got := r.post(u, ct, row.body)
			if got.status != row.status {
				t.Fatalf("POST %s = %d %q, want %d", row.name, got.status, got.body, row.status)
			}
			if row.bodyHas != "" && !strings.Contains(got.body, row.bodyHas) {
				t.Errorf("body %q does not name %q", got.body, row.bodyHas)
			}
			after := r.events()
			rejected := r.eventsOn("paycomet.rejected")
			switch {
			case row.quarantined:
				if len(rejected) != beforeRejected+1 {
					t.Fatalf("rejected events %d -> %d, want one more", beforeRejected, len(rejected))
				}
				q := rejected[len(rejected)-1]
				var data struct {
					Reason string              `json:"reason"`
					Status int                 `json:"status"`
					Remote string              `json:"remote_addr"`
					Fields map[string][]string `json:"fields"`
				}
				if err := json.Unmarshal(q.Event.Data, &data); err != nil {
					t.Fatal(err)
				}
				if q.Event.Type != "paycomet.rejected" || data.Status != row.status || data.Reason == "" || data.Remote != "127.0.0.1" {
					t.Errorf("quarantine event = %s", q.Raw)
				}
				if row.status != 413 && row.status != 415 && len(data.Fields) == 0 {
					t.Errorf("quarantine event has no fields: %s", q.Raw)
				}
			case row.subject != "":
				on := r.eventsOn(row.subject)
				if len(after) != before+1 || len(on) == 0 {
					t.Fatalf("stream %d -> %d events, %d on %s; want exactly one new", before, len(after), len(on), row.subject)
				}
			default:
				if len(after) != before {
					t.Errorf("stream %d -> %d events, want none (not a notification)", before, len(after))
				}
			}
		})
	}
}

// TestDuplicateGetsOKAndNoSecondEvent: PAYCOMET's second copy is answered
// 200 from the dedupe store, and only one event exists, for both stores.
func TestDuplicateGetsOKAndNoSecondEvent(t *testing.T) {
	for _, useRedis := range []bool{true, false} {
		t.Run(fmt.Sprintf("redis=%v", useRedis), func(t *testing.T) {
			r := newRig(t, useRedis)
			n := sample(1, "DUP1")
			for i := 0; i < 3; i++ {
				if got := r.send(n); got.status != 200 {
					t.Fatalf("copy %d = %d %q", i, got.status, got.body)
				}
			}
			if got := len(r.events()); got != 1 {
				t.Fatalf("stream has %d events, want 1", got)
			}
			layer := "jetstream_kv"
			if useRedis {
				layer = "redis"
			}
			if got := r.counter(MetricDuplicates, "layer", layer); got != 2 {
				t.Errorf("%s{layer=%s} = %v, want 2", MetricDuplicates, layer, got)
			}
			// A KO and a later OK for the same order are two events.
			r.send(sample(1, "DUP2", func(o *demo.SampleOptions) { o.Response = "KO" }))
			r.send(sample(1, "DUP2"))
			if got := len(r.events()); got != 3 {
				t.Errorf("stream has %d events after KO+OK, want 3", got)
			}
			if got := r.counter(MetricAcceptedUnpublished); got != 0 {
				t.Errorf("%s = %v", MetricAcceptedUnpublished, got)
			}
		})
	}
}

// TestConcurrentCopies: 50 copies at once give one event, and none is
// answered 200 before it is durable.
func TestConcurrentCopies(t *testing.T) {
	for _, useRedis := range []bool{true, false} {
		t.Run(fmt.Sprintf("redis=%v", useRedis), func(t *testing.T) {
			r := newRig(t, useRedis)
			body := sample(1, "CONC1").Encode()
			var wg sync.WaitGroup
			statuses := make([]int, 50)
			for i := range statuses {
				wg.Add(1)
				go func() {
					defer wg.Done()
					resp, err := http.Post(r.url, "application/x-www-form-urlencoded", strings.NewReader(body))
					if err != nil {
						t.Error(err)
						return
					}
					resp.Body.Close()
					statuses[i] = resp.StatusCode
					if resp.StatusCode == 200 {
						// Durable before 200: the event is in the stream now.
						if n := len(r.eventsOn("paycomet.4321.authorization.ok")); n != 1 {
							t.Errorf("200 answered while the stream held %d events", n)
						}
					}
				}()
			}
			wg.Wait()
			for i, s := range statuses {
				if s != 200 {
					t.Errorf("copy %d = %d, want 200", i, s)
				}
			}
			if got := len(r.events()); got != 1 {
				t.Fatalf("stream has %d events, want 1", got)
			}
		})
	}
}

// TestNATSDownThenBack: 503 with Retry-After and nothing remembered; after
// NATS returns the same notification gives 200 and exactly one event.
func TestNATSDownThenBack(t *testing.T) {
	for _, useRedis := range []bool{true, false} {
		t.Run(fmt.Sprintf("redis=%v", useRedis), func(t *testing.T) {
			r := newRig(t, useRedis)
			n := sample(1, "DOWN1")
			r.nats.Stop()
			got := r.send(n)
			if got.status != 503 || got.header.Get("Retry-After") == "" {
				t.Fatalf("with NATS down = %d %q (Retry-After %q), want 503 with Retry-After", got.status, got.body, got.header.Get("Retry-After"))
			}
			// A rejected notification cannot be quarantined either: 503, not 4xx.
			if got := r.post(r.url, "application/x-www-form-urlencoded", "TransactionType=abc"); got.status != 503 {
				t.Errorf("bad notification with NATS down = %d, want 503", got.status)
			}
			r.nats.Start()
			testenv.Eventually(t, 10*time.Second, "200 after NATS is back", func() bool { return r.send(n).status == 200 })
			if got := r.send(n); got.status != 200 {
				t.Fatalf("retry = %d", got.status)
			}
			if got := len(r.eventsOn("paycomet.4321.authorization.ok")); got != 1 {
				t.Fatalf("stream has %d events for the notification, want 1", got)
			}
		})
	}
}

// TestRedisDownStillPublishesOnce: with Redis stopped the receiver publishes
// anyway and JetStream's Nats-Msg-Id window keeps it to one event.
func TestRedisDownStillPublishesOnce(t *testing.T) {
	r := newRig(t, true)
	r.redis.Stop()
	n := sample(1, "NOREDIS1")
	for i := 0; i < 3; i++ {
		if got := r.send(n); got.status != 200 {
			t.Fatalf("copy %d with Redis down = %d %q", i, got.status, got.body)
		}
	}
	if got := len(r.events()); got != 1 {
		t.Fatalf("stream has %d events, want 1", got)
	}
	if got := r.counter(MetricWithoutDedupe); got != 3 {
		t.Errorf("%s = %v, want 3", MetricWithoutDedupe, got)
	}
	if got := r.counter(MetricDuplicates, "layer", "jetstream"); got != 2 {
		t.Errorf("%s{layer=jetstream} = %v, want 2", MetricDuplicates, got)
	}
	if got := r.counter(MetricDedupeErrors, "op", "claim"); got < 3 {
		t.Errorf("%s{op=claim} = %v, want >= 3", MetricDedupeErrors, got)
	}
	r.redis.Start()
	n2 := sample(1, "NOREDIS2")
	r.send(n2)
	if got := r.send(n2); got.status != 200 {
		t.Fatal(got)
	}
	if got := r.counter(MetricDuplicates, "layer", "redis"); got != 1 {
		t.Errorf("after Redis is back, %s{layer=redis} = %v, want 1", MetricDuplicates, got)
	}
}

// TestNoSecretsInLogsOrEvents sends every kind of request and searches all
// logs and events for the passwords, their MD5, and the URL token; TokenUser
// must not be in logs.
func TestNoSecretsInLogsOrEvents(t *testing.T) {
	r := newRig(t, false, withToken)
	bad := sample(1, "SEC1")
	bad.Set("NotificationHash", strings.Repeat("0", 128))
	reqs := []url.Values{sample(1, "SEC2"), sample(107, "SEC3"), sample(108, ""), sample(9, "SEC4"), bad, sample(1, "SEC2")}
	for _, f := range reqs {
		r.send(f)
	}
	r.post(r.url, "application/x-www-form-urlencoded", "TransactionType=1&TpvID=4321")
	r.post(r.srv.URL+Path+"/wrong-token-0123456789abc", "application/x-www-form-urlencoded", sample(1, "SEC5").Encode())
	r.nats.Stop()
	r.send(sample(1, "SEC6"))
	r.nats.Start()
	testenv.Eventually(t, 10*time.Second, "NATS back", func() bool { return r.send(sample(1, "SEC7")).status == 200 })

	var all strings.Builder
	for _, e := range r.events() {
		all.Write(e.Raw)
	}
	logs := r.logs.String()
	md5pw := md5.Sum([]byte(password))
	for _, s := range []string{password, password2, hex.EncodeToString(md5pw[:]), urlToken} {
		if strings.Contains(logs, s) {
			t.Errorf("logs contain secret %q", s)
		}
		if strings.Contains(all.String(), s) {
			t.Errorf("events contain secret %q", s)
		}
	}
	if strings.Contains(logs, "TOKENabc123XYZ") {
		t.Errorf("logs contain a TokenUser")
	}
	if !strings.Contains(logs, "rejected") {
		t.Errorf("expected rejection log lines, got:\n%s", logs)
	}
}

// slowPublisher holds the first publish until release is closed, and
// records when each publish was acknowledged.
type slowPublisher struct {
	next    Publisher
	entered chan struct{}
	release chan struct{}
	once    sync.Once
	mu      sync.Mutex
	acked   []time.Time
	freed   sync.Once
}

// free lets the held publish go on; safe to call more than once.
func (s *slowPublisher) free() { s.freed.Do(func() { close(s.release) }) }

func (s *slowPublisher) Publish(ctx context.Context, subject, id string, body []byte) (publisher.Ack, error) {
	first := false
	s.once.Do(func() { first = true })
	if first {
		close(s.entered)
		<-s.release
	}
	ack, err := s.next.Publish(ctx, subject, id, body)
	if err == nil {
		s.mu.Lock()
		s.acked = append(s.acked, time.Now())
		s.mu.Unlock()
	}
	return ack, err
}

// TestCopyInFlightWaitsForTheFirst: a copy that arrives while the first is
// still being published is not answered until the first is acknowledged,
// and publishes nothing itself; for both stores.
func TestCopyInFlightWaitsForTheFirst(t *testing.T) {
	for _, useRedis := range []bool{true, false} {
		t.Run(fmt.Sprintf("redis=%v", useRedis), func(t *testing.T) {
			slow := &slowPublisher{entered: make(chan struct{}), release: make(chan struct{})}
			r := newRig(t, useRedis, withPublisher(func(p Publisher) Publisher { slow.next = p; return slow }))
			t.Cleanup(slow.free) // registered after the rig: runs before its server closes
			body := sample(1, "INFLIGHT1").Encode()
			post := func(out chan<- time.Time) {
				resp, err := http.Post(r.url, "application/x-www-form-urlencoded", strings.NewReader(body))
				if err != nil {
					t.Error(err)
					out <- time.Time{}
					return
				}
				resp.Body.Close()
				if resp.StatusCode != 200 {
					t.Errorf("answer = %d, want 200", resp.StatusCode)
				}
				out <- time.Now()
			}
			first, second := make(chan time.Time, 1), make(chan time.Time, 1)
			go post(first)
			<-slow.entered // the first copy holds the claim and is publishing
			go post(second)
			select {
			case <-second:
				t.Fatal("the second copy was answered while the first was still unpublished")
			case <-time.After(300 * time.Millisecond):
			}
			slow.free()
			firstAt, secondAt := <-first, <-second
			slow.mu.Lock()
			acked := slow.acked
			slow.mu.Unlock()
			if len(acked) != 1 {
				t.Fatalf("%d publishes acknowledged, want 1 (the copy must not publish)", len(acked))
			}
			if secondAt.Before(acked[0]) || firstAt.Before(acked[0]) {
				t.Errorf("answered before the ack: first %v, second %v, ack %v", firstAt, secondAt, acked[0])
			}
			if got := len(r.events()); got != 1 {
				t.Errorf("stream has %d events, want 1", got)
			}
			if got := r.counter(MetricInflightWaits, "result", "seen"); got != 1 {
				t.Errorf("%s{result=seen} = %v, want 1", MetricInflightWaits, got)
			}
		})
	}
}
