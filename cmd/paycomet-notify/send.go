package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/paycomet-notify/paycomet-notify/config"
	"github.com/paycomet-notify/paycomet-notify/demo"
	"github.com/paycomet-notify/paycomet-notify/events"
	"github.com/paycomet-notify/paycomet-notify/handler"
	"github.com/paycomet-notify/paycomet-notify/internal/service"
)

func runSend(ctx context.Context, args []string, env map[string]string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("send", flag.ContinueOnError)
	fs.SetOutput(stderr)
	demoMode := fs.Bool("demo", false, "use the demo terminal and the demo receiver's address")
	typ := fs.Int("type", 1, "TransactionType to send (1 to 108, or any positive number)")
	target := fs.String("url", "", "notification URL (default: http://127.0.0.1<LISTEN_ADDR>/paycomet/notifications[/URL_TOKEN])")
	terminal := fs.String("terminal", "", "terminal (default: the only configured one)")
	order := fs.String("order", "", "Order (default: a fresh one)")
	response := fs.String("response", "OK", "Response: OK or KO")
	amount := fs.Int64("amount", 1999, "Amount in minor units")
	currency := fs.String("currency", "EUR", "Currency")
	idUser := fs.Int64("id-user", 0, "IdUser (default: the demo card with --demo, else a sample)")
	tokenUser := fs.String("token-user", "", "TokenUser (default: the demo card with --demo, else a sample)")
	months := fs.Int("months", 1, "MonthsToExpire (type 108)")
	watch := fs.Bool("watch", true, "wait for the event on NATS and print it")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 1
	}
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "paycomet-notify send: "+format+"\n", a...)
		return 1
	}
	if *typ <= 0 {
		return fail("--type must be a positive number, got %d", *typ)
	}
	if *response != "OK" && *response != "KO" {
		return fail("--response must be OK or KO, got %q", *response)
	}
	cfg, err := config.Load(env, nil)
	if err != nil {
		return fail("%v", err)
	}
	if *demoMode {
		cfg.ApplyDemo()
	} else if err := cfg.RequireTerminals(); err != nil {
		return fail("%v", err)
	}
	if *terminal == "" {
		ids := cfg.Terminals.IDs()
		if len(ids) != 1 {
			return fail("several terminals are configured (%s): choose one with --terminal", strings.Join(ids, ", "))
		}
		*terminal = ids[0]
	}
	pw, ok := cfg.Terminals[*terminal]
	if !ok {
		return fail("terminal %s is not configured", *terminal)
	}
	if *order == "" {
		*order = fmt.Sprintf("S%d", time.Now().UnixNano()%1e12)
	}
	if *demoMode && *idUser == 0 && *tokenUser == "" {
		// The demo card the BankStore fake knows, so a 107 then a 108
		// drive the refresher's whole flow.
		*idUser, *tokenUser = demo.IDUser, demo.TokenUser
	}
	form := demo.Sample(demo.SampleOptions{
		Type: *typ, MerchantCode: cfg.MerchantCode, Terminal: *terminal, Password: pw.Reveal(),
		Order: *order, Response: *response, Amount: *amount, Currency: *currency,
		IdUser: *idUser, TokenUser: *tokenUser, MonthsToExpire: *months, When: time.Now(),
	})
	u := *target
	if u == "" {
		u = defaultNotificationURL(cfg)
	}
	shown := u
	if tok := cfg.URLToken.Reveal(); tok != "" {
		shown = strings.ReplaceAll(u, tok, "<URL_TOKEN>")
	}

	var sub *nats.Subscription
	if *watch && (*demoMode || !cfg.NATSURL.IsZero()) {
		nc, err := service.ConnectNATS(service.NATSConfig{Name: "paycomet-notify send", URL: cfg.NATSServers(), Timeout: 2 * time.Second, Auth: cfg.NATS},
			slog.New(slog.DiscardHandler))
		if err != nil {
			fmt.Fprintf(stderr, "paycomet-notify send: not watching for the event: %v\n", err)
		} else {
			defer nc.Close()
			if sub, err = nc.SubscribeSync(cfg.SubjectPrefix + ".>"); err != nil {
				return fail("subscribe: %v", err)
			}
			_ = nc.Flush()
		}
	}

	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		return fail("--url: %v", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fail("POST %s: %v", shown, strings.ReplaceAll(err.Error(), cfg.URLToken.Reveal()+"", "<URL_TOKEN>"))
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	what := "Order " + form.Get("Order")
	if *typ == events.TypeCardExpiry {
		what = "IdUser " + form.Get("IdUser")
	}
	fmt.Fprintf(stdout, "POST %s (TransactionType %d, %s, terminal %s)\n-> %s: %s\n",
		shown, *typ, what, *terminal, resp.Status, strings.TrimSpace(string(body)))
	if resp.StatusCode != http.StatusOK {
		return 1
	}
	if sub == nil {
		return 0
	}
	// Find this notification's event among whatever else is flowing.
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		msg, err := sub.NextMsg(time.Until(deadline))
		if err != nil {
			break
		}
		var ev struct {
			Subject string `json:"subject"`
		}
		if json.Unmarshal(msg.Data, &ev) != nil || (ev.Subject != form.Get("Order") && ev.Subject != form.Get("IdUser")) {
			continue
		}
		var pretty bytes.Buffer
		_ = json.Indent(&pretty, msg.Data, "", "  ")
		fmt.Fprintf(stdout, "event on %s (Nats-Msg-Id %s):\n%s\n", msg.Subject, msg.Header.Get("Nats-Msg-Id"), pretty.String())
		return 0
	}
	fmt.Fprintln(stdout, "(the event was not seen on NATS within 5s: a duplicate answered 200 from the dedupe store publishes nothing new)")
	return 0
}

func defaultNotificationURL(cfg config.Config) string {
	addr := cfg.ListenAddr
	if strings.HasPrefix(addr, ":") {
		addr = "127.0.0.1" + addr
	}
	u := (&url.URL{Scheme: "http", Host: addr, Path: handler.Path}).String()
	if tok := cfg.URLToken.Reveal(); tok != "" {
		u += "/" + tok
	}
	return u
}
