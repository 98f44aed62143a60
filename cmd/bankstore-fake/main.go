// Command bankstore-fake runs the in-process BankStore XML fake
// (bankstore/bankstoretest) as a server, so operators can try
// `paycomet-notify bankstore` and the refresher without touching PAYCOMET:
// point BANKSTORE_URL at the URL it prints. It defaults to the demo
// credentials every other demo uses.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/paycomet-notify/paycomet-notify/bankstore/bankstoretest"
	"github.com/paycomet-notify/paycomet-notify/demo"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// seed is a card or deferred preauthorisation given on the command line.
type seed func(*bankstoretest.Server) error

// run is the whole program; it serves until ctx ends.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bankstore-fake", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:8099", "listen `address`")
	merchant := fs.String("merchant", demo.MerchantCode, "merchant code the fake accepts")
	terminal := fs.String("terminal", demo.Terminal, "terminal the fake accepts")
	password := fs.String("password", demo.Password, "terminal password requests are signed with")
	demoCard := fs.Bool("demo-card", true, "seed the demo card that `send --demo` uses (IdUser 4242)")
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
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 1
	}

	srv, err := bankstoretest.Start(*addr, bankstoretest.Config{
		MerchantCode: *merchant, Terminal: *terminal, Password: *password,
		OnCall: func(c bankstoretest.Call) {
			fmt.Fprintf(stdout, "%s %s DS_IDUSER=%d order=%q DS_ERROR_ID=%d%s\n",
				c.At.Format(time.RFC3339), c.Op, c.IDUser, c.Order, c.ErrorID, failed(c.Failed))
		},
	})
	if err != nil {
		fmt.Fprintf(stderr, "bankstore-fake: %v\n", err)
		return 1
	}
	if *demoCard {
		seeds = append(seeds, func(s *bankstoretest.Server) error {
			return s.AddUser(demo.IDUser, demo.TokenUser, demo.CardPAN, demo.CardExpiry)
		})
	}
	for _, s := range seeds {
		if err := s(srv); err != nil {
			srv.Close()
			fmt.Fprintf(stderr, "bankstore-fake: %v\n", err)
			return 1
		}
	}
	fmt.Fprintf(stdout, "bankstore fake listening on %s (merchant %s, terminal %s); set BANKSTORE_URL=%s\n",
		srv.URL, *merchant, *terminal, srv.URL)

	<-ctx.Done()
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil {
		fmt.Fprintf(stderr, "bankstore-fake: shutdown: %v\n", err)
		return 1
	}
	return 0
}

func failed(m bankstoretest.FailMode) string {
	if m == 0 {
		return ""
	}
	return " failed=" + m.String()
}
