package loadgen

import (
	"encoding/hex"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/paycomet-notify/paycomet-notify/demo"
	"github.com/paycomet-notify/paycomet-notify/events"
	"github.com/paycomet-notify/paycomet-notify/secret"
)

// weight is one TransactionType's share of the mix, in parts per thousand
// of the notifications a busy e-commerce terminal sends: mostly
// authorisations, then card registrations, refunds and preauthorisations,
// a trickle of chargebacks and of types no plugin has seen.
type weight struct {
	typ    int
	permil int
}

var mix = []weight{
	{events.TypeAuthorization, 560},
	{events.TypeCardRegistration, 120},
	{events.TypeRefund, 70},
	{events.TypeSubscription, 60},
	{events.TypePreauthorization, 50},
	{events.TypeCardExpiry, 40}, // only with Options.Unsigned108; else its share goes to authorisations
	{events.TypePreauthorizationConfirm, 40},
	{events.TypeDeferredPreauthorization, 20},
	{events.TypeDeferredPreauthorizationConfirm, 15},
	{events.TypePreauthorizationCancel, 10},
	{events.TypeDeferredPreauthorizationCancel, 5},
	{events.TypeChargeback, 5},
	{109, 5}, // a type outside the contract's table: operation_109
}

// koShare is the share of refused operations (Response=KO).
const koShare = 0.15

// idUserSpan is how many 108 notices one run can send: a notice's identity is
// terminal, IdUser and MonthsToExpire, so every notice of a run gets its own
// IdUser in [runNum*idUserSpan, (runNum+1)*idUserSpan).
const idUserSpan = 1_000_000_000

type terminal struct {
	id string
	pw string
}

// generator makes notification seq of a run, deterministically: the same
// (run, seq) always gives the same body, so the load loop keeps only a few
// bits per notification and verification rebuilds what it needs afterwards.
type generator struct {
	runTag   string // prefix of every Order of the run
	runNum   int64  // 108 IdUser base
	seed     uint64
	merchant string
	terms    []terminal
	when     time.Time
	with108  bool
	prefix   string
	verifier *events.Verifier
	cum      []weight // cumulative weights
}

func newGenerator(runTag string, merchant string, terms []terminal, when time.Time, with108 bool, prefix string) *generator {
	g := &generator{runTag: runTag, merchant: merchant, terms: terms, when: when, with108: with108, prefix: prefix}
	g.seed = splitmix(hashString(runTag))
	g.runNum = 1 + int64(g.seed%8_000_000)
	sum := 0
	for _, w := range mix {
		p := w.permil
		if w.typ == events.TypeCardExpiry && !with108 {
			continue
		}
		if w.typ == events.TypeAuthorization && !with108 {
			p += mixPermil(events.TypeCardExpiry)
		}
		sum += p
		g.cum = append(g.cum, weight{w.typ, sum})
	}
	pws := make(map[string]secret.Value, len(terms))
	for _, t := range terms {
		pws[t.id] = secret.New(t.pw)
	}
	g.verifier = events.NewVerifier(merchant, pws)
	return g
}

func mixPermil(typ int) int {
	for _, w := range mix {
		if w.typ == typ {
			return w.permil
		}
	}
	return 0
}

// rng is splitmix64: tiny, fast and good enough to pick a mix.
type rng struct{ s uint64 }

func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

func (r *rng) next() uint64 {
	r.s += 0x9e3779b97f4a7c15
	return splitmix(r.s)
}

func (r *rng) float() float64 { return float64(r.next()>>11) / (1 << 53) }

func hashString(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

// options draws notification seq's sample options.
func (g *generator) options(seq uint64) demo.SampleOptions {
	r := rng{s: g.seed ^ (seq * 0xd1b54a32d192ed03)}
	pick := int(r.next() % uint64(g.cum[len(g.cum)-1].permil))
	typ := g.cum[len(g.cum)-1].typ
	for _, w := range g.cum {
		if pick < w.permil {
			typ = w.typ
			break
		}
	}
	t := g.terms[r.next()%uint64(len(g.terms))]
	o := demo.SampleOptions{
		Type:         typ,
		MerchantCode: g.merchant,
		Terminal:     t.id,
		Password:     t.pw,
		Order:        g.runTag + strconv.FormatUint(seq, 10),
		Response:     "OK",
		Amount:       100 + int64(r.next()%49_900),
		Currency:     "EUR",
		When:         g.when,
	}
	switch c := r.next() % 100; {
	case c < 3:
		o.Currency = "USD"
	case c < 5:
		o.Currency = "GBP"
	case c < 6:
		o.Currency = "JPY"
	}
	if typ != events.TypeChargeback && r.float() < koShare {
		o.Response = "KO"
		o.ErrorID = [...]int{105, 105, 105, 100, 184}[r.next()%5]
	}
	switch typ {
	case events.TypeAuthorization:
		switch c := r.next() % 100; {
		case c < 5:
			o.MethodID = 11 // Bizum
		case c < 7:
			o.MethodID = 10 // PayPal
		case c < 30:
			// a payment with a stored card token
			o.IdUser = g.runNum*idUserSpan + int64(seq%idUserSpan)
		}
	case events.TypeSubscription:
		if r.next()%3 == 0 {
			o.Instalment = true
			o.IdUser = g.runNum*idUserSpan + int64(seq%idUserSpan)
		}
	case events.TypeCardExpiry:
		o.IdUser = g.runNum*idUserSpan + int64(seq%idUserSpan)
		o.MonthsToExpire = 1 + int(r.next()%3)
	}
	return o
}

func (g *generator) form(seq uint64) url.Values { return demo.Sample(g.options(seq)) }

// body is the form-encoded notification seq, as PAYCOMET would POST it.
func (g *generator) body(seq uint64) string { return g.form(seq).Encode() }

// eventID is an event id (32 hex digits) as 16 bytes, the key verification
// matches stream messages by.
type eventID [16]byte

func parseEventID(s string) (eventID, bool) {
	var id eventID
	if len(s) != 32 {
		return id, false
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return id, false
	}
	return id, true
}

// expect is the event notification seq must produce: the receiver's own
// events package computes it, the way the receiver does.
func (g *generator) expect(seq uint64) (eventID, string, error) {
	f := g.form(seq)
	a, err := g.verifier.Authenticate(f, events.Channel{URLToken: true})
	if err != nil {
		return eventID{}, "", fmt.Errorf("notification %d does not authenticate: %w", seq, err)
	}
	ev, err := events.Parse(events.FormFromValues(f), a, g.when)
	if err != nil {
		return eventID{}, "", fmt.Errorf("notification %d does not parse: %w", seq, err)
	}
	id, ok := parseEventID(ev.ID)
	if !ok {
		return eventID{}, "", fmt.Errorf("notification %d: event id %q is not 32 hex digits", seq, ev.ID)
	}
	return id, ev.Topic(g.prefix), nil
}

// ours reports whether an event's CloudEvents subject belongs to this run:
// an Order with the run's tag, or a 108's IdUser in the run's range.
func (g *generator) ours(subject string) bool {
	if len(subject) >= len(g.runTag) && subject[:len(g.runTag)] == g.runTag {
		return true
	}
	if n, err := strconv.ParseInt(subject, 10, 64); err == nil {
		return n >= g.runNum*idUserSpan && n < (g.runNum+1)*idUserSpan
	}
	return false
}

// orderOf is notification seq's Order, for naming lost or duplicated ones.
func (g *generator) orderOf(seq uint64) string { return g.runTag + strconv.FormatUint(seq, 10) }
