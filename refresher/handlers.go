package refresher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/paycomet-notify/paycomet-notify/bankstore"
	"github.com/paycomet-notify/paycomet-notify/schemas"
)

// inEvent is the part of a receiver's CloudEvent the refresher reads.
type inEvent[T any] struct {
	ID   string `json:"id"`
	Type string `json:"type"`
	Data T      `json:"data"`
}

// noticeData is what the refresher reads of card_expiry data.
type noticeData struct {
	Terminal       string `json:"terminal"`
	IDUser         int64  `json:"id_user"`
	MonthsToExpire int    `json:"months_to_expire"`
}

// handleNotice answers one card-expiry notice with exactly one output
// event: check the processed mark, look the token up, ask info_user,
// publish, write the processed mark. The caller acks only after that.
func (r *Refresher) handleNotice(ctx context.Context, d delivery) error {
	var ev inEvent[noticeData]
	if err := json.Unmarshal(d.msg.Data(), &ev); err != nil {
		return permanent(CauseMalformed, "card expiry notice is not a JSON event: %w", err)
	}
	n := ev.Data
	if n.Terminal == "" {
		n.Terminal = d.terminal
	}
	if ev.ID == "" || n.IDUser <= 0 || n.MonthsToExpire < 0 {
		return permanent(CauseMalformed, "card expiry notice lacks an id, a positive id_user or months_to_expire")
	}
	log := r.log.With("notice_id", ev.ID, "terminal", n.Terminal, "id_user", n.IDUser, "months_to_expire", n.MonthsToExpire)

	kctx, cancel := r.kvCtx(ctx)
	mark, done, err := r.store.noticeDone(kctx, ev.ID)
	cancel()
	if err != nil {
		return fmt.Errorf("processed mark: %w", err)
	}
	if done {
		r.m.outcome(OutcomeAlreadyProcessed)
		log.Info("card expiry notice already processed", "outcome", OutcomeAlreadyProcessed, "output_kind", mark.Kind, "output_id", mark.OutputID)
		return nil
	}
	bank, ok := r.banks[n.Terminal]
	if !ok {
		return permanent(CauseTerminalNotConfigured, "terminal %s has no BankStore credentials (PAYCOMET_TERMINALS)", n.Terminal)
	}
	kctx, cancel = r.kvCtx(ctx)
	entry, known, err := r.store.token(kctx, n.Terminal, n.IDUser)
	cancel()
	if err != nil {
		return fmt.Errorf("token registry: %w", err)
	}

	o := output{terminal: n.Terminal, idUser: n.IDUser}
	switch {
	case !known:
		o.kind, o.data = KindTokenUnknown, TokenUnknown{IDUser: n.IDUser, MonthsToExpire: n.MonthsToExpire, Terminal: n.Terminal}
	default:
		info, err := r.infoUser(ctx, bank, entry)
		switch {
		case err == nil:
			o.kind, o.data = KindRefreshRequired, RefreshRequired{IDUser: n.IDUser, MonthsToExpire: n.MonthsToExpire,
				Expiry: info.Expiry.String(), MaskedPAN: info.MaskedPAN, CardBrand: info.CardBrand, CardHash: info.CardHash}
			if info.Expiry.IsZero() || info.MaskedPAN == "" {
				// The schema requires both; an answer without them is
				// not one we can act on, and a later one may be.
				return fmt.Errorf("info_user: answer without DS_EXPIRYDATE or DS_MERCHANT_PAN: %w", bankstore.ErrMalformedResponse)
			}
			r.checkExpiry(log, n.MonthsToExpire, info.Expiry)
		case isUserNotFound(err):
			o.kind, o.data = KindTokenInvalid, TokenInvalid{IDUser: n.IDUser, MonthsToExpire: n.MonthsToExpire, Terminal: n.Terminal,
				ErrorCode: bankstore.CodeUserNotFound, ErrorDescription: bankstore.ErrorMeaning(bankstore.CodeUserNotFound)}
		default:
			return bankstoreFailure(err)
		}
	}

	id := noticeOutputID(ev.ID)
	ack, err := r.publish(ctx, o, id)
	if err != nil {
		return err
	}
	kctx, cancel = r.kvCtx(ctx)
	err = r.store.markNotice(kctx, ev.ID, noticeMark{Kind: o.kind, OutputID: id, At: r.now()})
	cancel()
	if err != nil {
		// The output is durable; the redelivery republishes it under the
		// same id, which JetStream drops as a duplicate.
		return fmt.Errorf("processed mark: %w", err)
	}
	r.m.notice(n.Terminal, n.MonthsToExpire)
	r.m.outcome(o.kind)
	log.Info("card expiry notice handled", "outcome", o.kind, "output_id", id, "duplicate_publish", ack.Duplicate)
	return nil
}

// checkExpiry warns when info_user says the card expires later than the
// notice announces. The notice is unsigned (contract section 5), so this is
// the refresher's check of its content; the event is still published, with
// the expiry from info_user, so the merchant decides.
func (r *Refresher) checkExpiry(log *slog.Logger, months int, exp bankstore.YearMonth) {
	now := r.now().UTC()
	left := (exp.Year-now.Year())*12 + int(exp.Month) - int(now.Month())
	if left > months+1 {
		log.Warn("info_user's expiry is later than the notice says", "expiry", exp.String(), "months_left", left)
	}
}

func (r *Refresher) infoUser(ctx context.Context, bank BankStore, e tokenEntry) (*bankstore.InfoUserResponse, error) {
	cctx, cancel := context.WithTimeout(ctx, r.cfg.CallTimeout)
	defer cancel()
	cctx, span := r.bankSpan(cctx, opInfoUser, e.Terminal)
	start := time.Now()
	info, err := bank.InfoUser(cctx, bankstore.UserRequest{IDUser: e.IDUser, TokenUser: e.TokenUser})
	r.m.bankCall(opInfoUser, time.Since(start), err)
	failed(span, err)
	span.End()
	return info, err
}

// confirm asks info_user whether BankStore knows e's pair. It returns
// refused = "" and err = nil when it does; a refusal reason (a Refused*
// constant) when the pair must not be learnt; err alone when the call
// failed and the message must be retried. A business error other than 1001
// says more about our configuration (a wrong terminal password answers
// 1003) than about the pair: it is counted as a refusal and also returned
// as a permanent error, so the message is dead-lettered and can be
// republished once the configuration is fixed.
func (r *Refresher) confirm(ctx context.Context, e tokenEntry) (refused string, err error) {
	bank, ok := r.banks[e.Terminal]
	if !ok {
		return RefusedTerminalNotConfigured, nil
	}
	_, err = r.infoUser(ctx, bank, e)
	var (
		be *bankstore.Error
		ie *bankstore.InputError
	)
	switch {
	case err == nil:
		return "", nil
	case isUserNotFound(err):
		return RefusedUserNotFound, nil
	case errors.As(err, &ie):
		// The client will not send it (DS_TOKEN_USER too long, ...), so
		// BankStore cannot know it either.
		return RefusedInvalidToken, nil
	case errors.As(err, &be):
		return RefusedBankstoreError, bankstoreFailure(err)
	}
	return "", err
}

func (r *Refresher) removeUser(ctx context.Context, bank BankStore, e tokenEntry) error {
	cctx, cancel := context.WithTimeout(ctx, r.cfg.CallTimeout)
	defer cancel()
	cctx, span := r.bankSpan(cctx, opRemoveUser, e.Terminal)
	start := time.Now()
	resp, err := bank.RemoveUser(cctx, bankstore.UserRequest{IDUser: e.IDUser, TokenUser: e.TokenUser})
	r.m.bankCall(opRemoveUser, time.Since(start), err)
	failed(span, err)
	span.End()
	if err == nil && !resp.Response {
		// No error code and no confirmation: treat it as not done.
		return fmt.Errorf("remove_user answered DS_RESPONSE 0 without an error: %w", bankstore.ErrMalformedResponse)
	}
	return err
}

// registrationData is what the refresher reads of an OK event: the fields
// of card registrations and payments that name a card token and an order.
type registrationData struct {
	Terminal  string `json:"terminal"`
	Order     string `json:"order"`
	IDUser    *int64 `json:"id_user"`
	TokenUser string `json:"token_user"`
}

// handleRegistration learns the token of an OK event that carries IdUser
// and TokenUser, and completes the renewal its order may be. A card
// registration (107) is also remembered by order, for a renewal_started that
// arrives after it. A payment is not (there are many, and renewals are
// normally announced before the customer pays), but a payment with a token
// whose order was announced as a renewal completes it: that is how the
// official plugins renew cards that must serve recurring charges
// (a secure authorisation instead of a bare 107).
//
// IdUser and TokenUser are not covered by PAYCOMET's signature, so anyone
// who saw a notification could replay it with other values. A new or changed
// pair is therefore learnt only once BankStore info_user has confirmed it
// (contract section 9); a pair it refuses is counted, dropped and used for
// nothing else (no registration by order, no renewal), so it never replaces
// a confirmed pair nor removes a user. An unchanged pair costs no call.
func (r *Refresher) handleRegistration(ctx context.Context, d delivery) error {
	var ev inEvent[registrationData]
	if err := json.Unmarshal(d.msg.Data(), &ev); err != nil {
		return permanent(CauseMalformed, "%s event is not JSON: %w", d.operation, err)
	}
	data := ev.Data
	if data.IDUser == nil || *data.IDUser <= 0 || data.TokenUser == "" {
		return nil // nothing to learn
	}
	if data.Terminal == "" {
		data.Terminal = d.terminal
	}
	source := SourcePayment
	if d.operation == "card_registration" {
		source = SourceCardRegistration
	}
	entry := tokenEntry{Terminal: data.Terminal, IDUser: *data.IDUser, TokenUser: data.TokenUser, LearntAt: r.now(),
		LearntFrom: learntFrom{EventID: ev.ID, Type: ev.Type, Subject: d.msg.Subject(), StreamSequence: d.seq}}
	kctx, cancel := r.kvCtx(ctx)
	have, known, err := r.store.token(kctx, entry.Terminal, entry.IDUser)
	cancel()
	if err != nil {
		return fmt.Errorf("token registry: %w", err)
	}
	if !known || have.TokenUser != entry.TokenUser {
		refused, err := r.confirm(ctx, entry)
		if refused != "" {
			r.m.refused(refused)
			r.log.Warn("card token refused; not learnt", "terminal", entry.Terminal, "id_user", entry.IDUser,
				"reason", refused, "replaces_known_token", known, "source", source, "event_id", ev.ID, "err", err)
		}
		if err != nil {
			return err // transient: retried; or permanent: dead-lettered
		}
		if refused != "" {
			return nil
		}
		entry.ConfirmedAt = r.now()
		kctx, cancel := r.kvCtx(ctx)
		err = r.store.put(kctx, entry)
		cancel()
		if err != nil {
			return fmt.Errorf("token registry: %w", err)
		}
		r.m.learnt(source)
		r.log.Info("card token learnt", "terminal", entry.Terminal, "id_user", entry.IDUser, "source", source,
			"event_id", ev.ID, "replaced_known_token", known)
	}
	if data.Order == "" {
		return nil
	}
	if source == SourceCardRegistration {
		kctx, cancel := r.kvCtx(ctx)
		err := r.store.putRegistration(kctx, data.Order, entry)
		cancel()
		if err != nil {
			return fmt.Errorf("registration by order: %w", err)
		}
	}
	kctx, cancel = r.kvCtx(ctx)
	ren, pending, err := r.store.renewal(kctx, data.Terminal, data.Order)
	cancel()
	if err != nil {
		return fmt.Errorf("pending renewal: %w", err)
	}
	if !pending {
		return nil
	}
	return r.completeRenewal(ctx, data.Terminal, data.Order, ren.OldIDUser, entry)
}

// handleRenewal records a renewal_started message and, when its order's
// registration has already arrived, completes it.
func (r *Refresher) handleRenewal(ctx context.Context, d delivery) error {
	if err := schemas.Validate(Schema(KindRenewalStarted), d.msg.Data()); err != nil {
		return permanent(CauseMalformed, "renewal_started: %w", err)
	}
	var rs RenewalStarted
	if err := json.Unmarshal(d.msg.Data(), &rs); err != nil {
		return permanent(CauseMalformed, "renewal_started: %w", err)
	}
	if _, ok := r.banks[d.terminal]; !ok {
		return permanent(CauseTerminalNotConfigured, "terminal %s has no BankStore credentials (PAYCOMET_TERMINALS)", d.terminal)
	}
	log := r.log.With("terminal", d.terminal, "order", rs.Order, "old_id_user", rs.OldIDUser)
	kctx, cancel := r.kvCtx(ctx)
	have, err := r.store.startRenewal(kctx, d.terminal, rs)
	cancel()
	if err != nil {
		return fmt.Errorf("record renewal: %w", err)
	}
	if have.OldIDUser != rs.OldIDUser {
		return permanent(CauseRenewalConflict, "order %q is already the renewal of id_user %d, not %d", rs.Order, have.OldIDUser, rs.OldIDUser)
	}
	kctx, cancel = r.kvCtx(ctx)
	reg, registered, err := r.store.registration(kctx, d.terminal, rs.Order)
	cancel()
	if err != nil {
		return fmt.Errorf("registration by order: %w", err)
	}
	if !registered {
		r.m.outcome(OutcomeRenewalPending)
		log.Info("renewal recorded; waiting for its card registration", "outcome", OutcomeRenewalPending)
		return nil
	}
	return r.completeRenewal(ctx, d.terminal, rs.Order, rs.OldIDUser, reg)
}

// completeRenewal replaces oldID by the newly registered user: it runs only
// once the new registration is known (the caller holds its 107 OK, or the
// record of it), so the old user is never removed first. Each step is
// idempotent and the done mark is written last but one, so a retry after
// any failure finishes the job without a second event:
//
//	done mark present      -> forget the old token (if still there), stop
//	same user              -> nothing to remove
//	registry: new user     -> ensure it is there
//	remove_user(old)       -> 1001 counts as removed
//	publish token_replaced -> id from terminal, order and both users
//	done mark, forget old token
func (r *Refresher) completeRenewal(ctx context.Context, terminal, order string, oldID int64, newEntry tokenEntry) error {
	log := r.log.With("terminal", terminal, "order", order, "old_id_user", oldID, "new_id_user", newEntry.IDUser)
	kctx, cancel := r.kvCtx(ctx)
	done, err := r.store.replaced(kctx, terminal, order)
	cancel()
	if err != nil {
		return fmt.Errorf("replacement mark: %w", err)
	}
	if done {
		if oldID == newEntry.IDUser {
			return nil
		}
		kctx, cancel := r.kvCtx(ctx)
		defer cancel()
		if err := r.store.forget(kctx, terminal, oldID); err != nil {
			return fmt.Errorf("forget old token: %w", err)
		}
		return nil
	}
	if oldID == newEntry.IDUser {
		log.Warn("renewal registered the same id_user it renews; nothing to remove")
		kctx, cancel := r.kvCtx(ctx)
		defer cancel()
		return r.store.markReplaced(kctx, terminal, order, TokenReplaced{OldIDUser: oldID, NewIDUser: newEntry.IDUser})
	}
	bank, ok := r.banks[terminal]
	if !ok {
		return permanent(CauseTerminalNotConfigured, "terminal %s has no BankStore credentials (PAYCOMET_TERMINALS)", terminal)
	}
	kctx, cancel = r.kvCtx(ctx)
	_, err = r.store.learn(kctx, newEntry)
	cancel()
	if err != nil {
		return fmt.Errorf("token registry: %w", err)
	}
	kctx, cancel = r.kvCtx(ctx)
	oldEntry, known, err := r.store.token(kctx, terminal, oldID)
	cancel()
	if err != nil {
		return fmt.Errorf("token registry: %w", err)
	}
	if !known {
		return permanent(CauseOldTokenUnknown, "no token is registered for old id_user %d, so remove_user cannot be called; remove it by hand, then republish this message", oldID)
	}
	if err := r.removeUser(ctx, bank, oldEntry); err != nil && !isUserNotFound(err) {
		return bankstoreFailure(err)
	} else if err != nil {
		log.Info("old user was already gone (1001)")
	}
	t := TokenReplaced{OldIDUser: oldID, NewIDUser: newEntry.IDUser}
	id := replacedID(terminal, order, oldID, newEntry.IDUser)
	ack, err := r.publish(ctx, output{kind: KindTokenReplaced, terminal: terminal, idUser: oldID, data: t}, id)
	if err != nil {
		return err
	}
	// The mark first: a retry that finds it only forgets the old token,
	// while one that found the old token forgotten but no mark could not
	// tell a finished renewal from an unknown old user.
	kctx, cancel = r.kvCtx(ctx)
	err = r.store.markReplaced(kctx, terminal, order, t)
	cancel()
	if err != nil {
		return fmt.Errorf("replacement mark: %w", err)
	}
	kctx, cancel = r.kvCtx(ctx)
	err = r.store.forget(kctx, terminal, oldID)
	cancel()
	if err != nil {
		return fmt.Errorf("forget old token: %w", err)
	}
	r.m.outcome(OutcomeTokenReplaced)
	log.Info("card token replaced", "outcome", KindTokenReplaced, "output_id", id, "duplicate_publish", ack.Duplicate)
	return nil
}
