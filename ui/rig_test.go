package ui_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/paycomet-notify/paycomet-notify/demo"
	"github.com/paycomet-notify/paycomet-notify/ops"
	"github.com/paycomet-notify/paycomet-notify/ops/opstest"
	"github.com/paycomet-notify/paycomet-notify/secret"
	"github.com/paycomet-notify/paycomet-notify/ui"
)

const adminToken = "s3cret-admin-token-for-tests"

// swapReplayer is the page's backing path, replaced when the test "fixes
// the configuration and restarts" it.
type swapReplayer struct {
	mu sync.Mutex
	r  *ops.Replayer
}

func (s *swapReplayer) set(r *ops.Replayer) { s.mu.Lock(); s.r = r; s.mu.Unlock() }
func (s *swapReplayer) get() *ops.Replayer  { s.mu.Lock(); defer s.mu.Unlock(); return s.r }

func (s *swapReplayer) ReplayRejectedAt(ctx context.Context, seqs []uint64, stale bool) []ops.Result {
	return s.get().ReplayRejectedAt(ctx, seqs, stale)
}
func (s *swapReplayer) ReplayDeadLetterAt(ctx context.Context, seq uint64) ops.Result {
	return s.get().ReplayDeadLetterAt(ctx, seq)
}
func (s *swapReplayer) Marks() *ops.Marks { return s.get().Marks() }

type page struct {
	rig    *opstest.Rig
	srv    *httptest.Server
	backer *swapReplayer
}

// newPage serves the operator page on the rig, its replays running with
// terminal password password.
func newPage(t testing.TB, rig *opstest.Rig, password string) *page {
	t.Helper()
	p := &page{rig: rig, backer: &swapReplayer{}}
	p.restart(password)
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "paycomet_notify_notifications_total", Help: "x"}, []string{"type", "result"})
	reg.MustRegister(c)
	c.WithLabelValues("1", "published").Add(3)
	u, err := ui.New(ui.Config{Token: secret.New(adminToken), Reader: rig.Reader, Replayer: p.backer, Gatherer: reg,
		NotificationPath: "/paycomet/notifications/••••••",
		State: func() ui.State {
			return ui.State{NATSConnected: rig.NC.IsConnected(), NATSServer: rig.NATS.URL(), NATSVersion: rig.NC.ConnectedServerVersion(),
				DedupeStore: rig.Store.Name(), DedupeUp: rig.Store.Up()}
		}})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/ui/", u)
	mux.Handle("/ui", u)
	p.srv = httptest.NewServer(mux)
	t.Cleanup(p.srv.Close)
	return p
}

// restart replaces the page's notification path with one whose terminal
// password is password: the operator fixed PAYCOMET_TERMINALS.
func (p *page) restart(password string) {
	p.backer.set(ops.NewReplayer(p.rig.Reader, p.rig.Path(password, false)))
}

var _ = demo.Password
