package events

import "strconv"

// PAYCOMET TransactionType values that have their own operation name and
// typed data (contract section 6). Any other positive number is accepted as
// operation_N, so these are the types consumers may switch on, not a limit.
const (
	TypeAuthorization                   = 1
	TypeRefund                          = 2
	TypePreauthorization                = 3
	TypePreauthorizationCancel          = 4
	TypePreauthorizationConfirm         = 6
	TypeSubscription                    = 9
	TypeDeferredPreauthorization        = 13
	TypeDeferredPreauthorizationCancel  = 14
	TypeDeferredPreauthorizationConfirm = 16
	TypeChargeback                      = 106
	TypeCardRegistration                = 107
	TypeCardExpiry                      = 108
)

// Outcomes: the last subject token. OK and KO are PAYCOMET's Response; see
// outcomeOf for the two extra ones.
const (
	OutcomeOK = "ok"
	OutcomeKO = "ko"
	// OutcomePending is Response "SF" (PAYCOMET's "pending", documented for
	// its REST info call). It is neither a success nor a failure yet, so it
	// gets its own subject rather than misleading ok or ko consumers; the
	// final OK or KO arrives later as a different event.
	OutcomePending = "pending"
	// OutcomeNotice is a notification that reports no result: the card
	// expiry notice (108), and an operation_N without a recognised Response.
	OutcomeNotice = "notice"
)

// Event types and operations that are not PAYCOMET operations.
const (
	// OperationRejected is the quarantine's operation, "paycomet.rejected".
	OperationRejected = "rejected"
	// EventTypeRejected is the CloudEvents type of a quarantined request
	// (not a TransactionType, unlike the Type* constants above).
	EventTypeRejected = "paycomet." + OperationRejected
)

// kind groups types by the fields they carry and how they are signed.
type kind int

const (
	kindPayment kind = iota
	kindCardRegistration
	kindCardExpiry
	kindOther
)

// knownOperation is the name of a type with its own typed data.
func knownOperation(t int) (string, bool) {
	switch t {
	case TypeAuthorization:
		return "authorization", true
	case TypeRefund:
		return "refund", true
	case TypePreauthorization:
		return "preauthorization", true
	case TypePreauthorizationCancel:
		return "preauthorization_cancel", true
	case TypePreauthorizationConfirm:
		return "preauthorization_confirm", true
	case TypeSubscription:
		return "subscription", true
	case TypeDeferredPreauthorization:
		return "deferred_preauthorization", true
	case TypeDeferredPreauthorizationCancel:
		return "deferred_preauthorization_cancel", true
	case TypeDeferredPreauthorizationConfirm:
		return "deferred_preauthorization_confirm", true
	case TypeChargeback:
		return "chargeback", true
	case TypeCardRegistration:
		return "card_registration", true
	case TypeCardExpiry:
		return "card_expiry", true
	}
	return "", false
}

// OperationName is the subject token and event type segment of a
// TransactionType, so that a consumer can build the subject it subscribes to
// from the type number: "authorization" for 1, "operation_200" for 200.
func OperationName(transactionType int) string {
	if n, ok := knownOperation(transactionType); ok {
		return n
	}
	return "operation_" + strconv.Itoa(transactionType)
}

func kindOf(t int) kind {
	switch t {
	case TypeCardRegistration:
		return kindCardRegistration
	case TypeCardExpiry:
		return kindCardExpiry
	}
	if _, ok := knownOperation(t); ok {
		return kindPayment
	}
	return kindOther
}

// formulas says which signature formulas a type may use. Types the official
// plugins verify (notifications doc section 5) get exactly their formula; for
// types nobody has observed (106, 108 when signed, anything new) A is tried
// first and then B, and Auth.Formula records which one matched.
func formulas(t int) (a, b bool) {
	switch t {
	case TypeCardRegistration:
		return false, true
	case TypeAuthorization, TypeRefund, TypePreauthorization, TypePreauthorizationCancel,
		TypePreauthorizationConfirm, TypeSubscription, TypeDeferredPreauthorization,
		TypeDeferredPreauthorizationCancel, TypeDeferredPreauthorizationConfirm:
		return true, false
	}
	return true, true
}

// schemaOf is the dataschema of an operation's data.
func schemaOf(k kind, operation string) string {
	if k == kindOther {
		return "schemas/operation.v1.json"
	}
	return "schemas/" + operation + ".v1.json"
}
