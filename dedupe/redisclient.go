package dedupe

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/redis/go-redis/v9"
)

// RedisClientConfig is how to reach Redis: REDIS_URL, or a master through
// Sentinel (REDIS_SENTINEL_MASTER and REDIS_SENTINEL_ADDRS, instead of
// REDIS_URL), both through go-redis's own clients.
type RedisClientConfig struct {
	// URL is REDIS_URL: redis://, rediss:// (TLS) or unix://.
	URL string
	// SentinelMaster and SentinelAddrs select a redis.NewFailoverClient
	// that asks the Sentinels for the master and follows it through a
	// failover.
	SentinelMaster string
	SentinelAddrs  []string
	// Password is REDIS_PASSWORD: the master's (and replicas') password
	// with Sentinel, or the password of a URL without one.
	Password string
	// SentinelPassword is REDIS_SENTINEL_PASSWORD, when the Sentinels
	// require one of their own.
	SentinelPassword string
	// TLS holds the REDIS_TLS_* CA and client certificate. With a
	// rediss:// URL it adds to go-redis's TLS settings (server name from
	// the URL); with Sentinel it turns TLS on for the Sentinels and the
	// master alike.
	TLS *tls.Config
}

// NewRedisClientFor builds the client tuned for the hot path (see
// NewRedisClient): a pool for about 64 concurrent requests, 1s dial
// timeout, 500ms read and write timeouts and a single retry, for a URL or
// for Sentinel. Errors never contain the URL or a password.
func NewRedisClientFor(c RedisClientConfig) (redis.UniversalClient, error) {
	if c.SentinelMaster != "" {
		return newFailoverClient(c), nil
	}
	if _, err := url.Parse(c.URL); err != nil {
		// url.Error quotes the whole URL, password included: do not wrap it.
		return nil, errors.New("parse redis url: malformed url (not shown, it may hold a password)")
	}
	o, err := redis.ParseURL(c.URL)
	if err != nil {
		return nil, fmt.Errorf("parse redis url: %w", err)
	}
	if o.Password == "" && c.Password != "" {
		o.Password = c.Password
	}
	if c.TLS != nil {
		if o.TLSConfig == nil {
			return nil, errors.New("redis TLS files are set but the URL is not rediss://")
		}
		o.TLSConfig.RootCAs = c.TLS.RootCAs
		o.TLSConfig.Certificates = c.TLS.Certificates
	}
	if o.PoolSize == 0 {
		o.PoolSize = redisPoolSize
	}
	if o.DialTimeout == 0 {
		o.DialTimeout = redisDialTimeout
	}
	if o.ReadTimeout == 0 {
		o.ReadTimeout = redisIOTimeout
	}
	if o.WriteTimeout == 0 {
		o.WriteTimeout = redisIOTimeout
	}
	if o.PoolTimeout == 0 {
		o.PoolTimeout = redisPoolTimeout
	}
	if o.MaxRetries == 0 {
		o.MaxRetries = redisMaxRetries
	}
	if o.MaxRetryBackoff == 0 {
		o.MaxRetryBackoff = redisMaxRetryWait
	}
	// go-redis otherwise dials 5 times per connection with 100ms pauses,
	// which makes every request to a dead server take half a second or more.
	o.DialerRetries = 1
	o.ContextTimeoutEnabled = true
	return redis.NewClient(o), nil
}

// newFailoverClient is go-redis's Sentinel client with the same tuning: it
// asks the Sentinels for the master, subscribes to their switch-master
// announcements and reconnects to the new master after a failover.
func newFailoverClient(c RedisClientConfig) redis.UniversalClient {
	addrs := make([]string, 0, len(c.SentinelAddrs))
	for _, a := range c.SentinelAddrs {
		if a = strings.TrimSpace(a); a != "" {
			addrs = append(addrs, a)
		}
	}
	var tlsCfg *tls.Config
	if c.TLS != nil {
		tlsCfg = c.TLS.Clone()
	}
	return redis.NewFailoverClient(&redis.FailoverOptions{
		MasterName:            c.SentinelMaster,
		SentinelAddrs:         addrs,
		SentinelPassword:      c.SentinelPassword,
		Password:              c.Password,
		TLSConfig:             tlsCfg,
		PoolSize:              redisPoolSize,
		DialTimeout:           redisDialTimeout,
		ReadTimeout:           redisIOTimeout,
		WriteTimeout:          redisIOTimeout,
		PoolTimeout:           redisPoolTimeout,
		MaxRetries:            redisMaxRetries,
		MaxRetryBackoff:       redisMaxRetryWait,
		DialerRetries:         1,
		ContextTimeoutEnabled: true,
	})
}
