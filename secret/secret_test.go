package secret

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestValueNeverPrints(t *testing.T) {
	const clear = "hunter2-terminal-pass"
	v := New(clear)
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("cfg", "password", v, "struct", struct{ P Value }{v})
	js, err := json.Marshal(struct{ P Value }{v})
	if err != nil {
		t.Fatal(err)
	}
	for name, out := range map[string]string{
		"%v":  fmt.Sprintf("%v", v),
		"%+v": fmt.Sprintf("%+v", struct{ P Value }{v}),
		"%#v": fmt.Sprintf("%#v", v),
		//lint:ignore S1025 the point is what fmt prints
		"%s":   fmt.Sprintf("%s", v),
		"slog": logs.String(),
		"json": string(js),
	} {
		if strings.Contains(out, clear) {
			t.Errorf("%s leaked the secret: %s", name, out)
		}
	}
	if v.Reveal() != clear {
		t.Errorf("Reveal() = %q, want %q", v.Reveal(), clear)
	}
}
