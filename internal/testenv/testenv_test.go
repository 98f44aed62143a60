package testenv

import (
	"context"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
)

func TestRedisRestart(t *testing.T) {
	r := StartRedis(t)
	c := redis.NewClient(&redis.Options{Addr: r.Addr()})
	defer c.Close()
	ctx := context.Background()
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	r.Stop()
	if err := c.Ping(ctx).Err(); err == nil {
		t.Fatal("PING succeeded on a stopped redis")
	}
	r.Start()
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatalf("PING after restart = %v", err)
	}
}

func TestNATSRestartKeepsStreams(t *testing.T) {
	n := StartNATS(t)
	nc := n.Connect(t)
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "t.x", []byte("1")); err != nil {
		t.Fatal(err)
	}
	n.Stop()
	n.Start()
	Eventually(t, 5*time.Second, "reconnect", nc.IsConnected)
	s, err := js.Stream(ctx, "T")
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 1 {
		t.Errorf("msgs after restart = %d, want 1", info.State.Msgs)
	}
}

// A port taken between FreePort and redis-server's bind (here by another
// test's Redis) is not mistaken for ours: the PING on it is answered by the
// other server, but the start retries on a new port. Before the retry, the
// second Redis "started" on the first one's port and shared its data.
func TestRedisStartRetriesOnPortClash(t *testing.T) {
	first := StartRedis(t)
	calls := 0
	pickPort = func(t testing.TB) int {
		calls++
		if calls == 1 {
			return first.Port
		}
		return FreePort(t)
	}
	t.Cleanup(func() { pickPort = FreePort })
	second := StartRedis(t)
	if calls < 2 || second.Port == first.Port {
		t.Fatalf("second Redis on port %d (first on %d, %d ports picked), want a new port", second.Port, first.Port, calls)
	}
	ctx := context.Background()
	c1 := redis.NewClient(&redis.Options{Addr: first.Addr()})
	defer c1.Close()
	c2 := redis.NewClient(&redis.Options{Addr: second.Addr()})
	defer c2.Close()
	if err := c2.Set(ctx, "only-in-second", "1", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if n, err := c1.Exists(ctx, "only-in-second").Result(); err != nil || n != 0 {
		t.Errorf("first Redis has the second's key (exists=%d, err=%v): they are one server", n, err)
	}
}

// A restart whose port is held by another process for a while waits for it
// instead of failing (or, as nats-server does on its own, staying silently
// unready).
func TestNATSRestartWaitsForItsPort(t *testing.T) {
	n := StartNATS(t)
	if n.Port <= 0 {
		t.Fatalf("port = %d after start", n.Port)
	}
	n.Stop()
	l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(n.Port))
	if err != nil {
		t.Fatal(err)
	}
	// Let go of the port once Start has found it taken.
	var once sync.Once
	clashes := 0
	clashed = func() { clashes++; once.Do(func() { l.Close() }) }
	t.Cleanup(func() { clashed = nil })
	n.Start()
	if clashes == 0 {
		t.Error("Start never found its port taken")
	}
	nc := n.Connect(t)
	if !nc.IsConnected() {
		t.Fatal("not connected after restart")
	}
}
