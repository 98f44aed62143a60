package refresher_test

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/paycomet-notify/paycomet-notify/bankstore"
	"github.com/paycomet-notify/paycomet-notify/bankstore/bankstoretest"
	"github.com/paycomet-notify/paycomet-notify/demo"
	"github.com/paycomet-notify/paycomet-notify/events"
	"github.com/paycomet-notify/paycomet-notify/refresher"
)

// IdUser and TokenUser are not covered by PAYCOMET's signature. Issue 8's
// end-to-end case: a confirmed pair, then a payment event for the same
// IdUser with another TokenUser (a replay with the token edited, which the
// receiver now stops when it copies an earlier notification, but which
// reaches the stream when its signed fields are new; the fake does not know
// that pair). The refresher refuses it: the registry keeps the
// confirmed pair, the refusal is counted, and the next genuine 108 gives
// card.refresh_required, not card.token_invalid. Before confirmation the
// edited pair replaced the good one and the 108 gave token_invalid.
func TestRefresherRefusesPairBankStoreDoesNotKnow(t *testing.T) {
	r := newRig(t)
	r.card(70020, "GOODtoken20", visa, "1226")
	r.register("REG70020", 70020, "GOODtoken20")
	r.notify(events.TypeAuthorization, func(o *demo.SampleOptions) {
		o.Order, o.IdUser, o.TokenUser = "PAYreplayed20", 70020, "FORGEDtoken20"
	})
	r.settle()

	if got := r.metric(refresher.MetricTokensRefused, "reason", refresher.RefusedUserNotFound); got != 1 {
		t.Errorf("tokens refused{user_not_found} = %v, want 1", got)
	}
	if got := r.metric(refresher.MetricTokensLearnt); got != 1 {
		t.Errorf("tokens learnt = %v, want 1 (the 107 only)", got)
	}
	calls := r.calls(bankstore.OpInfoUser)
	if len(calls) != 2 || calls[0].ErrorID != 0 || calls[1].ErrorID != bankstore.CodeUserNotFound {
		t.Fatalf("info_user calls = %+v, want the 107's confirmed, then the edited pair answered 1001", calls)
	}
	if got := r.metric(refresher.MetricDeadLetters); got != 0 {
		t.Errorf("dead letters = %v, want 0: a refused pair is dropped", got)
	}
	if got := r.metric(refresher.MetricRetries); got != 0 {
		t.Errorf("retries = %v, want 0: a refusal is an answer", got)
	}
	if lines := logLines(r, "card token refused; not learnt"); len(lines) != 1 || lines[0]["reason"] != "user_not_found" ||
		lines[0]["replaces_known_token"] != true {
		t.Errorf("refusal log lines = %v, want one user_not_found line\n%s", lines, r.logs)
	}

	r.expiry(70020, 1)
	m := r.waitOutputs(1)[0]
	if !strings.HasSuffix(m.Subject, ".card.refresh_required") {
		t.Fatalf("genuine 108 gave %s %s, want refresh_required", m.Subject, m.Event.Data)
	}
	want := refresher.RefreshRequired{IDUser: 70020, MonthsToExpire: 1, Expiry: "2026/12", MaskedPAN: visaMask, CardBrand: "VISA", CardHash: cardHash(visa)}
	if d := cmp.Diff(want, data[refresher.RefreshRequired](t, m)); d != "" {
		t.Errorf("refresh_required data (-want +got):\n%s", d)
	}
	if got := r.metric(refresher.MetricOutcomes, "kind", "token_invalid"); got != 0 {
		t.Errorf("token_invalid outcomes = %v, want 0", got)
	}
}

// A genuinely changed pair (PAYCOMET now holds another token for the user)
// is learnt once info_user confirms it; a pair already in the registry
// costs no call however often it arrives.
func TestRefresherLearnsConfirmedChangedPair(t *testing.T) {
	r := newRig(t)
	r.card(70021, "FIRSTtoken21", visa, "1226")
	r.register("REG70021", 70021, "FIRSTtoken21")
	for _, order := range []string{"PAY21a", "PAY21b"} {
		r.notify(events.TypeAuthorization, func(o *demo.SampleOptions) { o.Order, o.IdUser, o.TokenUser = order, 70021, "FIRSTtoken21" })
	}
	r.settle()
	if calls := r.calls(bankstore.OpInfoUser); len(calls) != 1 {
		t.Fatalf("info_user calls = %+v, want 1: the unchanged pair of the two payments is not asked again", calls)
	}

	r.card(70021, "SECONDtoken21", mc, "0128") // the same user, a new card and token at PAYCOMET
	r.notify(events.TypeAuthorization, func(o *demo.SampleOptions) { o.Order, o.IdUser, o.TokenUser = "PAY21c", 70021, "SECONDtoken21" })
	r.expiry(70021, 2)
	m := r.waitOutputs(1)[0]
	want := refresher.RefreshRequired{IDUser: 70021, MonthsToExpire: 2, Expiry: "2028/01", MaskedPAN: mcMask, CardBrand: "MASTERCARD", CardHash: cardHash(mc)}
	if d := cmp.Diff(want, data[refresher.RefreshRequired](t, m)); d != "" {
		t.Errorf("refresh_required data (-want +got):\n%s (want the second card)", d)
	}
	r.settle()
	if calls := r.calls(bankstore.OpInfoUser); len(calls) != 3 {
		t.Errorf("info_user calls = %d, want 3 (first pair, changed pair, notice)", len(calls))
	}
	if got, want := r.metric(refresher.MetricTokensLearnt), 2.0; got != want {
		t.Errorf("tokens learnt = %v, want %v", got, want)
	}
	if got := r.metric(refresher.MetricTokensRefused); got != 0 {
		t.Errorf("tokens refused = %v, want 0", got)
	}
}

// A confirmation that fails in transit (BankStore down) is retried like
// any other BankStore failure, never dropped: the pair is learnt once
// BankStore answers.
func TestRefresherRetriesConfirmation(t *testing.T) {
	r := newRig(t)
	r.card(70022, "TOKconfirm22", visa, "1226")
	r.bank.FailNext(2, bankstoretest.FailHTTP500)
	r.register("REG70022", 70022, "TOKconfirm22")
	r.settle()
	calls := r.calls(bankstore.OpInfoUser)
	if len(calls) != 3 || calls[0].Failed != bankstoretest.FailHTTP500 || calls[1].Failed != bankstoretest.FailHTTP500 || calls[2].ErrorID != 0 {
		t.Fatalf("info_user calls = %+v, want two failed, then one answered", calls)
	}
	if got := r.metric(refresher.MetricRetries, "message", "registration"); got != 2 {
		t.Errorf("retries of the registration = %v, want 2", got)
	}
	if got := r.metric(refresher.MetricTokensLearnt, "source", refresher.SourceCardRegistration); got != 1 {
		t.Errorf("tokens learnt = %v, want 1", got)
	}
	if got := r.metric(refresher.MetricTokensRefused); got != 0 {
		t.Errorf("tokens refused = %v, want 0", got)
	}
	r.expiry(70022, 1)
	if m := r.waitOutputs(1)[0]; !strings.HasSuffix(m.Subject, ".card.refresh_required") {
		t.Errorf("notice gave %s, want refresh_required", m.Subject)
	}
}

// A registration whose pair BankStore refuses does not complete the renewal
// announced for its order: nothing is removed until the genuine 107 comes.
// (Without confirmation a replayed 107 with an edited IdUser would have
// removed the old card.)
func TestRefresherRefusedPairDoesNotCompleteRenewal(t *testing.T) {
	r := newRig(t)
	r.card(70023, "OLDtoken23", visa, "1226")
	r.register("REGold23", 70023, "OLDtoken23")
	r.renewal(`{"old_id_user": 70023, "order": "RENEW23"}`)
	// Another DateTime, so the receiver's dedupe (which ignores IdUser and
	// TokenUser, unsigned on a 107) lets both copies through to the refresher.
	r.notify(events.TypeCardRegistration, func(o *demo.SampleOptions) {
		o.Order, o.IdUser, o.TokenUser, o.When = "RENEW23", 70099, "FORGEDtoken99", time.Now().Add(-time.Minute)
	})
	r.settle()
	if removes := r.calls(bankstore.OpRemoveUser); len(removes) != 0 {
		t.Fatalf("remove_user calls = %+v after a refused registration, want none", removes)
	}
	if out := r.outputs(); len(out) != 0 {
		t.Fatalf("outputs = %s, want none", subjects(out))
	}
	if !r.bank.HasUser(70023) {
		t.Fatal("the old user was removed")
	}

	r.card(70024, "NEWtoken24", mc, "1130")
	r.register("RENEW23", 70024, "NEWtoken24")
	m := r.waitOutputs(1)[0]
	if d := cmp.Diff(refresher.TokenReplaced{OldIDUser: 70023, NewIDUser: 70024}, data[refresher.TokenReplaced](t, m)); d != "" {
		t.Errorf("token_replaced data (-want +got):\n%s", d)
	}
}
