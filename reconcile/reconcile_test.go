package reconcile_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/paycomet-notify/paycomet-notify/demo"
	"github.com/paycomet-notify/paycomet-notify/events"
	"github.com/paycomet-notify/paycomet-notify/internal/testenv"
	"github.com/paycomet-notify/paycomet-notify/paycometrest"
	"github.com/paycomet-notify/paycomet-notify/paycometrest/paycomettest"
	"github.com/paycomet-notify/paycomet-notify/publisher"
	"github.com/paycomet-notify/paycomet-notify/reconcile"
	"github.com/paycomet-notify/paycomet-notify/schemas"
	"github.com/paycomet-notify/paycomet-notify/secret"
)

const (
	prefix   = "paycomet"
	stream   = "PAYCOMET"
	apiKey   = "reconcile-test-key-0123456789"
	merchant = "MERCH1"
)

var passwords = map[string]string{"1000": "pw-one", "2000": "pw-two"}

// rig is a fake PAYCOMET over real HTTP and a real NATS server with the
// receiver's stream.
type rig struct {
	t    *testing.T
	fake *paycomettest.Server
	rest *paycometrest.Client
	js   jetstream.JetStream
	pub  *publisher.Publisher
	v    *events.Verifier
}

func newRig(t *testing.T) *rig {
	t.Helper()
	fake := paycomettest.NewServer(t, paycomettest.Config{APIKey: apiKey, MerchantCode: merchant, Terminals: passwords, ProviderID: 1})
	rest, err := paycometrest.New(fake.URL, secret.New(apiKey), paycometrest.WithRateLimitWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	nc := testenv.StartNATS(t).Connect(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := publisher.EnsureStreams(ctx, js, publisher.StreamsConfig{Name: stream, Prefix: prefix, Replicas: 1,
		DuplicateWindow: 10 * time.Minute, RejectedMaxBytes: 1 << 20, RejectedMaxAge: time.Hour}); err != nil {
		t.Fatal(err)
	}
	keys := map[string]secret.Value{}
	for k, v := range passwords {
		keys[k] = secret.New(v)
	}
	return &rig{t: t, fake: fake, rest: rest, js: js, pub: publisher.New(js, stream), v: events.NewVerifier(merchant, keys)}
}

// notify publishes the receiver's own event for op: a signed notification
// authenticated and parsed by the events package, published with its id.
func (r *rig) notify(op paycomettest.Operation, when time.Time) {
	r.t.Helper()
	resp := "OK"
	if op.State == 0 {
		resp = "KO"
	}
	term := fmt.Sprint(op.Terminal)
	form := demo.Sample(demo.SampleOptions{Type: op.Type, MerchantCode: merchant, Terminal: term, Password: passwords[term],
		Order: op.Order, Response: resp, Amount: op.Amount, Currency: op.Currency, When: when})
	auth, err := r.v.Authenticate(form, events.Channel{})
	if err != nil {
		r.t.Fatal(err)
	}
	ev, err := events.Parse(events.FormFromValues(form), auth, time.Now())
	if err != nil {
		r.t.Fatal(err)
	}
	body, err := ev.Encode()
	if err != nil {
		r.t.Fatal(err)
	}
	if _, err := r.pub.Publish(context.Background(), ev.Topic(prefix), ev.ID, body); err != nil {
		r.t.Fatal(err)
	}
}

func (r *rig) reconciler(cfg reconcile.Config) *reconcile.Reconciler {
	r.t.Helper()
	cfg.Prefix, cfg.Stream = prefix, stream
	if cfg.Terminals == nil {
		cfg.Terminals = []string{"1000", "2000"}
	}
	rc, err := reconcile.New(cfg, r.rest, r.js, r.pub, nil)
	if err != nil {
		r.t.Fatal(err)
	}
	return rc
}

// findings reads every finding on the stream, validating each against its
// schema.
func (r *rig) findings() []map[string]any {
	r.t.Helper()
	ctx := context.Background()
	c, err := r.js.CreateConsumer(ctx, stream, jetstream.ConsumerConfig{FilterSubject: prefix + ".*.reconcile.missing",
		AckPolicy: jetstream.AckNonePolicy, InactiveThreshold: time.Minute})
	if err != nil {
		r.t.Fatal(err)
	}
	defer r.js.DeleteConsumer(ctx, stream, c.CachedInfo().Name)
	want := int(c.CachedInfo().NumPending)
	var out []map[string]any
	for len(out) < want {
		b, err := c.Fetch(want-len(out), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			r.t.Fatal(err)
		}
		n := 0
		for m := range b.Messages() {
			n++
			var ev struct {
				Type       string          `json:"type"`
				DataSchema string          `json:"dataschema"`
				ID         string          `json:"id"`
				Data       json.RawMessage `json:"data"`
			}
			if err := json.Unmarshal(m.Data(), &ev); err != nil {
				r.t.Fatal(err)
			}
			if ev.Type != reconcile.EventType || ev.DataSchema != reconcile.DataSchema || m.Headers().Get(jetstream.MsgIDHeader) != ev.ID {
				r.t.Fatalf("finding envelope = %s", m.Data())
			}
			if err := schemas.Validate(ev.DataSchema, ev.Data); err != nil {
				r.t.Fatalf("finding data does not validate: %v\n%s", err, ev.Data)
			}
			var d map[string]any
			json.Unmarshal(ev.Data, &d)
			d["subject"] = m.Subject()
			out = append(out, d)
		}
		if n == 0 {
			r.t.Fatalf("findings: %d of %d read", len(out), want)
		}
	}
	return out
}

func orders(ms []reconcile.Missing) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Order)
	}
	sort.Strings(out)
	return out
}

func byTerminal(rep *reconcile.Report, t string) reconcile.TerminalReport {
	for _, tr := range rep.Terminals {
		if tr.Terminal == t {
			return tr
		}
	}
	return reconcile.TerminalReport{}
}

var base = time.Date(2026, 3, 2, 9, 0, 0, 0, paycometrest.Madrid)

// TestMatchedAndMissing: two terminals, several types, both states, two
// currencies; the operations whose notification never came are found,
// published once with a valid schema, and a second run publishes nothing.
func TestMatchedAndMissing(t *testing.T) {
	r := newRig(t)
	at := func(m int) time.Time { return base.Add(time.Duration(m) * time.Minute) }
	ops := []struct {
		op       paycomettest.Operation
		notified bool
	}{
		{paycomettest.Operation{Terminal: 1000, Order: "T1AUTH", Type: 1, State: 1, Amount: 1000, Currency: "EUR", Time: at(1), AuthCode: "A1"}, true},
		{paycomettest.Operation{Terminal: 1000, Order: "T1LOST", Type: 1, State: 1, Amount: 2500, Currency: "EUR", Time: at(2), AuthCode: "A2"}, false},
		{paycomettest.Operation{Terminal: 1000, Order: "T1KO", Type: 1, State: 0, Amount: 700, Currency: "EUR", Time: at(3), ErrorCode: 190}, true},
		{paycomettest.Operation{Terminal: 1000, Order: "T1KOLOST", Type: 1, State: 0, Amount: 800, Currency: "EUR", Time: at(4), ErrorCode: 190}, false},
		{paycomettest.Operation{Terminal: 1000, Order: "T1USD", Type: 3, State: 1, Amount: 900, Currency: "USD", Time: at(5), AuthCode: "A3"}, false},
		{paycomettest.Operation{Terminal: 1000, Order: "T1SUB", Type: 9, State: 1, Amount: 999, Currency: "USD", Time: at(6), AuthCode: "A4"}, true},
		{paycomettest.Operation{Terminal: 2000, Order: "T2AUTH", Type: 1, State: 1, Amount: 1000, Currency: "EUR", Time: at(1), AuthCode: "B1"}, false},
		{paycomettest.Operation{Terminal: 2000, Order: "T1AUTH", Type: 1, State: 1, Amount: 1000, Currency: "EUR", Time: at(1), AuthCode: "B2"}, false}, // same order as terminal 1000's: terminal counts
		{paycomettest.Operation{Terminal: 2000, Order: "T2REF", Type: 2, State: 1, Amount: 300, Currency: "EUR", Time: at(7), AuthCode: "B3"}, true},
		{paycomettest.Operation{Terminal: 2000, Order: "T2PRE", Type: 6, State: 1, Amount: 400, Currency: "EUR", Time: at(8), AuthCode: "B4"}, false},
		// Not reconciled: a currency not configured and a pending operation.
		{paycomettest.Operation{Terminal: 2000, Order: "T2GBP", Type: 1, State: 1, Amount: 1, Currency: "GBP", Time: at(9)}, false},
		{paycomettest.Operation{Terminal: 2000, Order: "T2PEND", Type: 1, State: 2, Amount: 1, Currency: "EUR", Time: at(9)}, false},
	}
	for _, o := range ops {
		r.fake.AddOperations(o.op)
		if o.notified {
			r.notify(o.op, o.op.Time)
		}
	}
	// An event whose amount differs is no match for T2AUTH.
	r.notify(paycomettest.Operation{Terminal: 2000, Order: "T2AUTH", Type: 1, State: 1, Amount: 1001, Currency: "EUR"}, at(1))

	rc := r.reconciler(reconcile.Config{Currencies: []string{"EUR", "USD"}})
	rep, err := rc.Run(context.Background(), base, base.Add(time.Hour))
	if err != nil || rep.Failed() {
		t.Fatalf("Run = %+v, %v", rep, err)
	}
	t1, t2 := byTerminal(rep, "1000"), byTerminal(rep, "2000")
	if diff := cmp.Diff([]string{"T1KOLOST", "T1LOST", "T1USD"}, orders(t1.Missing)); diff != "" {
		t.Errorf("terminal 1000 missing (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"T1AUTH", "T2AUTH", "T2PRE"}, orders(t2.Missing)); diff != "" {
		t.Errorf("terminal 2000 missing (-want +got):\n%s", diff)
	}
	if t1.Operations != 6 || t1.Matched != 3 || t2.Operations != 4 || t2.Matched != 1 || t2.EventsWithoutOperation != 1 || t1.EventsWithoutOperation != 0 {
		t.Errorf("counts: 1000 %d ops %d matched %d without; 2000 %d ops %d matched %d without; want 6 3 0, 4 1 1",
			t1.Operations, t1.Matched, t1.EventsWithoutOperation, t2.Operations, t2.Matched, t2.EventsWithoutOperation)
	}
	f := r.findings()
	if len(f) != 6 {
		t.Fatalf("%d findings on the stream, want 6", len(f))
	}
	var lost map[string]any
	for _, d := range f {
		if d["order"] == "T1LOST" {
			lost = d
		}
	}
	if lost == nil || lost["subject"] != "paycomet.1000.reconcile.missing" || lost["amount"] != 2500.0 || lost["outcome"] != "ok" ||
		lost["operation"] != "authorization" || lost["auth_code"] != "A2" || lost["operation_time"] != "2026-03-02T09:02:00+01:00" {
		t.Errorf("T1LOST finding = %v", lost)
	}
	if p, _ := lost["paycomet"].(map[string]any); p == nil || p["search"] == nil || p["info"] == nil {
		t.Errorf("T1LOST finding lacks PAYCOMET's answers: %v", lost["paycomet"])
	}

	rep2, err := rc.Run(context.Background(), base, base.Add(time.Hour))
	if err != nil || rep2.Failed() {
		t.Fatalf("second Run = %v", err)
	}
	if n := len(r.findings()); n != 6 {
		t.Fatalf("after a second run %d findings, want still 6", n)
	}
	for _, tr := range rep2.Terminals {
		for _, m := range tr.Missing {
			if m.New {
				t.Errorf("second run reported %s as newly published", m.Order)
			}
		}
	}
	if rep2.Missing() != 6 {
		t.Errorf("second run: %d missing, want the same 6", rep2.Missing())
	}
}

// TestWindowSplit: more operations than limit in the window are all read,
// each once, by splitting; more than limit in one second is an error.
func TestWindowSplit(t *testing.T) {
	r := newRig(t)
	var want []string
	for i := range 23 {
		o := paycomettest.Operation{Terminal: 1000, Order: fmt.Sprintf("S%02d", i), Type: 1, State: 1, Amount: 100, Currency: "EUR",
			Time: base.Add(time.Duration(i*37) * time.Second)}
		r.fake.AddOperations(o)
		if i%2 == 0 {
			r.notify(o, o.Time)
		} else {
			want = append(want, o.Order)
		}
	}
	rc := r.reconciler(reconcile.Config{Terminals: []string{"1000"}, Limit: 5})
	rep, err := rc.Run(context.Background(), base, base.Add(time.Hour))
	if err != nil || rep.Failed() {
		t.Fatalf("Run = %v (%v)", err, rep.Terminals[0].Err)
	}
	tr := rep.Terminals[0]
	if tr.Operations != 23 || tr.Matched != 12 || tr.Calls < 6 {
		t.Fatalf("split run: %d operations, %d matched in %d calls; want 23, 12, at least 6 calls", tr.Operations, tr.Matched, tr.Calls)
	}
	if diff := cmp.Diff(want, orders(tr.Missing)); diff != "" {
		t.Fatalf("missing (-want +got):\n%s", diff)
	}

	for i := range 6 {
		r.fake.AddOperations(paycomettest.Operation{Terminal: 1000, Order: fmt.Sprintf("SAME%d", i), Type: 1, State: 1, Amount: 100, Currency: "EUR", Time: base.Add(2 * time.Hour)})
	}
	rep, err = rc.Run(context.Background(), base.Add(2*time.Hour), base.Add(3*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if err := rep.Terminals[0].Err; !errors.Is(err, reconcile.ErrTooManyInOneSecond) {
		t.Fatalf("six operations in one second with limit 5: err = %v, want ErrTooManyInOneSecond", err)
	}
}

// TestEqualPartialRefunds: two refunds of one order for the same amount
// and one notification leave one missing, and a second run picks the same.
func TestEqualPartialRefunds(t *testing.T) {
	r := newRig(t)
	a := paycomettest.Operation{Terminal: 1000, Order: "REF1", Type: 2, State: 1, Amount: 500, Currency: "EUR", Time: base.Add(time.Minute), AuthCode: "R1"}
	b := a
	b.Time, b.AuthCode = base.Add(2*time.Minute), "R2"
	r.fake.AddOperations(a, b)
	r.notify(a, a.Time)
	rc := r.reconciler(reconcile.Config{Terminals: []string{"1000"}})
	for run := range 2 {
		rep, err := rc.Run(context.Background(), base, base.Add(time.Hour))
		if err != nil || rep.Failed() {
			t.Fatal(err)
		}
		if tr := rep.Terminals[0]; tr.Operations != 2 || tr.Matched != 1 || len(tr.Missing) != 1 {
			t.Fatalf("run %d: %d ops, %d matched, missing %v; want 2, 1, one", run, tr.Operations, tr.Matched, tr.Missing)
		}
		if n := len(r.findings()); n != 1 {
			t.Fatalf("run %d: %d findings, want 1", run, n)
		}
	}
}

// TestEventsOutsideWindow: an event of the same key whose time lies more
// than the margin before or after the window matches nothing.
func TestEventsOutsideWindow(t *testing.T) {
	r := newRig(t)
	early := paycomettest.Operation{Terminal: 1000, Order: "EARLY", Type: 1, State: 1, Amount: 100, Currency: "EUR", Time: base.Add(time.Minute)}
	late := paycomettest.Operation{Terminal: 1000, Order: "LATE", Type: 1, State: 1, Amount: 100, Currency: "EUR", Time: base.Add(59 * time.Minute)}
	edge := paycomettest.Operation{Terminal: 1000, Order: "EDGE", Type: 1, State: 1, Amount: 100, Currency: "EUR", Time: base.Add(58 * time.Minute)}
	r.fake.AddOperations(early, late, edge)
	r.notify(early, base.Add(-11*time.Minute))                       // older than the widened window
	r.notify(late, base.Add(time.Hour+10*time.Minute))               // the widened window is half-open
	r.notify(edge, base.Add(time.Hour+9*time.Minute+59*time.Second)) // inside the margin: a match
	rep, err := r.reconciler(reconcile.Config{Terminals: []string{"1000"}}).Run(context.Background(), base, base.Add(time.Hour))
	if err != nil || rep.Failed() {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"EARLY", "LATE"}, orders(rep.Terminals[0].Missing)); diff != "" {
		t.Fatalf("missing (-want +got):\n%s", diff)
	}
}

// TestRESTFailure: a terminal whose search fails has no finding published
// for it, the other terminal's findings are, and the report says so.
func TestRESTFailure(t *testing.T) {
	for _, fault := range []paycomettest.Fault{
		{Status: 500},
		{Status: 200, Body: `{"errorCode":1141}`},
		{Status: 200, Body: `{"errorCode":0,"operations":[{"amount":"x"`},
	} {
		t.Run(fmt.Sprint(fault.Status, fault.Body), func(t *testing.T) {
			r := newRig(t)
			r.fake.AddOperations(
				paycomettest.Operation{Terminal: 1000, Order: "OK1", Type: 1, State: 1, Amount: 100, Currency: "EUR", Time: base.Add(time.Minute)},
				paycomettest.Operation{Terminal: 2000, Order: "FAIL1", Type: 1, State: 1, Amount: 100, Currency: "EUR", Time: base.Add(time.Minute)},
			)
			r.fake.SetPaymentsFault(func(c paycomettest.PaymentsCall) *paycomettest.Fault {
				if c.Op == "payments-search" && c.Terminal == 2000 {
					f := fault
					return &f
				}
				return nil
			})
			rep, err := r.reconciler(reconcile.Config{}).Run(context.Background(), base, base.Add(time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			t2 := byTerminal(rep, "2000")
			if !rep.Failed() || t2.Err == nil || len(t2.Unsearched) == 0 || len(t2.Missing) != 0 || t2.EventsWithoutOperation != -1 {
				t.Fatalf("terminal 2000 after a failed search: %+v", t2)
			}
			f := r.findings()
			if len(f) != 1 || f[0]["order"] != "OK1" {
				t.Fatalf("findings = %v, want only OK1's", f)
			}
		})
	}
}
