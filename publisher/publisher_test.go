package publisher

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/paycomet-notify/paycomet-notify/internal/testenv"
)

func setup(t *testing.T) (jetstream.JetStream, *testenv.NATS) {
	t.Helper()
	n := testenv.StartNATS(t)
	js, err := jetstream.New(n.Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	return js, n
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestEnsureStreamCreatesAndAccepts(t *testing.T) {
	js, _ := setup(t)
	cfg := StreamConfig{Name: "PAYCOMET", Prefix: "paycomet", Replicas: 1, DuplicateWindow: time.Minute}
	if _, err := EnsureStream(ctx(t), js, cfg); err != nil {
		t.Fatalf("EnsureStream(new) = %v", err)
	}
	s, err := EnsureStream(ctx(t), js, cfg) // idempotent
	if err != nil {
		t.Fatalf("EnsureStream(existing) = %v", err)
	}
	info, _ := s.Info(ctx(t))
	if info.Config.Storage != jetstream.FileStorage || info.Config.Duplicates != time.Minute || info.Config.Subjects[0] != "paycomet.>" {
		t.Errorf("stream config = %+v", info.Config)
	}
	cfg.DuplicateWindow = 2 * time.Minute
	s, err = EnsureStream(ctx(t), js, cfg)
	if err != nil {
		t.Fatal(err)
	}
	info, _ = s.Info(ctx(t))
	if info.Config.Duplicates != 2*time.Minute {
		t.Errorf("duplicate window not updated: %v", info.Config.Duplicates)
	}
}

func TestEnsureStreamRefusesOtherSubjects(t *testing.T) {
	js, _ := setup(t)
	if _, err := js.CreateStream(ctx(t), jetstream.StreamConfig{Name: "PAYCOMET", Subjects: []string{"orders.>"}}); err != nil {
		t.Fatal(err)
	}
	_, err := EnsureStream(ctx(t), js, StreamConfig{Name: "PAYCOMET", Prefix: "paycomet", Replicas: 1, DuplicateWindow: time.Minute})
	if !errors.Is(err, ErrStreamMismatch) {
		t.Fatalf("EnsureStream = %v, want ErrStreamMismatch", err)
	}
	t.Log(err)
}

func TestPublishDedupesByMsgID(t *testing.T) {
	js, _ := setup(t)
	s, err := EnsureStream(ctx(t), js, StreamConfig{Name: "PAYCOMET", Prefix: "paycomet", Replicas: 1, DuplicateWindow: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	p := New(js, "PAYCOMET")
	a1, err := p.Publish(ctx(t), "paycomet.1.authorization.ok", "id-1", []byte(`{}`))
	if err != nil || a1.Duplicate {
		t.Fatalf("first Publish = %+v, %v", a1, err)
	}
	a2, err := p.Publish(ctx(t), "paycomet.1.authorization.ok", "id-1", []byte(`{}`))
	if err != nil || !a2.Duplicate || a2.Sequence != a1.Sequence {
		t.Fatalf("second Publish = %+v, %v; want duplicate of seq %d", a2, err, a1.Sequence)
	}
	msg, err := s.GetMsg(ctx(t), a1.Sequence)
	if err != nil {
		t.Fatal(err)
	}
	if msg.Header.Get("Nats-Msg-Id") != "id-1" || msg.Header.Get("Content-Type") != ContentType {
		t.Errorf("headers = %v", msg.Header)
	}
	info, _ := s.Info(ctx(t))
	if info.State.Msgs != 1 {
		t.Errorf("stream has %d messages, want 1", info.State.Msgs)
	}
}

func TestPublishFailsWhenNATSDown(t *testing.T) {
	js, n := setup(t)
	if _, err := EnsureStream(ctx(t), js, StreamConfig{Name: "PAYCOMET", Prefix: "paycomet", Replicas: 1, DuplicateWindow: time.Minute}); err != nil {
		t.Fatal(err)
	}
	n.Stop()
	c, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if _, err := New(js, "PAYCOMET").Publish(c, "paycomet.1.authorization.ok", "id-2", []byte(`{}`)); err == nil {
		t.Fatal("Publish with NATS down succeeded")
	}
}
