package bankstoretest

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/paycomet-notify/paycomet-notify/bankstore"
	"github.com/paycomet-notify/paycomet-notify/internal/testenv"
	"github.com/paycomet-notify/paycomet-notify/secret"
)

func client(t *testing.T, s *Server) *bankstore.Client {
	t.Helper()
	c, err := bankstore.New(s.URL, bankstore.Credentials{MerchantCode: "M1", Terminal: "7", Password: secret.New("pw")},
		bankstore.WithInfoUserRetry(1, 0))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestBankstoreFakeRefusesWhatIsNotSOAP(t *testing.T) {
	s := NewServer(t, "M1", "7", "pw")
	res, err := http.Get(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET = %d, want 405", res.StatusCode)
	}
	for body, want := range map[string]string{
		"not xml": "not a SOAP envelope",
		`<e:Envelope xmlns:e="http://schemas.xmlsoap.org/soap/envelope/"><e:Body><m:charge_everyone xmlns:m="urn:x"/></e:Body></e:Envelope>`: "Procedure 'charge_everyone' not present",
	} {
		res, err := http.Post(s.URL, "text/xml", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		msg, ferr := bankstore.ReadMessage(strings.NewReader(string(b)))
		var f *bankstore.FaultError
		if res.StatusCode != 500 || !errors.As(ferr, &f) || !strings.Contains(f.String, want) {
			t.Errorf("POST %q = %d %+v %v, want a 500 fault saying %q", body, res.StatusCode, msg, ferr, want)
		}
	}
	if n := len(s.Calls()); n != 0 {
		t.Errorf("Calls() = %d, want 0: nothing here was an operation", n)
	}
}

// TestBankstoreFakeCallLog: calls come back in order with the user they
// named or created, so a test can check that one happened after another.
func TestBankstoreFakeCallLog(t *testing.T) {
	s := NewServer(t, "M1", "7", "pw")
	if err := s.AddUser(12, "tok12", "4548812049400004", "0131"); err != nil {
		t.Fatal(err)
	}
	c := client(t, s)
	ctx := t.Context()
	added, err := c.AddUserToken(ctx, bankstore.AddUserTokenRequest{JetToken: strings.Repeat("a1", 32), JetID: strings.Repeat("b2", 16)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.InfoUser(ctx, bankstore.UserRequest{IDUser: 12, TokenUser: "tok12"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.RemoveUser(ctx, bankstore.UserRequest{IDUser: 12, TokenUser: "tok12"}); err != nil {
		t.Fatal(err)
	}
	if s.HasUser(12) || !s.HasUser(added.IDUser) {
		t.Errorf("HasUser(12) = %v, HasUser(%d) = %v; want false, true", s.HasUser(12), added.IDUser, s.HasUser(added.IDUser))
	}
	calls := s.Calls()
	want := []struct {
		op bankstore.Operation
		id int64
	}{{bankstore.OpAddUserToken, added.IDUser}, {bankstore.OpInfoUser, 12}, {bankstore.OpRemoveUser, 12}}
	if len(calls) != len(want) {
		t.Fatalf("Calls() = %+v, want %d calls", calls, len(want))
	}
	for i, w := range want {
		if calls[i].Op != w.op || calls[i].IDUser != w.id || calls[i].ErrorID != 0 {
			t.Errorf("call %d = %+v, want %s of user %d", i, calls[i], w.op, w.id)
		}
		if i > 0 && calls[i].At.Before(calls[i-1].At) {
			t.Errorf("call %d is timed before call %d", i, i-1)
		}
	}
}

// TestBankstoreFakeCloseCutsDelays: closing the fake does not wait for a
// held answer.
func TestBankstoreFakeCloseCutsDelays(t *testing.T) {
	s, err := Start("127.0.0.1:0", Config{MerchantCode: "M1", Terminal: "7", Password: "pw"})
	if err != nil {
		t.Fatal(err)
	}
	s.SetDelay(time.Minute)
	s.FailNext(1, FailDelay)
	done := make(chan error, 1)
	go func() {
		_, err := client(t, s).InfoUser(context.Background(), bankstore.UserRequest{IDUser: 1, TokenUser: "t"})
		done <- err
	}()
	testenv.Eventually(t, 5*time.Second, "the request to arrive", func() bool { return len(s.Calls()) == 1 })
	start := time.Now()
	s.Close()
	select {
	case err := <-done:
		if err == nil {
			t.Error("InfoUser succeeded although the fake closed before answering")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the client still waits 5s after Close")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Close took %v", d)
	}
}

func TestBankstoreFakeSeedsAreChecked(t *testing.T) {
	s := NewServer(t, "M1", "7", "pw")
	for _, bad := range [][4]string{{"0", "tok", "4548812049400004", "1230"}, {"1", "to-k", "4548812049400004", "1230"},
		{"1", "tok", "4548", "1230"}, {"1", "tok", "4548812049400004", "1330"}} {
		id := int64(bad[0][0] - '0')
		if err := s.AddUser(id, bad[1], bad[2], bad[3]); err == nil {
			t.Errorf("AddUser%v succeeded", bad)
		}
	}
	if err := s.AddDeferredPreauthorization(99, "D1", 100, "EUR"); err == nil {
		t.Error("AddDeferredPreauthorization for an unknown user succeeded")
	}
	if _, err := Start("127.0.0.1:0", Config{MerchantCode: "M1"}); err == nil {
		t.Error("Start without terminal and password succeeded")
	}
}
