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
	if len(c.RefresherBackoff) != 5 || c.RefresherBackoff[4] != 30*time.Minute || c.RefresherMaxDeliver != 10 {
		t.Errorf("refresher defaults = %v %d", c.RefresherBackoff, c.RefresherMaxDeliver)
	}
	if err := c.RequireTerminals(); err == nil || !strings.Contains(err.Error(), "PAYCOMET_TERMINALS") || !strings.Contains(err.Error(), "PAYCOMET_MERCHANT_CODE") {
		t.Errorf("RequireTerminals() = %v, want it to name both variables", err)
	}
}

func TestLoadTerminalsAndFile(t *testing.T) {
	c, err := Load(map[string]string{
		"PAYCOMET_MERCHANT_CODE":  "abc123",
		"PAYCOMET_TERMINALS":      "1234:pw:with:colons, 55:x",
		"PAYCOMET_TERMINALS_FILE": "/f",
		"ALLOWED_IPS":             "10.0.0.0/8, 192.0.2.7",
	}, func(string) ([]byte, error) { return []byte("77:filepw\n"), nil })
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Terminals["1234"].Reveal(); got != "pw:with:colons" {
		t.Errorf("terminal 1234 password = %q", got)
	}
	if ids := strings.Join(c.Terminals.IDs(), ","); ids != "1234,55,77" {
		t.Errorf("IDs = %s", ids)
	}
	if !c.AllowedIPs.Contains(netip.MustParseAddr("10.1.2.3")) || !c.AllowedIPs.Contains(netip.MustParseAddr("::ffff:192.0.2.7")) || c.AllowedIPs.Contains(netip.MustParseAddr("192.0.2.8")) {
		t.Errorf("AllowedIPs = %v", c.AllowedIPs)
	}
	if err := c.RequireTerminals(); err != nil {
		t.Errorf("RequireTerminals() = %v", err)
	}
}

func TestLoadRejects(t *testing.T) {
	for name, tc := range map[string]struct {
		env  map[string]string
		want string
	}{
		"terminal without password": {map[string]string{"PAYCOMET_TERMINALS": "1234"}, "terminal:password"},
		"non-numeric terminal":      {map[string]string{"PAYCOMET_TERMINALS": "ab:pw"}, "not a number"},
		"duplicate terminal":        {map[string]string{"PAYCOMET_TERMINALS": "1:a,1:b"}, "twice"},
		"bad cidr":                  {map[string]string{"ALLOWED_IPS": "10.0.0.0/99"}, "not a CIDR"},
		"bad duration":              {map[string]string{"DEDUPE_TTL": "soon"}, "DEDUPE_TTL"},
		"prefix with dot":           {map[string]string{"SUBJECT_PREFIX": "a.b"}, "SUBJECT_PREFIX"},
		"short url token":           {map[string]string{"URL_TOKEN": "short"}, "URL_TOKEN"},
		"replicas":                  {map[string]string{"STREAM_REPLICAS": "0"}, "STREAM_REPLICAS"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Load(tc.env, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Load(%v) = %v, want error naming %q", tc.env, err, tc.want)
			}
			if err != nil && strings.Contains(err.Error(), "short") && name == "short url token" {
				t.Errorf("error leaks the token: %v", err)
			}
		})
	}
}
