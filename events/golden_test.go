package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/paycomet-notify/paycomet-notify/schemas"
	"github.com/paycomet-notify/paycomet-notify/secret"
)

var update = flag.Bool("update", false, "rewrite testdata/golden from the current output")

const (
	fixtureDir = "../testdata/notifications"
	goldenDir  = "../testdata/golden"
	// fixtureRemote is the source address of the golden rejected events.
	fixtureRemote = "192.0.2.10"
	// goldenRejectedID stands in for a rejected event's random id.
	goldenRejectedID = "00000000000000000000000000000000"
)

func demoVerifier() *Verifier {
	return NewVerifier(demoMerchant, map[string]secret.Value{demoTerminal: secret.New(demoPassword)})
}

type fixture struct {
	name string
	body string
	form url.Values
}

func loadFixtures(t testing.TB) []fixture {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(fixtureDir, "*.form"))
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) < 20 {
		t.Fatalf("found %d fixtures in %s, expected the whole set", len(paths), fixtureDir)
	}
	var out []fixture
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		f, err := url.ParseQuery(string(b))
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		out = append(out, fixture{name: strings.TrimSuffix(filepath.Base(p), ".form"), body: string(b), form: f})
	}
	return out
}

// statusOf is the handler's error-to-status mapping, restated for the test.
func statusOf(err error) int {
	var fe *FieldError
	var ae *AuthError
	switch {
	case errors.As(err, &fe):
		return 400
	case errors.As(err, &ae):
		return 401
	}
	return 500
}

// channelFor is how a fixture is delivered: every 108 through the URL token
// (see testdata/notifications/README.md), everything else plainly.
func channelFor(name string) Channel {
	return Channel{URLToken: strings.HasPrefix(name, "card_expiry")}
}

// process runs a fixture through the handler's order of calls.
func process(v *Verifier, fx fixture) (Event, error) {
	a, err := v.Authenticate(fx.form, channelFor(fx.name))
	if err != nil {
		return Event{}, err
	}
	return Parse(FormFromValues(fx.form), a, receivedAt)
}

func TestFixturesGolden(t *testing.T) {
	v := demoVerifier()
	ids := map[string]string{}
	for _, fx := range loadFixtures(t) {
		t.Run(fx.name, func(t *testing.T) {
			if strings.HasSuffix(fx.body, "\n") {
				t.Errorf("fixture ends with a newline, which would become part of its last value")
			}
			e, err := process(v, fx)
			if strings.HasPrefix(fx.name, "reject_") {
				wantStatus, _ := strconv.Atoi(strings.Split(fx.name, "_")[1])
				if err == nil {
					t.Fatalf("accepted, want status %d", wantStatus)
				}
				if got := statusOf(err); got != wantStatus {
					t.Fatalf("error %v maps to %d, want %d", err, got, wantStatus)
				}
				e = rejectedFor(err, wantStatus, fx.form, fx.body, fixtureRemote)
				if !idPattern.MatchString(e.ID) {
					t.Errorf("rejected ID %q", e.ID)
				}
				e.ID = goldenRejectedID // random per request
				if got := e.Topic("paycomet"); got != "paycomet.rejected" {
					t.Errorf("Topic() = %q", got)
				}
			} else {
				if err != nil {
					t.Fatalf("rejected: %v", err)
				}
				if other, dup := ids[e.ID]; dup {
					t.Errorf("shares ID %s with %s", e.ID, other)
				}
				ids[e.ID] = fx.name
			}
			b := validate(t, e)
			compareGolden(t, fx.name, b)
			if fx.name == "authorization_ok" {
				// With tracing on the envelope gains traceparent, and
				// nothing else changes.
				e.TraceParent = goldenTraceParent
				compareGolden(t, fx.name+"_traceparent", validate(t, e))
			}
		})
	}
}

// goldenTraceParent is a W3C traceparent (the specification's example).
const goldenTraceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

func compareGolden(t *testing.T, name string, encoded []byte) {
	t.Helper()
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, encoded, "", "  "); err != nil {
		t.Fatal(err)
	}
	pretty.WriteByte('\n')
	path := filepath.Join(goldenDir, name+".json")
	if *update {
		if err := os.WriteFile(path, pretty.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./events -run TestFixturesGolden -update to create it)", err)
	}
	if !bytes.Equal(want, pretty.Bytes()) {
		t.Errorf("event differs from %s (run with -update if the change is intended):\ngot:\n%s", path, pretty.Bytes())
	}
}

// TestFixturesSignedForDemo checks the fixtures' hashes with the reference
// formulas, not with the code under test, so the shared fixtures stay valid
// for `serve --demo` whatever happens to Sign.
func TestFixturesSignedForDemo(t *testing.T) {
	for _, fx := range loadFixtures(t) {
		h := fx.form.Get("NotificationHash")
		switch {
		case fx.name == "card_expiry":
			if h != "" {
				t.Errorf("%s: the unsigned 108 fixture carries a hash", fx.name)
			}
			continue
		case strings.HasPrefix(fx.name, "reject_"):
			continue
		}
		terminal := fx.form.Get("TpvID")
		if fx.form.Get("TransactionType") == "108" {
			terminal = fx.form.Get("Terminal")
		}
		want := refHashA(demoMerchant, terminal, demoPassword, fx.form)
		if fx.form.Get("TransactionType") == "107" {
			want = refHashB(demoMerchant, terminal, demoPassword, fx.form)
		}
		if h != want {
			t.Errorf("%s: NotificationHash %s, want %s", fx.name, h, want)
		}
	}
}

// TestEverySchemaIsClosed adds an unknown member to the data of every event
// the fixtures produce and expects the schema to refuse it.
func TestEverySchemaIsClosed(t *testing.T) {
	v := demoVerifier()
	seen := map[string]bool{}
	for _, fx := range loadFixtures(t) {
		e, err := process(v, fx)
		if err != nil {
			e = rejectedFor(err, statusOf(err), fx.form, fx.body, fixtureRemote)
		}
		if seen[e.DataSchema] {
			continue
		}
		seen[e.DataSchema] = true
		b, err := json.Marshal(e.Data)
		if err != nil {
			t.Fatal(err)
		}
		if err := schemas.Validate(e.DataSchema, b); err != nil {
			t.Fatalf("%s: %v", fx.name, err)
		}
		extra := append(bytes.TrimSuffix(b, []byte("}")), []byte(`,"unexpected_member":1}`)...)
		if err := schemas.Validate(e.DataSchema, extra); err == nil {
			t.Errorf("%s accepts an unknown member", e.DataSchema)
		}
	}
	want := []string{"schemas/operation.v1.json", "schemas/rejected.v1.json"}
	for _, typ := range []int{1, 2, 3, 4, 6, 9, 13, 14, 16, 106, 107, 108} {
		want = append(want, "schemas/"+OperationName(typ)+".v1.json")
	}
	for _, s := range want {
		if !seen[s] {
			t.Errorf("no fixture produces an event with dataschema %s", s)
		}
	}
}
