package demo

import (
	"flag"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/paycomet-notify/paycomet-notify/events"
)

const fixtureDir = "../testdata/notifications"

var regenerate = flag.Bool("regenerate-fixtures", false,
	"rewrite testdata/notifications/*.form from Sample (shared with other packages: review the diff)")

// fixtureCases is how testdata/notifications was made. The files, not this
// list, are the fixtures: other packages read them, and
// events' TestFixturesSignedForDemo checks their hashes independently of
// Sample.
func fixtureCases() []struct {
	name string
	o    SampleOptions
	mod  func(url.Values)
} {
	winter := time.Date(2026, 11, 24, 10, 15, 0, 0, events.Madrid())
	summer := time.Date(2026, 7, 15, 18, 30, 45, 0, events.Madrid())
	const pay = "PN-2026-000417"
	return []struct {
		name string
		o    SampleOptions
		mod  func(url.Values)
	}{
		{"authorization_ok", SampleOptions{Type: 1, When: summer, Order: pay, IdUser: 4823117}, nil},
		{"authorization_ko", SampleOptions{Type: 1, When: summer.Add(-3 * time.Minute), Order: pay, Response: "KO", ErrorID: 105}, nil},
		{"authorization_pending", SampleOptions{Type: 1, When: winter, Order: "PN-2026-000533", Response: "SF", MethodID: 16, AuthCode: "204517/000000000000000000000000000533"}, nil},
		{"authorization_ok_bizum", SampleOptions{Type: 1, When: winter, Order: "PN-2026-000520", Amount: 2599, MethodID: 11}, nil},
		{"authorization_ok_jpy", SampleOptions{Type: 1, When: winter, Order: "PN-2026-000521", Amount: 1500, Currency: "JPY"}, nil},
		{"authorization_ok_kwd", SampleOptions{Type: 1, When: winter, Order: "PN-2026-000522", Amount: 12345, Currency: "KWD"}, nil},
		{"refund_ok", SampleOptions{Type: 2, When: winter, Order: pay, Amount: 400}, nil},
		{"refund_ok_second", SampleOptions{Type: 2, When: winter.Add(26 * time.Hour), Order: pay, Amount: 400}, nil},
		{"refund_ko", SampleOptions{Type: 2, When: winter, Order: "PN-2026-000388", Amount: 5000, Response: "KO", ErrorID: 1027}, nil},
		{"preauthorization_ok", SampleOptions{Type: 3, When: winter, Order: "PA-2026-000100", Amount: 15000}, nil},
		{"preauthorization_ko", SampleOptions{Type: 3, When: winter, Order: "PA-2026-000101", Amount: 15000, Response: "KO", ErrorID: 184}, nil},
		{"preauthorization_cancel_ok", SampleOptions{Type: 4, When: winter.Add(time.Hour), Order: "PA-2026-000100", Amount: 15000}, nil},
		{"preauthorization_cancel_ko", SampleOptions{Type: 4, When: winter.Add(time.Hour), Order: "PA-2026-000102", Amount: 15000, Response: "KO", ErrorID: 504}, nil},
		{"preauthorization_confirm_ok", SampleOptions{Type: 6, When: winter.Add(2 * time.Hour), Order: "PA-2026-000103", Amount: 12000}, nil},
		{"preauthorization_confirm_ko", SampleOptions{Type: 6, When: winter.Add(2 * time.Hour), Order: "PA-2026-000104", Amount: 12000, Response: "KO", ErrorID: 131}, nil},
		{"subscription_ok", SampleOptions{Type: 9, When: winter, Order: "SUB-000042", Amount: 999, IdUser: 5120044}, nil},
		{"subscription_instalment_ok", SampleOptions{Type: 9, When: winter.AddDate(0, 1, 0), Order: "SUB-000042", Amount: 999, IdUser: 5120044, Instalment: true}, nil},
		{"subscription_ko", SampleOptions{Type: 9, When: winter.AddDate(0, 2, 0), Order: "SUB-000042", Amount: 999, IdUser: 5120044, Instalment: true, Response: "KO", ErrorID: 100}, nil},
		{"deferred_preauthorization_ok", SampleOptions{Type: 13, When: winter, Order: "DP-2026-000007", Amount: 25000}, nil},
		{"deferred_preauthorization_ko", SampleOptions{Type: 13, When: winter, Order: "DP-2026-000008", Amount: 25000, Response: "KO", ErrorID: 105}, nil},
		{"deferred_preauthorization_cancel_ok", SampleOptions{Type: 14, When: winter.Add(time.Hour), Order: "DP-2026-000007", Amount: 25000}, nil},
		{"deferred_preauthorization_cancel_ko", SampleOptions{Type: 14, When: winter.Add(time.Hour), Order: "DP-2026-000009", Amount: 25000, Response: "KO", ErrorID: 152}, nil},
		{"deferred_preauthorization_confirm_ok", SampleOptions{Type: 16, When: winter.Add(2 * time.Hour), Order: "DP-2026-000010", Amount: 20000}, nil},
		{"deferred_preauthorization_confirm_ko", SampleOptions{Type: 16, When: winter.Add(2 * time.Hour), Order: "DP-2026-000011", Amount: 20000, Response: "KO", ErrorID: 152}, nil},
		{"chargeback_ok", SampleOptions{Type: 106, When: winter.AddDate(0, 0, 30), Order: pay, Amount: 600}, nil},
		{"card_registration_ok", SampleOptions{Type: 107, When: winter, Order: "4711_1", IdUser: 4823117}, nil},
		{"card_registration_ko", SampleOptions{Type: 107, When: winter.Add(-2 * time.Minute), Order: "4711_1", Response: "KO", ErrorID: 1005}, nil},
		{"card_expiry", SampleOptions{Type: 108, When: winter, IdUser: 4823117, MonthsToExpire: 1}, nil},
		{"card_expiry_signed", SampleOptions{Type: 108, When: winter, IdUser: 4823117, MonthsToExpire: 2, Signed: true}, nil},
		{"operation_109_ok", SampleOptions{Type: 109, When: winter, Order: "PN-2026-000600", Amount: 4500, IdUser: 4823117}, nil},
		{"operation_200", SampleOptions{Type: 200, When: winter, Order: "X-000001", Amount: 100}, nil},

		{"reject_400_bad_amount", SampleOptions{Type: 1, When: winter, Order: "PN-2026-000700", Extra: url.Values{"Amount": {"12.50"}}}, nil},
		{"reject_400_conflicting_amount", SampleOptions{Type: 1, When: winter, Order: "PN-2026-000701"}, func(f url.Values) { f["Amount"] = []string{"1000", "2000"} }},
		{"reject_400_missing_transaction_type", SampleOptions{Type: 1, When: winter, Order: "PN-2026-000702"}, func(f url.Values) { f.Del("TransactionType") }},
		{"reject_401_bad_signature", SampleOptions{Type: 1, When: winter, Order: "PN-2026-000703"}, func(f url.Values) { f.Set("Amount", "1") }},
		{"reject_401_missing_signature", SampleOptions{Type: 1, When: winter, Order: "PN-2026-000704", Unsigned: true}, nil},
		{"reject_401_unknown_terminal", SampleOptions{Type: 1, When: winter, Order: "PN-2026-000705", Terminal: "9999"}, nil},
		{"reject_401_wrong_merchant_code", SampleOptions{Type: 1, When: winter, Order: "PN-2026-000706", MerchantCode: "OTHER001"}, nil},
		{"reject_401_wrong_password", SampleOptions{Type: 107, When: winter, Order: "4711_2", Password: "not-the-password"}, nil},
	}
}

func TestRegenerateFixtures(t *testing.T) {
	if !*regenerate {
		t.Skip("only with -regenerate-fixtures")
	}
	for _, c := range fixtureCases() {
		f := Sample(c.o)
		if c.mod != nil {
			c.mod(f)
		}
		if err := os.WriteFile(filepath.Join(fixtureDir, c.name+".form"), []byte(f.Encode()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestFixturesComplete keeps the generator and the files in step.
func TestFixturesComplete(t *testing.T) {
	want := map[string]bool{}
	for _, c := range fixtureCases() {
		want[c.name] = true
	}
	paths, err := filepath.Glob(filepath.Join(fixtureDir, "*.form"))
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) < 20 {
		t.Fatalf("found %d fixtures in %s, expected the whole set", len(paths), fixtureDir)
	}
	for _, p := range paths {
		name := strings.TrimSuffix(filepath.Base(p), ".form")
		if !want[name] {
			t.Errorf("%s.form is not in fixtureCases", name)
		}
		delete(want, name)
	}
	for name := range want {
		t.Errorf("%s.form is missing; run go test ./demo -run TestRegenerateFixtures -regenerate-fixtures", name)
	}
}

// TestFixturesMatchSample regenerates every fixture in memory and compares
// it with the file: the files were written by Sample, and a change to Sample
// that would alter them must be made on purpose (-regenerate-fixtures).
func TestFixturesMatchSample(t *testing.T) {
	for _, c := range fixtureCases() {
		f := Sample(c.o)
		if c.mod != nil {
			c.mod(f)
		}
		b, err := os.ReadFile(filepath.Join(fixtureDir, c.name+".form"))
		if err != nil {
			t.Fatal(err)
		}
		if got := f.Encode(); got != string(b) {
			t.Errorf("%s: Sample gives\n%s\nthe file holds\n%s", c.name, got, b)
		}
	}
}
