package ui_test

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/nats-io/nats.go"

	"github.com/paycomet-notify/paycomet-notify/demo"
	"github.com/paycomet-notify/paycomet-notify/notify"
	"github.com/paycomet-notify/paycomet-notify/ops"
	"github.com/paycomet-notify/paycomet-notify/ops/opstest"
)

var screenshots = flag.Bool("screenshots", false, "save screenshots of the main pages as docs/ui-*.png")

// chromiumPath finds the browser. Under CI=true a missing browser fails the
// run (scripts/test.sh installs Debian's chromium package); elsewhere the
// browser tests are skipped, loudly.
func chromiumPath(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("no chromium on PATH under CI=true: the browser tests must run (scripts/test.sh installs Debian's chromium package)")
	}
	fmt.Fprintln(os.Stderr, "\n!!!!!!!! ui: BROWSER TESTS SKIPPED: no chromium on PATH; install Debian's chromium or run scripts/test.sh !!!!!!!!")
	t.Skip("no chromium on PATH")
	return ""
}

// newBrowser starts headless Chromium with a fresh profile and no network
// of its own (no background traffic, updates or sync).
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true), // the tests run as root here
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("no-default-browser-check", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 860),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(func() { cancelTimeout(); cancelCtx(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

func run(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		t.Fatalf("read %s: %v", sel, err)
	}
	return s
}

func location(t *testing.T, ctx context.Context) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		t.Fatalf("location: %v", err)
	}
	return s
}

func shot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	if !*screenshots {
		return
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	path := filepath.Join("..", "docs", "ui-"+name+".png")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s", path)
}

// decorate adds what a real day has: payments, a card about to expire, a
// dead letter, so the pages (and their screenshots) show each kind.
func decorate(t *testing.T, rig *opstest.Rig) {
	t.Helper()
	path := rig.Path(demo.Password, true)
	rig.Send(path, opstest.Sample("order-1001", 1000), notify.Accepted)
	rig.Send(path, demo.Sample(demo.SampleOptions{Type: 1, Order: "order-1002", Amount: 750, Currency: "JPY", Response: "KO"}), notify.Accepted)
	rig.Send(path, demo.Sample(demo.SampleOptions{Type: 2, Order: "order-1001", Amount: 400}), notify.Accepted)
	pub := func(subject, body string) {
		if _, err := rig.JS.PublishMsg(context.Background(), &nats.Msg{Subject: subject, Data: []byte(body)}); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now().Format(time.RFC3339)
	pub("paycomet."+demo.Terminal+".card.refresh_required", `{"specversion":"1.0","id":"aa11","source":"/paycomet/terminals/`+demo.Terminal+`","type":"paycomet.card.refresh_required","subject":"4242","time":"`+now+`","data":{"id_user":4242,"months_to_expire":1,"expiry":"2026/01","masked_pan":"4548-81XX-XXXX-0004","card_brand":"VISA","card_hash":"x"}}`)
	pub("paycomet."+demo.Terminal+".card.refresh_required", `{"specversion":"1.0","id":"aa12","source":"/paycomet/terminals/`+demo.Terminal+`","type":"paycomet.card.refresh_required","subject":"4343","time":"`+now+`","data":{"id_user":4343,"months_to_expire":2,"expiry":"2026/02","masked_pan":"5555-55XX-XXXX-4444","card_brand":"MASTERCARD","card_hash":"y"}}`)
	pub("paycomet.dlq", `{"specversion":"1.0","id":"dd01","source":"/paycomet/terminals/`+demo.Terminal+`","type":"paycomet.card.dead_letter","subject":"paycomet.`+demo.Terminal+`.card_expiry.notice","time":"`+now+`","data":{"reason":"BankStore error 1002: service unavailable","cause":"delivery_limit","consumer":"paycomet-refresher","original_subject":"paycomet.`+demo.Terminal+`.card_expiry.notice","stream_sequence":3,"deliveries":10,"original":{"id":"x"},"failed_at":"`+now+`"}}`)
}

// The wrong-password story in a real browser: log in, see the quarantined
// notification, fix the password, press replay, see it accepted and its
// event listed. A request without the token, and a form posted from
// another origin, are refused.
func TestBrowserReplayAfterFixingThePassword(t *testing.T) {
	ctx := newBrowser(t)
	rig := opstest.New(t)
	decorate(t, rig)
	wrong := rig.Path("wrong-password", true)
	rig.Send(wrong, opstest.Sample("order-browser", 4200), notify.Rejected)
	rig.Send(wrong, opstest.Sample("order-other", 100), notify.Rejected)
	p := newPage(t, rig, "wrong-password") // the configuration is still wrong

	// Without the token: the login form, nothing else.
	run(t, ctx, "open /ui/rejected", chromedp.Navigate(p.srv.URL+"/ui/rejected"), chromedp.WaitVisible(chromedp.CSS("#token")))
	loc := location(t, ctx)
	if !strings.HasSuffix(loc, "/ui/login") || strings.Contains(text(t, ctx, "body"), "order-browser") {
		t.Fatalf("without the token the browser is at %s", loc)
	}
	shot(t, ctx, "login")
	run(t, ctx, "log in", chromedp.SendKeys(chromedp.CSS("#token"), adminToken), chromedp.Click(chromedp.CSS("#login")),
		chromedp.WaitVisible(chromedp.CSS("header nav")))
	shot(t, ctx, "overview")

	run(t, ctx, "rejected page", chromedp.Navigate(p.srv.URL+"/ui/rejected"), chromedp.WaitVisible(chromedp.CSS("table.rejected")))
	if s := text(t, ctx, "table.rejected"); !strings.Contains(s, "order-browser") || !strings.Contains(s, "bad_signature") {
		t.Fatalf("rejected page does not show the quarantined notification:\n%s", s)
	}
	shot(t, ctx, "rejected")

	// Replay with the wrong password still configured: still rejected.
	row := `//tr[td[contains(., "order-browser")]]//button[contains(@class, "replay")]`
	run(t, ctx, "replay (still wrong)", chromedp.Click(chromedp.Search(row)), chromedp.WaitVisible(chromedp.CSS("table.results")))
	if s := text(t, ctx, "table.results"); !strings.Contains(s, "rejected bad_signature") {
		t.Fatalf("replay with the wrong password: %s", s)
	}

	// The operator fixes PAYCOMET_TERMINALS and restarts.
	p.restart(demo.Password)
	run(t, ctx, "rejected page again", chromedp.Navigate(p.srv.URL+"/ui/rejected"), chromedp.WaitVisible(chromedp.CSS("table.rejected")),
		chromedp.Click(chromedp.Search(row)), chromedp.WaitVisible(chromedp.CSS("table.results")))
	if s := text(t, ctx, "table.results"); !strings.Contains(s, "accepted") {
		t.Fatalf("replay after the fix: %s", s)
	}
	shot(t, ctx, "replayed")
	run(t, ctx, "its events", chromedp.Click(chromedp.CSS("a.events-link")), chromedp.WaitVisible(chromedp.CSS("table.events")))
	if s := text(t, ctx, "table.events"); !strings.Contains(s, "order-browser") || !strings.Contains(s, "42.00 EUR") {
		t.Fatalf("the accepted event is not listed:\n%s", s)
	}
	if rig.EventsFor("order-browser") != 1 {
		t.Fatalf("order-browser has %d events, want 1", rig.EventsFor("order-browser"))
	}

	// Another origin (same host, another port: same site, so the
	// SameSite cookie is sent) posts the replay form: refused.
	var otherSeq uint64
	for _, m := range mustPage(t, rig).Messages {
		if strings.Contains(string(m.Data), "order-other") {
			otherSeq = m.Seq
		}
	}
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, `<form method="post" action="%s/ui/rejected/replay"><input name="seq" value="%d"><input name="csrf" value="guess"></form><script>document.forms[0].submit()</script>`, p.srv.URL, otherSeq)
	}))
	defer evil.Close()
	run(t, ctx, "cross-origin form", chromedp.Navigate(evil.URL), chromedp.WaitVisible(chromedp.Search(`//body[contains(., "forbidden")]`)))
	if s := text(t, ctx, "body"); !strings.Contains(s, "cross-origin") {
		t.Fatalf("cross-origin POST answered: %s", s)
	}
	if rig.EventsFor("order-other") != 0 {
		t.Fatal("a cross-origin POST replayed a notification")
	}

	if *screenshots {
		run(t, ctx, "events page", chromedp.Navigate(p.srv.URL+"/ui/events"), chromedp.WaitVisible(chromedp.CSS("table.events")))
		shot(t, ctx, "events")
		run(t, ctx, "event page", chromedp.Click(chromedp.CSS("table.events tbody tr:last-child a")), chromedp.WaitVisible(chromedp.CSS("pre.json")))
		shot(t, ctx, "event")
		run(t, ctx, "dlq page", chromedp.Navigate(p.srv.URL+"/ui/dlq"), chromedp.WaitVisible(chromedp.CSS("main table")))
		shot(t, ctx, "dlq")
		run(t, ctx, "cards page", chromedp.Navigate(p.srv.URL+"/ui/cards"), chromedp.WaitVisible(chromedp.CSS("main h1")))
		shot(t, ctx, "cards")
	}
}

func mustPage(t *testing.T, rig *opstest.Rig) ops.Page {
	t.Helper()
	p, err := rig.Reader.Page(context.Background(), ops.Query{Stream: rig.Streams.Rejected, Filter: rig.Streams.RejectedSubject()})
	if err != nil {
		t.Fatal(err)
	}
	return p
}
