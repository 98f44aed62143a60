package secret

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestRedactURL(t *testing.T) {
	for name, tc := range map[string]struct{ in, want string }{
		"no credentials":      {"nats://h:4222", "nats://h:4222"},
		"user and password":   {"nats://u:hunter2@h:4222", "nats://[redacted]@h:4222"},
		"password only":       {"redis://:hunter2@h:6379/0", "redis://[redacted]@h:6379/0"},
		"token":               {"nats://s3cr3t-token@h:4222", "nats://[redacted]@h:4222"},
		"list, second has":    {"nats://h1:4222,nats://u:hunter2@h2:4222", "nats://h1:4222,nats://[redacted]@h2:4222"},
		"list, both have":     {"nats://u:a1@h1,nats://u:b2@h2", "nats://[redacted]@h1,nats://[redacted]@h2"},
		"unescaped @ in pw":   {"nats://u:hun@ter2@h:4222", "nats://[redacted]@h:4222"},
		"unescaped , in pw":   {"nats://u:hun,ter2@h:4222", "nats://[redacted]@h:4222"},
		"malformed port":      {"redis://:hunter2@h:port/0", "redis://[redacted]@h:port/0"},
		"no scheme":           {"u:hunter2@h:4222", "[redacted]@h:4222"},
		"percent-encoded":     {"nats://u:hun%40ter2@h", "nats://[redacted]@h"},
		"empty":               {"", ""},
		"space in malformed":  {"nats://u:hun ter2@h", "nats://[redacted]@h"},
		"error text with url": {`parse "nats://u:hunter2@h:x": invalid port`, `parse "nats://[redacted]@h:x": invalid port`},
	} {
		t.Run(name, func(t *testing.T) {
			if got := RedactURL(tc.in); got != tc.want {
				t.Errorf("RedactURL(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestURLNeverPrintsCredentials(t *testing.T) {
	const raw = "nats://user:hunter2@nats-1:4222,nats://user:hunter2@nats-2:4222"
	u := NewURL(raw)
	var logs strings.Builder
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("cfg", "url", u, "struct", struct{ U URL }{u})
	js, err := json.Marshal(struct{ U URL }{u})
	if err != nil {
		t.Fatal(err)
	}
	for name, out := range map[string]string{
		"%v":   fmt.Sprintf("%v", u),
		"%+v":  fmt.Sprintf("%+v", struct{ U URL }{u}),
		"%#v":  fmt.Sprintf("%#v", u),
		"slog": logs.String(),
		"json": string(js),
	} {
		if strings.Contains(out, "hunter2") || strings.Contains(out, "user") {
			t.Errorf("%s leaked the credentials: %s", name, out)
		}
		if !strings.Contains(out, "nats-2:4222") {
			t.Errorf("%s lost the host: %s", name, out)
		}
	}
	if u.Reveal() != raw {
		t.Errorf("Reveal() = %q, want %q", u.Reveal(), raw)
	}
}

func TestURLScrub(t *testing.T) {
	u := NewURL("redis://admin:p%40ss@h:6379/0")
	for _, text := range []string{
		"dial redis://admin:p%40ss@h:6379/0: refused",
		"WRONGPASS for p@ss",
		"auth p%40ss failed",
	} {
		got := u.Scrub(text)
		if strings.Contains(got, "p@ss") || strings.Contains(got, "p%40ss") {
			t.Errorf("Scrub(%q) = %q, still holds the password", text, got)
		}
	}
	if got := NewURL("nats://h:4222").Scrub("plain error"); got != "plain error" {
		t.Errorf("Scrub without credentials = %q", got)
	}
}
