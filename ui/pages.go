package ui

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/paycomet-notify/paycomet-notify/ops"
)

var funcs = template.FuncMap{
	"slice2": func(a ...ops.Info) []ops.Info { return a },
	"time": func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.Format("2006-01-02 15:04:05 -07:00")
	},
	"bytes": fmtBytes,
	"maxbytes": func(n int64) string {
		if n < 0 {
			return "unbounded"
		}
		return fmtBytes(uint64(n))
	},
	"dash": func(s string) string {
		if s == "" {
			return "-"
		}
		return s
	},
	"short": func(s string) string {
		if len(s) > 12 {
			return s[:12] + "…"
		}
		return s
	},
}

func fmtBytes(n uint64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// --- dashboard ---

type counter struct {
	Name, Labels string
	Value        float64
}

type dashboardData struct {
	State            State
	Events, Rejected ops.Info
	MarksBucket      string
	NotificationPath string
	Counters         []counter
}

// mainCounters are the series the dashboard shows, by metric name prefix.
var mainCounters = []string{
	"paycomet_notify_notifications_total", "paycomet_notify_quarantined_total", "paycomet_notify_duplicates_total",
	"paycomet_notify_conflicting_copies_total", "paycomet_notify_rejected_not_stored_total",
	"paycomet_notify_unauthorized_total", "paycomet_notify_published_without_dedupe_store_total",
	"paycomet_notify_dedupe_store_up", "paycomet_notify_stream_bytes", "paycomet_notify_stream_messages",
}

func (u *UI) counters() []counter {
	if u.cfg.Gatherer == nil {
		return nil
	}
	mfs, err := u.cfg.Gatherer.Gather()
	if err != nil && len(mfs) == 0 {
		return nil
	}
	var out []counter
	for _, name := range mainCounters {
		for _, mf := range mfs {
			if mf.GetName() != name {
				continue
			}
			for _, m := range mf.GetMetric() {
				out = append(out, counter{Name: name, Labels: labels(m), Value: value(mf, m)})
			}
		}
	}
	return out
}

func labels(m *dto.Metric) string {
	var parts []string
	for _, l := range m.GetLabel() {
		parts = append(parts, l.GetName()+"="+l.GetValue())
	}
	return strings.Join(parts, " ")
}

func value(mf *dto.MetricFamily, m *dto.Metric) float64 {
	switch mf.GetType() {
	case dto.MetricType_COUNTER:
		return m.GetCounter().GetValue()
	case dto.MetricType_GAUGE:
		return m.GetGauge().GetValue()
	}
	return 0
}

func (u *UI) dashboard(w http.ResponseWriter, r *http.Request) {
	s := u.cfg.Reader.Streams()
	d := dashboardData{State: u.cfg.State(), Events: u.cfg.Reader.Info(r.Context(), s.Events),
		Rejected: u.cfg.Reader.Info(r.Context(), s.Rejected), MarksBucket: s.MarksBucket(),
		NotificationPath: u.cfg.NotificationPath, Counters: u.counters()}
	u.render(w, r, "dashboard", http.StatusOK, view{Title: "Overview", Data: d})
}

// --- events ---

type row struct {
	ops.Summary
	Link string
}

type eventsData struct {
	Filter ops.EventFilter
	Rows   []row
	Page   ops.Page
	Older  string // the next page's URL, "" when none
}

func (u *UI) events(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := ops.EventFilter{Terminal: q.Get("terminal"), Operation: q.Get("type"), Outcome: q.Get("outcome"), Order: q.Get("order")}
	before, _ := strconv.ParseUint(q.Get("before"), 10, 64)
	p, err := u.cfg.Reader.Events(r.Context(), f, before, ops.DefaultLimit)
	if err != nil {
		if _, serr := f.Subject("x"); serr != nil {
			u.render(w, r, "events", http.StatusBadRequest, view{Title: "Events", Error: serr.Error(), Data: eventsData{Filter: f}})
			return
		}
		u.fail(w, r, "events", err)
		return
	}
	d := eventsData{Filter: f, Page: p}
	prefix := u.cfg.Reader.Streams().Prefix
	for _, m := range p.Messages {
		d.Rows = append(d.Rows, row{Summary: ops.Summarize(prefix, m), Link: fmt.Sprintf("/ui/events/%d", m.Seq)})
	}
	if p.Older != 0 {
		q.Set("before", strconv.FormatUint(p.Older, 10))
		d.Older = "/ui/events?" + q.Encode()
	}
	u.render(w, r, "events", http.StatusOK, view{Title: "Events", Data: d})
}

type messageData struct {
	Summary ops.Summary
	Message ops.Message
	JSON    string // the CloudEvent, indented, secrets masked
	Back    string
	Mark    *ops.Mark
	Seq     uint64
	Stale   bool
	Reason  string
	Detail  string
}

func (u *UI) event(w http.ResponseWriter, r *http.Request) {
	seq, ok := parseSeq(r.PathValue("seq"))
	if !ok {
		http.NotFound(w, r)
		return
	}
	m, err := u.cfg.Reader.Get(r.Context(), u.cfg.Reader.Streams().Events, seq)
	if errors.Is(err, ops.ErrNotFound) {
		http.NotFound(w, r)
		return
	}
	if err != nil {
		u.fail(w, r, "event", err)
		return
	}
	d := messageData{Summary: ops.Summarize(u.cfg.Reader.Streams().Prefix, m), Message: m, JSON: masked(m.Data), Back: "/ui/events", Seq: seq}
	u.render(w, r, "event", http.StatusOK, view{Title: "Event " + d.Summary.ID, Nav: "events", Data: d})
}

// masked indents a CloudEvent with every secret masked: TokenUser (in
// data, raw and rejected fields, whatever its spelling), and a rejected
// request's body and query, which hold the same fields undecoded.
func masked(body []byte) string {
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return "(not JSON: " + strconv.Itoa(len(body)) + " bytes not shown)"
	}
	v = mask(v, "")
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
	return b.String()
}

const hidden = "•••• (masked)"

func secretName(k string) bool {
	k = strings.ToLower(strings.ReplaceAll(k, "_", ""))
	return k == "tokenuser" || strings.Contains(k, "password") || k == "pwd"
}

func mask(v any, parent string) any {
	switch t := v.(type) {
	case map[string]any:
		for k, x := range t {
			switch {
			case secretName(k):
				t[k] = hidden
			case parent == "request" && k == "body":
				if s, ok := x.(string); ok {
					t[k] = fmt.Sprintf("(%d base64 characters not shown: the body holds the fields above undecoded)", len(s))
				}
			case parent == "request" && k == "query":
				if s, ok := x.(string); ok {
					t[k] = maskQuery(s)
				}
			default:
				t[k] = mask(x, k)
			}
		}
	case []any:
		for i, x := range t {
			t[i] = mask(x, parent)
		}
	}
	return v
}

// maskQuery masks the secret fields of a raw query string, keeping the rest
// as it was.
func maskQuery(q string) string {
	parts := strings.Split(q, "&")
	for i, p := range parts {
		name, _, _ := strings.Cut(p, "=")
		if n, err := url.QueryUnescape(name); err == nil && secretName(n) {
			parts[i] = name + "=" + url.QueryEscape(hidden)
		}
	}
	return strings.Join(parts, "&")
}

// --- rejected ---

type rejectedRow struct {
	Seq                                 uint64
	ID, Reason, Terminal, Order, Source string
	Status                              int
	Received                            time.Time
	Mark                                *ops.Mark
	Stale                               bool
}

type rejectedData struct {
	Reason string
	Rows   []rejectedRow
	Older  string
	Seqs   []uint64
}

func (u *UI) rejected(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	reason := q.Get("reason")
	before, _ := strconv.ParseUint(q.Get("before"), 10, 64)
	s := u.cfg.Reader.Streams()
	var match func(ops.Message) bool
	if reason != "" {
		match = func(m ops.Message) bool {
			e, err := m.Event()
			if err != nil {
				return false
			}
			var d struct {
				Reason string `json:"reason"`
			}
			return json.Unmarshal(e.Data, &d) == nil && d.Reason == reason
		}
	}
	p, err := u.cfg.Reader.Page(r.Context(), ops.Query{Stream: s.Rejected, Filter: s.RejectedSubject(), Match: match, Before: before})
	if err != nil {
		u.fail(w, r, "rejected", err)
		return
	}
	d := rejectedData{Reason: reason}
	for _, m := range p.Messages {
		q, err := u.cfg.Reader.RejectedAt(r.Context(), m.Seq)
		if err != nil {
			continue
		}
		mark, _ := u.cfg.Replayer.Marks().Get(r.Context(), "rejected."+q.Event.ID)
		d.Rows = append(d.Rows, rejectedRow{Seq: m.Seq, ID: q.Event.ID, Reason: q.Data.Reason, Terminal: q.Data.Terminal,
			Order: q.Order(), Source: q.Data.Source, Status: q.Data.Status, Received: q.Data.ReceivedAt, Mark: mark,
			Stale: q.Data.Reason == "stale"})
		if !mark.Done() {
			d.Seqs = append(d.Seqs, m.Seq)
		}
	}
	if p.Older != 0 {
		q.Set("before", strconv.FormatUint(p.Older, 10))
		d.Older = "/ui/rejected?" + q.Encode()
	}
	u.render(w, r, "rejected", http.StatusOK, view{Title: "Rejected notifications", Data: d})
}

func (u *UI) rejectedOne(w http.ResponseWriter, r *http.Request) {
	seq, ok := parseSeq(r.PathValue("seq"))
	if !ok {
		http.NotFound(w, r)
		return
	}
	q, err := u.cfg.Reader.RejectedAt(r.Context(), seq)
	if errors.Is(err, ops.ErrNotFound) {
		http.NotFound(w, r)
		return
	}
	if err != nil {
		u.fail(w, r, "event", err)
		return
	}
	mark, _ := u.cfg.Replayer.Marks().Get(r.Context(), "rejected."+q.Event.ID)
	d := messageData{Summary: ops.Summarize(u.cfg.Reader.Streams().Prefix, q.Message), Message: q.Message, JSON: masked(q.Message.Data),
		Back: "/ui/rejected", Mark: mark, Seq: seq, Stale: q.Data.Reason == "stale", Reason: q.Data.Reason, Detail: q.Data.Detail}
	u.render(w, r, "rejected_one", http.StatusOK, view{Title: "Rejected " + q.Event.ID, Nav: "rejected", Data: d})
}

type resultsData struct {
	Results []resultRow
	Back    string
}

type resultRow struct {
	ops.Result
	Line, EventsLink string
}

func seqsOf(r *http.Request) ([]uint64, bool) {
	var out []uint64
	for _, s := range r.PostForm["seq"] {
		n, ok := parseSeq(s)
		if !ok {
			return nil, false
		}
		out = append(out, n)
	}
	return out, len(out) > 0 && len(out) <= ops.MaxLimit
}

func (u *UI) replayRejected(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	seqs, ok := seqsOf(r)
	if !ok {
		http.Error(w, "bad request: give 1 to 500 sequence numbers (seq)", http.StatusBadRequest)
		return
	}
	if st := u.cfg.State(); st.DedupeStore != "" && !st.DedupeUp {
		// Only the dedupe store remembers notifications accepted longer
		// ago than the JetStream duplicate window: without it a replay
		// could publish one twice.
		u.render(w, r, "results", http.StatusServiceUnavailable, view{Title: "Replay", Nav: "rejected",
			Error: "The dedupe store (" + st.DedupeStore + ") is unreachable: nothing was replayed. Try again when it is up.",
			Data:  resultsData{Back: "/ui/rejected"}})
		return
	}
	results := u.cfg.Replayer.ReplayRejectedAt(r.Context(), seqs, r.PostFormValue("accept_stale") == "1")
	d := resultsData{Back: "/ui/rejected"}
	for _, res := range results {
		row := resultRow{Result: res, Line: res.Line()}
		if res.EventID != "" && res.Order != "" {
			row.EventsLink = "/ui/events?order=" + url.QueryEscape(res.Order)
		}
		d.Results = append(d.Results, row)
	}
	u.cfg.Log.Info("ui: quarantine replay", "count", len(results))
	u.render(w, r, "results", http.StatusOK, view{Title: "Replay", Nav: "rejected", Data: d})
}

// --- dead letters ---

type dlqData struct {
	Rows  []ops.DeadLetter
	Older string
}

func (u *UI) dlq(w http.ResponseWriter, r *http.Request) {
	before, _ := strconv.ParseUint(r.URL.Query().Get("before"), 10, 64)
	ds, p, err := u.cfg.Reader.DeadLetters(r.Context(), before, ops.DefaultLimit)
	if err != nil {
		u.fail(w, r, "dlq", err)
		return
	}
	for i := range ds {
		ds[i].Replayed, _ = u.cfg.Replayer.Marks().Get(r.Context(), "dlq."+ds[i].Event.ID)
	}
	d := dlqData{Rows: ds}
	if p.Older != 0 {
		d.Older = fmt.Sprintf("/ui/dlq?before=%d", p.Older)
	}
	u.render(w, r, "dlq", http.StatusOK, view{Title: "Dead letters", Data: d})
}

func (u *UI) replayDLQ(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	seqs, ok := seqsOf(r)
	if !ok {
		http.Error(w, "bad request: give 1 to 500 sequence numbers (seq)", http.StatusBadRequest)
		return
	}
	d := resultsData{Back: "/ui/dlq"}
	for _, seq := range seqs {
		res := u.cfg.Replayer.ReplayDeadLetterAt(r.Context(), seq)
		d.Results = append(d.Results, resultRow{Result: res, Line: res.Line()})
	}
	u.render(w, r, "results", http.StatusOK, view{Title: "Replay", Nav: "dlq", Data: d})
}

// --- expiring cards ---

type card struct {
	IDUser                       int64
	Expiry, MaskedPAN, CardBrand string
	Seen                         time.Time
}

type cardGroup struct {
	Terminal string
	Months   int
	Cards    []card
}

type cardsData struct {
	Groups  []cardGroup
	Scanned int
	Older   string
}

// cards groups the latest card.refresh_required events (one page from the
// end of the stream) by terminal and months to expire, one line per user.
func (u *UI) cards(w http.ResponseWriter, r *http.Request) {
	s := u.cfg.Reader.Streams()
	before, _ := strconv.ParseUint(r.URL.Query().Get("before"), 10, 64)
	p, err := u.cfg.Reader.Page(r.Context(), ops.Query{Stream: s.Events, Filter: s.Prefix + ".*.card.refresh_required", Before: before, Limit: ops.MaxLimit})
	if err != nil {
		u.fail(w, r, "cards", err)
		return
	}
	type key struct {
		t  string
		id int64
	}
	seen := map[key]bool{}
	groups := map[string]*cardGroup{}
	for _, m := range p.Messages { // newest first: the first of a user is its latest
		e, err := m.Event()
		if err != nil {
			continue
		}
		var d struct {
			IDUser         int64  `json:"id_user"`
			MonthsToExpire int    `json:"months_to_expire"`
			Expiry         string `json:"expiry"`
			MaskedPAN      string `json:"masked_pan"`
			CardBrand      string `json:"card_brand"`
		}
		if json.Unmarshal(e.Data, &d) != nil {
			continue
		}
		t := ops.Summarize(s.Prefix, m).Terminal
		if seen[key{t, d.IDUser}] {
			continue
		}
		seen[key{t, d.IDUser}] = true
		gk := fmt.Sprintf("%s/%03d", t, d.MonthsToExpire)
		g := groups[gk]
		if g == nil {
			g = &cardGroup{Terminal: t, Months: d.MonthsToExpire}
			groups[gk] = g
		}
		g.Cards = append(g.Cards, card{IDUser: d.IDUser, Expiry: d.Expiry, MaskedPAN: d.MaskedPAN, CardBrand: d.CardBrand, Seen: e.Time})
	}
	keys := make([]string, 0, len(groups))
	for k := range groups {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	d := cardsData{Scanned: len(p.Messages)}
	for _, k := range keys {
		d.Groups = append(d.Groups, *groups[k])
	}
	if p.Older != 0 {
		d.Older = fmt.Sprintf("/ui/cards?before=%d", p.Older)
	}
	u.render(w, r, "cards", http.StatusOK, view{Title: "Expiring cards", Data: d})
}
