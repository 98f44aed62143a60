package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/paycomet-notify/paycomet-notify/internal/testenv"
)

func TestIsPermanent(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{fmt.Errorf("look up stream PAYCOMET: %w", context.DeadlineExceeded), false},
		{fmt.Errorf("connect NATS: %w", nats.ErrNoServers), false},
		{fmt.Errorf("look up stream PAYCOMET: %w", jetstream.ErrJetStreamNotEnabled), false},
		{fmt.Errorf("create: %w", &jetstream.APIError{Code: 503, ErrorCode: 10023, Description: "insufficient resources"}), false},
		{fmt.Errorf("create: %w", &jetstream.APIError{Code: 500, ErrorCode: 10074, Description: "replicas > 1 not supported in non-clustered mode"}), true},
		{fmt.Errorf("create: %w", &jetstream.APIError{Code: 400, ErrorCode: 10065, Description: "subjects overlap with an existing stream"}), true},
		{fmt.Errorf("connect: %w", nats.ErrAuthorization), true},
		{fmt.Errorf("NATS: %w", ErrServerTooOld), true},
		{Permanent(errors.New("bad")), true},
		{errors.New("anything else"), false},
	} {
		if got := IsPermanent(tc.err); got != tc.want {
			t.Errorf("IsPermanent(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
	if Permanent(nil) != nil {
		t.Error("Permanent(nil) != nil")
	}
}

// TestWaitRetriesWhatTimeFixes: the cluster start-up failure (a stream
// look-up that timed out) is retried until it succeeds, logged once, and
// shown in the start-up readiness meanwhile; a permanent error returns at
// once; a cancelled context ends the wait.
func TestWaitRetriesWhatTimeFixes(t *testing.T) {
	var logs testenv.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	st := NewStartup()
	n := 0
	var during Readiness
	err := Wait(context.Background(), log, st, "streams PAYCOMET", func(context.Context) error {
		n++
		if n == 4 {
			during = st.Readiness()
		}
		if n < 5 {
			return fmt.Errorf("look up stream PAYCOMET: %w", context.DeadlineExceeded)
		}
		return nil
	})
	if err != nil || n != 5 {
		t.Fatalf("Wait = %v after %d attempts, want nil after 5", err, n)
	}
	if during.Ready || len(during.Checks) != 1 || !strings.Contains(during.Checks[0].Error, "waiting for streams PAYCOMET (3 attempts): look up stream PAYCOMET: context deadline exceeded") {
		t.Errorf("readiness while waiting = %+v", during)
	}
	if c := strings.Count(logs.String(), "start-up: waiting for streams PAYCOMET"); c != 1 {
		t.Errorf("%d waiting lines for 4 failures, want 1:\n%s", c, logs.String())
	}
	if !strings.Contains(logs.String(), "start-up: streams PAYCOMET is there") {
		t.Errorf("no line saying the streams are there:\n%s", logs.String())
	}

	n = 0
	err = Wait(context.Background(), log, nil, "NATS", func(context.Context) error { n++; return fmt.Errorf("x: %w", nats.ErrAuthorization) })
	if !errors.Is(err, nats.ErrAuthorization) || n != 1 {
		t.Errorf("Wait(permanent) = %v after %d attempts, want it at once", err, n)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err = Wait(ctx, log, nil, "NATS", func(context.Context) error { return nats.ErrNoServers })
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, nats.ErrNoServers) {
		t.Errorf("Wait(cancelled) = %v, want the context's error and the last failure", err)
	}
}
