package config

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nkeys"

	"github.com/paycomet-notify/paycomet-notify/internal/testenv"
)

func write(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// productionFiles makes a real seed, creds file, CA, certificate and key.
type productionFiles struct {
	seed, accountSeed, creds, ca, cert, key, otherKey, garbage, missing string
	secrets                                                             []string
}

func makeProductionFiles(t *testing.T) productionFiles {
	dir := t.TempDir()
	u, _ := nkeys.CreateUser()
	useed, _ := u.Seed()
	upub, _ := u.PublicKey()
	a, _ := nkeys.CreateAccount()
	aseed, _ := a.Seed()
	uJWT, err := jwt.NewUserClaims(upub).Encode(a)
	if err != nil {
		t.Fatal(err)
	}
	creds, err := jwt.FormatUserConfig(uJWT, useed)
	if err != nil {
		t.Fatal(err)
	}
	ca := testenv.NewCA(t)
	cert, key := ca.Issue(t, "client")
	_, otherKey := ca.Issue(t, "other")
	keyPEM, _ := os.ReadFile(key)
	return productionFiles{
		seed:        write(t, dir, "user.nk", string(useed)),
		accountSeed: write(t, dir, "account.nk", string(aseed)),
		creds:       write(t, dir, "user.creds", string(creds)),
		ca:          ca.CertFile, cert: cert, key: key, otherKey: otherKey,
		garbage: write(t, dir, "garbage", "not a key at all\n"),
		missing: filepath.Join(dir, "missing"),
		secrets: []string{string(useed), string(aseed), string(keyPEM)[40:80]},
	}
}

func TestLoadProductionAccepts(t *testing.T) {
	f := makeProductionFiles(t)
	for _, tc := range []map[string]string{
		{"NATS_URL": "tls://n1:4222,tls://n2:4222", "NATS_CREDS": f.creds, "NATS_TLS_CA": f.ca},
		{"NATS_URL": "nats://n1:4222", "NATS_NKEY_SEED": f.seed, "NATS_TLS_CA": f.ca, "NATS_TLS_CERT": f.cert, "NATS_TLS_KEY": f.key},
		{"NATS_URL": "nats://n1:4222", "NATS_USER": "receiver", "NATS_PASSWORD": "pw"},
		{"REDIS_URL": "rediss://redis:6380/0", "REDIS_TLS_CA": f.ca},
		{"REDIS_URL": "rediss://redis:6380/0", "REDIS_PASSWORD": "pw", "REDIS_TLS_CERT": f.cert, "REDIS_TLS_KEY": f.key},
		{"REDIS_SENTINEL_MASTER": "dedupe", "REDIS_SENTINEL_ADDRS": "s1:26379, s2:26379,s3:26379", "REDIS_PASSWORD": "pw", "REDIS_SENTINEL_PASSWORD": "spw"},
		{"REDIS_SENTINEL_MASTER": "dedupe", "REDIS_SENTINEL_ADDRS": "s1:26379", "REDIS_TLS_CA": f.ca},
	} {
		c, err := Load(tc, nil)
		if err != nil {
			t.Errorf("Load(%v) = %v", tc, err)
			continue
		}
		if tc["REDIS_SENTINEL_MASTER"] != "" && (!c.Redis.Sentinel() || !c.RedisConfigured() || len(c.Redis.SentinelAddrs) == 0) {
			t.Errorf("Load(%v): Sentinel not configured: %+v", tc, c.Redis)
		}
	}
}

// TestLoadProductionRejects: each refusal names the variable and shows no
// password and no file content.
func TestLoadProductionRejects(t *testing.T) {
	f := makeProductionFiles(t)
	const pw = "Hunter2-secret-pw"
	nats := "nats://n1:4222"
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"NATS_URL": nats, "NATS_USER": "receiver"}, "NATS_USER is set without NATS_PASSWORD"},
		{map[string]string{"NATS_URL": nats, "NATS_PASSWORD": pw}, "NATS_PASSWORD is set without NATS_USER"},
		{map[string]string{"NATS_URL": "nats://u:" + pw + "@n1:4222", "NATS_USER": "u", "NATS_PASSWORD": pw}, "NATS_URL holds a user too"},
		{map[string]string{"NATS_URL": nats, "NATS_CREDS": f.creds, "NATS_NKEY_SEED": f.seed}, "NATS_CREDS and NATS_NKEY_SEED"},
		{map[string]string{"NATS_URL": nats, "NATS_CREDS": f.creds, "NATS_USER": "u", "NATS_PASSWORD": pw}, "set only one"},
		{map[string]string{"NATS_USER": "u", "NATS_PASSWORD": pw}, "need NATS_URL"},
		{map[string]string{"NATS_URL": nats, "NATS_CREDS": f.missing}, "NATS_CREDS: cannot read " + f.missing},
		{map[string]string{"NATS_URL": nats, "NATS_CREDS": f.seed}, "not a NATS credentials file"},
		{map[string]string{"NATS_URL": nats, "NATS_NKEY_SEED": f.garbage}, "NATS_NKEY_SEED " + f.garbage + ": holds no nkey seed"},
		{map[string]string{"NATS_URL": nats, "NATS_NKEY_SEED": f.accountSeed}, "not a user seed"},
		{map[string]string{"NATS_URL": nats, "NATS_NKEY_SEED": f.missing}, "NATS_NKEY_SEED: cannot read"},
		{map[string]string{"NATS_URL": nats, "NATS_TLS_CERT": f.cert}, "NATS_TLS_CERT and NATS_TLS_KEY go together"},
		{map[string]string{"NATS_URL": nats, "NATS_TLS_KEY": f.key}, "NATS_TLS_CERT and NATS_TLS_KEY go together"},
		{map[string]string{"NATS_URL": nats, "NATS_TLS_CERT": f.cert, "NATS_TLS_KEY": f.otherKey}, "are not a PEM certificate and its private key"},
		{map[string]string{"NATS_URL": nats, "NATS_TLS_CA": f.key}, "NATS_TLS_CA " + f.key + " holds no PEM certificate"},
		{map[string]string{"NATS_URL": nats, "NATS_TLS_CA": f.missing}, "NATS_TLS_CA: cannot read"},
		{map[string]string{"REDIS_SENTINEL_MASTER": "m"}, "without REDIS_SENTINEL_ADDRS"},
		{map[string]string{"REDIS_SENTINEL_ADDRS": "s1:26379"}, "without REDIS_SENTINEL_MASTER"},
		{map[string]string{"REDIS_SENTINEL_MASTER": "m", "REDIS_SENTINEL_ADDRS": "s1:26379", "REDIS_URL": "redis://:" + pw + "@r:6379"}, "instead of REDIS_URL"},
		{map[string]string{"REDIS_SENTINEL_MASTER": "m", "REDIS_SENTINEL_ADDRS": "s1"}, "REDIS_SENTINEL_ADDRS entry 1 must be host:port"},
		{map[string]string{"REDIS_SENTINEL_PASSWORD": pw}, "REDIS_SENTINEL_PASSWORD is set without REDIS_SENTINEL_MASTER"},
		{map[string]string{"REDIS_PASSWORD": pw}, "REDIS_PASSWORD is set without REDIS_URL"},
		{map[string]string{"REDIS_URL": "redis://:" + pw + "@r:6379", "REDIS_PASSWORD": pw}, "REDIS_URL holds a password too"},
		{map[string]string{"REDIS_URL": "redis://r:6379", "REDIS_TLS_CA": f.ca}, "not a rediss:// URL"},
		{map[string]string{"REDIS_TLS_CA": f.ca}, "REDIS_TLS_* is set without REDIS_URL"},
		{map[string]string{"REDIS_URL": "rediss://r:6379", "REDIS_TLS_CERT": f.cert}, "REDIS_TLS_CERT and REDIS_TLS_KEY go together"},
		{map[string]string{"REDIS_URL": "rediss://r:6379", "REDIS_TLS_CA": f.garbage}, "REDIS_TLS_CA " + f.garbage + " holds no PEM certificate"},
	} {
		_, err := Load(tc.env, nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Load(%v) = %v, want it to say %q", tc.env, err, tc.want)
			continue
		}
		for _, s := range append([]string{pw}, f.secrets...) {
			if strings.Contains(err.Error(), s) {
				t.Errorf("Load(%v) error %q shows a secret", tc.env, err)
			}
		}
	}
}

func TestScrubRedisAndNATS(t *testing.T) {
	c, err := Load(map[string]string{"REDIS_SENTINEL_MASTER": "m", "REDIS_SENTINEL_ADDRS": "s1:26379", "REDIS_PASSWORD": "redisPW-1",
		"REDIS_SENTINEL_PASSWORD": "sentPW-2", "NATS_URL": "nats://n:4222", "NATS_USER": "u", "NATS_PASSWORD": "natsPW-3"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := c.ScrubRedis("auth redisPW-1 sentPW-2") + c.ScrubNATS(" natsPW-3")
	for _, s := range []string{"redisPW-1", "sentPW-2", "natsPW-3"} {
		if strings.Contains(got, s) {
			t.Errorf("scrubbed %q still holds %q", got, s)
		}
	}
	if d := c.RedisDesc(); d != "sentinel master m via s1:26379" {
		t.Errorf("RedisDesc() = %q", d)
	}
}

// TestProductionSecretsNeverLogged: the configuration is logged whole at
// start-up; the NATS and Redis passwords are not in it.
func TestProductionSecretsNeverLogged(t *testing.T) {
	c, err := Load(map[string]string{"NATS_URL": "nats://n:4222", "NATS_USER": "u", "NATS_PASSWORD": "natsPW-log-1",
		"REDIS_SENTINEL_MASTER": "m", "REDIS_SENTINEL_ADDRS": "s:26379", "REDIS_PASSWORD": "redisPW-log-2", "REDIS_SENTINEL_PASSWORD": "sentPW-log-3"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	slog.New(slog.NewJSONHandler(&b, nil)).Info("serving", "config", c)
	out := b.String() + fmt.Sprintf("%v %+v %#v", c, c, c)
	for _, s := range []string{"natsPW-log-1", "redisPW-log-2", "sentPW-log-3"} {
		if strings.Contains(out, s) {
			t.Errorf("logged configuration holds %q:\n%s", s, out)
		}
	}
	if !strings.Contains(b.String(), `"SentinelMaster":"m"`) {
		t.Errorf("logged configuration lacks the Sentinel settings:\n%s", b.String())
	}
}
