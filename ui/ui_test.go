package ui_test

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/paycomet-notify/paycomet-notify/demo"
	"github.com/paycomet-notify/paycomet-notify/notify"
	"github.com/paycomet-notify/paycomet-notify/ops/opstest"
	"github.com/paycomet-notify/paycomet-notify/secret"
	"github.com/paycomet-notify/paycomet-notify/ui"
)

func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

func do(t *testing.T, c *http.Client, method, u string, form url.Values, hdr map[string]string) (int, string, *http.Response) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// login returns a client holding a session cookie, and the form token.
func login(t *testing.T, p *page) (*http.Client, string) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, CheckRedirect: noRedirect}
	code, _, resp := do(t, c, "POST", p.srv.URL+"/ui/login", url.Values{"token": {adminToken}}, map[string]string{"Origin": p.srv.URL})
	if code != http.StatusSeeOther {
		t.Fatalf("login = %d, want 303", code)
	}
	sc := resp.Header.Get("Set-Cookie")
	for _, want := range []string{"HttpOnly", "SameSite=Strict", "Path=/ui"} {
		if !strings.Contains(sc, want) {
			t.Errorf("session cookie %q lacks %s", sc, want)
		}
	}
	_, body, _ := do(t, c, "GET", p.srv.URL+"/ui/rejected", nil, nil)
	m := csrfRE.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no form token on the rejected page:\n%s", body)
	}
	return c, m[1]
}

func TestPageNeedsTheToken(t *testing.T) {
	rig := opstest.New(t)
	p := newPage(t, rig, demo.Password)
	c := &http.Client{CheckRedirect: noRedirect}
	if code, _, resp := do(t, c, "GET", p.srv.URL+"/ui/events", nil, nil); code != http.StatusSeeOther || resp.Header.Get("Location") != "/ui/login" {
		t.Errorf("GET /ui/events without token = %d, want 303 to /ui/login", code)
	}
	if code, _, _ := do(t, c, "GET", p.srv.URL+"/ui/events", nil, map[string]string{"Authorization": "Bearer wrong"}); code != http.StatusSeeOther {
		t.Errorf("GET with a wrong bearer = %d, want 303", code)
	}
	if code, body, _ := do(t, c, "GET", p.srv.URL+"/ui/", nil, map[string]string{"Authorization": "Bearer " + adminToken}); code != 200 || !strings.Contains(body, "connected") {
		t.Errorf("GET /ui/ with bearer = %d\n%s", code, body)
	}
	if code, _, _ := do(t, c, "POST", p.srv.URL+"/ui/login", url.Values{"token": {"guess"}}, nil); code != http.StatusUnauthorized {
		t.Errorf("login with a wrong token = %d, want 401", code)
	}
	if code, _, _ := do(t, c, "POST", p.srv.URL+"/ui/rejected/replay", url.Values{"seq": {"1"}}, nil); code != http.StatusUnauthorized {
		t.Errorf("POST without any token = %d, want 401", code)
	}

	u, err := ui.New(ui.Config{Token: secret.New(""), Reader: rig.Reader, Replayer: p.backer})
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{h: http.Header{}}
	req, _ := http.NewRequest("GET", "/ui/", nil)
	u.ServeHTTP(rec, req)
	if rec.code != http.StatusForbidden {
		t.Errorf("page without ADMIN_TOKEN = %d, want 403", rec.code)
	}
}

type recorder struct {
	h    http.Header
	code int
}

func (r *recorder) Header() http.Header         { return r.h }
func (r *recorder) Write(b []byte) (int, error) { return len(b), nil }
func (r *recorder) WriteHeader(c int)           { r.code = c }

// Cross-site requests and cookie POSTs without the form token change
// nothing; the same request done right replays.
func TestActionsRefuseCrossSiteRequests(t *testing.T) {
	rig := opstest.New(t)
	wrong := rig.Path("wrong", true)
	rig.Send(wrong, opstest.Sample("order-x", 1000), notify.Rejected)
	p := newPage(t, rig, demo.Password)
	c, csrf := login(t, p)
	replay := p.srv.URL + "/ui/rejected/replay"
	bearer := &http.Client{CheckRedirect: noRedirect}
	for _, tc := range []struct {
		name string
		c    *http.Client
		form url.Values
		hdr  map[string]string
	}{
		{"cookie, no form token", c, url.Values{"seq": {"1"}}, map[string]string{"Origin": p.srv.URL}},
		{"cookie, wrong form token", c, url.Values{"seq": {"1"}, "csrf": {"x" + csrf}}, map[string]string{"Origin": p.srv.URL}},
		{"cookie, other origin", c, url.Values{"seq": {"1"}, "csrf": {csrf}}, map[string]string{"Origin": "http://evil.example"}},
		{"cookie, other referer", c, url.Values{"seq": {"1"}, "csrf": {csrf}}, map[string]string{"Referer": "http://evil.example/x"}},
		{"cookie, null origin", c, url.Values{"seq": {"1"}, "csrf": {csrf}}, map[string]string{"Origin": "null"}},
		{"bearer, other origin", bearer, url.Values{"seq": {"1"}}, map[string]string{"Origin": "http://evil.example", "Authorization": "Bearer " + adminToken}},
		{"login from other origin", bearer, url.Values{"token": {adminToken}}, map[string]string{"Origin": "http://evil.example"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := replay
			if tc.form.Has("token") {
				u = p.srv.URL + "/ui/login"
			}
			if code, body, _ := do(t, tc.c, "POST", u, tc.form, tc.hdr); code != http.StatusForbidden {
				t.Errorf("= %d, want 403\n%s", code, body)
			}
		})
	}
	if n := rig.EventsFor("order-x"); n != 0 {
		t.Fatalf("a refused request replayed: %d events", n)
	}
	code, body, _ := do(t, c, "POST", replay, url.Values{"seq": {"1"}, "csrf": {csrf}}, map[string]string{"Origin": p.srv.URL})
	if code != 200 || !strings.Contains(body, "accepted") || rig.EventsFor("order-x") != 1 {
		t.Fatalf("replay with cookie and form token = %d, events %d\n%s", code, rig.EventsFor("order-x"), body)
	}
	code, body, _ = do(t, bearer, "POST", replay, url.Values{"seq": {"1"}}, map[string]string{"Authorization": "Bearer " + adminToken})
	if code != 200 || !strings.Contains(body, "duplicate") || rig.EventsFor("order-x") != 1 {
		t.Fatalf("second replay by bearer = %d\n%s", code, body)
	}
}

// No TokenUser, no password, no body that holds them reaches a page.
func TestNothingSecretOnThePage(t *testing.T) {
	rig := opstest.New(t)
	path := rig.Path(demo.Password, true)
	reg := demo.Sample(demo.SampleOptions{Type: 107, Order: "order-card", IdUser: 777})
	token := reg.Get("TokenUser")
	if token == "" {
		t.Fatal("sample 107 has no TokenUser")
	}
	rig.Send(path, reg, notify.Accepted)
	rig.Send(rig.Path("wrong", true), demo.Sample(demo.SampleOptions{Type: 107, Order: "order-card2", IdUser: 778}), notify.Rejected)
	token2 := demo.Sample(demo.SampleOptions{Type: 107, Order: "order-card2", IdUser: 778}).Get("TokenUser")

	p := newPage(t, rig, demo.Password)
	c, _ := login(t, p)
	for _, u := range []string{"/ui/", "/ui/events", "/ui/events/1", "/ui/rejected", "/ui/rejected/1"} {
		code, body, _ := do(t, c, "GET", p.srv.URL+u, nil, nil)
		if code != 200 {
			t.Errorf("GET %s = %d", u, code)
		}
		for _, secretText := range []string{token, token2, demo.Password, adminToken} {
			if strings.Contains(body, secretText) {
				t.Errorf("GET %s shows a secret (%.4s…)", u, secretText)
			}
		}
		if u == "/ui/events/1" && !strings.Contains(body, "masked") {
			t.Errorf("event page does not say TokenUser was masked:\n%s", body)
		}
	}
}
