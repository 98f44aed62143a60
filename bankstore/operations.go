package bankstore

import (
	"crypto/sha512"
	"encoding/hex"
	"io"
	"reflect"

	"github.com/paycomet-notify/paycomet-notify/secret"
)

// Operation is the name of a BankStore SOAP operation, as it appears in the
// envelope and on the command line.
type Operation string

// The eighteen operations of the seed, in its order.
const (
	OpAddUser                         Operation = "add_user"
	OpInfoUser                        Operation = "info_user"
	OpRemoveUser                      Operation = "remove_user"
	OpExecutePurchase                 Operation = "execute_purchase"
	OpExecutePurchaseDCC              Operation = "execute_purchase_dcc"
	OpConfirmPurchaseDCC              Operation = "confirm_purchase_dcc"
	OpExecuteRefund                   Operation = "execute_refund"
	OpCreateSubscription              Operation = "create_subscription"
	OpEditSubscription                Operation = "edit_subscription"
	OpRemoveSubscription              Operation = "remove_subscription"
	OpCreateSubscriptionToken         Operation = "create_subscription_token"
	OpCreatePreauthorization          Operation = "create_preauthorization"
	OpPreauthorizationConfirm         Operation = "preauthorization_confirm"
	OpPreauthorizationCancel          Operation = "preauthorization_cancel"
	OpDeferredPreauthorizationConfirm Operation = "deferred_preauthorization_confirm"
	OpDeferredPreauthorizationCancel  Operation = "deferred_preauthorization_cancel"
	OpAddUserToken                    Operation = "add_user_token"
	OpExecutePurchaseRToken           Operation = "execute_purchase_rtoken"
)

// Elements the client adds to every request itself.
const (
	elemMerchantCode = "DS_MERCHANT_MERCHANTCODE"
	elemTerminal     = "DS_MERCHANT_TERMINAL"
	elemSignature    = "DS_MERCHANT_MERCHANTSIGNATURE"
	elemOriginalIP   = "DS_ORIGINAL_IP"
	elemErrorID      = "DS_ERROR_ID"
)

// spec is what the seed says about one operation.
type spec struct {
	op          Operation
	description string
	req, resp   reflect.Type
	// sign lists the elements Anexo I hashes, in order, before the password.
	sign []string
	// sigAfter is the element the signature follows in the envelope.
	sigAfter string
	// movesMoney marks calls that charge, hold, release or refund money (or
	// may, like edit_subscription with DS_EXECUTE): never retried, and any
	// failure leaves their outcome unknown.
	movesMoney bool
}

var (
	userKey    = []string{elemMerchantCode, "DS_IDUSER", "DS_TOKEN_USER", elemTerminal}
	purchase   = append(userKey[:4:4], "DS_MERCHANT_AMOUNT", "DS_MERCHANT_ORDER")
	preauthOps = append(userKey[:4:4], "DS_MERCHANT_ORDER", "DS_MERCHANT_AMOUNT")
)

// specs is the seed, operation by operation. The signature lists are Anexo I
// verbatim (seed line 2284 on).
var specs = []spec{
	{op: OpAddUser, description: "register a card (PAN, expiry, CVV2) as a user; returns DS_IDUSER and DS_TOKEN_USER",
		req: typeOf[AddUserRequest](), resp: typeOf[UserResponse](),
		sign: []string{elemMerchantCode, "DS_MERCHANT_PAN", "DS_MERCHANT_CVV2", elemTerminal}, sigAfter: "DS_MERCHANT_CVV2"},
	{op: OpInfoUser, description: "show a user's card: masked PAN, brand, type, expiry, hash",
		req: typeOf[UserRequest](), resp: typeOf[InfoUserResponse](),
		sign: userKey, sigAfter: "DS_TOKEN_USER"},
	{op: OpRemoveUser, description: "delete a user and its stored card",
		req: typeOf[UserRequest](), resp: typeOf[RemoveResponse](),
		sign: userKey, sigAfter: "DS_TOKEN_USER"},
	{op: OpExecutePurchase, description: "charge a user's card",
		req: typeOf[PurchaseRequest](), resp: typeOf[PurchaseResponse](),
		sign: purchase, sigAfter: "DS_MERCHANT_CURRENCY", movesMoney: true},
	{op: OpExecutePurchaseDCC, description: "start a charge in the card's own currency (DCC); confirm with confirm_purchase_dcc",
		req: typeOf[DCCPurchaseRequest](), resp: typeOf[DCCPurchaseResponse](),
		sign: purchase, sigAfter: "DS_MERCHANT_ORDER", movesMoney: true},
	{op: OpConfirmPurchaseDCC, description: "complete a DCC charge in the currency the cardholder chose",
		req: typeOf[ConfirmDCCRequest](), resp: typeOf[ChargeResponse](),
		sign:     []string{elemMerchantCode, elemTerminal, "DS_MERCHANT_ORDER", "DS_MERCHANT_DCC_CURRENCY", "DS_MERCHANT_DCC_SESSION"},
		sigAfter: "DS_MERCHANT_DCC_SESSION", movesMoney: true},
	{op: OpExecuteRefund, description: "refund a charge, wholly or in part",
		req: typeOf[RefundRequest](), resp: typeOf[RefundResponse](),
		sign: append(userKey[:4:4], "DS_MERCHANT_AUTHCODE", "DS_MERCHANT_ORDER"), sigAfter: "DS_MERCHANT_CURRENCY", movesMoney: true},
	{op: OpCreateSubscription, description: "register a card with a recurring charge",
		req: typeOf[CreateSubscriptionRequest](), resp: typeOf[SubscriptionResponse](),
		sign:     []string{elemMerchantCode, "DS_MERCHANT_PAN", "DS_MERCHANT_CVV2", elemTerminal, "DS_SUBSCRIPTION_AMOUNT", "DS_SUBSCRIPTION_CURRENCY"},
		sigAfter: "DS_SUBSCRIPTION_CURRENCY", movesMoney: true},
	{op: OpEditSubscription, description: "change a subscription's dates, period or amount",
		req: typeOf[EditSubscriptionRequest](), resp: typeOf[SubscriptionResponse](),
		sign: append(userKey[:4:4], "DS_SUBSCRIPTION_AMOUNT"), sigAfter: "DS_SUBSCRIPTION_AMOUNT", movesMoney: true},
	{op: OpRemoveSubscription, description: "cancel a subscription",
		req: typeOf[UserRequest](), resp: typeOf[RemoveResponse](),
		sign: userKey, sigAfter: "DS_TOKEN_USER"},
	{op: OpCreateSubscriptionToken, description: "add a recurring charge to a registered user",
		req: typeOf[CreateSubscriptionTokenRequest](), resp: typeOf[SubscriptionResponse](),
		sign: append(userKey[:4:4], "DS_SUBSCRIPTION_AMOUNT", "DS_SUBSCRIPTION_CURRENCY"), sigAfter: "DS_SUBSCRIPTION_CURRENCY", movesMoney: true},
	{op: OpCreatePreauthorization, description: "hold an amount on a user's card",
		req: typeOf[PurchaseRequest](), resp: typeOf[PurchaseResponse](),
		sign: purchase, sigAfter: "DS_MERCHANT_CURRENCY", movesMoney: true},
	{op: OpPreauthorizationConfirm, description: "charge a held amount (within 7 days, up to 115% of it)",
		req: typeOf[PreauthorizationRequest](), resp: typeOf[ChargeResponse](),
		sign: preauthOps, sigAfter: "DS_MERCHANT_ORDER", movesMoney: true},
	{op: OpPreauthorizationCancel, description: "release a held amount",
		req: typeOf[PreauthorizationRequest](), resp: typeOf[ChargeResponse](),
		sign: preauthOps, sigAfter: "DS_MERCHANT_ORDER", movesMoney: true},
	{op: OpDeferredPreauthorizationConfirm, description: "charge a deferred preauthorisation (within 72 hours, exact amount)",
		req: typeOf[PreauthorizationRequest](), resp: typeOf[ChargeResponse](),
		sign: preauthOps, sigAfter: "DS_MERCHANT_ORDER", movesMoney: true},
	{op: OpDeferredPreauthorizationCancel, description: "release a deferred preauthorisation",
		req: typeOf[PreauthorizationRequest](), resp: typeOf[ChargeResponse](),
		sign: preauthOps, sigAfter: "DS_MERCHANT_ORDER", movesMoney: true},
	{op: OpAddUserToken, description: "register the card behind a BankStore JET token as a user",
		req: typeOf[AddUserTokenRequest](), resp: typeOf[UserResponse](),
		sign: []string{elemMerchantCode, "DS_MERCHANT_JETTOKEN", "DS_MERCHANT_JETID", elemTerminal}, sigAfter: "DS_MERCHANT_JETID"},
	{op: OpExecutePurchaseRToken, description: "charge a card by the identifier of an earlier payment by reference",
		req: typeOf[RTokenPurchaseRequest](), resp: typeOf[ChargeResponse](),
		sign:     []string{elemMerchantCode, elemTerminal, "DS_MERCHANT_AMOUNT", "DS_MERCHANT_ORDER", "DS_MERCHANT_IDENTIFIER"},
		sigAfter: "DS_MERCHANT_CURRENCY", movesMoney: true},
}

func typeOf[T any]() reflect.Type { return reflect.TypeFor[T]() }

func lookup(op Operation) (*spec, bool) {
	for i := range specs {
		if specs[i].op == op {
			return &specs[i], true
		}
	}
	return nil, false
}

// Operations lists every operation, in the seed's order.
func Operations() []Operation {
	out := make([]Operation, len(specs))
	for i, s := range specs {
		out[i] = s.op
	}
	return out
}

// ParseOperation reports whether s names an operation of the seed.
func ParseOperation(s string) (Operation, bool) {
	_, ok := lookup(Operation(s))
	return Operation(s), ok
}

// Description says in a line what the operation is for.
func (op Operation) Description() string {
	if s, ok := lookup(op); ok {
		return s.description
	}
	return ""
}

// MovesMoney reports whether op charges, holds, releases or refunds money, and
// so must never be retried blindly.
func (op Operation) MovesMoney() bool {
	s, ok := lookup(op)
	return ok && s.movesMoney
}

// Element describes one request element an operation takes from its
// caller. The merchant code, terminal and signature are not among them: the
// client adds those itself.
type Element struct {
	Name string
	// Required is the seed's Obligatorio.
	Required bool
	// Format says what the value must look like.
	Format string
	// Default is what the client sends when the caller leaves the element
	// out, if anything.
	Default string
}

// RequestElements lists the elements op takes, in envelope order.
func (op Operation) RequestElements() []Element {
	s, ok := lookup(op)
	if !ok {
		return nil
	}
	var out []Element
	for _, f := range fieldsOf(s.req) {
		e := Element{Name: f.name, Required: f.required || f.auto, Format: formats[f.format].desc}
		if f.auto {
			e.Default = "this host's IPv4 address towards the endpoint"
		}
		out = append(out, e)
	}
	return out
}

// ResponseElements lists the elements the seed says op answers with, ending
// with DS_ERROR_ID.
func (op Operation) ResponseElements() []string {
	s, ok := lookup(op)
	if !ok {
		return nil
	}
	var out []string
	for _, f := range fieldsOf(s.resp) {
		out = append(out, f.name)
	}
	return append(out, elemErrorID)
}

// Sign computes DS_MERCHANT_MERCHANTSIGNATURE for op from the request's
// element values (as sent, merchant code and terminal included): lower-case
// hex SHA-512 over the elements Anexo I lists for op, concatenated, followed
// by the terminal password. The fake server checks requests with it.
func Sign(op Operation, elems map[string]string, password secret.Value) string {
	s, ok := lookup(op)
	if !ok {
		return ""
	}
	h := sha512.New()
	for _, name := range s.sign {
		io.WriteString(h, elems[name])
	}
	io.WriteString(h, password.Reveal())
	return hex.EncodeToString(h.Sum(nil))
}
