package refresher_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/paycomet-notify/paycomet-notify/bankstore"
	"github.com/paycomet-notify/paycomet-notify/bankstore/bankstoretest"
	"github.com/paycomet-notify/paycomet-notify/demo"
	"github.com/paycomet-notify/paycomet-notify/events"
	"github.com/paycomet-notify/paycomet-notify/internal/testenv"
	"github.com/paycomet-notify/paycomet-notify/refresher"
)

const (
	visa     = "4548812049400004"
	visaMask = "XXXXXXXXXXXX0004"
	mc       = "5555444433331111"
	mcMask   = "XXXXXXXXXXXX1111"
)

func cardHash(pan string) string {
	h := sha256.Sum256([]byte(pan))
	return hex.EncodeToString(h[:])
}

// logLines returns the refresher's log lines with the given message.
func logLines(r *rig, msg string) []map[string]any {
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(r.logs.String()), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

func TestRefresherRefreshRequired(t *testing.T) {
	r := newRig(t)
	r.card(70001, "TOKENabc123XYZ", visa, "1226")
	r.register("REG70001", 70001, "TOKENabc123XYZ")
	r.expiry(70001, 1)

	out := r.waitOutputs(1)
	m := out[0]
	if want := prefix + "." + terminal + ".card.refresh_required"; m.Subject != want {
		t.Errorf("subject = %q, want %q", m.Subject, want)
	}
	if m.Event.Type != "paycomet.card.refresh_required" || m.Event.Source != "/paycomet/terminals/"+terminal ||
		m.Event.Subject != "70001" || m.Event.DataSchema != "schemas/card_refresh_required.v1.json" {
		t.Errorf("event attributes: %s", m.Data)
	}
	got := data[refresher.RefreshRequired](t, m)
	want := refresher.RefreshRequired{IDUser: 70001, MonthsToExpire: 1, Expiry: "2026/12", MaskedPAN: visaMask, CardBrand: "VISA", CardHash: cardHash(visa)}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("refresh_required data (-want +got):\n%s", d)
	}
	// One to confirm the 107's pair before learning it, one for the notice.
	if calls := r.calls(bankstore.OpInfoUser); len(calls) != 2 || calls[0].IDUser != 70001 || calls[0].ErrorID != 0 ||
		calls[1].IDUser != 70001 || calls[1].ErrorID != 0 {
		t.Errorf("info_user calls = %+v, want two for 70001 (confirmation, notice)", calls)
	}

	r.settle()
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{refresher.MetricExpiryNotices, []string{"terminal", terminal, "months_to_expire", "1"}, 1},
		{refresher.MetricOutcomes, []string{"kind", "refresh_required"}, 1},
		{refresher.MetricTokensLearnt, []string{"source", "card_registration"}, 1},
		{refresher.MetricBankstoreSeconds, []string{"operation", "info_user"}, 2},
		{refresher.MetricTokensRefused, nil, 0},
		{refresher.MetricBankstoreErrors, nil, 0},
		{refresher.MetricDeadLetters, nil, 0},
	} {
		if got := r.metric(c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	lines := logLines(r, "card expiry notice handled")
	if len(lines) != 1 || lines[0]["outcome"] != "refresh_required" || lines[0]["id_user"] != float64(70001) {
		t.Errorf("outcome log lines = %v, want one refresh_required line for 70001\n%s", lines, r.logs)
	}
	// The token is in the registry entry (checkLogs at cleanup proves it
	// never reached the log) and in the 107's event, never in the output.
	if strings.Contains(string(m.Data), "TOKENabc123XYZ") {
		t.Errorf("refresh_required carries the token: %s", m.Data)
	}
}

// A token learnt from a payment (authorization with IdUser/TokenUser) is
// used like one from a card registration.
func TestRefresherLearnsFromPayments(t *testing.T) {
	r := newRig(t)
	r.card(70011, "PAYtok11", mc, "0127")
	r.notify(events.TypeAuthorization, func(o *demo.SampleOptions) { o.Order, o.IdUser, o.TokenUser = "PAY1", 70011, "PAYtok11" })
	r.expiry(70011, 2)
	got := data[refresher.RefreshRequired](t, r.waitOutputs(1)[0])
	want := refresher.RefreshRequired{IDUser: 70011, MonthsToExpire: 2, Expiry: "2027/01", MaskedPAN: mcMask, CardBrand: "MASTERCARD", CardHash: cardHash(mc)}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("refresh_required data (-want +got):\n%s", d)
	}
	if got := r.metric(refresher.MetricTokensLearnt, "source", "payment"); got != 1 {
		t.Errorf("tokens learnt from payments = %v, want 1", got)
	}
}

func TestRefresherTokenUnknown(t *testing.T) {
	r := newRig(t)
	r.expiry(80001, 1)
	m := r.waitOutputs(1)[0]
	if want := prefix + "." + terminal + ".card.token_unknown"; m.Subject != want {
		t.Fatalf("subject = %q, want %q", m.Subject, want)
	}
	want := refresher.TokenUnknown{IDUser: 80001, MonthsToExpire: 1, Terminal: terminal}
	if d := cmp.Diff(want, data[refresher.TokenUnknown](t, m)); d != "" {
		t.Errorf("token_unknown data (-want +got):\n%s", d)
	}
	if calls := r.bank.Calls(); len(calls) != 0 {
		t.Errorf("BankStore was called for an unknown token: %+v", calls)
	}
}

func TestRefresherTokenInvalid(t *testing.T) {
	r := newRig(t)
	r.card(70002, "TOKdeleted2", visa, "1226")
	r.register("REG70002", 70002, "TOKdeleted2")
	r.settle()
	r.bank.DeleteUser(70002) // removed at PAYCOMET since
	r.expiry(70002, 1)
	m := r.waitOutputs(1)[0]
	if want := prefix + "." + terminal + ".card.token_invalid"; m.Subject != want {
		t.Fatalf("subject = %q, want %q", m.Subject, want)
	}
	want := refresher.TokenInvalid{IDUser: 70002, MonthsToExpire: 1, Terminal: terminal, ErrorCode: 1001, ErrorDescription: bankstore.ErrorMeaning(1001)}
	if d := cmp.Diff(want, data[refresher.TokenInvalid](t, m)); d != "" {
		t.Errorf("token_invalid data (-want +got):\n%s", d)
	}
	r.settle()
	if got := r.metric(refresher.MetricDeadLetters); got != 0 {
		t.Errorf("dead letters = %v, want 0: 1001 is an outcome", got)
	}
	if got := r.metric(refresher.MetricRetries); got != 0 {
		t.Errorf("retries = %v, want 0: 1001 is an outcome", got)
	}
}

func TestRefresherRenewal(t *testing.T) {
	const oldID, newID = 70003, 70004
	for _, registrationFirst := range []bool{false, true} {
		t.Run(fmt.Sprintf("registration_first=%v", registrationFirst), func(t *testing.T) {
			r := newRig(t)
			r.card(oldID, "OLDtoken3", visa, "1226")
			r.register("REGold", oldID, "OLDtoken3")
			// The customer enters a new card at PAYCOMET; its 107 for
			// order RENEW1 is what confirms it.
			r.card(newID, "NEWtoken4", mc, "1130")
			renewal := fmt.Sprintf(`{"old_id_user": %d, "order": "RENEW1"}`, oldID)

			var confirmed time.Time
			if registrationFirst {
				confirmed = time.Now()
				r.register("RENEW1", newID, "NEWtoken4")
				r.settle()
				if calls := r.calls(bankstore.OpRemoveUser); len(calls) != 0 {
					t.Fatalf("remove_user called before the renewal was announced: %+v", calls)
				}
				r.renewal(renewal)
			} else {
				r.renewal(renewal)
				r.settle()
				if calls := r.calls(bankstore.OpRemoveUser); len(calls) != 0 {
					t.Fatalf("remove_user called before the new card was registered: %+v", calls)
				}
				if got := r.metric(refresher.MetricOutcomes, "kind", "renewal_pending"); got != 1 {
					t.Errorf("renewal_pending = %v, want 1", got)
				}
				confirmed = time.Now()
				r.register("RENEW1", newID, "NEWtoken4")
			}

			m := r.waitOutputs(1)[0]
			if want := prefix + "." + terminal + ".card.token_replaced"; m.Subject != want {
				t.Fatalf("subject = %q, want %q", m.Subject, want)
			}
			if d := cmp.Diff(refresher.TokenReplaced{OldIDUser: oldID, NewIDUser: newID}, data[refresher.TokenReplaced](t, m)); d != "" {
				t.Errorf("token_replaced data (-want +got):\n%s", d)
			}
			removes := r.calls(bankstore.OpRemoveUser)
			if len(removes) != 1 || removes[0].IDUser != oldID || removes[0].ErrorID != 0 {
				t.Fatalf("remove_user calls = %+v, want one for %d", removes, oldID)
			}
			if removes[0].At.Before(confirmed) {
				t.Errorf("remove_user at %v, before the new registration was posted at %v", removes[0].At, confirmed)
			}
			if r.bank.HasUser(oldID) || !r.bank.HasUser(newID) {
				t.Errorf("fake users: old %v new %v, want the old one gone and the new one kept", r.bank.HasUser(oldID), r.bank.HasUser(newID))
			}

			// Announcing the same renewal again changes nothing.
			r.renewal(renewal)
			r.settle()
			if out := r.outputs(); len(out) != 1 {
				t.Errorf("outputs after a repeated renewal_started: %s, want only token_replaced", subjects(out))
			}
			if removes := r.calls(bankstore.OpRemoveUser); len(removes) != 1 {
				t.Errorf("remove_user calls after a repeated renewal_started = %d, want 1", len(removes))
			}

			// The registry moved: the old user is forgotten, the new one known.
			r.expiry(oldID, 1)
			r.expiry(newID, 1)
			out := r.waitOutputs(3)
			if out[1].Subject != prefix+"."+terminal+".card.token_unknown" || data[refresher.TokenUnknown](t, out[1]).IDUser != oldID {
				t.Errorf("notice for the old user gave %s %s, want token_unknown", out[1].Subject, out[1].Event.Data)
			}
			if got := data[refresher.RefreshRequired](t, out[2]); got.IDUser != newID || got.Expiry != "2030/11" || got.MaskedPAN != mcMask {
				t.Errorf("notice for the new user gave %s %s, want refresh_required for the new card", out[2].Subject, out[2].Event.Data)
			}
		})
	}
}

// A renewal whose old user has no registered token cannot be completed by
// remove_user: it goes to the dead-letter subject, nothing is removed.
func TestRefresherRenewalUnknownOldUser(t *testing.T) {
	r := newRig(t)
	r.card(70006, "NEWtoken6", visa, "1130")
	r.renewal(`{"old_id_user": 99999, "order": "RENEW9"}`)
	r.register("RENEW9", 70006, "NEWtoken6")
	dl := data[refresher.DeadLetter](t, r.waitOutputs(1)[0])
	if dl.Cause != refresher.CauseOldTokenUnknown || !strings.HasSuffix(dl.OriginalSubject, ".card_registration.ok") || dl.Deliveries != 1 {
		t.Errorf("dead letter = %+v, want old_token_unknown for the registration, first delivery", dl)
	}
	if calls := r.calls(bankstore.OpRemoveUser); len(calls) != 0 {
		t.Errorf("remove_user calls = %+v, want none", calls)
	}
}

// With the fake failing, a notice is Nak'd with backoff and succeeds once
// the fake recovers; no attempt is acknowledged early.
func TestRefresherRetriesUntilBankStoreRecovers(t *testing.T) {
	for _, tc := range []struct {
		mode bankstoretest.FailMode
		kind string
	}{
		{bankstoretest.FailHTTP500, "http_5xx"},
		{bankstoretest.FailSOAPFault, "soap_fault"},
		{bankstoretest.FailDelay, "timeout"},
	} {
		t.Run(tc.mode.String(), func(t *testing.T) {
			r := newRig(t, withMaxDeliver(4), withCallTimeout(300*time.Millisecond))
			r.bank.SetDelay(2 * time.Second)
			r.card(70007, "TOKretry7", visa, "1226")
			r.register("REG70007", 70007, "TOKretry7")
			r.settle()
			r.bank.FailNext(2, tc.mode)
			r.expiry(70007, 1)
			m := r.waitOutputs(1)[0]
			if !strings.HasSuffix(m.Subject, ".card.refresh_required") {
				t.Fatalf("output on %s, want refresh_required", m.Subject)
			}
			r.settle()
			calls := r.calls(bankstore.OpInfoUser)[1:] // after the registration's confirmation
			if len(calls) != 3 || calls[0].Failed != tc.mode || calls[1].Failed != tc.mode || calls[2].Failed != 0 {
				t.Errorf("notice's info_user calls = %+v, want two failed (%v) then one answered", calls, tc.mode)
			}
			if got := r.metric(refresher.MetricRetries, "message", "notice"); got != 2 {
				t.Errorf("retries = %v, want 2", got)
			}
			if got := r.metric(refresher.MetricBankstoreErrors, "operation", "info_user", "kind", tc.kind); got != 2 {
				t.Errorf("bankstore errors{%s} = %v, want 2", tc.kind, got)
			}
			if got := r.metric(refresher.MetricDeadLetters); got != 0 {
				t.Errorf("dead letters = %v, want 0", got)
			}
		})
	}
}

// A notice that keeps failing ends on <prefix>.dlq after MaxDeliver
// deliveries, with the reason, the original subject and sequence and the
// original event, and nothing else is published for it.
func TestRefresherDeadLetterAfterDeliveryLimit(t *testing.T) {
	r := newRig(t, withMaxDeliver(3))
	r.card(70008, "TOKdlq8", visa, "1226")
	r.register("REG70008", 70008, "TOKdlq8")
	r.settle()
	r.bank.FailNext(100, bankstoretest.FailSOAPFault)
	r.expiry(70008, 1)

	out := r.waitOutputs(1)
	m := out[0]
	if m.Subject != prefix+".dlq" || m.Event.Type != "paycomet.card.dead_letter" {
		t.Fatalf("output %s %s, want a dead letter on %s.dlq", m.Subject, m.Event.Type, prefix)
	}
	notices := r.messages(func(s string) bool { return strings.HasSuffix(s, ".card_expiry.notice") })
	if len(notices) != 1 {
		t.Fatalf("notices in the stream: %d", len(notices))
	}
	dl := data[refresher.DeadLetter](t, m)
	if dl.Cause != refresher.CauseDeliveryLimit || dl.OriginalSubject != notices[0].Subject || dl.StreamSequence != notices[0].Seq ||
		dl.Deliveries != 3 || dl.Consumer != refresher.DefaultDurable || dl.OriginalMsgID != notices[0].MsgID ||
		!strings.Contains(dl.Reason, "SOAP fault") {
		t.Errorf("dead letter = %+v, want delivery_limit for seq %d on %s after 3 deliveries", dl, notices[0].Seq, notices[0].Subject)
	}
	if string(dl.Original) != string(notices[0].Data) {
		t.Errorf("dead letter original = %s, want the notice %s", dl.Original, notices[0].Data)
	}
	r.settle()
	if calls := r.calls(bankstore.OpInfoUser); len(calls) != 1+3 {
		t.Errorf("info_user calls = %d, want 4 (the registration's confirmation, then one per delivery)", len(calls))
	}
	if out := r.outputs(); len(out) != 1 {
		t.Errorf("outputs = %s, want only the dead letter", subjects(out))
	}
	if got := r.metric(refresher.MetricDeadLetters, "cause", refresher.CauseDeliveryLimit); got != 1 {
		t.Errorf("dead letters = %v, want 1", got)
	}
}

// A PAYCOMET business error other than 1001 is an outcome: no retry, a
// dead letter at once with the code and its meaning. A wrong terminal
// password makes the fake answer 1003 (invalid signature), here to the
// confirmation of the registration's pair, which is therefore not learnt
// (counted as refused) but kept in the dead letter for a republish once the
// password is fixed; the notice finds no token.
func TestRefresherBusinessErrorIsNotRetried(t *testing.T) {
	r := newRig(t, withRefresherPassword("not-the-terminal-password"))
	r.card(70009, "TOKbiz9", visa, "1226")
	r.register("REG70009", 70009, "TOKbiz9")
	r.settle()
	r.expiry(70009, 1)
	out := r.waitOutputs(2)
	dl := data[refresher.DeadLetter](t, out[0])
	if dl.Cause != refresher.CauseBankstoreError || dl.ErrorCode != bankstore.CodeInvalidSignature || dl.Deliveries != 1 ||
		dl.ErrorDescription != bankstore.ErrorMeaning(bankstore.CodeInvalidSignature) || !strings.HasSuffix(dl.OriginalSubject, ".card_registration.ok") {
		t.Errorf("dead letter = %+v, want bankstore_error 1003 for the registration on the first delivery", dl)
	}
	if !strings.HasSuffix(out[1].Subject, ".card.token_unknown") {
		t.Errorf("notice gave %s, want token_unknown (the unconfirmed pair was not learnt)", out[1].Subject)
	}
	r.settle()
	if calls := r.calls(bankstore.OpInfoUser); len(calls) != 1 {
		t.Errorf("info_user calls = %d, want 1", len(calls))
	}
	if got := r.metric(refresher.MetricRetries); got != 0 {
		t.Errorf("retries = %v, want 0", got)
	}
	if got := r.metric(refresher.MetricTokensRefused, "reason", refresher.RefusedBankstoreError); got != 1 {
		t.Errorf("tokens refused{bankstore_error} = %v, want 1", got)
	}
}

func TestRefresherMalformedAndUnroutable(t *testing.T) {
	for _, tc := range []struct {
		name, subject, body, cause string
		binary                     bool
	}{
		{"renewal without order", prefix + "." + terminal + ".card.renewal_started", `{"old_id_user": 5}`, refresher.CauseMalformed, false},
		{"renewal with a string id", prefix + "." + terminal + ".card.renewal_started", `{"old_id_user": "5", "order": "R"}`, refresher.CauseMalformed, false},
		{"renewal not JSON", prefix + "." + terminal + ".card.renewal_started", "\xff\x00renew", refresher.CauseMalformed, true},
		{"renewal for a terminal without credentials", prefix + "." + terminal2 + ".card.renewal_started", `{"old_id_user": 5, "order": "R"}`, refresher.CauseTerminalNotConfigured, false},
		{"notice not an event", prefix + "." + terminal + ".card_expiry.notice", `{"id": "x", "data": {"id_user": "7"}}`, refresher.CauseMalformed, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t)
			r.publishRaw(tc.subject, []byte(tc.body), "")
			dl := data[refresher.DeadLetter](t, r.waitOutputs(1)[0])
			if dl.Cause != tc.cause || dl.Deliveries != 1 || dl.OriginalSubject != tc.subject {
				t.Errorf("dead letter = %+v, want %s on the first delivery", dl, tc.cause)
			}
			if tc.binary && (string(dl.OriginalBase64) != tc.body || dl.Original != nil) {
				t.Errorf("dead letter keeps %q / %s, want the bytes in original_base64", dl.OriginalBase64, dl.Original)
			}
			var want bytes.Buffer
			if !tc.binary && (json.Compact(&want, []byte(tc.body)) != nil || string(dl.Original) != want.String()) {
				t.Errorf("dead letter original = %s, want %s", dl.Original, tc.body)
			}
		})
	}

	// A notice for a terminal without BankStore credentials.
	r := newRig(t)
	r.notify(events.TypeCardExpiry, func(o *demo.SampleOptions) { o.Terminal, o.Password, o.IdUser = terminal2, password2, 5 })
	if dl := data[refresher.DeadLetter](t, r.waitOutputs(1)[0]); dl.Cause != refresher.CauseTerminalNotConfigured {
		t.Errorf("dead letter = %+v, want terminal_not_configured", dl)
	}
}

// A redelivered notice never produces a second output event: here the
// notice is published again with a different Nats-Msg-Id (so JetStream's
// duplicate window does not catch it, as after the window or in a replay),
// and the durable processed mark stops it before BankStore is asked again.
func TestRefresherRedeliveredNoticeIsNotRepeated(t *testing.T) {
	r := newRig(t)
	r.card(70010, "TOKonce10", visa, "1226")
	r.register("REG70010", 70010, "TOKonce10")
	r.expiry(70010, 1)
	first := r.waitOutputs(1)[0]
	r.settle()

	notice := r.messages(func(s string) bool { return strings.HasSuffix(s, ".card_expiry.notice") })[0]
	for i := range 3 {
		r.publishRaw(notice.Subject, notice.Data, fmt.Sprintf("replay-%d", i))
	}
	r.settle()
	if n := len(r.messages(func(s string) bool { return strings.HasSuffix(s, ".card_expiry.notice") })); n != 4 {
		t.Fatalf("notices in the stream = %d, want 4 (the replays must reach the refresher)", n)
	}
	out := r.outputs()
	if len(out) != 1 || out[0].Event.ID != first.Event.ID {
		t.Errorf("outputs after replays = %s, want only the first", subjects(out))
	}
	if calls := r.calls(bankstore.OpInfoUser); len(calls) != 2 {
		t.Errorf("info_user calls = %d, want 2 (the registration's confirmation, the first notice)", len(calls))
	}
	if got := r.metric(refresher.MetricOutcomes, "kind", "already_processed"); got != 3 {
		t.Errorf("already_processed = %v, want 3", got)
	}
	if got := r.metric(refresher.MetricExpiryNotices); got != 1 {
		t.Errorf("expiry notices counted = %v, want 1", got)
	}
}

// Stopping the refresher lets the message in hand finish: Run returns only
// after its output is published and the notice acknowledged.
func TestRefresherShutdownFinishesInFlight(t *testing.T) {
	r := newRig(t, withCallTimeout(5*time.Second))
	r.card(70012, "TOKstop12", visa, "1226")
	r.register("REG70012", 70012, "TOKstop12")
	r.settle()
	r.bank.SetDelay(time.Second)
	r.bank.FailNext(1, bankstoretest.FailDelay) // answered, but a second late
	r.expiry(70012, 1)
	testenv.Eventually(t, 10*time.Second, "the notice's info_user in flight", func() bool { return len(r.calls(bankstore.OpInfoUser)) > 1 })
	r.shutdown()
	if out := r.outputs(); len(out) != 1 || !strings.HasSuffix(out[0].Subject, ".card.refresh_required") {
		t.Fatalf("outputs right after shutdown = %s, want refresh_required", subjects(out))
	}
	if n := r.ackPending(); n != 0 {
		t.Errorf("unacknowledged messages after shutdown = %d, want 0", n)
	}
}

// A notice Nak'd during an outage is finished by the next refresher
// process on the same durable consumer.
func TestRefresherRestartFinishesPendingNotice(t *testing.T) {
	r := newRig(t, withMaxDeliver(10), withBackoff(300*time.Millisecond))
	r.card(70013, "TOKrestart13", visa, "1226")
	r.register("REG70013", 70013, "TOKrestart13")
	r.settle()
	r.bank.FailNext(1, bankstoretest.FailHTTP500)
	r.expiry(70013, 1)
	testenv.Eventually(t, 10*time.Second, "the notice's failed info_user", func() bool { return len(r.calls(bankstore.OpInfoUser)) >= 2 })
	r.shutdown()
	if out := r.outputs(); len(out) != 0 {
		t.Fatalf("outputs before the restart: %s", subjects(out))
	}
	r.start()
	m := r.waitOutputs(1)[0]
	if !strings.HasSuffix(m.Subject, ".card.refresh_required") {
		t.Errorf("output after restart on %s, want refresh_required", m.Subject)
	}
}

// A remove_user that fails is retried like info_user; token_replaced is
// published once, after the removal went through.
func TestRefresherRenewalRetriesRemoveUser(t *testing.T) {
	r := newRig(t)
	r.card(70014, "OLDtoken14", visa, "1226")
	r.register("REGold14", 70014, "OLDtoken14")
	r.card(70015, "NEWtoken15", mc, "1130")
	// The new pair is confirmed already (a payment with it), so the
	// registration that completes the renewal asks BankStore nothing
	// before remove_user.
	r.notify(events.TypeAuthorization, func(o *demo.SampleOptions) { o.Order, o.IdUser, o.TokenUser = "PAY15", 70015, "NEWtoken15" })
	r.renewal(`{"old_id_user": 70014, "order": "RENEW14"}`)
	r.settle()
	r.bank.FailNext(1, bankstoretest.FailSOAPFault)
	r.register("RENEW14", 70015, "NEWtoken15")
	m := r.waitOutputs(1)[0]
	if d := cmp.Diff(refresher.TokenReplaced{OldIDUser: 70014, NewIDUser: 70015}, data[refresher.TokenReplaced](t, m)); d != "" {
		t.Errorf("token_replaced data (-want +got):\n%s", d)
	}
	r.settle()
	removes := r.calls(bankstore.OpRemoveUser)
	if len(removes) != 2 || removes[0].Failed != bankstoretest.FailSOAPFault || removes[1].Failed != 0 || removes[1].IDUser != 70014 {
		t.Errorf("remove_user calls = %+v, want a failed one then one for 70014", removes)
	}
	if got := r.metric(refresher.MetricRetries, "message", "registration"); got != 1 {
		t.Errorf("retries of the registration = %v, want 1", got)
	}
	if out := r.outputs(); len(out) != 1 {
		t.Errorf("outputs = %s, want one token_replaced", subjects(out))
	}
}

// A token the BankStore client refuses to send (longer than DS_TOKEN_USER's
// 20 characters, like events.Sample's default) cannot be confirmed: it is
// refused without a call and not learnt, so the notice finds no token.
func TestRefresherTokenTheClientRefuses(t *testing.T) {
	r := newRig(t)
	long := "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	r.register("REGlong", 70016, long)
	r.expiry(70016, 1)
	if m := r.waitOutputs(1)[0]; !strings.HasSuffix(m.Subject, ".card.token_unknown") {
		t.Errorf("notice gave %s %s, want token_unknown", m.Subject, m.Event.Data)
	}
	r.settle()
	if calls := r.bank.Calls(); len(calls) != 0 {
		t.Errorf("BankStore calls = %+v, want none", calls)
	}
	if got := r.metric(refresher.MetricTokensRefused, "reason", refresher.RefusedInvalidToken); got != 1 {
		t.Errorf("tokens refused{invalid_token} = %v, want 1", got)
	}
	if got := r.metric(refresher.MetricDeadLetters); got != 0 {
		t.Errorf("dead letters = %v, want 0", got)
	}
}
