package loadgen

import (
	"math"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/paycomet-notify/paycomet-notify/events"
)

func testGenerator(with108 bool) *generator {
	return newGenerator("LGTEST0001", merchant,
		[]terminal{{"2001", "pw-2001-not-real"}, {"2002", "pw-2002-not-real"}}, time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC), with108, prefix)
}

func TestGeneratorIsDeterministicAndCoversTheMix(t *testing.T) {
	g := testGenerator(true)
	const n = 4000
	types := map[int]int{}
	ko := 0
	ids := map[eventID]uint64{}
	for seq := uint64(0); seq < n; seq++ {
		b := g.body(seq)
		if b2 := g.body(seq); b2 != b {
			t.Fatalf("body(%d) differs between calls", seq)
		}
		f, err := url.ParseQuery(b)
		if err != nil {
			t.Fatal(err)
		}
		typ, _ := strconv.Atoi(f.Get("TransactionType"))
		types[typ]++
		if f.Get("Response") == "KO" {
			ko++
		}
		id, topic, err := g.expect(seq)
		if err != nil {
			t.Fatalf("expect(%d) = %v", seq, err)
		}
		if prev, dup := ids[id]; dup {
			t.Fatalf("notifications %d and %d share event id %x", prev, seq, id)
		}
		ids[id] = seq
		if typ == events.TypeCardExpiry {
			if !g.ours(f.Get("IdUser")) {
				t.Errorf("108 IdUser %s is not recognised as this run's", f.Get("IdUser"))
			}
		} else if !g.ours(f.Get("Order")) {
			t.Errorf("Order %s is not recognised as this run's", f.Get("Order"))
		}
		if want := prefix + "." + f.Get("TpvID"); typ != events.TypeCardExpiry && topic[:len(want)] != want {
			t.Errorf("topic %s for terminal %s", topic, f.Get("TpvID"))
		}
	}
	for _, w := range mix {
		got, want := float64(types[w.typ])/n, float64(w.permil)/1000
		if math.Abs(got-want) > 0.02+want/3 {
			t.Errorf("type %d is %.3f of the mix, want about %.3f", w.typ, got, want)
		}
	}
	if share := float64(ko) / n; math.Abs(share-koShare) > 0.03 {
		t.Errorf("KO share %.3f, want about %.2f", share, koShare)
	}
	if g.ours("LGOTHER1") || g.ours("12345") {
		t.Error("another run's Order or IdUser counted as ours")
	}
}

func TestGeneratorWithoutURLTokenSendsNo108(t *testing.T) {
	g := testGenerator(false)
	for seq := uint64(0); seq < 2000; seq++ {
		if f := g.form(seq); f.Get("TransactionType") == "108" {
			t.Fatalf("notification %d is an unsigned 108, which needs the URL token", seq)
		}
	}
}

func TestHistogramQuantiles(t *testing.T) {
	var h histogram
	for i := 1; i <= 10000; i++ {
		h.record(time.Duration(i) * time.Microsecond)
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 5000 * time.Microsecond}, {0.95, 9500 * time.Microsecond}, {0.99, 9900 * time.Microsecond}, {1, 10000 * time.Microsecond}} {
		got := h.quantile(c.q)
		if rel := math.Abs(float64(got-c.want)) / float64(c.want); rel > 0.02 {
			t.Errorf("quantile(%v) = %v, want %v within 2%%", c.q, got, c.want)
		}
	}
	if s := h.summary(); s.Max != 10*time.Millisecond || s.Count != 10000 {
		t.Errorf("summary = %+v", s)
	}
	var empty histogram
	if empty.quantile(0.99) != 0 {
		t.Error("empty histogram quantile != 0")
	}
	for us := uint64(0); us < 1<<30; us = us*3/2 + 1 {
		if v := bucketValue(bucketOf(us)); math.Abs(v-float64(us)) > float64(us)/50+1 {
			t.Fatalf("bucketValue(bucketOf(%d)) = %v", us, v)
		}
	}
}
