package refresher

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/paycomet-notify/paycomet-notify/events"
)

// Output kinds: the last subject token of <prefix>.<terminal>.card.<kind>
// and of the event type paycomet.card.<kind> (contract section 9).
const (
	KindRefreshRequired = "refresh_required"
	KindTokenInvalid    = "token_invalid"
	KindTokenUnknown    = "token_unknown"
	KindTokenReplaced   = "token_replaced"
	// KindRenewalStarted is the input a merchant's consumer publishes (plain
	// JSON, RenewalStarted), not an output.
	KindRenewalStarted = "renewal_started"
	// KindDeadLetter is the type of a dead letter, published on <prefix>.dlq.
	KindDeadLetter = "dead_letter"
)

// OperationCard is the operation token of every card.* subject.
const OperationCard = "card"

// Schema returns the dataschema of a kind's data, e.g.
// "schemas/card_refresh_required.v1.json".
func Schema(kind string) string { return "schemas/card_" + kind + ".v1.json" }

// RefreshRequired is the data of card.refresh_required: the card behind
// IDUser, as info_user describes it, expires in MonthsToExpire months.
type RefreshRequired struct {
	IDUser         int64  `json:"id_user"`
	MonthsToExpire int    `json:"months_to_expire"`
	Expiry         string `json:"expiry"` // "YYYY/MM" from info_user
	MaskedPAN      string `json:"masked_pan"`
	CardBrand      string `json:"card_brand"`
	CardHash       string `json:"card_hash"`
}

// TokenInvalid is the data of card.token_invalid: info_user answered 1001.
type TokenInvalid struct {
	IDUser           int64  `json:"id_user"`
	MonthsToExpire   int    `json:"months_to_expire"`
	Terminal         string `json:"terminal"`
	ErrorCode        int    `json:"error_code"`
	ErrorDescription string `json:"error_description"`
}

// TokenUnknown is the data of card.token_unknown: no TokenUser was ever
// learnt for IDUser, so BankStore could not be asked.
type TokenUnknown struct {
	IDUser         int64  `json:"id_user"`
	MonthsToExpire int    `json:"months_to_expire"`
	Terminal       string `json:"terminal"`
}

// TokenReplaced is the data of card.token_replaced: a renewal completed and
// OldIDUser was removed from BankStore after NewIDUser was registered.
type TokenReplaced struct {
	OldIDUser int64 `json:"old_id_user"`
	NewIDUser int64 `json:"new_id_user"`
}

// RenewalStarted is the plain JSON message a merchant's consumer publishes on
// <prefix>.<terminal>.card.renewal_started when it asks a customer for a new
// card; Order is the Order of that card registration (or secure payment).
type RenewalStarted struct {
	OldIDUser int64  `json:"old_id_user"`
	Order     string `json:"order"`
}

// DeadLetter is the data of a paycomet.card.dead_letter event on
// <prefix>.dlq: why the refresher gave up on a message, where it was in the
// stream, and the message itself, so it can be republished on
// OriginalSubject once the cause is fixed.
type DeadLetter struct {
	Reason           string          `json:"reason"`
	Cause            string          `json:"cause"` // one of the Cause* constants
	ErrorCode        int             `json:"error_code,omitempty"`
	ErrorDescription string          `json:"error_description,omitempty"`
	Consumer         string          `json:"consumer"`
	OriginalSubject  string          `json:"original_subject"`
	StreamSequence   uint64          `json:"stream_sequence"`
	Deliveries       uint64          `json:"deliveries"`
	OriginalMsgID    string          `json:"original_msg_id,omitempty"`
	Original         json.RawMessage `json:"original,omitempty"`        // the body, when it is JSON (whitespace compacted)
	OriginalBase64   []byte          `json:"original_base64,omitempty"` // the body otherwise
	FailedAt         time.Time       `json:"failed_at"`
}

// output is one event the refresher publishes on <prefix>.<terminal>.card.<kind>.
type output struct {
	kind     string
	terminal string
	idUser   int64 // the CloudEvents subject
	data     any
}

// event builds the CloudEvent of o, shaped like the receiver's.
func (o output) event(id string, now time.Time) events.Event {
	return events.Event{
		ID:         id,
		Source:     "/paycomet/terminals/" + o.terminal,
		Type:       "paycomet." + OperationCard + "." + o.kind,
		Subject:    strconv.FormatInt(o.idUser, 10),
		Time:       now,
		DataSchema: Schema(o.kind),
		Data:       o.data,
		Terminal:   o.terminal,
		Operation:  OperationCard,
		Outcome:    o.kind,
	}
}

// Output ids. Like the receiver's (events/idempotency.go) they are the first
// 32 hex digits of SHA-256 over length-prefixed parts with a scheme tag, so
// they are valid KV keys and Nats-Msg-Ids, and the same input always gives
// the same id:
//
//	notice outcome:  "refresher-v1" | "notice" | <notice event id>
//	token_replaced:  "refresher-v1" | "token_replaced" | terminal | order | old id_user | new id_user
//	dead letter:     "refresher-v1" | "dead_letter" | consumer | stream sequence
//
// The notice outcome's id deliberately leaves the output kind out: a notice
// has exactly one outcome, so if a redelivery were ever to reach BankStore
// again and get a different answer (the user deleted in between), JetStream's
// duplicate window still refuses the second event. The durable processed
// mark (see state.go) covers redeliveries after that window.
const idScheme = "refresher-v1"

func noticeOutputID(noticeID string) string { return events.ID(idScheme, "notice", noticeID) }

func replacedID(terminal, order string, oldID, newID int64) string {
	return events.ID(idScheme, KindTokenReplaced, terminal, order, strconv.FormatInt(oldID, 10), strconv.FormatInt(newID, 10))
}

func deadLetterID(consumer string, seq uint64) string {
	return events.ID(idScheme, KindDeadLetter, consumer, strconv.FormatUint(seq, 10))
}
