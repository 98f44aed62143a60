package main

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/paycomet-notify/paycomet-notify/bankstore"
	"github.com/paycomet-notify/paycomet-notify/bankstore/bankstoretest"
	"github.com/paycomet-notify/paycomet-notify/demo"
	"github.com/paycomet-notify/paycomet-notify/internal/testenv"
)

func TestRefresherRefusesWithoutTerminals(t *testing.T) {
	code, _, stderr := runCmd(t, map[string]string{}, "refresher")
	if code != 1 || !strings.Contains(stderr, "PAYCOMET_MERCHANT_CODE") || !strings.Contains(stderr, "PAYCOMET_TERMINALS") {
		t.Fatalf("refresher without terminals = %d, stderr %q; want 1 naming the variables", code, stderr)
	}
	code, _, stderr = runCmd(t, map[string]string{"REFRESHER_BACKOFF": "5s,soon"}, "refresher", "--demo")
	if code != 1 || !strings.Contains(stderr, "REFRESHER_BACKOFF") {
		t.Fatalf("refresher with a bad REFRESHER_BACKOFF = %d, stderr %q", code, stderr)
	}
	// No NATS at the embedded address: the refresher waits for it (serve
	// --demo may start later), says what it waits for with a hint, in the
	// log and in /readyz, and stops cleanly.
	p := launch(t, "refresher", map[string]string{"EMBEDDED_NATS_ADDR": freeAddr(t), "PAYCOMET_MERCHANT_CODE": "m",
		"PAYCOMET_TERMINALS": "1:pw"}, "REFRESHER_ADMIN_ADDR")
	p.waitReadyz(t, 503, "serve --demo")
	testenv.Eventually(t, 10*time.Second, "the waiting log line", func() bool {
		return strings.Contains(p.stderr.String(), "start-up: waiting for NATS")
	})
	if code := p.stop(t); code != 0 {
		t.Fatalf("refresher stopped while waiting = %d, want 0:\n%s", code, p.stderr)
	}
}

// refresherProc is `paycomet-notify refresher` running in-process through
// run().
// refresherProc is the refresher running through run().
type refresherProc = proc

func startRefresher(t *testing.T, env map[string]string, args ...string) *refresherProc {
	t.Helper()
	p := &refresherProc{name: "refresher", stdout: &testenv.Buffer{}, stderr: &testenv.Buffer{}, done: make(chan int, 1)}
	if env["REFRESHER_ADMIN_ADDR"] == "" {
		env["REFRESHER_ADMIN_ADDR"] = freeAddr(t)
	}
	p.admin = "http://" + env["REFRESHER_ADMIN_ADDR"]
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	go func() { p.done <- run(ctx, append([]string{"refresher"}, args...), env, nil, p.stdout, p.stderr) }()
	t.Cleanup(func() { p.stop(t) })
	testenv.Eventually(t, 20*time.Second, "refresher /readyz", func() bool {
		select {
		case code := <-p.done:
			p.done <- code
			t.Fatalf("refresher exited with %d before ready:\n%s", code, p.stderr)
		default:
		}
		resp, err := http.Get(p.admin + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	return p
}

// TestRefresherDemoEndToEnd is the README's refresher demo: `serve --demo`,
// the BankStore fake with the demo terminal, `refresher --demo` on the
// embedded NATS, `send --demo --type 107` then `--type 108` for the same
// user, and card.refresh_required with the fake's card data on NATS.
func TestRefresherDemoEndToEnd(t *testing.T) {
	const idUser, token = "4242", "DEMOtoken4242"
	fake := bankstoretest.NewServer(t, demo.MerchantCode, demo.Terminal, demo.Password)
	if err := fake.AddUser(4242, token, "4548812049400004", "1226"); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"DATA_DIR": t.TempDir(), "EMBEDDED_NATS_ADDR": freeAddr(t)}
	startServe(t, env, "--demo")
	p := startRefresher(t, map[string]string{"EMBEDDED_NATS_ADDR": env["EMBEDDED_NATS_ADDR"], "BANKSTORE_URL": fake.URL}, "--demo")
	if out := p.stdout.String(); !strings.Contains(out, "DEMO MODE") || !strings.Contains(out, fake.URL) {
		t.Errorf("refresher demo banner:\n%s", out)
	}

	sendEnv := map[string]string{"LISTEN_ADDR": env["LISTEN_ADDR"], "EMBEDDED_NATS_ADDR": env["EMBEDDED_NATS_ADDR"]}
	if code, out, errOut := runCmd(t, sendEnv, "send", "--demo", "--type", "107", "--id-user", idUser, "--token-user", token); code != 0 || !strings.Contains(out, "200 OK") {
		t.Fatalf("send --type 107 = %d\n%s\n%s", code, out, errOut)
	}
	if code, out, errOut := runCmd(t, sendEnv, "send", "--demo", "--type", "108", "--id-user", idUser); code != 0 || !strings.Contains(out, "200 OK") {
		t.Fatalf("send --type 108 = %d\n%s\n%s", code, out, errOut)
	}

	nc, err := nats.Connect("nats://" + env["EMBEDDED_NATS_ADDR"])
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	var data map[string]any
	testenv.Eventually(t, 10*time.Second, "card.refresh_required on NATS", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		s, err := js.Stream(ctx, "PAYCOMET")
		if err != nil {
			return false
		}
		m, err := s.GetLastMsgForSubject(ctx, "paycomet.1000.card.refresh_required")
		if err != nil {
			return false
		}
		var ev struct {
			Data map[string]any `json:"data"`
		}
		if json.Unmarshal(m.Data, &ev) != nil {
			return false
		}
		data = ev.Data
		return true
	})
	if data["id_user"] != float64(4242) || data["expiry"] != "2026/12" || data["masked_pan"] != "XXXXXXXXXXXX0004" || data["card_brand"] != "VISA" {
		t.Errorf("refresh_required data = %v", data)
	}
	// Two info_user calls: one confirms the 107's pair before the registry
	// learns it, one answers the 108.
	if calls := fake.Calls(); len(calls) != 2 || calls[0].Op != bankstore.OpInfoUser || calls[1].Op != bankstore.OpInfoUser {
		t.Errorf("fake calls = %+v, want two info_user", calls)
	}

	testenv.Eventually(t, 5*time.Second, "the outcome in /metrics", func() bool {
		_, metrics := p.get(t, "/metrics")
		return strings.Contains(metrics, `paycomet_refresher_outcomes_total{kind="refresh_required"} 1`)
	})
	if code, body := p.get(t, "/healthz"); code != 200 {
		t.Errorf("/healthz = %d %s", code, body)
	}
	if code := p.stop(t); code != 0 {
		t.Errorf("refresher exit code after stop = %d\n%s", code, p.stderr)
	}
	logs := p.stderr.String()
	if !strings.Contains(logs, `"msg":"card expiry notice handled"`) || !strings.Contains(logs, `"outcome":"refresh_required"`) || !strings.Contains(logs, `"msg":"stopped"`) {
		t.Errorf("refresher logs lack the outcome line or the clean stop:\n%s", logs)
	}
	for _, secret := range []string{token, demo.Password} {
		if strings.Contains(logs, secret) {
			t.Errorf("refresher logs contain %q:\n%s", secret, logs)
		}
	}
}
