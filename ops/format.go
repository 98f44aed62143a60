package ops

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/paycomet-notify/paycomet-notify/events"
)

// Summary is what a person reads of one message: the columns of `events
// tail` and of the operator page's lists. It holds nothing secret (no
// TokenUser, no field PAYCOMET did not sign beyond the order).
type Summary struct {
	Seq       uint64
	Time      time.Time // the event's time (PAYCOMET's), else when stored
	Terminal  string
	Operation string // authorization, ..., card, rejected, dlq
	Outcome   string // ok, ko, notice, refresh_required, a rejection reason, a dead-letter cause
	Order     string // Order, or id_user=N for card events
	Amount    string // "10.00 EUR", "750 JPY", "3 months", or ""
	ID        string
	Type      string // the CloudEvent type
}

type summaryData struct {
	Terminal        string `json:"terminal"`
	Order           string `json:"order"`
	Amount          *int64 `json:"amount"`
	Currency        string `json:"currency"`
	AmountDisplay   string `json:"amount_display"`
	IDUser          *int64 `json:"id_user"`
	OldIDUser       *int64 `json:"old_id_user"`
	NewIDUser       *int64 `json:"new_id_user"`
	MonthsToExpire  *int   `json:"months_to_expire"`
	Reason          string `json:"reason"`
	Status          int    `json:"status"`
	Cause           string `json:"cause"`
	OriginalSubject string `json:"original_subject"`
}

// Summarize reads m's columns. A body that is not a CloudEvent still gives
// its subject, sequence and time.
func Summarize(prefix string, m Message) Summary {
	s := Summary{Seq: m.Seq, Time: m.Stored, ID: m.MsgID}
	tokens := strings.Split(strings.TrimPrefix(m.Subject, prefix+"."), ".")
	switch {
	case len(tokens) == 3:
		s.Terminal, s.Operation, s.Outcome = tokens[0], tokens[1], tokens[2]
	case len(tokens) == 1:
		s.Operation = tokens[0]
	default:
		s.Operation = m.Subject
	}
	e, err := m.Event()
	if err != nil {
		return s
	}
	s.ID, s.Type, s.Order = e.ID, e.Type, e.Subject
	if !e.Time.IsZero() {
		s.Time = e.Time
	}
	var d summaryData
	_ = json.Unmarshal(e.Data, &d) // a data member of another shape leaves the column empty
	switch {
	case s.Operation == "rejected":
		s.Terminal, s.Outcome = d.Terminal, d.Reason
		if d.Status != 0 {
			s.Amount = "HTTP " + strconv.Itoa(d.Status)
		}
	case s.Operation == "dlq":
		s.Outcome, s.Order = d.Cause, d.OriginalSubject
		if len(strings.Split(d.OriginalSubject, ".")) == 4 {
			s.Terminal = strings.Split(d.OriginalSubject, ".")[1]
		}
	case d.AmountDisplay != "":
		s.Amount = d.AmountDisplay + " " + d.Currency
	case d.Amount != nil && d.Currency != "":
		// Events without amount_display (reconcile.missing) still show
		// major units with the currency's ISO 4217 exponent.
		s.Amount = events.FormatMinor(*d.Amount, d.Currency) + " " + d.Currency
	case d.Amount != nil:
		s.Amount = strconv.FormatInt(*d.Amount, 10) + " minor units"
	}
	if d.Order != "" && s.Operation != "dlq" {
		s.Order = d.Order
	}
	switch {
	case d.OldIDUser != nil && d.NewIDUser != nil:
		s.Order = fmt.Sprintf("id_user=%d->%d", *d.OldIDUser, *d.NewIDUser)
	case d.IDUser != nil && d.Order == "":
		s.Order = "id_user=" + strconv.FormatInt(*d.IDUser, 10)
	}
	if d.MonthsToExpire != nil && s.Amount == "" {
		s.Amount = strconv.Itoa(*d.MonthsToExpire) + " months"
	}
	return s
}

// ANSI colours of a terminal line.
const (
	ansiReset  = "\x1b[0m"
	ansiGreen  = "\x1b[32m"
	ansiRed    = "\x1b[31m"
	ansiYellow = "\x1b[33m"
	ansiDim    = "\x1b[2m"
)

// Line is s as one line: time, terminal, operation, outcome, order, amount,
// id, in columns. color adds ANSI colours (for a terminal only).
func (s Summary) Line(color bool) string {
	dash := func(v string) string {
		if v == "" {
			return "-"
		}
		return v
	}
	outcome := fmt.Sprintf("%-16s", dash(s.Outcome))
	id := s.ID
	if color {
		c := ansiYellow
		switch {
		case s.Outcome == "ok" || s.Outcome == "notice" || s.Operation == "card":
			c = ansiGreen
		case s.Outcome == "ko" || s.Operation == "rejected" || s.Operation == "dlq":
			c = ansiRed
		}
		outcome = c + outcome + ansiReset
		id = ansiDim + id + ansiReset
	}
	return fmt.Sprintf("%s  %-8s  %-24s  %s  %-20s  %12s  %s",
		s.Time.Format(time.RFC3339), dash(s.Terminal), dash(s.Operation), outcome, dash(clip(s.Order, 40)), dash(s.Amount), id)
}

// clip bounds a column written from a field an attacker may control, and
// removes control characters so a line cannot move the cursor.
func clip(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, s)
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
