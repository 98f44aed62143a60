package ops

import (
	"context"
	"fmt"
	"strings"
)

// Page bounds: a page holds at most MaxLimit messages, and one page request
// examines at most DefaultMaxScan sequences unless the query says otherwise.
const (
	DefaultLimit   = 50
	MaxLimit       = 500
	DefaultMaxScan = 20000
	// DefaultMatchScan bounds a page whose Match reads bodies (an order
	// search): each examined message is decoded, so fewer fit in a fast
	// answer; the page's Older link continues the search.
	DefaultMatchScan = 5000
)

// Query selects one page of a stream, read backwards from the end.
type Query struct {
	Stream string
	Filter string // NATS subject filter; "" is every subject
	// Match keeps only the messages it accepts (an order search reads the
	// body); nil keeps all. Subject filters are cheaper: the server
	// applies them.
	Match func(Message) bool
	// Before ends the page before this sequence (the previous page's
	// Older); 0 starts at the stream's last message.
	Before  uint64
	Limit   int    // DefaultLimit when 0, at most MaxLimit
	MaxScan uint64 // sequences examined at most; DefaultMaxScan when 0
}

// Page is a run of messages, newest first.
type Page struct {
	Messages []Message
	// Older is the Before of the next (older) page; 0 when the stream has
	// nothing older.
	Older uint64
	// Scanned is how many sequences were examined; Truncated is true when
	// the page stopped at MaxScan before it was full (Older continues).
	Scanned   uint64
	Truncated bool
}

// Page reads q's page. It walks back from the end in windows that double
// while they find too few matches, each read forward with one consumer, so
// its cost grows with the page and the filter's sparseness, never with the
// stream's length.
func (r *Reader) Page(ctx context.Context, q Query) (Page, error) {
	var p Page
	if q.Limit <= 0 {
		q.Limit = DefaultLimit
	}
	q.Limit = min(q.Limit, MaxLimit)
	if q.MaxScan == 0 {
		q.MaxScan = DefaultMaxScan
		if q.Match != nil {
			q.MaxScan = DefaultMatchScan
		}
	}
	if q.Filter == "" {
		q.Filter = ">"
	}
	in := r.Info(ctx, q.Stream)
	if in.Err != nil {
		return p, fmt.Errorf("stream %s: %w", q.Stream, in.Err)
	}
	if in.Messages == 0 {
		return p, nil
	}
	first, hi := in.FirstSeq, in.LastSeq
	if q.Before > 0 {
		if q.Before <= first {
			return p, nil
		}
		hi = min(hi, q.Before-1)
	}
	window := max(uint64(q.Limit)*4, 256)
	for {
		lo := first
		if hi+1-first > window {
			lo = hi + 1 - window
		}
		need := q.Limit - len(p.Messages)
		var win []Message
		err := r.scan(ctx, q.Stream, q.Filter, lo, false, func(m Message) bool {
			if m.Seq > hi {
				return false
			}
			if q.Match == nil || q.Match(m) {
				win = append(win, m)
				if len(win) > 2*need {
					win = append(win[:0], win[len(win)-need:]...)
				}
			}
			return m.Seq < hi
		})
		if err != nil {
			return p, err
		}
		for i := len(win) - 1; i >= 0 && len(p.Messages) < q.Limit; i-- {
			p.Messages = append(p.Messages, win[i])
		}
		p.Scanned += hi + 1 - lo
		switch {
		case len(p.Messages) >= q.Limit:
			if oldest := p.Messages[len(p.Messages)-1].Seq; oldest > first {
				p.Older = oldest
			}
			return p, nil
		case lo == first:
			return p, nil
		case p.Scanned >= q.MaxScan:
			p.Truncated, p.Older = true, lo
			return p, nil
		}
		hi = lo - 1
		window = min(window*2, q.MaxScan-p.Scanned)
	}
}

// EventFilter is the operator page's event filter: each empty member
// matches everything.
type EventFilter struct {
	Terminal  string // the <terminal> token
	Operation string // authorization, card_expiry, card, ...; "dlq" for dead letters
	Outcome   string // ok, ko, notice, refresh_required, ...
	Order     string // part of the CloudEvent subject (Order, IdUser)
}

// Subject is the NATS filter of f's terminal, operation and outcome.
func (f EventFilter) Subject(prefix string) (string, error) {
	for _, t := range []string{f.Terminal, f.Operation, f.Outcome} {
		if strings.ContainsAny(t, ".*> \t\r\n") {
			return "", fmt.Errorf("filter %q: a subject token has no '.', '*', '>' or spaces", t)
		}
	}
	if f.Operation == "dlq" {
		return prefix + ".dlq", nil
	}
	if f.Terminal == "" && f.Operation == "" && f.Outcome == "" {
		return prefix + ".>", nil
	}
	tok := func(s string) string {
		if s == "" {
			return "*"
		}
		return s
	}
	return prefix + "." + tok(f.Terminal) + "." + tok(f.Operation) + "." + tok(f.Outcome), nil
}

// Match is f's body filter (the order search), nil when there is none.
func (f EventFilter) Match() func(Message) bool {
	if f.Order == "" {
		return nil
	}
	return func(m Message) bool {
		e, err := m.Event()
		return err == nil && strings.Contains(e.Subject, f.Order)
	}
}

// Events reads one page of the event stream with f.
func (r *Reader) Events(ctx context.Context, f EventFilter, before uint64, limit int) (Page, error) {
	subj, err := f.Subject(r.s.Prefix)
	if err != nil {
		return Page{}, err
	}
	return r.Page(ctx, Query{Stream: r.s.Events, Filter: subj, Match: f.Match(), Before: before, Limit: limit})
}
