package reconcile

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// fetchBatch is how many messages one pull asks for.
const fetchBatch = 1000

// readEvents reads the terminals' events into u: the first pass from the
// widened window's start (less readSkew), the second from the message
// after the last one the first pass read, so an event is never counted
// twice and one stored during the search still counts. It reads to the end
// of the stream: a late notification is stored long after its own time.
func (r *Reconciler) readEvents(ctx context.Context, u *run, first bool) error {
	cfg := jetstream.ConsumerConfig{
		AckPolicy:         jetstream.AckNonePolicy,
		InactiveThreshold: 2 * time.Minute,
		MemoryStorage:     true,
	}
	for _, t := range r.cfg.Terminals {
		cfg.FilterSubjects = append(cfg.FilterSubjects, r.cfg.Prefix+"."+t+".>")
	}
	if first || u.lastSeq == 0 {
		start := u.from.Add(-r.cfg.Margin - readSkew)
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &start
	} else {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, u.lastSeq+1
	}
	u.progress.Phase = "events"
	cons, err := r.js.CreateConsumer(ctx, r.cfg.Stream, cfg)
	if err != nil {
		return fmt.Errorf("reconcile: reading stream %s: %w", r.cfg.Stream, err)
	}
	name := cons.CachedInfo().Name
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = r.js.DeleteConsumer(dctx, r.cfg.Stream, name) // else it expires by InactiveThreshold
	}()
	pending := cons.CachedInfo().NumPending
	for pending > 0 {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("reconcile: reading stream %s: %w", r.cfg.Stream, err)
		}
		batch, err := cons.Fetch(int(min(pending, fetchBatch)), jetstream.FetchMaxWait(10*time.Second))
		if err != nil {
			return fmt.Errorf("reconcile: reading stream %s: %w", r.cfg.Stream, err)
		}
		n := 0
		for msg := range batch.Messages() {
			n++
			md, err := msg.Metadata()
			if err != nil {
				return fmt.Errorf("reconcile: reading stream %s: %w", r.cfg.Stream, err)
			}
			pending = md.NumPending
			u.lastSeq = md.Sequence.Stream
			u.events++
			r.consume(u, msg.Subject(), msg.Data())
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return fmt.Errorf("reconcile: reading stream %s: %w", r.cfg.Stream, err)
		}
		if n == 0 {
			return fmt.Errorf("reconcile: reading stream %s: no message arrived in 10s with %d pending", r.cfg.Stream, pending)
		}
		u.progress.Events = u.events
		r.report(u)
	}
	return nil
}

// wireEvent is what the reconciler reads of a published event.
type wireEvent struct {
	Time string `json:"time"`
	Data struct {
		TransactionType int    `json:"transaction_type"`
		Order           string `json:"order"`
		Amount          *int64 `json:"amount"`
		Currency        string `json:"currency"`
		PaycometID      int64  `json:"paycomet_id"`
	} `json:"data"`
}

// consume counts one message: an operation's event under its key (when
// its time lies in the widened window), an earlier finding by its PAYCOMET
// id. Anything else on the terminals' subjects (card.*, 107, 108) is not
// PAYCOMET's search's business.
func (r *Reconciler) consume(u *run, subject string, data []byte) {
	parts := strings.Split(subject, ".")
	if len(parts) != 4 {
		return
	}
	terminal, op, outcome := parts[1], parts[2], parts[3]
	found, ok := u.found[terminal]
	if !ok {
		return
	}
	if op+"."+outcome == findingSubject {
		var e wireEvent
		if json.Unmarshal(data, &e) == nil && e.Data.PaycometID != 0 {
			found[e.Data.PaycometID] = true
		}
		return
	}
	typ, ok := r.opOf[op]
	if !ok || (outcome != "ok" && outcome != "ko") {
		return
	}
	var e wireEvent
	if json.Unmarshal(data, &e) != nil || e.Data.Amount == nil || e.Data.TransactionType != typ {
		return
	}
	if !r.currency(e.Data.Currency) {
		return
	}
	t, err := time.Parse(time.RFC3339Nano, e.Time)
	if err != nil || t.Before(u.from.Add(-r.cfg.Margin)) || !t.Before(u.to.Add(r.cfg.Margin)) {
		return
	}
	g := u.group(key{terminal: terminal, order: e.Data.Order, typ: typ, outcome: outcome, amount: *e.Data.Amount, currency: e.Data.Currency})
	g.events++
	if !t.Before(u.from) && t.Before(u.to) {
		g.eventsInWindow++
	}
}

func (r *Reconciler) currency(c string) bool {
	for _, x := range r.cfg.Currencies {
		if x == c {
			return true
		}
	}
	return false
}
