package dedupe

import (
	"context"
	"strings"
	"testing"

	"github.com/paycomet-notify/paycomet-notify/internal/testenv"
)

// TestRedisWrongPasswordIsAnError: a Redis that refuses our credentials must
// make Claim fail (so the path publishes with JetStream's window), never
// answer InFlight, which would keep every notification waiting for a copy
// that does not exist and answer 503.
func TestRedisWrongPasswordIsAnError(t *testing.T) {
	r := testenv.StartRedis(t)
	admin := newTestRedisClient(t, r.URL())
	if err := admin.ConfigSet(context.Background(), "requirepass", "right-password").Err(); err != nil {
		t.Fatalf("CONFIG SET requirepass: %v", err)
	}
	url := strings.Replace(r.URL(), "redis://", "redis://:wrong-password@", 1)
	s := newTestRedis(t, newTestRedisClient(t, url), Options{})
	for i := range 2 {
		_, st, err := s.Claim(context.Background(), "k")
		if err == nil {
			t.Fatalf("Claim #%d with a wrong password = %v, nil; want an error", i+1, st)
		}
		if strings.Contains(err.Error(), "wrong-password") {
			t.Fatalf("Claim error shows the password: %v", err)
		}
	}
}
