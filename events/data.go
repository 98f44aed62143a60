package events

import "time"

// The types below are the events' data: one Go type per operation so that a
// consumer can switch on Event.Data, each matching a JSON Schema in schemas/
// (the dataschema attribute). Members are snake_case; amounts are integers in
// minor units next to their ISO 4217 currency; PAYCOMET's integers are JSON
// numbers; timestamps are RFC 3339 with offset.
//
// Optional fields are parsed when present and well formed and omitted
// otherwise; raw always keeps what PAYCOMET sent, so nothing is lost when a
// cosmetic field is malformed. Required fields that are missing or malformed
// make Parse fail with a *FieldError instead.

// Meta is what paycomet-notify adds to every notification's data: how it was
// authenticated, which fields the signature vouches for, when it arrived and
// every field exactly as received.
type Meta struct {
	AuthenticatedBy AuthMethod `json:"authenticated_by"`
	// SignatureFormula is "A" or "B" when a signature matched, so that an
	// operator can see which formula PAYCOMET used for types no plugin has
	// documented (106, signed 108, new types).
	SignatureFormula string `json:"signature_formula,omitempty"`
	// SignedFields names the received fields the signature covers (see
	// Auth.SignedFields); never null, empty for a notice its channel
	// vouches for. Consumers treat every other field as unverified.
	SignedFields []string  `json:"signed_fields"`
	ReceivedAt   time.Time `json:"received_at"`
	// Raw is every field exactly as received. A field whose name or value
	// is not valid UTF-8 is given with both name and value as they were on
	// the wire (percent-encoded, e.g. "%ff"), and its name so written is
	// listed in RawPercentEncoded; every other entry is decoded text.
	Raw               Raw      `json:"raw"`
	RawPercentEncoded []string `json:"raw_percent_encoded,omitempty"`
}

// Details are the optional fields PAYCOMET may add to any signed
// notification (notifications doc section 2). IDUser and TokenUser are the
// BankStore card token: TokenUser belongs in events (the refresher learns
// tokens from them) but never in logs.
type Details struct {
	TransactionName  string `json:"transaction_name,omitempty"`
	AccountCode      string `json:"account_code,omitempty"`
	ErrorID          *int   `json:"error_id,omitempty"` // 0 on success; see notifications doc section 10
	ErrorDescription string `json:"error_description,omitempty"`
	IDUser           *int64 `json:"id_user,omitempty"`
	TokenUser        string `json:"token_user,omitempty"`
	MethodID         *int   `json:"method_id,omitempty"` // 1 card, other values APMs (notifications doc 3.2)
	MethodName       string `json:"method_name,omitempty"`
	CardBrand        string `json:"card_brand,omitempty"`
	CardCountry      string `json:"card_country,omitempty"`
	BICCode          string `json:"bic_code,omitempty"`
	SecurePayment    *bool  `json:"secure_payment,omitempty"` // SecurePayment "1": 3DS-authenticated
	Language         string `json:"language,omitempty"`
}

// Payment is the data of every amount-bearing operation (1, 2, 3, 4, 6, 9,
// 13, 14, 16, 106). Each operation has its own named type embedding it, so a
// type switch on Event.Data tells them apart.
type Payment struct {
	Terminal        string `json:"terminal"`
	TransactionType int    `json:"transaction_type"`
	Order           string `json:"order"`
	Response        string `json:"response"` // "OK", "KO" or "SF" (pending)
	// Amount is in minor units of Currency, as PAYCOMET sends it.
	Amount   int64  `json:"amount"`
	Currency string `json:"currency"`
	// AmountDisplay is Amount in major units with the currency's ISO 4217
	// exponent ("10.00" EUR, "1000" JPY, "1.000" KWD), for humans only.
	AmountDisplay string `json:"amount_display"`
	// AmountEUR is AmountEur converted to euro cents, when PAYCOMET sent it.
	AmountEUR    *int64    `json:"amount_eur,omitempty"`
	BankDateTime time.Time `json:"bank_date_time"`
	DateTime     time.Time `json:"date_time,omitzero"`
	AuthCode     string    `json:"auth_code,omitempty"`
	Details
	Meta
}

// Authorization is a sale (TransactionType 1), including APM payments
// (MethodID other than 1).
type Authorization struct{ Payment }

// Refund is TransactionType 2. Order is the original payment's order and
// Amount the refunded amount, which may be partial; AuthCode is the refund's
// own code.
type Refund struct{ Payment }

// Preauthorization is TransactionType 3: funds held, not yet captured.
type Preauthorization struct{ Payment }

// PreauthorizationCancel is TransactionType 4: a hold released.
type PreauthorizationCancel struct{ Payment }

// PreauthorizationConfirm is TransactionType 6: a hold captured.
type PreauthorizationConfirm struct{ Payment }

// Subscription is TransactionType 9: the first charge of a subscription or
// an instalment PAYCOMET ran itself.
type Subscription struct {
	Payment
	// Instalment is set when Order has PAYCOMET's instalment form
	// "<original>[<IdUser>]<yyyymmdd>" (notifications doc 4.4).
	Instalment *Instalment `json:"instalment,omitempty"`
}

// Instalment is a subscription Order split into its parts.
type Instalment struct {
	OriginalOrder string `json:"original_order"`
	IDUser        int64  `json:"id_user"`
	Date          string `json:"date"` // YYYY-MM-DD
}

// DeferredPreauthorization is TransactionType 13.
type DeferredPreauthorization struct{ Payment }

// DeferredPreauthorizationCancel is TransactionType 14.
type DeferredPreauthorizationCancel struct{ Payment }

// DeferredPreauthorizationConfirm is TransactionType 16.
type DeferredPreauthorizationConfirm struct{ Payment }

// Chargeback is TransactionType 106 ("Retroceso"). Its fields are not
// documented anywhere accessible; it is read like a payment and raw keeps
// whatever else arrives.
type Chargeback struct{ Payment }

// CardRegistration is TransactionType 107, a BankStore add_user: on OK it
// carries the new IDUser and TokenUser, which the refresher records.
type CardRegistration struct {
	Terminal        string    `json:"terminal"`
	TransactionType int       `json:"transaction_type"`
	Order           string    `json:"order"`
	Response        string    `json:"response"`
	DateTime        time.Time `json:"date_time"`
	Details
	Meta
}

// CardExpiry is TransactionType 108, the card expiry notice of the BankStore
// seed. It is unsigned unless PAYCOMET starts signing it, so the refresher
// confirms it with info_user before acting.
type CardExpiry struct {
	Terminal        string `json:"terminal"`
	TransactionType int    `json:"transaction_type"`
	TransactionName string `json:"transaction_name,omitempty"`
	IDUser          int64  `json:"id_user"`
	MonthsToExpire  int    `json:"months_to_expire"`
	Name            string `json:"name,omitempty"`   // the PAYCOMET product's name
	Domain          string `json:"domain,omitempty"` // the PAYCOMET product's domain
	Meta
}

// OtherOperation is any TransactionType without its own name (operation_N),
// for example 109 or 114, which PAYCOMET may report instead of 1. Only the
// type is required; every known field is parsed when present and well formed.
type OtherOperation struct {
	Terminal        string    `json:"terminal"`
	TransactionType int       `json:"transaction_type"`
	Order           string    `json:"order,omitempty"`
	Response        string    `json:"response,omitempty"`
	Amount          *int64    `json:"amount,omitempty"` // set only together with Currency
	Currency        string    `json:"currency,omitempty"`
	AmountDisplay   string    `json:"amount_display,omitempty"`
	AmountEUR       *int64    `json:"amount_eur,omitempty"`
	BankDateTime    time.Time `json:"bank_date_time,omitzero"`
	DateTime        time.Time `json:"date_time,omitzero"`
	AuthCode        string    `json:"auth_code,omitempty"`
	MonthsToExpire  *int      `json:"months_to_expire,omitempty"`
	Details
	Meta
}

// Rejection is the data of a quarantined request (type paycomet.rejected):
// why it was refused, and the exact request, so that `quarantine replay` can
// run it again once the cause is fixed (contract section 4).
type Rejection struct {
	Reason     string    `json:"reason"` // a Reason* code
	Detail     string    `json:"detail"` // the sentence a person reads
	Status     int       `json:"status"` // the HTTP status we answered
	Source     string    `json:"source"` // the client's address
	ReceivedAt time.Time `json:"received_at"`
	// Terminal is the terminal the request named or authenticated as, when
	// known; unproven unless the reason comes after authentication (stale,
	// conflicting_copy, reconciled_copy).
	Terminal string `json:"terminal,omitempty"`
	// EventID is the id of the accepted event this request is a copy of
	// (conflicting_copy, reconciled_copy).
	EventID string `json:"event_id,omitempty"`
	// Fields are every received field with all its values in order, absent
	// when the body could not be decoded. Unlike Meta.Raw repeats are kept,
	// since conflicting repeats are one reason to reject; percent-encoded
	// fields are written as in Meta.Raw and listed in RawPercentEncoded.
	Fields            map[string][]string `json:"fields,omitzero"`
	RawPercentEncoded []string            `json:"raw_percent_encoded,omitempty"`
	Request           RejectedRequest     `json:"request"`
}
