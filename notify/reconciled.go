package notify

import (
	"context"
	"strings"
	"time"

	"github.com/paycomet-notify/paycomet-notify/dedupe"
	"github.com/paycomet-notify/paycomet-notify/events"
)

// Reconciled operations (contract section 11, reconcile --publish-missing).
//
// The reconciler publishes a missing operation's own event, built from
// PAYCOMET's REST answer, through PublishReconciled: the same dedupe and
// publish steps as a notification. The real notification may still arrive
// later (PAYCOMET retrying after an outage); it must then be a copy: 200,
// no second event, quarantined as reconciled_copy so what it adds (its
// signature, IdUser, TokenUser) is kept.
//
// Two marks make that so:
//
//   - The event's id is the id the notification will have when PAYCOMET's
//     search row holds its signed fields exactly (timestamp = BankDateTime):
//     its dedupe mark holds reconciledMark + the match key, so the real
//     notification's Claim answers Seen with that mark and the hot path
//     pays no extra round trip.
//   - The match key (events.MatchKey) is marked too, with reconciledMark +
//     the event id: the fallback for a notification whose BankDateTime is
//     not the row's timestamp. Checking it costs one store round trip, so
//     the path checks it only for a signed formula-A notification received
//     at least LateAfter after its BankDateTime. The reconciler publishes
//     copies only of operations older than ReconciledMinAge, so a
//     notification that arrives after the copy is that late. A match-key
//     mark serves one notification: it is overwritten once used, so a
//     further operation with the same key is not swallowed.
const reconciledMark = "reconciled:"

// consumedMark replaces a match-key mark that recognised its notification.
const consumedMark = "consumed:"

// LateAfter is how long after its BankDateTime a notification must arrive
// for the path to look for a reconciled copy by match key.
const LateAfter = time.Minute

// ReconciledMinAge is the youngest operation the reconciler publishes a copy
// of: younger ones may still have their notification on the way, and their
// notification would arrive too early for the fallback check.
const ReconciledMinAge = 2 * time.Minute

func isReconciledMark(fp string) bool { return strings.HasPrefix(fp, reconciledMark) }

// PublishReconciled publishes ev, an operation's event built by
// events.Reconciled, and remembers it for the dedupe TTL under its id and
// under matchKey (events.MatchKey). Duplicate means an event with its id was
// already durable (the real notification came meanwhile): nothing is
// published. It needs the dedupe store: without it the real notification
// could not be recognised, so a store failure is Unavailable.
func (p *Path) PublishReconciled(ctx context.Context, ev events.Event, matchKey string) Outcome {
	ctx = context.WithoutCancel(ctx)
	if p.tracer != nil {
		return p.reconciledTraced(ctx, ev, matchKey)
	}
	return p.publishReconciled(ctx, ev, matchKey)
}

func (p *Path) publishReconciled(ctx context.Context, ev events.Event, matchKey string) Outcome {
	ev.TraceParent = p.traceParent(ctx)
	body, err := ev.Encode()
	if err != nil {
		p.log.Error("reconciled event could not be encoded", "err", err, "event_id", ev.ID)
		return Outcome{Kind: Internal, Detail: "internal error"}
	}
	sctx, cancel := context.WithTimeout(ctx, p.cfg.StoreTimeout)
	lease, st, err := p.store.Claim(sctx, ev.ID)
	cancel()
	switch {
	case err != nil:
		return Outcome{Kind: Unavailable, EventID: ev.ID, Detail: "dedupe store: " + err.Error()}
	case st == dedupe.Seen:
		return Outcome{Kind: Duplicate, EventID: ev.ID}
	case st == dedupe.InFlight:
		return Outcome{Kind: Unavailable, EventID: ev.ID, Detail: "a notification with this id is being published; retry"}
	}
	pctx, cancel := context.WithTimeout(ctx, p.cfg.PublishTimeout)
	ack, err := p.pub.Publish(pctx, ev.Topic(p.cfg.Prefix), ev.ID, body)
	cancel()
	if err != nil {
		rctx, cancel := context.WithTimeout(ctx, p.cfg.StoreTimeout)
		_ = p.store.Release(rctx, lease)
		cancel()
		return Outcome{Kind: Unavailable, EventID: ev.ID, Detail: "the event could not be made durable: " + err.Error()}
	}
	mctx, cancel := context.WithTimeout(ctx, 2*p.cfg.StoreTimeout)
	defer cancel()
	err1 := p.store.MarkSeen(mctx, lease, reconciledMark+matchKey)
	err2 := p.store.MarkSeen(mctx, dedupe.Lease{Key: matchKey}, reconciledMark+ev.ID)
	if err1 != nil || err2 != nil {
		p.m.dedupeErrors.WithLabelValues("mark_seen").Inc()
		return Outcome{Kind: Unavailable, EventID: ev.ID,
			Detail: "published, but the dedupe store did not remember it: the real notification would publish a second event"}
	}
	if ack.Duplicate {
		return Outcome{Kind: Duplicate, EventID: ev.ID}
	}
	return Outcome{Kind: Accepted, EventID: ev.ID}
}

// reconciledCopy answers the real notification of an operation the
// reconciler already published (copyOf): 200, no new event, quarantined with
// reason reconciled_copy. own is the notification's own id lease: it is
// marked with the notification's fingerprint, so its identical retries are
// plain duplicates; matchKey's mark is used up.
func (p *Path) reconciledCopy(ctx context.Context, rej rejection, copyOf string, own dedupe.Lease, fp, matchKey string) Outcome {
	sctx, cancel := context.WithTimeout(ctx, 2*p.cfg.StoreTimeout)
	if matchKey != "" {
		_ = p.store.MarkSeen(sctx, dedupe.Lease{Key: matchKey}, consumedMark+rej.eventID)
	}
	if err := p.store.MarkSeen(sctx, own, fp); err != nil {
		p.m.dedupeErrors.WithLabelValues("mark_seen").Inc()
	}
	cancel()
	rej.reason, rej.status, rej.eventID = events.ReasonReconciledCopy, 200, copyOf
	rej.detail = "the notification of an operation reconciliation already published from PAYCOMET's REST answer"
	o := p.reject(ctx, rej)
	return Outcome{Kind: Duplicate, EventID: copyOf, Reason: rej.reason, Detail: rej.detail, QuarantineID: o.QuarantineID}
}

// seenReconciled is the hot path's check of a Seen mark: the reconciler's
// copy of this very notification (same id).
func (p *Path) seenReconciled(ctx context.Context, ev events.Event, lease dedupe.Lease, fp string, rej rejection) (Outcome, bool) {
	if !isReconciledMark(lease.Fingerprint) {
		return Outcome{}, false
	}
	return p.reconciledCopy(ctx, rej, ev.ID, dedupe.Lease{Key: ev.ID}, fp, strings.TrimPrefix(lease.Fingerprint, reconciledMark)), true
}

// lateReconciled is the fallback check of a notification whose own id was
// new: a late signed formula-A notification whose match key the reconciler
// marked. own is the claim on its id, which it then keeps as seen.
func (p *Path) lateReconciled(ctx context.Context, ev events.Event, own dedupe.Lease, fp string, rej rejection) (Outcome, bool) {
	if rej.auth.Method != events.AuthSignature || rej.auth.Formula != "A" || rej.req.ReceivedAt.Sub(ev.Time) < LateAfter {
		return Outcome{}, false
	}
	pay, ok := events.PaymentOf(ev)
	if !ok {
		return Outcome{}, false
	}
	key := events.MatchKey(ev.Terminal, pay.TransactionType, pay.Order, ev.Outcome, pay.Amount, pay.Currency)
	sctx, cancel := context.WithTimeout(ctx, p.cfg.StoreTimeout)
	l, st, err := p.store.Claim(sctx, key)
	cancel()
	if err != nil {
		return Outcome{}, false
	}
	switch st {
	case dedupe.Claimed:
		rctx, cancel := context.WithTimeout(ctx, p.cfg.StoreTimeout)
		_ = p.store.Release(rctx, l)
		cancel()
		return Outcome{}, false
	case dedupe.Seen:
		if !isReconciledMark(l.Fingerprint) {
			return Outcome{}, false
		}
		rej.eventID = ev.ID
		return p.reconciledCopy(ctx, rej, strings.TrimPrefix(l.Fingerprint, reconciledMark), own, fp, key), true
	}
	return Outcome{}, false
}
