package main

import (
	"context"
	"net/netip"
	"regexp"
	"testing"
	"time"

	"github.com/paycomet-notify/paycomet-notify/bankstore"
	"github.com/paycomet-notify/paycomet-notify/demo"
	"github.com/paycomet-notify/paycomet-notify/internal/testenv"
	"github.com/paycomet-notify/paycomet-notify/paycometrest"
	"github.com/paycomet-notify/paycomet-notify/secret"
)

// TestOneListenerServesBoth: BankStore XML and REST answer on the URL the
// fake prints, with its default (demo) credentials.
func TestOneListenerServesBoth(t *testing.T) {
	var out, errb testenv.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0", "-notify-url", "", "-step", "5ms"}, &out, &errb)
	}()
	defer func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("exit %d: %s", code, errb.String())
		}
	}()
	re := regexp.MustCompile(`PAYCOMET_REST_URL=(\S+)`)
	var base string
	deadline := time.Now().Add(10 * time.Second)
	for base == "" {
		if m := re.FindStringSubmatch(out.String()); m != nil {
			base = m[1]
		} else if time.Now().After(deadline) {
			t.Fatalf("no URL printed: %s %s", out.String(), errb.String())
		} else {
			time.Sleep(5 * time.Millisecond)
		}
	}

	bs, err := bankstore.New(base+bankstorePath, bankstore.Credentials{MerchantCode: demo.MerchantCode, Terminal: demo.Terminal, Password: secret.New(demo.Password)},
		bankstore.WithOriginalIP(netip.MustParseAddr("127.0.0.1")))
	if err != nil {
		t.Fatal(err)
	}
	info, err := bs.InfoUser(context.Background(), bankstore.UserRequest{IDUser: demo.IDUser, TokenUser: demo.TokenUser})
	if err != nil || info.CardBrand != "VISA" {
		t.Fatalf("info_user of the demo card = %+v, %v", info, err)
	}

	rc, err := paycometrest.New(base, secret.New(paycometrest.DemoAPIKey))
	if err != nil {
		t.Fatal(err)
	}
	r := paycometrest.SessionRequest{Terminal: 1000, ProviderID: paycometrest.DemoProviderID, StationID: paycometrest.DemoStationID,
		Amount: 100, Currency: "EUR", Order: "FAKE1", Language: "ES", Type: paycometrest.TypeAuthorization}
	if _, err := rc.GetSession(context.Background(), r); err != nil {
		t.Fatalf("get-session: %v", err)
	}
	st, err := rc.SessionState(context.Background(), paycometrest.SessionRef{Terminal: 1000, ProviderID: paycometrest.DemoProviderID, Order: "FAKE1"})
	if err != nil || !st.Found {
		t.Fatalf("session-state = %+v, %v", st, err)
	}
	if !regexp.MustCompile(`rest get-session order="FAKE1" HTTP 200`).MatchString(out.String()) ||
		!regexp.MustCompile(`bankstore info_user DS_IDUSER=4242`).MatchString(out.String()) {
		t.Errorf("call log missing from output:\n%s", out.String())
	}
}
