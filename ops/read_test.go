package ops_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/paycomet-notify/paycomet-notify/bankstore"
	"github.com/paycomet-notify/paycomet-notify/demo"
	"github.com/paycomet-notify/paycomet-notify/internal/testenv"
	"github.com/paycomet-notify/paycomet-notify/notify"
	"github.com/paycomet-notify/paycomet-notify/ops"
	"github.com/paycomet-notify/paycomet-notify/ops/opstest"
	"github.com/paycomet-notify/paycomet-notify/refresher"
)

// consumers waits until stream has n consumers: the tail is listening.
func consumers(t *testing.T, rig *opstest.Rig, stream string, n int) {
	testenv.Eventually(t, 5*time.Second, "tail consumer on "+stream, func() bool {
		s, err := rig.JS.Stream(context.Background(), stream)
		if err != nil {
			return false
		}
		in, err := s.Info(context.Background())
		return err == nil && in.State.Consumers >= n
	})
}

func TestTailShowsEventsAsTheyArriveAndSince(t *testing.T) {
	rig := opstest.New(t)
	path := rig.Path(demo.Password, true)
	rig.Send(path, opstest.Sample("order-before", 1000), notify.Accepted)
	since := time.Now()
	rig.Send(path, demo.Sample(demo.SampleOptions{Type: 1, Order: "order-yen", Amount: 750, Currency: "JPY"}), notify.Accepted)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var live testenv.Buffer
	done := make(chan error, 1)
	go func() { done <- rig.Reader.Tail(ctx, ops.TailOptions{}, &live) }()
	consumers(t, rig, rig.Streams.Events, 1)
	consumers(t, rig, rig.Streams.Rejected, 1)

	rig.Send(path, opstest.Sample("order-live", 1000), notify.Accepted)
	rig.Send(rig.Path("wrong", true), opstest.Sample("order-bad", 1000), notify.Rejected)
	testenv.Eventually(t, 5*time.Second, "live lines", func() bool {
		return strings.Contains(live.String(), "order-live") && strings.Contains(live.String(), "order-bad")
	})
	out := live.String()
	for _, want := range []string{"authorization", "ok", "10.00 EUR", demo.Terminal, "rejected", "bad_signature"} {
		if !strings.Contains(out, want) {
			t.Errorf("tail output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "order-before") || strings.Contains(out, "\x1b[") {
		t.Errorf("tail without --since printed an old event or colour:\n%s", out)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Tail after cancel = %v, want nil", err)
	}

	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	var old testenv.Buffer
	go func() { done <- rig.Reader.Tail(ctx2, ops.TailOptions{Since: since, JSON: true}, &old) }()
	testenv.Eventually(t, 5*time.Second, "--since lines", func() bool { return strings.Contains(old.String(), "order-live") })
	if !strings.Contains(old.String(), `"subject":"order-yen"`) || strings.Contains(old.String(), "order-before") {
		t.Errorf("tail --since --json:\n%s", old.String())
	}
	cancel2()
	<-done
}

func TestSummaryAmounts(t *testing.T) {
	rig := opstest.New(t)
	path := rig.Path(demo.Password, true)
	rig.Send(path, demo.Sample(demo.SampleOptions{Type: 1, Order: "o-jpy", Amount: 750, Currency: "JPY"}), notify.Accepted)
	rig.Send(path, demo.Sample(demo.SampleOptions{Type: 1, Order: "o-eur", Amount: 1000, Currency: "EUR"}), notify.Accepted)
	p, err := rig.Reader.Events(context.Background(), ops.EventFilter{}, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, m := range p.Messages {
		s := ops.Summarize("paycomet", m)
		got[s.Order] = s.Amount
	}
	if got["o-jpy"] != "750 JPY" || got["o-eur"] != "10.00 EUR" {
		t.Fatalf("amounts = %v, want 750 JPY and 10.00 EUR", got)
	}
}

// publishN puts n small events on the event stream, alternating terminals
// 1001 and 1002, asynchronously (the setup of the paging tests).
func publishN(tb testing.TB, js jetstream.JetStream, n int) {
	tb.Helper()
	for i := 0; i < n; {
		var futs []jetstream.PubAckFuture
		for j := 0; j < 5000 && i < n; j, i = j+1, i+1 {
			term := 1001 + i%2
			body := fmt.Sprintf(`{"specversion":"1.0","id":"%032x","source":"/paycomet/terminals/%d","type":"paycomet.authorization.ok","subject":"order-%d","time":"2025-01-01T10:00:00+01:00","data":{"order":"order-%d","amount":1000,"currency":"EUR","amount_display":"10.00"}}`, i+1, term, i, i)
			f, err := js.PublishAsync(fmt.Sprintf("paycomet.%d.authorization.ok", term), []byte(body))
			if err != nil {
				tb.Fatal(err)
			}
			futs = append(futs, f)
		}
		select {
		case <-js.PublishAsyncComplete():
		case <-time.After(time.Minute):
			tb.Fatal("async publishes not acknowledged")
		}
		for _, f := range futs {
			select {
			case err := <-f.Err():
				tb.Fatal(err)
			default:
			}
		}
	}
}

func TestPagesWalkBackFromTheEnd(t *testing.T) {
	rig := opstest.New(t)
	publishN(t, rig.JS, 3000)
	ctx := context.Background()

	p, err := rig.Reader.Events(ctx, ops.EventFilter{}, 0, 50)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Messages) != 50 || p.Messages[0].Seq != 3000 || p.Messages[49].Seq != 2951 || p.Older != 2951 {
		t.Fatalf("first page: %d messages %d..%d older %d, want 50 from 3000 to 2951, older 2951",
			len(p.Messages), p.Messages[0].Seq, p.Messages[len(p.Messages)-1].Seq, p.Older)
	}
	p, err = rig.Reader.Events(ctx, ops.EventFilter{Terminal: "1002"}, p.Older, 20)
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range p.Messages {
		if !strings.HasPrefix(m.Subject, "paycomet.1002.") || m.Seq >= 2951 || (i > 0 && m.Seq >= p.Messages[i-1].Seq) {
			t.Fatalf("filtered page: message %d is seq %d %s", i, m.Seq, m.Subject)
		}
	}
	if len(p.Messages) != 20 {
		t.Fatalf("filtered page has %d messages, want 20", len(p.Messages))
	}
	p, err = rig.Reader.Events(ctx, ops.EventFilter{Order: "order-7"}, 0, 500)
	if err != nil {
		t.Fatal(err)
	}
	// order-7, order-70..79, order-700..799: 1+10+100 (and 7xx below 3000: 700..799) = 111
	if len(p.Messages) != 111 {
		t.Fatalf("order search found %d events, want 111", len(p.Messages))
	}
	// The very first page: nothing older.
	p, err = rig.Reader.Events(ctx, ops.EventFilter{}, 11, 50)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Messages) != 10 || p.Older != 0 {
		t.Fatalf("oldest page: %d messages, older %d; want 10 and 0", len(p.Messages), p.Older)
	}
}

// BenchmarkPage reads pages of a stream of one million events (set up once,
// which takes a while): each page must answer well under 200 ms however
// long the stream is. Run: go test -run x -bench Page ./ops/
func BenchmarkPage(b *testing.B) {
	rig := opstest.New(b)
	publishN(b, rig.JS, 1_000_000)
	ctx := context.Background()
	for _, bc := range []struct {
		name   string
		f      ops.EventFilter
		before uint64
	}{
		{"newest", ops.EventFilter{}, 0},
		{"middle", ops.EventFilter{}, 500_000},
		{"terminal", ops.EventFilter{Terminal: "1002"}, 0},
		{"order", ops.EventFilter{Order: "order-99999"}, 0},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := rig.Reader.Events(ctx, bc.f, bc.before, 50); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// noBank is a BankStore that must not be called: the replayed notice's
// user has no token, so the refresher answers token_unknown without it.
type noBank struct{ t *testing.T }

func (b noBank) InfoUser(context.Context, bankstore.UserRequest) (*bankstore.InfoUserResponse, error) {
	b.t.Error("InfoUser called")
	return nil, fmt.Errorf("not here")
}

func (b noBank) RemoveUser(context.Context, bankstore.UserRequest) (*bankstore.RemoveResponse, error) {
	b.t.Error("RemoveUser called")
	return nil, fmt.Errorf("not here")
}

func runRefresher(t *testing.T, rig *opstest.Rig, banks map[string]refresher.BankStore) (stop func()) {
	t.Helper()
	cfg := refresher.Config{Prefix: "paycomet", Stream: "PAYCOMET", MaxDeliver: 2, Backoff: []time.Duration{10 * time.Millisecond}}
	r, err := refresher.Open(context.Background(), cfg, rig.JS, banks, refresher.NewMetrics(prometheus.NewRegistry(), []string{demo.Terminal}),
		slog.New(slog.NewTextHandler(io.Discard, nil)), time.Now)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = r.Run(ctx); close(done) }()
	return func() { cancel(); <-done }
}

func count(t *testing.T, rig *opstest.Rig, filter string) int {
	t.Helper()
	p, err := rig.Reader.Page(context.Background(), ops.Query{Stream: rig.Streams.Events, Filter: filter, Limit: ops.MaxLimit})
	if err != nil {
		t.Fatal(err)
	}
	return len(p.Messages)
}

// A dead letter replayed is processed by the refresher as new and gives one
// output; replaying it again does nothing new.
func TestDeadLetterReplayGivesOneOutput(t *testing.T) {
	rig := opstest.New(t)
	path := rig.Path(demo.Password, true)
	notice := demo.Sample(demo.SampleOptions{Type: 108, IdUser: 4242, MonthsToExpire: 2})
	req := opstest.Request(notice)
	req.URLTokenPath = true
	if o := path.Process(context.Background(), req); o.Kind != notify.Accepted {
		t.Fatalf("notice: %+v", o)
	}

	// The refresher has no BankStore for the terminal: dead letter.
	stop := runRefresher(t, rig, map[string]refresher.BankStore{})
	testenv.Eventually(t, 10*time.Second, "dead letter", func() bool { return count(t, rig, "paycomet.dlq") == 1 })
	stop()
	dls, _, err := rig.Reader.DeadLetters(context.Background(), 0, 10)
	if err != nil || len(dls) != 1 || dls[0].Data.Cause != refresher.CauseTerminalNotConfigured {
		t.Fatalf("DeadLetters = %+v, %v; want one terminal_not_configured", dls, err)
	}
	id := dls[0].Event.ID

	// Fixed: the terminal has its BankStore credentials now.
	stop = runRefresher(t, rig, map[string]refresher.BankStore{demo.Terminal: noBank{t}})
	defer stop()
	p := ops.NewReplayer(rig.Reader, nil)
	var lines []string
	if err := p.ReplayDeadLetters(context.Background(), []string{id}, false, func(r ops.Result) { lines = append(lines, r.Line()) }); err != nil {
		t.Fatal(err)
	}
	if len(lines) != 1 || !strings.Contains(lines[0], " replayed seq ") {
		t.Fatalf("dlq replay printed %q", lines)
	}
	outputs := "paycomet." + demo.Terminal + ".card.>"
	testenv.Eventually(t, 10*time.Second, "refresher output", func() bool { return count(t, rig, outputs) == 1 })
	last := rig.LastSeq(rig.Streams.Events)

	lines = nil
	if err := p.ReplayDeadLetters(context.Background(), nil, true, func(r ops.Result) { lines = append(lines, r.Line()) }); err != nil {
		t.Fatal(err)
	}
	if len(lines) != 1 || !strings.HasSuffix(lines[0], " duplicate") {
		t.Fatalf("second dlq replay printed %q, want duplicate", lines)
	}
	if n := rig.LastSeq(rig.Streams.Events); n != last {
		t.Fatalf("second replay published %d messages", n-last)
	}
	if c := count(t, rig, outputs); c != 1 {
		t.Fatalf("%d refresher outputs, want 1", c)
	}
	if c := count(t, rig, "paycomet.dlq"); c != 1 {
		t.Fatalf("%d dead letters after the replay, want still 1", c)
	}
}

// An event with an amount but no amount_display (a reconcile.missing
// finding) is shown in major units too, not as minor units.
func TestSummaryAmountWithoutDisplay(t *testing.T) {
	m := ops.Message{Subject: "paycomet.1000.reconcile.missing", MsgID: "f1",
		Data: []byte(`{"specversion":"1.0","id":"f1","source":"/paycomet/terminals/1000","type":"paycomet.reconcile.missing","subject":"DEMO2",` +
			`"data":{"order":"DEMO2","amount":2500,"currency":"EUR"}}`)}
	if got := ops.Summarize("paycomet", m).Amount; got != "25.00 EUR" {
		t.Fatalf("Summarize(reconcile.missing).Amount = %q, want %q", got, "25.00 EUR")
	}
	m.Data = []byte(`{"specversion":"1.0","id":"f2","type":"paycomet.reconcile.missing","data":{"amount":750,"currency":"JPY"}}`)
	if got := ops.Summarize("paycomet", m).Amount; got != "750 JPY" {
		t.Fatalf("Summarize(JPY).Amount = %q, want %q", got, "750 JPY")
	}
}

// A tail stopped (SIGINT) while it is still setting up its consumers ends
// normally, like one stopped later: seen failing under load as exit 3,
// "consumer: context canceled".
func TestTailStoppedDuringSetUp(t *testing.T) {
	rig := opstest.New(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var out testenv.Buffer
	if err := rig.Reader.Tail(ctx, ops.TailOptions{}, &out); err != nil {
		t.Fatalf("Tail with its context already ended = %v, want nil", err)
	}
}
