// Command paycomet-fake runs the in-process fakes of PAYCOMET as one server,
// so operators can try `paycomet-notify bankstore`, the refresher and `ivr`
// without touching PAYCOMET: BankStore XML (bankstore/bankstoretest) at
// /gateway/xml-bankstore and REST (paycometrest/paycomettest) under /v1/,
// on one listener. Point BANKSTORE_URL and PAYCOMET_REST_URL at the URLs it
// prints. It defaults to the demo credentials every other demo uses, and
// posts the notification of every IVR session that ends OK or KO to
// --notify-url, by default the notification URL of `serve --demo`.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/paycomet-notify/paycomet-notify/bankstore/bankstoretest"
	"github.com/paycomet-notify/paycomet-notify/demo"
	"github.com/paycomet-notify/paycomet-notify/paycometrest"
	"github.com/paycomet-notify/paycomet-notify/paycometrest/paycomettest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// seed is a card or deferred preauthorisation given on the command line.
type seed func(*bankstoretest.Server) error

const bankstorePath = "/gateway/xml-bankstore"

// run is the whole program; it serves until ctx ends.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("paycomet-fake", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", strings.TrimPrefix(paycometrest.DemoURL, "http://"), "listen `address`")
	merchant := fs.String("merchant", demo.MerchantCode, "merchant code the fake accepts")
	terminal := fs.String("terminal", demo.Terminal, "terminal the fake accepts")
	password := fs.String("password", demo.Password, "terminal password requests and notifications are signed with")
	demoCard := fs.Bool("demo-card", true, "seed the demo card that `send --demo` uses (IdUser 4242)")
	apiKey := fs.String("api-key", paycometrest.DemoAPIKey, "REST: the PAYCOMET-API-TOKEN the fake accepts")
	provider := fs.Int("provider", paycometrest.DemoProviderID, "REST: the IVR provider id the fake accepts")
	stations := fs.String("stations", paycometrest.DemoStationID, "REST: comma-separated IVR station ids the fake accepts (empty: any)")
	notifyURL := fs.String("notify-url", "http://127.0.0.1:8080/paycomet/notifications/"+demo.URLToken,
		"REST: where IVR payment notifications are posted (empty: none); the default is `serve --demo`'s")
	demoOps := fs.Bool("demo-operations", true, "REST: seed the operations DEMO1 to DEMO5 of the last half hour for `reconcile --demo`")
	step := fs.Duration("step", 500*time.Millisecond, "REST: one step of an IVR session script (OK and KO end after 16 steps)")
	var seeds []seed
	fs.Func("user", "seed a card as `id:token:pan:mmyy` (repeatable)", func(v string) error {
		p := strings.Split(v, ":")
		if len(p) != 4 {
			return errors.New("want id:token:pan:mmyy")
		}
		id, err := strconv.ParseInt(p[0], 10, 64)
		if err != nil {
			return errors.New("id is not a number")
		}
		seeds = append(seeds, func(s *bankstoretest.Server) error { return s.AddUser(id, p[1], p[2], p[3]) })
		return nil
	})
	fs.Func("deferred", "seed a deferred preauthorisation as `iduser:order:amount:currency` (repeatable)", func(v string) error {
		p := strings.Split(v, ":")
		if len(p) != 4 {
			return errors.New("want iduser:order:amount:currency")
		}
		id, err1 := strconv.ParseInt(p[0], 10, 64)
		amount, err2 := strconv.ParseInt(p[2], 10, 64)
		if err1 != nil || err2 != nil {
			return errors.New("iduser and amount must be numbers")
		}
		seeds = append(seeds, func(s *bankstoretest.Server) error { return s.AddDeferredPreauthorization(id, p[1], amount, p[3]) })
		return nil
	})
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 1
	}
	fail := func(err error) int {
		fmt.Fprintf(stderr, "paycomet-fake: %v\n", err)
		return 1
	}
	if fs.NArg() > 0 {
		return fail(fmt.Errorf("unexpected argument %q", fs.Arg(0)))
	}

	bs, err := bankstoretest.New(bankstoretest.Config{
		MerchantCode: *merchant, Terminal: *terminal, Password: *password,
		OnCall: func(c bankstoretest.Call) {
			fmt.Fprintf(stdout, "%s bankstore %s DS_IDUSER=%d order=%q DS_ERROR_ID=%d%s\n",
				c.At.Format(time.RFC3339), c.Op, c.IDUser, c.Order, c.ErrorID, failed(c.Failed))
		},
	})
	if err != nil {
		return fail(err)
	}
	defer bs.Close()
	if *demoCard {
		seeds = append(seeds, func(s *bankstoretest.Server) error {
			return s.AddUser(demo.IDUser, demo.TokenUser, demo.CardPAN, demo.CardExpiry)
		})
	}
	for _, s := range seeds {
		if err := s(bs); err != nil {
			return fail(err)
		}
	}
	var stationList []string
	for _, s := range strings.Split(*stations, ",") {
		if s = strings.TrimSpace(s); s != "" {
			stationList = append(stationList, s)
		}
	}
	rest, err := paycomettest.New(paycomettest.Config{
		APIKey: *apiKey, MerchantCode: *merchant, Terminals: map[string]string{*terminal: *password},
		ProviderID: *provider, Stations: stationList, NotifyURL: *notifyURL, Step: *step,
		OnCall: func(c paycomettest.Call) {
			fmt.Fprintf(stdout, "%s rest %s order=%q HTTP %d errorCode=%d\n", c.At.Format(time.RFC3339), c.Op, c.Order, c.Status, c.ErrorCode)
		},
		OnNotify: func(n paycomettest.Notification) {
			result := fmt.Sprintf("HTTP %d", n.Status)
			if n.Err != "" {
				result = n.Err
			}
			fmt.Fprintf(stdout, "%s notification TransactionType=%s Order=%q Response=%s -> %s (%d attempts)\n",
				n.At.Format(time.RFC3339), n.Type, n.Order, n.Response, result, n.Attempts)
		},
	})
	if err != nil {
		return fail(err)
	}
	defer rest.Close()
	if n, err := strconv.Atoi(*terminal); err == nil && *demoOps {
		rest.AddOperations(paycomettest.DemoOperations(n, time.Now())...)
	}

	mux := http.NewServeMux()
	mux.Handle(bankstorePath, bs)
	mux.Handle("/v1/", rest)
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fail(err)
	}
	base := "http://" + ln.Addr().String()
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	notify := *notifyURL
	if notify == "" {
		notify = "(none)"
	}
	fmt.Fprintf(stdout, "PAYCOMET fake listening on %s (merchant %s, terminal %s)\n"+
		"  BankStore XML: BANKSTORE_URL=%s%s\n"+
		"  REST:          PAYCOMET_REST_URL=%s  (IVR provider %d, stations %s; IVR notifications to %s)\n",
		base, *merchant, *terminal, base, bankstorePath, base, *provider, orAny(*stations), notify)

	select {
	case <-ctx.Done():
	case err := <-served:
		return fail(err)
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := hs.Shutdown(shutdown); err != nil {
		return fail(fmt.Errorf("shutdown: %w", err))
	}
	return 0
}

const usage = `usage: paycomet-fake [flags]

Serves fakes of PAYCOMET's BankStore XML and REST (IVR) services on one
listener, with the demo credentials unless told otherwise. IVR sessions
follow a script chosen by the order's ending: ...KO is refused, ...TIMEOUT
times out, ...HOLD waits until cancelled, anything else is paid.

flags:
`

func orAny(s string) string {
	if strings.TrimSpace(s) == "" {
		return "any"
	}
	return s
}

func failed(m bankstoretest.FailMode) string {
	if m == 0 {
		return ""
	}
	return " failed=" + m.String()
}
