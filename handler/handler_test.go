package handler

import (
	"bufio"
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/paycomet-notify/paycomet-notify/demo"
	"github.com/paycomet-notify/paycomet-notify/events"
	"github.com/paycomet-notify/paycomet-notify/internal/testenv"
	"github.com/paycomet-notify/paycomet-notify/notify"
	"github.com/paycomet-notify/paycomet-notify/publisher"
)

// TestStatusTable drives every row of contract section 4 over real HTTP,
// NATS and dedupe store, and checks what reached each stream: the event, or
// one quarantine message carrying the exact request.
func TestStatusTable(t *testing.T) {
	plain := newRig(t, false)
	tok := newRig(t, false, withToken)
	allowOther := newRig(t, false, withAllowed("10.0.0.0/8"))
	allowLocal := newRig(t, false, withAllowed("127.0.0.1/32"))

	unknownTerminal := sample(1, "ORD9")
	unknownTerminal.Set("TpvID", "5555")
	missingAmount := sample(1, "ORD10")
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
	oversize := sample(1, "ORD8").Encode() + "&Pad=" + strings.Repeat("x", 5000)

	rows := []struct {
		name    string
		rig     *rig
		url     string // default: the rig's notification URL
		query   string // appended to the URL
		ct      string // default: form
		body    string
		status  int
		bodyHas string
		reason  string // the quarantine reason; "" when nothing is quarantined
		subject string // the event expected on this subject
	}{
		{name: "ping", rig: plain, body: "ping=1", status: 200, bodyHas: "PING OK"},
		{name: "ping in query, no body", rig: plain, query: "ping=1", ct: "-", status: 200, bodyHas: "PING OK"},
		{name: "authorization OK", rig: plain, body: sample(1, "ORD1").Encode(), status: 200, bodyHas: "OK", subject: "paycomet.4321.authorization.ok"},
		{name: "authorization KO", rig: plain, body: sample(1, "ORD2", func(o *demo.SampleOptions) { o.Response = "KO" }).Encode(), status: 200, subject: "paycomet.4321.authorization.ko"},
		{name: "card registration", rig: plain, body: sample(107, "ORD3").Encode(), status: 200, subject: "paycomet.4321.card_registration.ok"},
		{name: "fields in the query string", rig: plain, query: sample(2, "ORD4").Encode(), ct: "-", status: 200, subject: "paycomet.4321.refund.ok"},
		{name: "no TransactionType", rig: plain, body: "Order=1&Response=OK", status: 400, bodyHas: "TransactionType", reason: events.ReasonMalformed},
		{name: "non-numeric TransactionType", rig: plain, body: "TransactionType=abc", status: 400, bodyHas: "TransactionType", reason: events.ReasonMalformed},
		{name: "required field missing", rig: plain, body: missingAmount.Encode(), status: 400, bodyHas: "Amount", reason: events.ReasonMalformed},
		{name: "malformed form encoding", rig: plain, body: "TransactionType=1&Order=%zz", status: 400, reason: events.ReasonMalformed},
		{name: "malformed query", rig: plain, query: "a=%zz", body: sample(1, "ORD16").Encode(), status: 400, reason: events.ReasonMalformed},
		{name: "wrong hash", rig: plain, body: wrongHash.Encode(), status: 401, reason: events.ReasonBadSignature},
		{name: "missing hash", rig: plain, body: noHash.Encode(), status: 401, bodyHas: "NotificationHash", reason: events.ReasonMissingSignature},
		{name: "tampered amount", rig: plain, body: tampered.Encode(), status: 401, reason: events.ReasonBadSignature},
		{name: "unknown terminal", rig: plain, body: unknownTerminal.Encode(), status: 401, reason: events.ReasonUnknownTerminal},
		{name: "hash of another terminal", rig: plain, body: otherTerminalsHash.Encode(), status: 401, reason: events.ReasonBadSignature},
		{name: "108 without url token", rig: plain, body: sample(108, "").Encode(), status: 401, reason: events.ReasonUnsignedWithoutToken},
		{name: "108 through url token", rig: tok, body: sample(108, "").Encode(), status: 200, subject: "paycomet.4321.card_expiry.notice"},
		{name: "signed type through url token", rig: tok, body: sample(9, "ORD5").Encode(), status: 200, subject: "paycomet.4321.subscription.ok"},
		{name: "bad request through url token", rig: tok, body: "TransactionType=abc", status: 400, reason: events.ReasonMalformed},
		{name: "bare path when token set", rig: tok, url: tok.srv.URL + Path, body: sample(1, "ORD6").Encode(), status: 404},
		{name: "wrong token", rig: tok, url: tok.srv.URL + Path + "/not-the-token-0123456789", body: sample(1, "ORD6").Encode(), status: 404},
		{name: "other path", rig: plain, url: plain.srv.URL + "/elsewhere", body: sample(1, "ORD6").Encode(), status: 404},
		{name: "source not allowed", rig: allowOther, body: sample(1, "ORD7").Encode(), status: 403, reason: events.ReasonForbiddenSource},
		{name: "108 from allowed source", rig: allowLocal, body: sample(108, "", func(o *demo.SampleOptions) { o.IdUser = 70002 }).Encode(), status: 200, subject: "paycomet.4321.card_expiry.notice"},
		{name: "oversize body", rig: plain, body: oversize, status: 413, reason: events.ReasonTooLarge},
		{name: "json body", rig: plain, ct: "application/json", body: `{"TransactionType":"1"}`, status: 415, reason: events.ReasonMediaType},
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
			if row.query != "" {
				u += "?" + row.query
			}
			switch ct {
			case "":
				ct = "application/x-www-form-urlencoded"
			case "-":
				ct = ""
			}
			before, beforeQ := len(r.events()), len(r.quarantined())
			got := r.post(u, ct, row.body)
			if got.status != row.status {
				t.Fatalf("POST %s = %d %q, want %d", row.name, got.status, got.body, row.status)
			}
			if row.bodyHas != "" && !strings.Contains(got.body, row.bodyHas) {
				t.Errorf("body %q does not name %q", got.body, row.bodyHas)
			}
			after, q := r.events(), r.quarantined()
			if row.reason == "" && len(q) != beforeQ {
				t.Errorf("quarantine %d -> %d messages, want none", beforeQ, len(q))
			}
			switch {
			case row.reason != "":
				if len(q) != beforeQ+1 {
					t.Fatalf("quarantine %d -> %d messages, want one more", beforeQ, len(q))
				}
				if len(after) != before {
					t.Errorf("a rejection added to the event stream: %d -> %d", before, len(after))
				}
				d := q[len(q)-1].rejection(t)
				wantBody, truncated := row.body, false
				if len(wantBody) > maxBody {
					wantBody, truncated = wantBody[:maxBody], true
				}
				if d.Reason != row.reason || d.Status != row.status || d.Source != "127.0.0.1" || d.Detail != got.body {
					t.Errorf("quarantine = reason %q status %d source %q detail %q; want %q %d 127.0.0.1 %q",
						d.Reason, d.Status, d.Source, d.Detail, row.reason, row.status, got.body)
				}
				if string(d.Request.Body) != wantBody || d.Request.Truncated != truncated || d.Request.Query != row.query ||
					d.Request.ContentType != ct || d.Request.URLTokenPath != (r == tok) {
					t.Errorf("quarantined request = %+v, want the exact request (body %d bytes, truncated %v, query %q, type %q)",
						d.Request, len(wantBody), truncated, row.query, ct)
				}
				if row.status != 413 && row.status != 415 && row.reason != events.ReasonMalformed && len(d.Fields) == 0 {
					t.Errorf("quarantine event has no fields: %s", q[len(q)-1].Raw)
				}
				if got := r.counter(notify.MetricQuarantined, "reason", row.reason); got < 1 {
					t.Errorf("%s{reason=%s} = %v", notify.MetricQuarantined, row.reason, got)
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
	plain.t = t
	if got := plain.counter(notify.MetricUnauthorized, "terminal", terminal); got != 4 {
		t.Errorf("%s{terminal=%s} = %v, want 4 (wrong hash, missing hash, tampered, 108 without token)", notify.MetricUnauthorized, terminal, got)
	}
	if got := plain.counter(notify.MetricUnauthorized, "terminal", terminal2); got != 1 {
		t.Errorf("%s{terminal=%s} = %v, want 1 (its hash made with the other password)", notify.MetricUnauthorized, terminal2, got)
	}
	if got := plain.counter(notify.MetricUnauthorized, "terminal", "other"); got != 1 {
		t.Errorf("%s{terminal=other} = %v, want 1 (unknown terminal)", notify.MetricUnauthorized, got)
	}
}

// TestReplayedCopies: a copy of an accepted notification whose signed
// fields are equal is a duplicate whatever else it says: 200 and no event.
// When its other fields differ it is also quarantined as conflicting_copy
// and counted; an identical copy is not. Before event ids derived from the
// signed fields only, each edited copy here minted a new "signed" event.
func TestReplayedCopies(t *testing.T) {
	edit := func(f url.Values, name, value string) url.Values {
		c := url.Values{}
		for k, vs := range f {
			c[k] = append([]string(nil), vs...)
		}
		c.Set(name, value)
		return c
	}
	for _, useRedis := range []bool{true, false} {
		t.Run(fmt.Sprintf("redis=%v", useRedis), func(t *testing.T) {
			r := newRig(t, useRedis)
			pay := sample(1, "RPL1", func(o *demo.SampleOptions) { o.IdUser = 70001 })
			reg := sample(107, "RPL2")
			other := sample(200, "RPL3")
			cases := []struct {
				name     string
				original url.Values
				copy     url.Values
				conflict bool
			}{
				{"identical payment", pay, pay, false},
				{"payment AuthCode", pay, edit(pay, "AuthCode", "999999"), true},
				{"payment IdUser", pay, edit(pay, "IdUser", "70099"), true},
				{"payment TokenUser", pay, edit(pay, "TokenUser", "TOKENforged0001"), true},
				{"payment ErrorID", pay, edit(pay, "ErrorID", "1001"), true},
				{"card registration IdUser", reg, edit(reg, "IdUser", "80099"), true},
				{"card registration TokenUser", reg, edit(reg, "TokenUser", "TOKENforged0002"), true},
				{"operation_200 field added", other, edit(other, "Extra", "1"), true},
				{"identical operation_200", other, other, false},
			}
			accepted := map[string]string{} // original body -> event id
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					r.t = t
					orig := tc.original.Encode()
					if _, ok := accepted[orig]; !ok {
						before := len(r.events())
						if got := r.send(tc.original); got.status != 200 {
							t.Fatalf("original = %d %q", got.status, got.body)
						}
						evs := r.events()
						if len(evs) != before+1 {
							t.Fatalf("original gave %d events", len(evs)-before)
						}
						accepted[orig] = evs[len(evs)-1].Event.ID
					}
					before, beforeQ := len(r.events()), len(r.quarantined())
					conflicts := r.counter(notify.MetricConflictingCopies)
					if got := r.send(tc.copy); got.status != 200 || got.body != "OK" {
						t.Fatalf("copy = %d %q, want 200 OK", got.status, got.body)
					}
					if n := len(r.events()); n != before {
						t.Errorf("the copy added %d events", n-before)
					}
					q := r.quarantined()
					wantQ, wantC := 0, 0.0
					if tc.conflict {
						wantQ, wantC = 1, 1
					}
					if len(q)-beforeQ != wantQ {
						t.Fatalf("quarantine got %d messages, want %d", len(q)-beforeQ, wantQ)
					}
					if got := r.counter(notify.MetricConflictingCopies) - conflicts; got != wantC {
						t.Errorf("%s moved by %v, want %v", notify.MetricConflictingCopies, got, wantC)
					}
					if tc.conflict {
						d := q[len(q)-1].rejection(t)
						if d.Reason != events.ReasonConflictingCopy || d.EventID != accepted[orig] || string(d.Request.Body) != tc.copy.Encode() {
							t.Errorf("quarantine = reason %q event_id %q (want %q), body %q", d.Reason, d.EventID, accepted[orig], d.Request.Body)
						}
					}
				})
			}
			r.t = t
			if got := r.counter(notify.MetricQuarantined, "reason", events.ReasonConflictingCopy); got != 7 {
				t.Errorf("%s{reason=conflicting_copy} = %v, want 7", notify.MetricQuarantined, got)
			}
			if logs := r.logs.String(); strings.Contains(logs, "TOKENforged") || strings.Contains(logs, "TOKENabc123XYZ") {
				t.Errorf("a TokenUser reached the logs:\n%s", logs)
			}
		})
	}
}

// TestStaleAndFuture: a signed notification older than DEDUPE_TTL or more
// than an hour ahead cannot be told from a replay: 400 naming the signed
// timestamp, quarantined as stale. A forged one is 401, since the signature
// is checked first.
func TestStaleAndFuture(t *testing.T) {
	r := newRig(t, true)
	at := func(d time.Duration) func(*demo.SampleOptions) {
		return func(o *demo.SampleOptions) { o.When = time.Now().Add(d) }
	}
	forged := sample(1, "STALE9", at(-200*time.Hour))
	forged.Set("NotificationHash", strings.Repeat("cd", 64))
	for _, tc := range []struct {
		name   string
		form   url.Values
		status int
		field  string
	}{
		{"payment older than DEDUPE_TTL", sample(1, "STALE1", at(-169*time.Hour)), 400, "BankDateTime"},
		{"payment two hours ahead", sample(1, "STALE2", at(2*time.Hour)), 400, "BankDateTime"},
		{"card registration older than DEDUPE_TTL", sample(107, "STALE3", at(-170*time.Hour)), 400, "DateTime"},
		{"forged stale payment", forged, 401, ""},
		{"payment a day old", sample(1, "FRESH1", at(-24*time.Hour)), 200, ""},
		{"payment ten minutes ahead", sample(1, "FRESH2", at(10*time.Minute)), 200, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r.t = t
			before, beforeQ := len(r.events()), len(r.quarantined())
			got := r.send(tc.form)
			if got.status != tc.status || !strings.Contains(got.body, tc.field) {
				t.Fatalf("= %d %q, want %d naming %q", got.status, got.body, tc.status, tc.field)
			}
			evs, q := r.events(), r.quarantined()
			switch tc.status {
			case 200:
				if len(evs) != before+1 {
					t.Errorf("no event for a fresh notification")
				}
			default:
				if len(evs) != before || len(q) != beforeQ+1 {
					t.Fatalf("events %d -> %d, quarantine %d -> %d; want no event and one quarantined", before, len(evs), beforeQ, len(q))
				}
				want := events.ReasonStale
				if tc.status == 401 {
					want = events.ReasonBadSignature
				}
				if d := q[len(q)-1].rejection(t); d.Reason != want || d.Status != tc.status {
					t.Errorf("quarantine reason %q status %d, want %q %d", d.Reason, d.Status, want, tc.status)
				}
			}
		})
	}
}

// TestAcceptStale: the path called directly, as quarantine replay
// --accept-stale will: a stale notification is accepted only when asked.
func TestAcceptStale(t *testing.T) {
	r := newRig(t, true)
	old := sample(1, "STALE5", func(o *demo.SampleOptions) { o.When = time.Now().Add(-300 * time.Hour) })
	req := notify.Request{Body: []byte(old.Encode()), ContentType: "application/x-www-form-urlencoded", Source: netip.MustParseAddr("192.0.2.7")}
	if o := r.path.Process(context.Background(), req); o.Kind != notify.Rejected || o.Reason != events.ReasonStale || o.Status != 400 || o.QuarantineID == "" {
		t.Fatalf("stale without AcceptStale = %+v", o)
	}
	req.AcceptStale = true
	o := r.path.Process(context.Background(), req)
	if o.Kind != notify.Accepted || o.EventID == "" {
		t.Fatalf("stale with AcceptStale = %+v", o)
	}
	if evs := r.events(); len(evs) != 1 || evs[0].Event.ID != o.EventID {
		t.Errorf("stream holds %d events, want the accepted one", len(evs))
	}
	if o2 := r.path.Process(context.Background(), req); o2.Kind != notify.Duplicate || o2.EventID != o.EventID {
		t.Errorf("second replay = %+v, want a duplicate of %s", o2, o.EventID)
	}
}

// TestOneMessagePerRequest: each rejected request is its own quarantine
// message with its own exact body. Before, the quarantine id depended only
// on reason, status and address: 4 different 415 bodies left 1 message, 2
// different 12,000-field bodies left 1, and 413/415 kept no body at all.
func TestOneMessagePerRequest(t *testing.T) {
	r := newRig(t, false, withMaxBody(65536))
	var sent []string
	for i := range 4 {
		body := fmt.Sprintf(`{"TransactionType":"1","n":%d}`, i)
		sent = append(sent, body)
		if got := r.post(r.url, "application/json", body); got.status != 415 {
			t.Fatalf("json body %d = %d", i, got.status)
		}
	}
	for _, name := range []string{"a", "b"} {
		body := strings.Repeat(name+"=1&", 12000)
		sent = append(sent, body)
		if got := r.post(r.url, "application/x-www-form-urlencoded", body); got.status != 400 {
			t.Fatalf("12,000-field body = %d %q", got.status, got.body)
		}
	}
	big := strings.Repeat("Pad=x&", 65536/6+100)
	if got := r.post(r.url, "application/x-www-form-urlencoded", big); got.status != 413 {
		t.Fatalf("oversize = %d", got.status)
	}
	q := r.quarantined()
	if len(q) != len(sent)+1 {
		t.Fatalf("quarantine holds %d messages for %d requests", len(q), len(sent)+1)
	}
	ids := map[string]bool{}
	for i, e := range q {
		ids[e.Event.ID] = true
		d := e.rejection(t)
		if i < len(sent) {
			if string(d.Request.Body) != sent[i] || d.Request.Truncated {
				t.Errorf("message %d body %.40q (%d bytes, truncated %v), want %.40q (%d bytes)", i, d.Request.Body, len(d.Request.Body), d.Request.Truncated, sent[i], len(sent[i]))
			}
			continue
		}
		if string(d.Request.Body) != big[:65536] || !d.Request.Truncated || d.Reason != events.ReasonTooLarge {
			t.Errorf("413 message keeps %d bytes (truncated %v, reason %q), want the first 65536 and truncated", len(d.Request.Body), d.Request.Truncated, d.Reason)
		}
	}
	if len(ids) != len(q) {
		t.Errorf("%d distinct ids for %d messages", len(ids), len(q))
	}
}

// TestQuarantineBounded: however many bad requests arrive, the quarantine
// stream stays within REJECTED_MAX_BYTES, keeping the newest. Before, every
// rejection went to the one unbounded stream (1.2 GB in 5 s).
func TestQuarantineBounded(t *testing.T) {
	const bound = 48 << 10
	r := newRig(t, false, withRejectedMaxBytes(bound))
	body := strings.Repeat("x", 3000)
	var last string
	for i := range 60 {
		last = fmt.Sprintf("%03d%s", i, body)
		if got := r.post(r.url, "text/plain", last); got.status != 415 {
			t.Fatalf("request %d = %d %q", i, got.status, got.body)
		}
	}
	info, err := r.quarantine.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Bytes > bound || info.State.Msgs == 0 || info.State.Msgs >= 60 {
		t.Fatalf("quarantine holds %d messages, %d bytes; want some, within %d bytes", info.State.Msgs, info.State.Bytes, bound)
	}
	q := r.quarantined()
	if d := q[len(q)-1].rejection(t); string(d.Request.Body) != last {
		t.Errorf("the newest rejection is not kept")
	}
	if got := r.counter(notify.MetricQuarantined, "reason", events.ReasonMediaType); got != 60 {
		t.Errorf("%s = %v, want 60", notify.MetricQuarantined, got)
	}
	if n := len(r.events()); n != 0 {
		t.Errorf("rejections reached the event stream: %d", n)
	}
}

// TestRejectedRateLimit: past REJECTED_RATE_PER_SOURCE (bursts of ten
// times it) a source's rejections are answered as usual but not stored,
// and counted. Before, 4 clients without the URL token wrote 9,796
// rejections in 5 s.
func TestRejectedRateLimit(t *testing.T) {
	const rate = 0.5 // a burst of 5, then one more every 2 s
	r := newRig(t, false, withToken, withRate(rate))
	bad := sample(1, "RATE1")
	bad.Set("NotificationHash", strings.Repeat("ef", 64))
	start := time.Now()
	const n = 20
	for i := range n {
		if got := r.send(bad); got.status != 401 {
			t.Fatalf("request %d = %d, want 401 as usual", i, got.status)
		}
	}
	// Not notifications at all: 404 as usual, neither stored nor counted.
	for range 3 {
		if got := r.post(r.srv.URL+Path+"/wrong-token-0123456789abc", "application/x-www-form-urlencoded", bad.Encode()); got.status != 404 {
			t.Fatalf("wrong token = %d", got.status)
		}
	}
	elapsed := time.Since(start)
	stored := len(r.quarantined())
	most := 5 + int(elapsed.Seconds()*rate) + 1
	if stored < 5 || stored > most {
		t.Errorf("%d of %d rejections stored in %v, want between the burst (5) and %d", stored, n, elapsed, most)
	}
	if got := r.counter(notify.MetricRejectedNotStored, "cause", notify.CauseRateLimited); got != float64(n-stored) {
		t.Errorf("%s{cause=rate_limited} = %v, want %d", notify.MetricRejectedNotStored, got, n-stored)
	}
	if got := r.counter(notify.MetricUnauthorized, "terminal", terminal); got != n {
		t.Errorf("%s = %v, want %d (every 401 counts, stored or not)", notify.MetricUnauthorized, got, n)
	}
	// Logging is rate-limited too: a burst of rejections is a line or two.
	if lines := strings.Count(r.logs.String(), "notification rejected"); lines > 2+int(elapsed.Seconds())*2 {
		t.Errorf("%d rejection log lines for %d rejections in %v", lines, n, elapsed)
	}
}

// TestBodyTimeout: a body that stops arriving is answered 408 once the
// server's ReadTimeout passes, with no socket address in the answer, and
// quarantined with what did arrive. Before, it was a 400 whose body quoted
// "read tcp 127.0.0.1:8080->127.0.0.1:51234: i/o timeout".
func TestBodyTimeout(t *testing.T) {
	r := newRig(t, false, withServer(func(s *http.Server) { s.ReadTimeout = 300 * time.Millisecond }))
	host := strings.TrimPrefix(r.srv.URL, "http://")
	c, err := net.DialTimeout("tcp", host, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	part := "TransactionType=1&Order=SLOW1&Amo"
	fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 400\r\n\r\n%s", Path, host, part)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no answer to a stalled body: %v", err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	b := string(raw)
	if resp.StatusCode != http.StatusRequestTimeout {
		t.Fatalf("stalled body = %d %q, want 408", resp.StatusCode, b)
	}
	if strings.Contains(b, "127.0.0.1") || strings.Contains(b, "tcp") || strings.Contains(b, host) {
		t.Errorf("the 408 answer names an internal address: %q", b)
	}
	q := r.quarantined()
	if len(q) != 1 {
		t.Fatalf("quarantine holds %d messages, want 1", len(q))
	}
	if d := q[0].rejection(t); d.Reason != events.ReasonBodyTimeout || d.Status != 408 || string(d.Request.Body) != part {
		t.Errorf("quarantine = reason %q status %d body %q, want body_timeout 408 %q", d.Reason, d.Status, d.Request.Body, part)
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
			if got := r.counter(notify.MetricDuplicates, "layer", layer); got != 2 {
				t.Errorf("%s{layer=%s} = %v, want 2", notify.MetricDuplicates, layer, got)
			}
			// A KO and a later OK for the same order are two events.
			r.send(sample(1, "DUP2", func(o *demo.SampleOptions) { o.Response = "KO" }))
			r.send(sample(1, "DUP2"))
			if got := len(r.events()); got != 3 {
				t.Errorf("stream has %d events after KO+OK, want 3", got)
			}
			if got := len(r.quarantined()); got != 0 {
				t.Errorf("identical copies were quarantined: %d", got)
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
			if got := len(r.quarantined()); got != 0 {
				t.Errorf("identical concurrent copies were quarantined: %d", got)
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
			if got := r.post(r.url, "application/x-www-form-urlencoded", "TransactionType=abc"); got.status != 503 || got.header.Get("Retry-After") == "" {
				t.Errorf("bad notification with NATS down = %d, want 503 with Retry-After", got.status)
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
	if got := r.counter(notify.MetricWithoutDedupe); got != 3 {
		t.Errorf("%s = %v, want 3", notify.MetricWithoutDedupe, got)
	}
	if got := r.counter(notify.MetricDuplicates, "layer", "jetstream"); got != 2 {
		t.Errorf("%s{layer=jetstream} = %v, want 2", notify.MetricDuplicates, got)
	}
	if got := r.counter(notify.MetricDedupeErrors, "op", "claim"); got < 3 {
		t.Errorf("%s{op=claim} = %v, want >= 3", notify.MetricDedupeErrors, got)
	}
	r.redis.Start()
	n2 := sample(1, "NOREDIS2")
	testenv.Eventually(t, 10*time.Second, "Redis dedupe back", func() bool {
		r.send(n2)
		return r.counter(notify.MetricDuplicates, "layer", "redis") >= 1
	})
}

// TestNoSecretsInLogsOrEvents sends every kind of request and searches all
// logs and events for the passwords, their MD5, and the URL token; TokenUser
// must not be in logs.
func TestNoSecretsInLogsOrEvents(t *testing.T) {
	r := newRig(t, false, withToken)
	bad := sample(1, "SEC1")
	bad.Set("NotificationHash", strings.Repeat("0", 128))
	replay := sample(1, "SEC2")
	replay.Set("TokenUser", "TOKENreplayed999")
	reqs := []url.Values{sample(1, "SEC2"), sample(107, "SEC3"), sample(108, ""), sample(9, "SEC4"), bad, sample(1, "SEC2"), replay}
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
	for _, e := range append(r.events(), r.quarantined()...) {
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
	if strings.Contains(logs, "TOKENabc123XYZ") || strings.Contains(logs, "TOKENreplayed999") {
		t.Errorf("logs contain a TokenUser")
	}
	if !strings.Contains(logs, "rejected") || !strings.Contains(logs, "conflicting copy") {
		t.Errorf("expected rejection and conflicting-copy log lines, got:\n%s", logs)
	}
}

// slowPublisher holds the first publish until release is closed, and
// records when each publish was acknowledged.
type slowPublisher struct {
	next    notify.Publisher
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
// and publishes nothing itself; for both stores. A conflicting copy in
// flight is recognised once the first becomes durable.
func TestCopyInFlightWaitsForTheFirst(t *testing.T) {
	for _, useRedis := range []bool{true, false} {
		t.Run(fmt.Sprintf("redis=%v", useRedis), func(t *testing.T) {
			slow := &slowPublisher{entered: make(chan struct{}), release: make(chan struct{})}
			r := newRig(t, useRedis, withPublisher(func(p notify.Publisher) notify.Publisher { slow.next = p; return slow }))
			t.Cleanup(slow.free) // registered after the rig: runs before its server closes
			orig := sample(1, "INFLIGHT1")
			edited := url.Values{}
			for k, vs := range orig {
				edited[k] = vs
			}
			edited.Set("AuthCode", "000000")
			post := func(body string, out chan<- time.Time) {
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
			first, second, third := make(chan time.Time, 1), make(chan time.Time, 1), make(chan time.Time, 1)
			go post(orig.Encode(), first)
			<-slow.entered // the first copy holds the claim and is publishing
			go post(orig.Encode(), second)
			go post(edited.Encode(), third)
			select {
			case <-second:
				t.Fatal("the second copy was answered while the first was still unpublished")
			case <-third:
				t.Fatal("the conflicting copy was answered while the first was still unpublished")
			case <-time.After(300 * time.Millisecond):
			}
			slow.free()
			firstAt, secondAt, thirdAt := <-first, <-second, <-third
			slow.mu.Lock()
			acked := slow.acked
			slow.mu.Unlock()
			if len(acked) != 1 {
				t.Fatalf("%d publishes acknowledged, want 1 (the copies must not publish)", len(acked))
			}
			if secondAt.Before(acked[0]) || firstAt.Before(acked[0]) || thirdAt.Before(acked[0]) {
				t.Errorf("answered before the ack: first %v, second %v, third %v, ack %v", firstAt, secondAt, thirdAt, acked[0])
			}
			if got := len(r.events()); got != 1 {
				t.Errorf("stream has %d events, want 1", got)
			}
			if got := r.counter(notify.MetricInflightWaits, "result", "seen"); got != 2 {
				t.Errorf("%s{result=seen} = %v, want 2", notify.MetricInflightWaits, got)
			}
			if q := r.quarantined(); len(q) != 1 || q[0].rejection(t).Reason != events.ReasonConflictingCopy {
				t.Errorf("quarantine = %d messages, want the one conflicting copy", len(q))
			}
		})
	}
}
