package config

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestLoadDefaults(t *testing.T) {
	c, err := Load(map[string]string{}, nil)
	if err != nil {
		t.Fatalf("Load(empty) = %v", err)
	}
	if c.ListenAddr != ":8080" || c.AdminAddr != "127.0.0.1:9090" || c.SubjectPrefix != "paycomet" ||
		c.StreamName != "PAYCOMET" || c.DedupeTTL != 168*time.Hour || c.MaxBodyBytes != 65536 || c.DataDir != "./data" {
		t.Errorf("defaults = %+v", c)
	}
	if c.RejectedMaxBytes != 1<<30 || c.RejectedMaxAge != 720*time.Hour || c.RejectedRatePerSource != 10 || c.AdminPprof || !c.AdminToken.IsZero() {
		t.Errorf("quarantine/admin defaults = %d %v %v %v %v", c.RejectedMaxBytes, c.RejectedMaxAge, c.RejectedRatePerSource, c.AdminPprof, c.AdminToken)
	}
	if len(c.RefresherBackoff) != 5 || c.RefresherBackoff[4] != 30*time.Minute || c.RefresherMaxDeliver != 10 {
		t.Errorf("refresher defaults = %v %d", c.RefresherBackoff, c.RefresherMaxDeliver)
	}
	if got := c.NATSServers().Reveal(); got != "nats://127.0.0.1:4223" {
		t.Errorf("NATSServers() = %q, want the embedded address", got)
	}
	if err := c.RequireTerminals(); err == nil || !strings.Contains(err.Error(), "PAYCOMET_TERMINALS") || !strings.Contains(err.Error(), "PAYCOMET_MERCHANT_CODE") {
		t.Errorf("RequireTerminals() = %v, want it to name both variables", err)
	}
}

func TestLoadTerminalsAndFile(t *testing.T) {
	c, err := Load(map[string]string{
		"PAYCOMET_MERCHANT_CODE":  "abc123",
		"PAYCOMET_TERMINALS":      "1234:pw-with-dashes, 55:x,",
		"PAYCOMET_TERMINALS_FILE": "/f",
		"ALLOWED_IPS":             "10.0.0.0/8, 192.0.2.7",
	}, func(string) ([]byte, error) { return []byte("77:filepw\r\n78:other,79:third\n"), nil })
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Terminals["1234"].Reveal(); got != "pw-with-dashes" {
		t.Errorf("terminal 1234 password = %q", got)
	}
	if got := c.Terminals["77"].Reveal(); got != "filepw" {
		t.Errorf("terminal 77 password = %q", got)
	}
	if ids := strings.Join(c.Terminals.IDs(), ","); ids != "1234,55,77,78,79" {
		t.Errorf("IDs = %s", ids)
	}
	if !c.AllowedIPs.Contains(netip.MustParseAddr("10.1.2.3")) || !c.AllowedIPs.Contains(netip.MustParseAddr("::ffff:192.0.2.7")) || c.AllowedIPs.Contains(netip.MustParseAddr("192.0.2.8")) {
		t.Errorf("AllowedIPs = %v", c.AllowedIPs)
	}
	if err := c.RequireTerminals(); err != nil {
		t.Errorf("RequireTerminals() = %v", err)
	}
}

// TestLoadAccepts: values near the refused ones that are right.
func TestLoadAccepts(t *testing.T) {
	const token = "admin-token-0123456789"
	for name, env := range map[string]map[string]string{
		"admin on localhost":              {"ADMIN_ADDR": "localhost:9090"},
		"admin on ::1":                    {"ADMIN_ADDR": "[::1]:9090"},
		"admin on 127.0.0.2":              {"ADMIN_ADDR": "127.0.0.2:9090"},
		"admin on every interface, token": {"ADMIN_ADDR": ":9090", "REFRESHER_ADMIN_ADDR": "0.0.0.0:9091", "ADMIN_TOKEN": token},
		"nats list with credentials":      {"NATS_URL": "nats://u:p@n1:4222, tls://n2:4222,n3:4222"},
		"redis with password":             {"REDIS_URL": "redis://:p%40ss@r:6379/0"},
		"rediss":                          {"REDIS_URL": "rediss://r:6380"},
		"redis unix socket":               {"REDIS_URL": "unix:///run/redis.sock"},
		"bankstore fake":                  {"BANKSTORE_URL": "http://127.0.0.1:8099/xml"},
		"pprof":                           {"ADMIN_PPROF": "true"},
		"quarantine bounds":               {"REJECTED_MAX_BYTES": "1048576", "REJECTED_MAX_AGE": "1h", "REJECTED_RATE_PER_SOURCE": "0.5"},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := Load(env, nil); err != nil {
				t.Errorf("Load(%v) = %v, want nil", env, err)
			}
		})
	}
}

// TestLoadRejects: one row per value that cannot be right. Each error names
// the variable to fix and quotes no secret.
func TestLoadRejects(t *testing.T) {
	const pw = "s3cretPW"
	for name, tc := range map[string]struct {
		env     map[string]string
		file    string // PAYCOMET_TERMINALS_FILE content
		want    string // the variable the message must name
		secrets []string
	}{
		"terminal without password":     {env: map[string]string{"PAYCOMET_TERMINALS": "1234"}, want: "PAYCOMET_TERMINALS"},
		"terminal with empty password":  {env: map[string]string{"PAYCOMET_TERMINALS": "1234:"}, want: "PAYCOMET_TERMINALS"},
		"password before terminal":      {env: map[string]string{"PAYCOMET_TERMINALS": pw + ":1000"}, want: "PAYCOMET_TERMINALS"},
		"non-numeric terminal":          {env: map[string]string{"PAYCOMET_TERMINALS": "ab:" + pw}, want: "PAYCOMET_TERMINALS"},
		"no terminal before colon":      {env: map[string]string{"PAYCOMET_TERMINALS": ":" + pw}, want: "PAYCOMET_TERMINALS"},
		"semicolon separated":           {env: map[string]string{"PAYCOMET_TERMINALS": "1000:" + pw + ";2000:x"}, want: "PAYCOMET_TERMINALS"},
		"space after colon":             {env: map[string]string{"PAYCOMET_TERMINALS": "1000: " + pw}, want: "PAYCOMET_TERMINALS"},
		"space before colon":            {env: map[string]string{"PAYCOMET_TERMINALS": "1000 :" + pw}, want: "PAYCOMET_TERMINALS"},
		"space separated":               {env: map[string]string{"PAYCOMET_TERMINALS": "1000:" + pw + " 2000:x"}, want: "PAYCOMET_TERMINALS"},
		"tab in password":               {env: map[string]string{"PAYCOMET_TERMINALS": "1000:" + pw + "\tmore"}, want: "PAYCOMET_TERMINALS"},
		"colon in password":             {env: map[string]string{"PAYCOMET_TERMINALS": "1000:" + pw + ":x"}, want: "PAYCOMET_TERMINALS"},
		"duplicate terminal":            {env: map[string]string{"PAYCOMET_TERMINALS": "1:" + pw + ",1:b"}, want: "PAYCOMET_TERMINALS"},
		"file: space after colon":       {env: map[string]string{"PAYCOMET_TERMINALS_FILE": "/f"}, file: "1000: " + pw + "\n", want: "PAYCOMET_TERMINALS_FILE"},
		"file: semicolons":              {env: map[string]string{"PAYCOMET_TERMINALS_FILE": "/f"}, file: "1000:" + pw + ";2000:x\n", want: "PAYCOMET_TERMINALS_FILE"},
		"file: duplicate":               {env: map[string]string{"PAYCOMET_TERMINALS_FILE": "/f"}, file: "1000:" + pw + "\n1000:y\n", want: "PAYCOMET_TERMINALS_FILE"},
		"terminal in env and file":      {env: map[string]string{"PAYCOMET_TERMINALS": "1000:" + pw, "PAYCOMET_TERMINALS_FILE": "/f"}, file: "1000:" + pw + "\n", want: "PAYCOMET_TERMINALS_FILE"},
		"bad cidr":                      {env: map[string]string{"ALLOWED_IPS": "10.0.0.0/99"}, want: "ALLOWED_IPS"},
		"bad duration":                  {env: map[string]string{"DEDUPE_TTL": "soon"}, want: "DEDUPE_TTL"},
		"zero DEDUPE_TTL":               {env: map[string]string{"DEDUPE_TTL": "0"}, want: "DEDUPE_TTL"},
		"zero PUBLISH_TIMEOUT":          {env: map[string]string{"PUBLISH_TIMEOUT": "0"}, want: "PUBLISH_TIMEOUT"},
		"negative INFLIGHT_WAIT":        {env: map[string]string{"INFLIGHT_WAIT": "-1s"}, want: "INFLIGHT_WAIT"},
		"zero STREAM_DUPLICATE_WINDOW":  {env: map[string]string{"STREAM_DUPLICATE_WINDOW": "0s"}, want: "STREAM_DUPLICATE_WINDOW"},
		"window shorter than takeover":  {env: map[string]string{"STREAM_DUPLICATE_WINDOW": "20s", "PUBLISH_TIMEOUT": "5s"}, want: "STREAM_DUPLICATE_WINDOW"},
		"negative REJECTED_MAX_AGE":     {env: map[string]string{"REJECTED_MAX_AGE": "-720h"}, want: "REJECTED_MAX_AGE"},
		"zero in REFRESHER_BACKOFF":     {env: map[string]string{"REFRESHER_BACKOFF": "5s,0s"}, want: "REFRESHER_BACKOFF"},
		"negative in REFRESHER_BACKOFF": {env: map[string]string{"REFRESHER_BACKOFF": "-5s"}, want: "REFRESHER_BACKOFF"},
		"zero REJECTED_MAX_BYTES":       {env: map[string]string{"REJECTED_MAX_BYTES": "0"}, want: "REJECTED_MAX_BYTES"},
		"zero REJECTED_RATE_PER_SOURCE": {env: map[string]string{"REJECTED_RATE_PER_SOURCE": "0"}, want: "REJECTED_RATE_PER_SOURCE"},
		"NaN REJECTED_RATE_PER_SOURCE":  {env: map[string]string{"REJECTED_RATE_PER_SOURCE": "NaN"}, want: "REJECTED_RATE_PER_SOURCE"},
		"zero MAX_BODY_BYTES":           {env: map[string]string{"MAX_BODY_BYTES": "0"}, want: "MAX_BODY_BYTES"},
		"prefix with dot":               {env: map[string]string{"SUBJECT_PREFIX": "a.b"}, want: "SUBJECT_PREFIX"},
		"short url token":               {env: map[string]string{"URL_TOKEN": "short-" + pw}, want: "URL_TOKEN", secrets: []string{"short-" + pw}},
		"short admin token":             {env: map[string]string{"ADMIN_TOKEN": pw}, want: "ADMIN_TOKEN"},
		"admin token with space":        {env: map[string]string{"ADMIN_TOKEN": pw + " 0123456789abcdef"}, want: "ADMIN_TOKEN"},
		"replicas":                      {env: map[string]string{"STREAM_REPLICAS": "0"}, want: "STREAM_REPLICAS"},
		"log level":                     {env: map[string]string{"LOG_LEVEL": "loud"}, want: "LOG_LEVEL"},
		"admin on every interface":      {env: map[string]string{"ADMIN_ADDR": ":9090"}, want: "ADMIN_ADDR"},
		"admin on 0.0.0.0":              {env: map[string]string{"ADMIN_ADDR": "0.0.0.0:9090"}, want: "ADMIN_ADDR"},
		"admin on a public address":     {env: map[string]string{"ADMIN_ADDR": "192.0.2.10:9090"}, want: "ADMIN_ADDR"},
		"admin on a host name":          {env: map[string]string{"ADMIN_ADDR": "admin.internal:9090"}, want: "ADMIN_ADDR"},
		"refresher admin on [::]":       {env: map[string]string{"REFRESHER_ADMIN_ADDR": "[::]:9091"}, want: "REFRESHER_ADMIN_ADDR"},
		"admin without port":            {env: map[string]string{"ADMIN_ADDR": "127.0.0.1"}, want: "ADMIN_ADDR"},
		"listen without port":           {env: map[string]string{"LISTEN_ADDR": "8080"}, want: "LISTEN_ADDR"},
		"NATS_URL bad port":             {env: map[string]string{"NATS_URL": "nats://u:" + pw + "@n1:42x22"}, want: "NATS_URL"},
		"NATS_URL control character":    {env: map[string]string{"NATS_URL": "nats://u:" + pw + "@n1\x7f:4222"}, want: "NATS_URL"},
		"NATS_URL second entry bad":     {env: map[string]string{"NATS_URL": "nats://n1:4222,nats://u:" + pw + "@n2:port"}, want: "NATS_URL entry 2"},
		"NATS_URL empty entry":          {env: map[string]string{"NATS_URL": "nats://n1:4222,,nats://n2:4222"}, want: "NATS_URL entry 2"},
		"NATS_URL wrong scheme":         {env: map[string]string{"NATS_URL": "http://u:" + pw + "@n1:4222"}, want: "NATS_URL"},
		"REDIS_URL bad port":            {env: map[string]string{"REDIS_URL": "redis://:" + pw + "@r:63x79/0"}, want: "REDIS_URL"},
		"REDIS_URL percent escape":      {env: map[string]string{"REDIS_URL": "redis://:" + pw + "%zz@r:6379/0"}, want: "REDIS_URL"},
		"REDIS_URL without scheme":      {env: map[string]string{"REDIS_URL": ":" + pw + "@r:6379"}, want: "REDIS_URL"},
		"REDIS_URL no host":             {env: map[string]string{"REDIS_URL": "redis://:" + pw + "@/0"}, want: "REDIS_URL"},
		"BANKSTORE_URL bad":             {env: map[string]string{"BANKSTORE_URL": "https://u:" + pw + "@api.paycomet.com:xx/x"}, want: "BANKSTORE_URL"},
		"BANKSTORE_URL not http":        {env: map[string]string{"BANKSTORE_URL": "ftp://api.paycomet.com/x"}, want: "BANKSTORE_URL"},
	} {
		t.Run(name, func(t *testing.T) {
			readFile := func(string) ([]byte, error) { return []byte(tc.file), nil }
			_, err := Load(tc.env, readFile)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Load(%q) = %v, want an error naming %s", tc.env, err, tc.want)
			}
			for _, s := range append(tc.secrets, pw, "short-"+pw) {
				if strings.Contains(err.Error(), s) {
					t.Errorf("Load(%q) = %v: the error quotes a secret", tc.env, err)
				}
			}
		})
	}
}
