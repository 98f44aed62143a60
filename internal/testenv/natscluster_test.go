package testenv

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// TestNATSClusterSurvivesItsLeader: three processes form a JetStream
// cluster; an R3 stream keeps its messages and takes new ones after its
// leader is killed, and the killed node rejoins current.
func TestNATSClusterSurvivesItsLeader(t *testing.T) {
	c := StartNATSCluster(t, 3)
	js, err := jetstream.New(c.Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}, Replicas: 3}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "t.x", []byte("1")); err != nil {
		t.Fatal(err)
	}
	leader := c.StreamLeader(t, js, "T", 30*time.Second)
	leader.Kill()
	if leader.Running() {
		t.Fatal("killed node still running")
	}
	Eventually(t, 30*time.Second, "a publish after the leader was killed", func() bool {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		_, err := js.Publish(pctx, "t.x", []byte("2"))
		return err == nil
	})
	leader.Start()
	next := c.StreamLeader(t, js, "T", 30*time.Second)
	s, err := js.Stream(ctx, "T")
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 2 {
		t.Errorf("messages = %d, want 2", info.State.Msgs)
	}
	t.Logf("leader %s killed, %s leads now", leader.Name, next.Name)
}
