package publisher

import (
	"context"
	"errors"
	"slices"
	"strings"
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

func streamsConfig() StreamsConfig {
	return StreamsConfig{Name: "PAYCOMET", Prefix: "paycomet", Replicas: 1, DuplicateWindow: time.Minute,
		RejectedMaxBytes: 1 << 20, RejectedMaxAge: time.Hour}
}

func info(t *testing.T, js jetstream.JetStream, name string) jetstream.StreamConfig {
	t.Helper()
	s, err := js.Stream(ctx(t), name)
	if err != nil {
		t.Fatalf("stream %s: %v", name, err)
	}
	return s.CachedInfo().Config
}

func TestEnsureStreamsCreatesAndAccepts(t *testing.T) {
	js, _ := setup(t)
	cfg := streamsConfig()
	got, err := EnsureStreams(ctx(t), js, cfg)
	if err != nil {
		t.Fatalf("EnsureStreams(new) = %v", err)
	}
	if len(got.Notes) != 2 {
		t.Errorf("notes of a fresh start = %q, want one per created stream", got.Notes)
	}
	got, err = EnsureStreams(ctx(t), js, cfg) // idempotent
	if err != nil {
		t.Fatalf("EnsureStreams(existing) = %v", err)
	}
	if len(got.Notes) != 0 {
		t.Errorf("notes when nothing changed = %q", got.Notes)
	}
	ev := info(t, js, "PAYCOMET")
	if ev.Storage != jetstream.FileStorage || ev.Duplicates != time.Minute || !slices.Equal(ev.Subjects, []string{"paycomet.*.>", "paycomet.dlq"}) {
		t.Errorf("event stream config = %+v", ev)
	}
	if ev.MaxBytes != -1 || ev.MaxAge != 0 || ev.MaxMsgs != -1 {
		t.Errorf("event stream is bounded: max bytes %d, age %s, msgs %d", ev.MaxBytes, ev.MaxAge, ev.MaxMsgs)
	}
	q := info(t, js, "PAYCOMET_REJECTED")
	if !slices.Equal(q.Subjects, []string{"paycomet.rejected"}) || q.MaxBytes != 1<<20 || q.MaxAge != time.Hour || q.Discard != jetstream.DiscardOld || q.Storage != jetstream.FileStorage {
		t.Errorf("quarantine stream config = %+v", q)
	}

	cfg.DuplicateWindow, cfg.RejectedMaxBytes = 2*time.Minute, 2<<20
	got, err = EnsureStreams(ctx(t), js, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Notes) != 2 {
		t.Errorf("notes after changing both = %q", got.Notes)
	}
	if d := info(t, js, "PAYCOMET").Duplicates; d != 2*time.Minute {
		t.Errorf("duplicate window not updated: %v", d)
	}
	if b := info(t, js, "PAYCOMET_REJECTED").MaxBytes; b != 2<<20 {
		t.Errorf("quarantine max bytes not updated: %v", b)
	}
}

// TestEnsureStreamsMovesOldStream: a stream of an earlier version captured
// <prefix>.>, quarantine included. It is moved to the new subjects (JetStream
// would refuse the quarantine stream beside it), its messages stay, and
// publishing on either stream works afterwards.
func TestEnsureStreamsMovesOldStream(t *testing.T) {
	js, _ := setup(t)
	if _, err := js.CreateStream(ctx(t), jetstream.StreamConfig{Name: "PAYCOMET", Subjects: []string{"paycomet.>"},
		Storage: jetstream.FileStorage, Duplicates: time.Minute}); err != nil {
		t.Fatal(err)
	}
	old := New(js, "PAYCOMET")
	for _, subj := range []string{"paycomet.1.authorization.ok", "paycomet.rejected"} {
		if _, err := old.Publish(ctx(t), subj, "old-"+subj, []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
	}
	got, err := EnsureStreams(ctx(t), js, streamsConfig())
	if err != nil {
		t.Fatalf("EnsureStreams over an old stream = %v", err)
	}
	if len(got.Notes) == 0 || !strings.Contains(got.Notes[0], "event stream subjects moved") {
		t.Errorf("notes = %q, want the move first", got.Notes)
	}
	t.Log(got.Notes)
	if s := info(t, js, "PAYCOMET").Subjects; !slices.Equal(s, []string{"paycomet.*.>", "paycomet.dlq"}) {
		t.Errorf("event stream subjects after the move = %q", s)
	}
	if st, _ := got.Events.Info(ctx(t)); st.State.Msgs != 2 {
		t.Errorf("the old stream lost messages in the move: %d left", st.State.Msgs)
	}
	if _, err := New(js, "PAYCOMET_REJECTED").Publish(ctx(t), "paycomet.rejected", "q-1", []byte(`{}`)); err != nil {
		t.Errorf("quarantine publish after the move: %v", err)
	}
	for _, subj := range []string{"paycomet.1.authorization.ok", "paycomet.1.card.token_refreshed", "paycomet.dlq"} {
		if _, err := New(js, "PAYCOMET").Publish(ctx(t), subj, "new-"+subj, []byte(`{}`)); err != nil {
			t.Errorf("event publish on %s after the move: %v", subj, err)
		}
	}
	if _, err := New(js, "PAYCOMET").Publish(ctx(t), "paycomet.rejected", "q-2", []byte(`{}`)); err == nil {
		t.Errorf("the event stream still captures paycomet.rejected")
	}
	if got, err := EnsureStreams(ctx(t), js, streamsConfig()); err != nil || len(got.Notes) != 0 {
		t.Errorf("EnsureStreams after the move = %q, %v; want nothing to do", got.Notes, err)
	}
}

func TestEnsureStreamsRefusesOtherSubjects(t *testing.T) {
	for _, tc := range []struct{ name, stream, subject string }{
		{"event stream", "PAYCOMET", "orders.>"},
		{"quarantine stream", "PAYCOMET_REJECTED", "orders.rejected"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			js, _ := setup(t)
			if _, err := js.CreateStream(ctx(t), jetstream.StreamConfig{Name: tc.stream, Subjects: []string{tc.subject}}); err != nil {
				t.Fatal(err)
			}
			_, err := EnsureStreams(ctx(t), js, streamsConfig())
			if !errors.Is(err, ErrStreamMismatch) {
				t.Fatalf("EnsureStreams = %v, want ErrStreamMismatch", err)
			}
			if s := info(t, js, tc.stream).Subjects; !slices.Equal(s, []string{tc.subject}) {
				t.Errorf("a refused stream was changed: %q", s)
			}
		})
	}
}

// TestCheckStreamsIsReadOnly: readiness probes call CheckStreams; it must
// neither create a missing stream nor undo an operator's edit.
func TestCheckStreamsIsReadOnly(t *testing.T) {
	js, _ := setup(t)
	cfg := streamsConfig()
	if err := CheckStreams(ctx(t), js, cfg); err == nil {
		t.Fatal("CheckStreams with no streams = nil")
	}
	if _, err := js.Stream(ctx(t), "PAYCOMET"); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Fatalf("CheckStreams created the event stream: %v", err)
	}
	if _, err := EnsureStreams(ctx(t), js, cfg); err != nil {
		t.Fatal(err)
	}
	if err := CheckStreams(ctx(t), js, cfg); err != nil {
		t.Fatalf("CheckStreams on fresh streams = %v", err)
	}

	// An operator edits both streams (a different window, a description,
	// limits on the quarantine): still ready, and left alone.
	ev := info(t, js, "PAYCOMET")
	ev.Duplicates, ev.Description = 3*time.Minute, "edited by the operator"
	if _, err := js.UpdateStream(ctx(t), ev); err != nil {
		t.Fatal(err)
	}
	q := info(t, js, "PAYCOMET_REJECTED")
	q.MaxBytes, q.MaxAge = 4096, 2*time.Hour
	if _, err := js.UpdateStream(ctx(t), q); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := CheckStreams(ctx(t), js, cfg); err != nil {
			t.Fatalf("CheckStreams on edited streams = %v", err)
		}
	}
	if got := info(t, js, "PAYCOMET"); got.Duplicates != 3*time.Minute || got.Description != "edited by the operator" {
		t.Errorf("CheckStreams changed the event stream: %+v", got)
	}
	if got := info(t, js, "PAYCOMET_REJECTED"); got.MaxBytes != 4096 || got.MaxAge != 2*time.Hour {
		t.Errorf("CheckStreams changed the quarantine stream: %+v", got)
	}

	// Subjects that lose events make the check fail, and still change nothing.
	ev = info(t, js, "PAYCOMET")
	ev.Subjects = []string{"paycomet.*.>"}
	if _, err := js.UpdateStream(ctx(t), ev); err != nil {
		t.Fatal(err)
	}
	if err := CheckStreams(ctx(t), js, cfg); !errors.Is(err, ErrStreamMismatch) {
		t.Errorf("CheckStreams with the dlq subject gone = %v, want ErrStreamMismatch", err)
	}
	if s := info(t, js, "PAYCOMET").Subjects; !slices.Equal(s, []string{"paycomet.*.>"}) {
		t.Errorf("CheckStreams changed the subjects: %q", s)
	}
}

func TestPublishDedupesByMsgID(t *testing.T) {
	js, _ := setup(t)
	got, err := EnsureStreams(ctx(t), js, streamsConfig())
	if err != nil {
		t.Fatal(err)
	}
	s := got.Events
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
	// A publisher bound to the quarantine refuses an event subject: the
	// expected stream is checked by JetStream.
	if _, err := New(js, "PAYCOMET_REJECTED").Publish(ctx(t), "paycomet.1.authorization.ok", "id-3", []byte(`{}`)); err == nil {
		t.Errorf("quarantine publisher stored an event in the event stream")
	}
}

func TestPublishFailsWhenNATSDown(t *testing.T) {
	js, n := setup(t)
	if _, err := EnsureStreams(ctx(t), js, streamsConfig()); err != nil {
		t.Fatal(err)
	}
	n.Stop()
	c, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if _, err := New(js, "PAYCOMET").Publish(c, "paycomet.1.authorization.ok", "id-2", []byte(`{}`)); err == nil {
		t.Fatal("Publish with NATS down succeeded")
	}
}
