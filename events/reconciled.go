package events

import (
	"errors"
	"net/url"
	"strconv"
	"time"
)

// AuthReconciliation marks an event built by `reconcile --publish-missing`
// from PAYCOMET's REST answer (authenticated by the API key over TLS), not
// from a notification: no field of it is vouched for by a signature, so
// signed_fields is empty, and it carries no IdUser or TokenUser.
const AuthReconciliation AuthMethod = "reconciliation"

// SignedIDA is the id a signed formula-A notification with these field
// values (as received) gets: the reconciler gives an operation's event this
// id when PAYCOMET's REST answer holds the notification's signed fields, so
// the real notification arriving later is, to every dedupe layer, a copy.
func SignedIDA(terminal, transactionType, order, amount, currency, bankDateTime, response string) string {
	return signedKey("A", terminal, url.Values{fTransactionType: {transactionType}, fOrder: {order}, fAmount: {amount},
		fCurrency: {currency}, fBankDateTime: {bankDateTime}, fResponse: {response}})
}

// MatchKey is the dedupe key under which the reconciler remembers an
// operation it published by what reconciliation matches on (terminal,
// type, order, outcome, amount, currency): the fallback that still
// recognises the real notification when its BankDateTime is not the REST
// answer's timestamp, so its id differs.
func MatchKey(terminal string, transactionType int, order, outcome string, amount int64, currency string) string {
	return ID(keyScheme, "reconciled", terminal, strconv.Itoa(transactionType), order, outcome,
		strconv.FormatInt(amount, 10), currency)
}

// PaymentOf is the payment data of an amount-bearing event.
func PaymentOf(ev Event) (*Payment, bool) {
	switch d := ev.Data.(type) {
	case Authorization:
		return &d.Payment, true
	case Refund:
		return &d.Payment, true
	case Preauthorization:
		return &d.Payment, true
	case PreauthorizationCancel:
		return &d.Payment, true
	case PreauthorizationConfirm:
		return &d.Payment, true
	case Subscription:
		return &d.Payment, true
	case DeferredPreauthorization:
		return &d.Payment, true
	case DeferredPreauthorizationCancel:
		return &d.Payment, true
	case DeferredPreauthorizationConfirm:
		return &d.Payment, true
	case Chargeback:
		return &d.Payment, true
	}
	return nil, false
}

// ReconciledOperation is what PAYCOMET's REST search says of one operation.
type ReconciledOperation struct {
	Terminal        string
	TransactionType int
	Order           string
	Response        string // "OK" or "KO"
	Amount          int64
	Currency        string
	AuthCode        string
	// Timestamp is PAYCOMET's yyyymmddhhmmss (Europe/Madrid): the
	// notification's BankDateTime, as far as anyone can tell.
	Timestamp string
	Raw       Raw // the search row, every member as text
}

// Reconciled builds the event of an operation the reconciler found with no
// notification: the typed data of its type, authenticated_by
// reconciliation, time the operation's, raw the search row, and the id
// SignedIDA gives its notification. Only amount-bearing types are built.
func Reconciled(op ReconciledOperation, now time.Time) (Event, error) {
	name, known := knownOperation(op.TransactionType)
	if !known || kindOf(op.TransactionType) != kindPayment {
		return Event{}, errors.New("events: reconciled: type " + strconv.Itoa(op.TransactionType) + " is not an amount-bearing operation")
	}
	if op.Response != "OK" && op.Response != "KO" {
		return Event{}, errors.New("events: reconciled: response must be OK or KO")
	}
	t, err := time.ParseInLocation("20060102150405", op.Timestamp, madrid())
	if err != nil || op.Order == "" || op.Terminal == "" || len(op.Currency) != 3 || op.Amount < 0 {
		return Event{}, errors.New("events: reconciled: terminal, order, currency, amount and a yyyymmddhhmmss timestamp are required")
	}
	raw := op.Raw
	if raw == nil {
		raw = Raw{}
	}
	p := Payment{Terminal: op.Terminal, TransactionType: op.TransactionType, Order: op.Order, Response: op.Response,
		Amount: op.Amount, Currency: op.Currency, AmountDisplay: FormatMinor(op.Amount, op.Currency), BankDateTime: t,
		AuthCode: op.AuthCode,
		Meta:     Meta{AuthenticatedBy: AuthReconciliation, SignedFields: []string{}, ReceivedAt: now.UTC(), Raw: raw}}
	var data any
	switch op.TransactionType {
	case TypeAuthorization:
		data = Authorization{p}
	case TypeRefund:
		data = Refund{p}
	case TypePreauthorization:
		data = Preauthorization{p}
	case TypePreauthorizationCancel:
		data = PreauthorizationCancel{p}
	case TypePreauthorizationConfirm:
		data = PreauthorizationConfirm{p}
	case TypeSubscription:
		data = Subscription{Payment: p}
	case TypeDeferredPreauthorization:
		data = DeferredPreauthorization{p}
	case TypeDeferredPreauthorizationCancel:
		data = DeferredPreauthorizationCancel{p}
	case TypeDeferredPreauthorizationConfirm:
		data = DeferredPreauthorizationConfirm{p}
	case TypeChargeback:
		data = Chargeback{p}
	}
	outcome := OutcomeOK
	if op.Response == "KO" {
		outcome = OutcomeKO
	}
	return Event{
		ID: SignedIDA(op.Terminal, strconv.Itoa(op.TransactionType), op.Order, strconv.FormatInt(op.Amount, 10),
			op.Currency, op.Timestamp, op.Response),
		Source: "/paycomet/terminals/" + op.Terminal, Type: "paycomet." + name + "." + outcome, Subject: op.Order,
		Time: t, DataSchema: schemaOf(kindPayment, name), Data: data,
		Terminal: op.Terminal, Operation: name, Outcome: outcome,
	}, nil
}
