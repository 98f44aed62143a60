package main

import (
	"net/http"
	"testing"

	"github.com/paycomet-notify/paycomet-notify/internal/testenv"
)

// TestPprofOnAdminOnly: profiles are served on the admin listener and never
// on the public one, which PAYCOMET (and the internet) reaches.
func TestPprofOnAdminOnly(t *testing.T) {
	n := testenv.StartNATS(t)
	env := map[string]string{"PAYCOMET_MERCHANT_CODE": "MC000001", "PAYCOMET_TERMINALS": "11:pw", "NATS_URL": n.URL(), "DATA_DIR": t.TempDir()}
	s := startServe(t, env)
	if code, body := s.get(t, "/debug/pprof/"); code != http.StatusOK || len(body) == 0 {
		t.Errorf("admin /debug/pprof/ = %d", code)
	}
	for _, path := range []string{"/debug/pprof/", "/debug/pprof/heap", "/debug/pprof/profile?seconds=1"} {
		resp, err := http.Get("http://" + env["LISTEN_ADDR"] + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("public %s = %d, want 404", path, resp.StatusCode)
		}
	}
}
