package bankstore

import (
	"errors"
	"fmt"
)

// Error is PAYCOMET's answer that an operation failed: a DS_ERROR_ID other
// than 0 or empty. Callers branch on Code, for example the refresher on
// CodeUserNotFound:
//
//	var e *bankstore.Error
//	if errors.As(err, &e) && e.Code == bankstore.CodeUserNotFound { ... }
type Error struct {
	Op   Operation
	Code int
}

func (e *Error) Error() string {
	return fmt.Sprintf("bankstore: %s: PAYCOMET error %d: %s", e.Op, e.Code, e.Meaning())
}

// Meaning is the code's description from PAYCOMET's error list.
func (e *Error) Meaning() string { return ErrorMeaning(e.Code) }

// FaultError is a SOAP fault: the service could not process the envelope at
// all (as opposed to an *Error, which it processed and refused). Its text is
// the server's, scrubbed of the request's card data.
type FaultError struct {
	Op     Operation
	Code   string // faultcode, e.g. "SOAP-ENV:Server"
	String string // faultstring
}

func (e *FaultError) Error() string {
	return fmt.Sprintf("bankstore: %s: SOAP fault %s: %s", e.Op, e.Code, e.String)
}

// HTTPError is an answer with a non-2xx status that is not a SOAP fault.
type HTTPError struct {
	Op         Operation
	StatusCode int
}

func (e *HTTPError) Error() string {
	return fmt.Sprintf("bankstore: %s: HTTP status %d", e.Op, e.StatusCode)
}

// ErrMalformedResponse is an answer that is not a readable SOAP envelope:
// truncated or invalid XML, no Body, or an element that does not parse.
var ErrMalformedResponse = errors.New("malformed response")

// ErrOutcomeUnknown is wrapped into every failure of a money-moving call that
// is neither a PAYCOMET answer (*Error) nor bad input (*InputError): the
// request may have been processed (a timeout after the charge, a lost
// answer), so the caller must reconcile before trying again, never retry
// blindly.
var ErrOutcomeUnknown = errors.New("outcome unknown: the operation may have been carried out; reconcile before retrying")

// PAYCOMET error codes that callers and the fake server use by name.
const (
	CodeError                  = 1    // generic error
	CodeCVVDataError           = 107  // validation code data error
	CodeExpiryError            = 109  // expiry date error
	CodeInvalidParameter       = 127  // a parameter is missing or malformed
	CodeOriginalNotFound       = 130  // original operation not found, could not refund
	CodeAmountNotValid         = 141  // amount zero or not valid
	CodePreauthNotFound        = 152  // preauthorisation not found
	CodeAlreadyCancelled       = 504  // transaction already cancelled
	CodeAccountNotFound        = 1000 // merchant account (code or terminal) not found
	CodeUserNotFound           = 1001 // the DS_IDUSER/DS_TOKEN_USER pair does not exist
	CodeInvalidSignature       = 1003 // DS_MERCHANT_MERCHANTSIGNATURE does not match
	CodeInvalidCardFormat      = 1005 // PAN malformed
	CodeDuplicatedReference    = 1026 // the order was already used
	CodeRefundsExceedPayment   = 1027 // refunds would exceed the charge
	CodeSubscriptionPastExpiry = 1134 // subscription would outlast the card
)

// errorMeanings is PAYCOMET's error list as far as paycomet-notifications.md
// section 10 gives it, in our words.
var errorMeanings = map[int]string{
	0:    "No error",
	1:    "Error",
	100:  "Expired credit card",
	101:  "Card blacklisted",
	102:  "Operation not allowed for this card type",
	103:  "Call the card issuer",
	104:  "Unexpected error",
	105:  "Insufficient funds",
	106:  "Card not registered or not recognised by the issuer",
	107:  "Data error: validation code",
	108:  "PAN check error",
	109:  "Expiry date error",
	111:  "CVC2 incorrect",
	112:  "Call the card issuer",
	113:  "Card not valid",
	115:  "Issuer could not validate the card owner",
	127:  "Invalid parameter",
	129:  "Duplicated internal reference",
	130:  "Original operation not found, could not refund",
	131:  "Expired preauthorisation",
	135:  "CVC2 incorrect",
	137:  "Card not valid",
	141:  "Amount zero or not valid",
	142:  "Operation cancelled",
	143:  "Authentication error",
	144:  "Denied by security level",
	147:  "Duplicated transaction",
	151:  "Invalid card expiration date",
	152:  "Preauthorisation not found",
	155:  "Requires VHASH",
	172:  "Denied, do not repeat",
	173:  "Denied, card data must be updated",
	174:  "Denied, do not repeat within 72 hours",
	184:  "3DS authentication cancelled",
	195:  "Requires SCA authentication",
	504:  "Transaction already cancelled",
	505:  "Transaction originally denied",
	508:  "Transaction still in process",
	510:  "Refund not possible",
	527:  "TransactionType unknown",
	1000: "Account not found",
	1001: "User (token) not found",
	1003: "Invalid signature",
	1004: "Forbidden access",
	1005: "Invalid card format",
	1026: "Duplicated external reference",
	1027: "Total refunds exceed the original payment",
	1123: "Invalid signature",
	1130: "Product not found",
	1134: "Subscription may not exceed the card expiry",
	1178: "Invalid signature",
	1229: "Invalid signature",
	1302: "Merchant risk filter: limit exceeded",
	1303: "Merchant risk filter: limit exceeded",
	1311: "Merchant risk filter: same IP",
	1322: "Challenge required",
	1325: "Challenge required and user not present",
	1327: "3DS authentication error",
	1337: "Notification URL not configured",
	1338: "Notification URL does not respond correctly",
	1339: "Invalid terminal configuration",
	1340: "Payment method not available",
	1367: "Several payments in flight for the same card; the rest are denied",
	1400: "Bizum error",
	1417: "PayPal error",
	1418: "PayPal error",
	1425: "PayPal error",
	1450: "Refund card differs from the authorisation card",
	1452: "Sandbox and production mixed",
	1466: "Expiry date does not match the issuer's file",
	1495: "Cancellation not allowed, already refunded",
}

// errorRanges covers the families the list gives as ranges.
var errorRanges = []struct {
	lo, hi  int
	meaning string
}{
	{1185, 1202, "Merchant risk filter (limits, countries, brands, attempts)"},
	{1341, 1346, "Bizum error"},
	{1360, 1366, "PSD2 field error (SCA exception, MIT or transaction type)"},
}

// ErrorMeaning describes a PAYCOMET error code.
func ErrorMeaning(code int) string {
	if m, ok := errorMeanings[code]; ok {
		return m
	}
	for _, r := range errorRanges {
		if code >= r.lo && code <= r.hi {
			return r.meaning
		}
	}
	return "Unknown error code (see PAYCOMET's error list)"
}
