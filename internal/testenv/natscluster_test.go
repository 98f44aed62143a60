package testenv

import (
	"context"
	"net"
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

// A port taken between FreePort and a node's bind starts the cluster again
// on new ports (every node's routes name every port), and no node ends up
// on the taken one.
func TestNATSClusterStartRetriesOnPortClash(t *testing.T) {
	taken := Listen(t)
	port := taken.Addr().(*net.TCPAddr).Port
	calls := 0
	pickPort = func(t testing.TB) int {
		calls++
		if calls == 1 {
			return port
		}
		return FreePort(t)
	}
	clashes := 0
	clashed = func() { clashes++ }
	t.Cleanup(func() { pickPort, clashed = FreePort, nil })
	c := StartNATSCluster(t, 3)
	if clashes == 0 {
		t.Error("the start never found its port taken")
	}
	for _, nd := range c.Nodes {
		if nd.Port == port || nd.ClusterPort == port {
			t.Errorf("%s on the taken port %d", nd.Name, port)
		}
	}
}
