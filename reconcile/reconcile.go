// Package reconcile finds the payments PAYCOMET made whose notification
// never reached the stream (contract section 11). PAYCOMET's notification
// retry policy is not published: a notification answered 503 while NATS was
// down, or sent while the load balancer was broken, may never come again.
// PAYCOMET's REST search is the other record of what happened, so the
// reconciler asks it for each terminal's operations in a window and counts
// them against the events on the stream.
//
// How a run goes, and why:
//
//   - The stream is read first (events whose time lies in the window widened
//     by Margin on each side, plus the reconciler's earlier findings), then
//     PAYCOMET is searched, then the stream is read again from where the
//     first read stopped, so a notification that arrived during the search
//     still counts.
//   - Search: one call per terminal, state (0 failed, 1 succeeded) and
//     currency, per day of the window. PAYCOMET has no paging and cuts at
//     limit, so a window whose answer has limit rows is split, at its last
//     row's second when the rows are sorted, until no answer is full. More
//     than limit operations within one second cannot be split and is an
//     error, never a silent truncation. Dates are whole seconds in
//     Europe/Madrid and windows are half-open [from, to), so adjacent runs
//     and split windows never count an operation twice.
//   - Match is counted: an operation is matched by an event with the same
//     terminal, order, operation type, outcome, amount and currency, and each
//     event matches one operation, so two equal partial refunds with one
//     notification leave one missing.
//   - A finding is one paycomet.reconcile.missing CloudEvent per missing
//     operation, its id derived from PAYCOMET's operation id; the earlier
//     findings read from the stream are not published again, so checking a
//     window twice publishes nothing new.
//   - A REST failure stops that terminal's search: the operations of the
//     windows that completed are still matched and their findings published
//     (an operation is only reported when no event for it exists, so a
//     partial search can miss a finding but never invent one); the failed
//     windows are reported and never taken for "nothing missing".
//
// Memory stays bounded by the number of distinct match keys, not by the
// rows' size: a search row is kept whole only while its key has more
// operations than events.
package reconcile

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/paycomet-notify/paycomet-notify/events"
	"github.com/paycomet-notify/paycomet-notify/paycometrest"
	"github.com/paycomet-notify/paycomet-notify/publisher"
)

// DefaultTypes are the operation types reconciled (contract section 11):
// every amount-bearing type whose notification is signed.
var DefaultTypes = []int{1, 2, 3, 4, 6, 9, 13, 14, 16, 106}

// Defaults.
const (
	DefaultLimit  = paycometrest.DefaultSearchLimit
	DefaultMargin = 10 * time.Minute
	// DefaultChunk is the longest window one search call is asked for
	// before any split: short windows keep clear of PAYCOMET's date-range
	// limits (errors 1141, 1142) and make progress visible.
	DefaultChunk = 24 * time.Hour
)

// The finding's CloudEvent.
const (
	EventType      = "paycomet.reconcile.missing"
	DataSchema     = "schemas/reconcile_missing.v1.json"
	findingSubject = "reconcile.missing"
)

// readSkew is how much earlier than the widened window the stream is read:
// an event is stored at its receive time, which a receiver clock behind
// PAYCOMET's puts before the event's own time.
const readSkew = time.Hour

// ErrTooManyInOneSecond is a window of one second whose answer is full:
// splitting cannot help, and truncating would hide operations.
var ErrTooManyInOneSecond = errors.New("more than limit operations within one second")

// REST is the part of the PAYCOMET REST client the reconciler uses.
type REST interface {
	Search(ctx context.Context, r paycometrest.SearchRequest) (*paycometrest.SearchAnswer, error)
	Info(ctx context.Context, terminal int, order string) (*paycometrest.OrderInfo, error)
}

// Publisher publishes one event and returns once JetStream stored it.
type Publisher interface {
	Publish(ctx context.Context, subject, id string, body []byte) (publisher.Ack, error)
}

// Copier publishes a missing operation's own event through the receiver's
// notification path (--publish-missing); nil publishes findings only.
type Copier interface {
	PublishOperation(ctx context.Context, terminal string, op paycometrest.Operation) (CopyResult, error)
}

// CopyResult is what the notification path did with a reconciled operation.
type CopyResult struct {
	EventID   string
	Duplicate bool // an event for it was already durable
}

// Config is one reconciler.
type Config struct {
	Prefix     string   // SUBJECT_PREFIX
	Stream     string   // STREAM_NAME
	Terminals  []string // terminals to reconcile
	Currencies []string // RECONCILE_CURRENCIES
	Types      []int    // DefaultTypes when empty
	Limit      int      // search limit; DefaultLimit when 0
	Margin     time.Duration
	Chunk      time.Duration
	// PublishTimeout bounds each publish; 5s when 0.
	PublishTimeout time.Duration
	// Progress, if set, is told how the run advances.
	Progress func(Progress)
}

// Progress is a snapshot of a run.
type Progress struct {
	Phase      string // "events", "search", "publish"
	Terminal   string
	Through    time.Time // searched up to (search)
	Calls      int       // search calls so far
	Operations int       // operations read so far
	Events     int       // events read so far
}

// Reconciler runs reconciliations; one per process.
type Reconciler struct {
	cfg    Config
	rest   REST
	js     jetstream.JetStream
	pub    Publisher
	copier Copier
	types  map[int]bool
	opOf   map[string]int // operation name -> type
}

// New checks cfg and returns a reconciler. copier may be nil.
func New(cfg Config, rest REST, js jetstream.JetStream, pub Publisher, copier Copier) (*Reconciler, error) {
	if cfg.Prefix == "" || cfg.Stream == "" {
		return nil, errors.New("reconcile: prefix and stream are required")
	}
	if len(cfg.Terminals) == 0 {
		return nil, errors.New("reconcile: no terminal to reconcile")
	}
	for _, t := range cfg.Terminals {
		if _, err := strconv.Atoi(t); err != nil {
			return nil, fmt.Errorf("reconcile: terminal %q is not a number", t)
		}
	}
	if len(cfg.Currencies) == 0 {
		cfg.Currencies = []string{"EUR"}
	}
	for _, c := range cfg.Currencies {
		if len(c) != 3 || strings.ToUpper(c) != c {
			return nil, fmt.Errorf("reconcile: currency %q is not an ISO 4217 code", c)
		}
	}
	if len(cfg.Types) == 0 {
		cfg.Types = DefaultTypes
	}
	if cfg.Limit <= 0 {
		cfg.Limit = DefaultLimit
	}
	if cfg.Margin <= 0 {
		cfg.Margin = DefaultMargin
	}
	if cfg.Chunk <= 0 {
		cfg.Chunk = DefaultChunk
	}
	if cfg.PublishTimeout <= 0 {
		cfg.PublishTimeout = 5 * time.Second
	}
	r := &Reconciler{cfg: cfg, rest: rest, js: js, pub: pub, copier: copier, types: map[int]bool{}, opOf: map[string]int{}}
	for _, t := range cfg.Types {
		r.types[t] = true
		r.opOf[events.OperationName(t)] = t
	}
	return r, nil
}

// Report is one run's result.
type Report struct {
	From, To  time.Time
	Events    int // events read from the stream (all subjects of the terminals)
	Terminals []TerminalReport
}

// Failed reports whether some terminal's search failed.
func (r *Report) Failed() bool {
	for _, t := range r.Terminals {
		if t.Err != nil {
			return true
		}
	}
	return false
}

// Missing is the number of missing operations over every terminal.
func (r *Report) Missing() int {
	n := 0
	for _, t := range r.Terminals {
		n += len(t.Missing)
	}
	return n
}

// TerminalReport is one terminal's result.
type TerminalReport struct {
	Terminal   string
	Operations int // operations PAYCOMET reported in the searched windows
	Matched    int
	Missing    []Missing
	// EventsWithoutOperation counts events in the window that no
	// operation matched; -1 when the search failed (it would be wrong).
	EventsWithoutOperation int
	Calls                  int
	// Err is the REST failure that stopped this terminal's search;
	// Unsearched is what was not searched because of it.
	Err        error
	Unsearched []Window
}

// Window is a half-open time range.
type Window struct{ From, To time.Time }

// Missing is one operation with no event.
type Missing struct {
	Order      string
	Type       int
	Outcome    string
	Amount     int64
	Currency   string
	PaycometID int64
	Time       time.Time
	FindingID  string
	// New is true when this run published the finding; false when an
	// earlier run had.
	New bool
	// Copy is the operation's own event published through the
	// notification path (--publish-missing), "" otherwise.
	Copy string
}

// key is what an operation and its event share.
type key struct {
	terminal string
	order    string
	typ      int
	outcome  string
	amount   int64
	currency string
}

// group is everything known about one key.
type group struct {
	ops, events, eventsInWindow int
	kept                        []kept // rows kept whole: arrived while ops > events
	reported                    []kept // operations with a finding already on the stream
}

type kept struct {
	op      paycometrest.Operation
	t       time.Time
	outcome string
}

// run is one Run's state.
type run struct {
	from, to time.Time
	groups   map[key]*group
	found    map[string]map[int64]bool // terminal -> paycomet ids with a finding on the stream
	events   int
	lastSeq  uint64
	progress Progress
}

func (u *run) group(k key) *group {
	g := u.groups[k]
	if g == nil {
		g = &group{}
		u.groups[k] = g
	}
	return g
}

// Run reconciles [from, to), both taken at whole seconds. The error is
// for what makes the whole run meaningless (the stream could not be read, a
// finding could not be published); a terminal's REST failure is in its
// TerminalReport.Err (Report.Failed), with the findings of the windows that
// completed published.
func (r *Reconciler) Run(ctx context.Context, from, to time.Time) (*Report, error) {
	from, to = from.Truncate(time.Second), to.Truncate(time.Second)
	if !to.After(from) {
		return nil, fmt.Errorf("reconcile: the window [%s, %s) is empty", from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	u := &run{from: from, to: to, groups: map[key]*group{}, found: map[string]map[int64]bool{}}
	for _, t := range r.cfg.Terminals {
		u.found[t] = map[int64]bool{}
	}
	if err := r.readEvents(ctx, u, true); err != nil {
		return nil, err
	}
	rep := &Report{From: from, To: to}
	for _, t := range r.cfg.Terminals {
		rep.Terminals = append(rep.Terminals, r.searchTerminal(ctx, u, t))
	}
	if err := r.readEvents(ctx, u, false); err != nil {
		return nil, err
	}
	rep.Events = u.events
	for i := range rep.Terminals {
		if err := r.settle(ctx, u, &rep.Terminals[i]); err != nil {
			return rep, err
		}
	}
	return rep, nil
}

func (r *Reconciler) report(u *run) {
	if r.cfg.Progress != nil {
		r.cfg.Progress(u.progress)
	}
}

// searchTerminal collects one terminal's operations, chunk by chunk, state
// by state, currency by currency, and stops at the first REST failure.
func (r *Reconciler) searchTerminal(ctx context.Context, u *run, terminal string) TerminalReport {
	tr := TerminalReport{Terminal: terminal}
	num, _ := strconv.Atoi(terminal)
	seen := map[int64]bool{}
	u.progress.Phase, u.progress.Terminal = "search", terminal
	for a := u.from; a.Before(u.to); a = a.Add(r.cfg.Chunk) {
		b := a.Add(r.cfg.Chunk)
		if b.After(u.to) {
			b = u.to
		}
		for _, state := range []int{paycometrest.OperationFailed, paycometrest.OperationSucceeded} {
			for _, cur := range r.cfg.Currencies {
				if tr.Err != nil {
					tr.Unsearched = append(tr.Unsearched, Window{a, b})
					continue
				}
				err := r.searchWindow(ctx, u, &tr, num, state, cur, Window{a, b}, func(op paycometrest.Operation) {
					if op.PaycometID != 0 {
						if seen[op.PaycometID] {
							return
						}
						seen[op.PaycometID] = true
					}
					r.addOperation(u, &tr, terminal, state, cur, op, a)
				})
				if err != nil {
					tr.Err = err
					tr.Unsearched = append(tr.Unsearched, Window{a, b})
				}
			}
		}
		u.progress.Through = b
		r.report(u)
	}
	return tr
}

// WindowError is a search call that failed, with the window it was for.
type WindowError struct {
	Terminal int
	State    int
	Currency string
	Window   Window
	Err      error
}

func (e *WindowError) Error() string {
	return fmt.Sprintf("reconcile: terminal %d, state %d, %s, %s to %s: %v", e.Terminal, e.State, e.Currency,
		e.Window.From.Format(time.RFC3339), e.Window.To.Format(time.RFC3339), e.Err)
}

func (e *WindowError) Unwrap() error { return e.Err }

// searchWindow searches w, splitting every window whose answer is full, in
// time order.
func (r *Reconciler) searchWindow(ctx context.Context, u *run, tr *TerminalReport, terminal, state int, cur string, w Window, emit func(paycometrest.Operation)) error {
	queue := []Window{w}
	for len(queue) > 0 {
		w := queue[0]
		queue = queue[1:]
		ans, err := r.rest.Search(ctx, paycometrest.SearchRequest{Terminal: terminal, Operations: r.cfg.Types, State: state,
			From: w.From, To: w.To.Add(-time.Second), Currency: cur, Limit: r.cfg.Limit})
		tr.Calls++
		u.progress.Calls++
		if err != nil {
			return &WindowError{Terminal: terminal, State: state, Currency: cur, Window: w, Err: err}
		}
		if ans.Truncated || len(ans.Operations) >= r.cfg.Limit {
			if w.To.Sub(w.From) <= time.Second {
				return &WindowError{Terminal: terminal, State: state, Currency: cur, Window: w, Err: ErrTooManyInOneSecond}
			}
			s := splitPoint(w, ans.Operations)
			queue = append([]Window{{w.From, s}, {s, w.To}}, queue...)
			continue
		}
		for _, op := range ans.Operations {
			emit(op)
		}
		r.report(u)
	}
	return nil
}

// splitPoint is where a full window is cut: at the last row's second when
// it lies inside (the answer is sorted by date, so the first part then
// holds fewer rows than the limit), else in the middle; always a whole
// second strictly inside the window.
func splitPoint(w Window, rows []paycometrest.Operation) time.Time {
	if n := len(rows); n > 0 {
		if t, err := rows[n-1].Time(); err == nil {
			t = t.Truncate(time.Second)
			if t.After(w.From) && t.Before(w.To) {
				return t
			}
		}
	}
	s := w.From.Add(w.To.Sub(w.From) / 2).Truncate(time.Second)
	if !s.After(w.From) {
		s = w.From.Add(time.Second)
	}
	return s
}

// addOperation counts one operation under its key, keeping the row whole
// only while its key has more operations than events.
func (r *Reconciler) addOperation(u *run, tr *TerminalReport, terminal string, state int, cur string, op paycometrest.Operation, fallback time.Time) {
	if !r.types[op.OperationType] || (op.Currency != "" && op.Currency != cur) {
		return // not asked for: PAYCOMET's filter did not hold
	}
	outcome := events.OutcomeOK
	if state == paycometrest.OperationFailed {
		outcome = events.OutcomeKO
	}
	t, err := op.Time()
	if err != nil {
		t = fallback
	}
	tr.Operations++
	u.progress.Operations++
	g := u.group(key{terminal: terminal, order: op.Order, typ: op.OperationType, outcome: outcome, amount: op.Amount, currency: cur})
	g.ops++
	k := kept{op: op, t: t, outcome: outcome}
	if op.Currency == "" {
		k.op.Currency = cur
	}
	if u.found[terminal][op.PaycometID] {
		k.op.Raw = nil
		g.reported = append(g.reported, k)
		return
	}
	if g.ops > g.events {
		g.kept = append(g.kept, k)
	}
}

// settle matches one terminal's keys and publishes its new findings.
func (r *Reconciler) settle(ctx context.Context, u *run, tr *TerminalReport) error {
	u.progress.Phase, u.progress.Terminal = "publish", tr.Terminal
	var missing []Missing
	var toPublish []kept
	without := 0
	for k, g := range u.groups {
		if k.terminal != tr.Terminal {
			continue
		}
		without += max(0, g.eventsInWindow-g.ops)
		d := g.ops - g.events
		if d <= 0 {
			continue
		}
		// Operations already reported stay the missing ones, so a second
		// run picks the same; then the latest rows kept.
		for _, p := range g.reported {
			if d == 0 {
				break
			}
			missing = append(missing, missingOf(k, p, false))
			d--
		}
		sort.Slice(g.kept, func(i, j int) bool {
			if !g.kept[i].t.Equal(g.kept[j].t) {
				return g.kept[i].t.After(g.kept[j].t)
			}
			return g.kept[i].op.PaycometID > g.kept[j].op.PaycometID
		})
		for _, p := range g.kept {
			if d == 0 {
				break
			}
			missing = append(missing, missingOf(k, p, true))
			toPublish = append(toPublish, p)
			d--
		}
	}
	tr.Matched = tr.Operations - len(missing)
	tr.EventsWithoutOperation = without
	if tr.Err != nil {
		tr.EventsWithoutOperation = -1
	}
	sort.Slice(missing, func(i, j int) bool {
		if !missing[i].Time.Equal(missing[j].Time) {
			return missing[i].Time.Before(missing[j].Time)
		}
		return missing[i].PaycometID < missing[j].PaycometID
	})
	byID := map[int64]int{}
	for i, m := range missing {
		byID[m.PaycometID] = i
	}
	sort.Slice(toPublish, func(i, j int) bool { return toPublish[i].t.Before(toPublish[j].t) })
	for _, p := range toPublish {
		i := byID[p.op.PaycometID]
		if err := r.publishFinding(ctx, tr.Terminal, p); err != nil {
			tr.Missing = missing
			return err
		}
		if r.copier != nil {
			res, err := r.copier.PublishOperation(ctx, tr.Terminal, p.op)
			if err != nil {
				tr.Missing = missing
				return fmt.Errorf("reconcile: publishing the event of operation %d (order %s): %w", p.op.PaycometID, p.op.Order, err)
			}
			missing[i].Copy = res.EventID
		}
		r.report(u)
	}
	tr.Missing = missing
	return nil
}

func missingOf(k key, p kept, isNew bool) Missing {
	return Missing{Order: k.order, Type: k.typ, Outcome: k.outcome, Amount: k.amount, Currency: k.currency,
		PaycometID: p.op.PaycometID, Time: p.t, FindingID: FindingID(k.terminal, p.op.PaycometID), New: isNew}
}

// FindingID is the event id of the finding for one PAYCOMET operation.
func FindingID(terminal string, paycometID int64) string {
	return events.ID("v2", "reconcile_missing", terminal, strconv.FormatInt(paycometID, 10))
}

// FindingData is a finding's data (schemas/reconcile_missing.v1.json).
type FindingData struct {
	Terminal        string        `json:"terminal"`
	Order           string        `json:"order"`
	TransactionType int           `json:"transaction_type"`
	Operation       string        `json:"operation"`
	Outcome         string        `json:"outcome"`
	Amount          int64         `json:"amount"`
	Currency        string        `json:"currency"`
	PaycometID      int64         `json:"paycomet_id"`
	AuthCode        string        `json:"auth_code"`
	OperationTime   string        `json:"operation_time"`
	Paycomet        FindingSource `json:"paycomet"`
}

// FindingSource is PAYCOMET's answers as returned.
type FindingSource struct {
	Search json.RawMessage `json:"search"`
	Info   json.RawMessage `json:"info,omitempty"`
}

// Finding builds the CloudEvent of one missing operation. info may be nil.
func Finding(terminal string, op paycometrest.Operation, t time.Time, outcome string, info *paycometrest.OrderInfo) events.Event {
	search := op.Raw
	if len(search) == 0 {
		search = json.RawMessage("{}")
	}
	d := FindingData{Terminal: terminal, Order: op.Order, TransactionType: op.OperationType,
		Operation: events.OperationName(op.OperationType), Outcome: outcome, Amount: op.Amount, Currency: op.Currency,
		PaycometID: op.PaycometID, AuthCode: op.AuthCode, OperationTime: t.In(paycometrest.Madrid).Format(time.RFC3339),
		Paycomet: FindingSource{Search: search}}
	if info != nil && len(info.Raw) > 0 {
		d.Paycomet.Info = info.Raw
	}
	return events.Event{
		ID: FindingID(terminal, op.PaycometID), Source: "/paycomet/terminals/" + terminal, Type: EventType,
		Subject: op.Order, Time: t, DataSchema: DataSchema, Data: d, Terminal: terminal,
		Operation: "reconcile", Outcome: "missing",
	}
}

func (r *Reconciler) publishFinding(ctx context.Context, terminal string, p kept) error {
	num, _ := strconv.Atoi(terminal)
	// The details are a courtesy: a finding without them is still the
	// finding (contract: "without info when that call failed").
	info, err := r.rest.Info(ctx, num, p.op.Order)
	if err != nil {
		info = nil
	}
	ev := Finding(terminal, p.op, p.t, p.outcome, info)
	body, err := ev.Encode()
	if err != nil {
		return fmt.Errorf("reconcile: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, r.cfg.PublishTimeout)
	defer cancel()
	if _, err := r.pub.Publish(pctx, ev.Topic(r.cfg.Prefix), ev.ID, body); err != nil {
		return fmt.Errorf("reconcile: publishing the finding for operation %d (order %s): %w", p.op.PaycometID, p.op.Order, err)
	}
	return nil
}
