package main

import (
	"net/http"
	"testing"

	"github.com/paycomet-notify/paycomet-notify/internal/testenv"
)

// TestPprofOnAdminOnly: profiles are served on the admin listener only with
// ADMIN_PPROF=true, and never on the public one, which PAYCOMET (and the
// internet) reaches.
func TestPprofOnAdminOnly(t *testing.T) {
	n := testenv.StartNATS(t)
	for _, pprof := range []string{"", "false", "true"} {
		env := map[string]string{"PAYCOMET_MERCHANT_CODE": "MC000001", "PAYCOMET_TERMINALS": "11:pw", "NATS_URL": n.URL(), "DATA_DIR": t.TempDir()}
		if pprof != "" {
			env["ADMIN_PPROF"] = pprof
		}
		s := startServe(t, env)
		want := http.StatusNotFound
		if pprof == "true" {
			want = http.StatusOK
		}
		for _, path := range []string{"/debug/pprof/", "/debug/pprof/heap", "/debug/pprof/cmdline"} {
			if code, _ := s.get(t, path); code != want {
				t.Errorf("ADMIN_PPROF=%q: admin %s = %d, want %d", pprof, path, code, want)
			}
		}
		for _, path := range []string{"/debug/pprof/", "/debug/pprof/heap", "/debug/pprof/profile?seconds=1"} {
			resp, err := http.Get("http://" + env["LISTEN_ADDR"] + path)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusNotFound {
				t.Errorf("ADMIN_PPROF=%q: public %s = %d, want 404", pprof, path, resp.StatusCode)
			}
		}
		s.stop(t)
	}
}
