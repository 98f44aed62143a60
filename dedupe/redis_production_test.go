package dedupe

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/paycomet-notify/paycomet-notify/internal/testenv"
)

// TestRedisTLS: a rediss:// URL with the CA (and a client certificate,
// which redis-server requires by default) reaches a TLS port; without the
// CA or without the certificate the store cannot reach it and says so.
func TestRedisTLS(t *testing.T) {
	ca := testenv.NewCA(t)
	r := testenv.StartRedisWith(t, testenv.RedisOptions{CA: ca, ClientCerts: true})
	certFile, keyFile := ca.Issue(t, "receiver")
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	url := "rediss://" + r.TLSAddr() + "/0"
	for _, tc := range []struct {
		name string
		tls  *tls.Config
		ok   bool
	}{
		{"CA and client certificate", &tls.Config{RootCAs: ca.Pool, Certificates: []tls.Certificate{pair}}, true},
		{"CA without client certificate", &tls.Config{RootCAs: ca.Pool}, false},
		{"client certificate, system roots", &tls.Config{Certificates: []tls.Certificate{pair}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := NewRedisClientFor(RedisClientConfig{URL: url, TLS: tc.tls})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = c.Close() })
			s := newTestRedis(t, c, Options{KeyPrefix: "tls:"})
			ctx := context.Background()
			err = s.Ping(ctx)
			if (err == nil) != tc.ok {
				t.Fatalf("Ping = %v, want ok=%v", err, tc.ok)
			}
			if !tc.ok {
				if s.Up() {
					t.Error("Up() after a failed TLS Ping, want down")
				}
				return
			}
			key := "k-" + strings.ReplaceAll(tc.name, " ", "-")
			if _, st, err := s.Claim(ctx, key); err != nil || st != Claimed {
				t.Fatalf("Claim over TLS = %v, %v", st, err)
			}
			if _, st, err := s.Claim(ctx, key); err != nil || st != InFlight {
				t.Fatalf("second Claim over TLS = %v, %v, want InFlight", st, err)
			}
		})
	}
	// A plain redis:// URL with TLS files is refused, not silently sent in clear.
	if _, err := NewRedisClientFor(RedisClientConfig{URL: "redis://" + r.TLSAddr(), TLS: &tls.Config{RootCAs: ca.Pool}}); err == nil {
		t.Error("NewRedisClientFor(redis:// with TLS files) = nil error")
	}
}

// TestRedisSentinelFailoverUnderLoad: the store reaches a master through
// two Sentinels (go-redis's failover client), claims run from several
// goroutines, and SENTINEL FAILOVER promotes the replica meanwhile. The
// store follows the new master: claims succeed again soon after the switch,
// they land on the promoted server, and a key marked seen (and replicated)
// before the failover is still seen after it. Claims that fail during the
// switch are what the contract allows (the receiver publishes through the
// JetStream window while the store is unavailable); they are counted.
func TestRedisSentinelFailoverUnderLoad(t *testing.T) {
	const pw, name = "sentinel-test-pw-1", "dedupe"
	master := testenv.StartRedisWith(t, testenv.RedisOptions{Password: pw})
	replica := testenv.StartRedisWith(t, testenv.RedisOptions{ReplicaOf: master, Password: pw})
	ctx := context.Background()
	direct := func(r *testenv.Redis) *redis.Client {
		c := redis.NewClient(&redis.Options{Addr: r.Addr(), Password: pw})
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	replicaC := direct(replica)
	testenv.Eventually(t, 20*time.Second, "the replica in sync", func() bool {
		info, err := replicaC.Info(ctx, "replication").Result()
		return err == nil && strings.Contains(info, "master_link_status:up")
	})
	s1 := testenv.StartSentinel(t, name, master, pw)
	s2 := testenv.StartSentinel(t, name, master, pw)
	sc := redis.NewSentinelClient(&redis.Options{Addr: testenv.SentinelAddrs(s1)[0]})
	t.Cleanup(func() { _ = sc.Close() })
	testenv.Eventually(t, 20*time.Second, "Sentinel to know the replica", func() bool {
		reps, err := sc.Replicas(ctx, name).Result()
		if err != nil || len(reps) != 1 {
			return false
		}
		return reps[0]["port"] == strconv.Itoa(replica.Port) && !strings.Contains(reps[0]["flags"], "down") &&
			!strings.Contains(reps[0]["flags"], "disconnected")
	})

	c, err := NewRedisClientFor(RedisClientConfig{SentinelMaster: name, SentinelAddrs: testenv.SentinelAddrs(s1, s2), Password: pw})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	s := newTestRedis(t, c, Options{KeyPrefix: "fo:", Timeout: 500 * time.Millisecond})

	// A key seen before the failover, acknowledged by the replica.
	l, st, err := s.Claim(ctx, "before")
	if err != nil || st != Claimed {
		t.Fatalf("Claim(before) = %v, %v", st, err)
	}
	if err := s.MarkSeen(ctx, l, "fp-before"); err != nil {
		t.Fatal(err)
	}
	if n, err := c.Do(ctx, "WAIT", 1, 5000).Int(); err != nil || n != 1 {
		t.Fatalf("WAIT 1 = %d, %v: the replica did not acknowledge", n, err)
	}

	// Load: each worker claims and marks fresh keys until stopped.
	var ok, failed atomic.Int64
	var lastOK atomic.Int64 // unix nanos of the latest success
	var (
		mu     sync.Mutex
		maxGap time.Duration
		errs   = map[string]int{}
	)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			prev := time.Now()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				key := fmt.Sprintf("w%d-%d", w, i)
				l, st, err := s.Claim(ctx, key)
				if err == nil && st == Claimed {
					err = s.MarkSeen(ctx, l, "fp")
				} else if err == nil {
					err = fmt.Errorf("fresh key %s: status %v", key, st)
				}
				if err != nil {
					failed.Add(1)
					mu.Lock()
					msg := err.Error()
					if errors.Is(err, ErrUnavailable) {
						msg = "unavailable (fail fast)"
					} else if i := strings.LastIndex(msg, ": "); i >= 0 {
						msg = msg[i+2:]
					}
					errs[msg]++
					mu.Unlock()
					if errors.Is(err, ErrUnavailable) {
						time.Sleep(5 * time.Millisecond) // pace a failing worker like a client would be
					}
					continue
				}
				now := time.Now()
				mu.Lock()
				maxGap = max(maxGap, now.Sub(prev))
				mu.Unlock()
				prev = now
				ok.Add(1)
				lastOK.Store(now.UnixNano())
			}
		}()
	}
	stopLoad := sync.OnceFunc(func() { close(stop); wg.Wait() })
	t.Cleanup(stopLoad)

	testenv.Eventually(t, 10*time.Second, "claims under load", func() bool { return ok.Load() >= 200 })
	began := time.Now()
	if err := sc.Failover(ctx, name).Err(); err != nil {
		t.Fatalf("SENTINEL FAILOVER: %v", err)
	}
	testenv.Eventually(t, 30*time.Second, "Sentinel to promote the replica", func() bool {
		addr, err := sc.GetMasterAddrByName(ctx, name).Result()
		return err == nil && len(addr) == 2 && addr[1] == strconv.Itoa(replica.Port)
	})
	switched := time.Since(began)
	atSwitch := ok.Load()
	testenv.Eventually(t, 20*time.Second, "claims to succeed on the new master", func() bool {
		return ok.Load() >= atSwitch+200 && s.Up()
	})
	recovered := time.Since(began)
	stopLoad()

	// New writes land on the promoted server soon. (Until the Sentinel the
	// client listens to has heard of the switch, and until Sentinel has
	// demoted the old master, writes may still reach the old master, which
	// throws them away when it resyncs: Redis's replication is
	// asynchronous. The JetStream duplicate window covers that gap.)
	var after int
	testenv.Eventually(t, 20*time.Second, "a claim to land on the promoted server", func() bool {
		after++
		key := "after" + strconv.Itoa(after)
		if _, st, err := s.Claim(ctx, key); err != nil || st != Claimed {
			return false
		}
		n, err := replicaC.Exists(ctx, "fo:"+key).Result()
		return err == nil && n == 1
	})
	landed := time.Since(began)
	if role, err := replicaC.Do(ctx, "ROLE").Slice(); err != nil || len(role) == 0 || role[0] != "master" {
		t.Errorf("ROLE of the promoted server = %v, %v", role, err)
	}
	// What was seen before is still seen.
	if got, st, err := s.Claim(ctx, "before"); err != nil || st != Seen || got.Fingerprint != "fp-before" {
		t.Errorf("Claim(before) after the failover = %+v, %v, %v, want Seen fp-before", got, st, err)
	}
	mu.Lock()
	defer mu.Unlock()
	t.Logf("failover: promoted after %s, claims succeeding again after %s, landing on the new master after %s; %d claims ok, %d failed (%v); longest gap of one worker %s",
		switched.Round(time.Millisecond), recovered.Round(time.Millisecond), landed.Round(time.Millisecond),
		ok.Load(), failed.Load(), errs, maxGap.Round(time.Millisecond))
}

// TestRedisSentinelTLS: Sentinel and master both on TLS ports that require
// client certificates; the failover client reaches the master through the
// Sentinel with the same TLS settings.
func TestRedisSentinelTLS(t *testing.T) {
	ca := testenv.NewCA(t)
	master := testenv.StartRedisWith(t, testenv.RedisOptions{CA: ca, ClientCerts: true})
	s := testenv.StartSentinelTLS(t, "dedupe", master, "", ca)
	certFile, keyFile := ca.Issue(t, "receiver")
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		tls  *tls.Config
		ok   bool
	}{
		{"TLS", &tls.Config{RootCAs: ca.Pool, Certificates: []tls.Certificate{pair}}, true},
		{"no client certificate", &tls.Config{RootCAs: ca.Pool}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := NewRedisClientFor(RedisClientConfig{SentinelMaster: "dedupe", SentinelAddrs: []string{"127.0.0.1:" + strconv.Itoa(s.TLSPort)}, TLS: tc.tls})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = c.Close() })
			st := newTestRedis(t, c, Options{KeyPrefix: "stls:"})
			err = st.Ping(context.Background())
			if (err == nil) != tc.ok {
				t.Fatalf("Ping through a TLS Sentinel = %v, want ok=%v", err, tc.ok)
			}
			if tc.ok {
				if _, got, err := st.Claim(context.Background(), "k"); err != nil || got != Claimed {
					t.Fatalf("Claim = %v, %v", got, err)
				}
			}
		})
	}
}
