package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/paycomet-notify/paycomet-notify/config"
	"github.com/paycomet-notify/paycomet-notify/dedupe"
	"github.com/paycomet-notify/paycomet-notify/internal/service"
	"github.com/paycomet-notify/paycomet-notify/publisher"
)

// loadConfig parses flags common to the long-running commands and the
// environment; --demo fills in the demo terminal. Its errors name the
// variable to fix and quote no secret.
func loadConfig(name string, args []string, env map[string]string, stderr io.Writer) (config.Config, bool, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	demoMode := fs.Bool("demo", false, "run on the embedded default with a public demo terminal (never for real money)")
	if err := fs.Parse(args); err != nil {
		return config.Config{}, false, err
	}
	if fs.NArg() > 0 {
		return config.Config{}, false, fmt.Errorf("%s: unexpected argument %q", name, fs.Arg(0))
	}
	cfg, err := config.Load(env, nil)
	if err != nil {
		return cfg, false, err
	}
	if *demoMode {
		cfg.ApplyDemo()
	} else if err := cfg.RequireTerminals(); err != nil {
		return cfg, false, err
	}
	return cfg, *demoMode, nil
}

// streamsConfig is the event and quarantine streams every command that
// touches them creates or checks the same way, so either may start first.
func streamsConfig(cfg config.Config) publisher.StreamsConfig {
	return publisher.StreamsConfig{Name: cfg.StreamName, Prefix: cfg.SubjectPrefix, Replicas: cfg.StreamReplicas,
		DuplicateWindow: cfg.DuplicateWindow, RejectedMaxBytes: cfg.RejectedMaxBytes, RejectedMaxAge: cfg.RejectedMaxAge}
}

// waitForStreams sets up the event and quarantine streams, waiting (and
// saying so in /readyz) while NATS or JetStream cannot do it yet; a stream
// with other subjects is not something time fixes. serve and the refresher
// both call it, so either may start first.
func waitForStreams(ctx context.Context, log *slog.Logger, startup *service.Startup, js jetstream.JetStream, sc publisher.StreamsConfig) error {
	return service.Wait(ctx, log, startup, "streams "+sc.Name+" and "+sc.RejectedName(), func(ctx context.Context) error {
		actx, cancel := context.WithTimeout(ctx, streamAttempt)
		defer cancel()
		streams, err := publisher.EnsureStreams(actx, js, sc)
		if errors.Is(err, publisher.ErrStreamMismatch) {
			return service.Permanent(err)
		}
		for _, note := range streams.Notes {
			log.Info("stream set-up", "note", note)
		}
		return err
	})
}

// adminConfig is the admin listener of a long-running command on addr
// (named by variable in errors), with ADMIN_TOKEN and ADMIN_PPROF.
func adminConfig(cfg config.Config, addr, variable string) service.AdminConfig {
	return service.AdminConfig{Addr: addr, Variable: variable, Token: cfg.AdminToken, Pprof: cfg.AdminPprof}
}

// newRedisClient is the Redis client of every command that uses the
// dedupe store (cfg.RedisConfigured): REDIS_URL, or Sentinel, with
// REDIS_PASSWORD and REDIS_TLS_*. Its errors hold no password.
func newRedisClient(cfg config.Config) (redis.UniversalClient, error) {
	tlsCfg, err := cfg.Redis.TLSConfig()
	if err != nil {
		return nil, err
	}
	c, err := dedupe.NewRedisClientFor(dedupe.RedisClientConfig{
		URL:              cfg.RedisURL.Reveal(),
		SentinelMaster:   cfg.Redis.SentinelMaster,
		SentinelAddrs:    cfg.Redis.SentinelAddrs,
		Password:         cfg.Redis.Password.Reveal(),
		SentinelPassword: cfg.Redis.SentinelPassword.Reveal(),
		TLS:              tlsCfg,
	})
	if err != nil {
		return nil, fmt.Errorf("redis %s: %s", cfg.RedisDesc(), cfg.ScrubRedis(err.Error()))
	}
	return c, nil
}
