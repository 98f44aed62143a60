package paycometrest

import (
	"errors"
	"fmt"
	"strings"

	"github.com/paycomet-notify/paycomet-notify/bankstore"
)

// Error is PAYCOMET's answer that a call failed: a non-zero errorCode, in a
// 200 answer or in the body of a 4xx other than 422 (PAYCOMET's spec gives
// 403 {errorCode} for some calls). Status is the HTTP status it came with.
type Error struct {
	Op     string
	Status int
	Code   int
}

func (e *Error) Error() string {
	return fmt.Sprintf("paycometrest: %s: PAYCOMET error %d: %s", e.Op, e.Code, e.Meaning())
}

// Meaning is the code's description from PAYCOMET's error list.
func (e *Error) Meaning() string { return ErrorMeaning(e.Code) }

// ValidationError is HTTP 422, PAYCOMET's refusal of a request it could not
// validate: {"errorCode": N, "error": {"message": "...", "detail": [...]}}.
// Message and Detail are PAYCOMET's text with the API key scrubbed; Detail
// holds each element of error.detail (strings as they are, anything else as
// compact JSON).
type ValidationError struct {
	Op      string
	Code    int
	Message string
	Detail  []string
}

func (e *ValidationError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "paycometrest: %s: HTTP 422: PAYCOMET error %d: %s", e.Op, e.Code, ErrorMeaning(e.Code))
	if e.Message != "" {
		fmt.Fprintf(&b, ": %s", e.Message)
	}
	if len(e.Detail) > 0 {
		fmt.Fprintf(&b, " (%s)", strings.Join(e.Detail, "; "))
	}
	return b.String()
}

// HTTPError is an answer with a status that carries no usable PAYCOMET
// answer: a 5xx, or a 4xx whose body has no errorCode.
type HTTPError struct {
	Op     string
	Status int
}

func (e *HTTPError) Error() string {
	return fmt.Sprintf("paycometrest: %s: HTTP status %d", e.Op, e.Status)
}

// ErrMalformedResponse is an answer that is not the JSON the call returns:
// truncated, not an object, errorCode missing or not a number.
var ErrMalformedResponse = errors.New("malformed response")

// ErrResponseFalse is an answer with errorCode 0 and ivrResponse false:
// the session was not established (get-session), not found (session-state)
// or not cancelled (session-cancel). The answer is returned with it.
var ErrResponseFalse = errors.New("PAYCOMET answered ivrResponse false")

// InputError is a request that breaks the seed's bounds; nothing was sent.
// Element is the seed's name (IVR_MERCHANT_ORDER), Key the JSON member
// (ivrMerchantOrder). The value itself is never repeated.
type InputError struct {
	Element string
	Key     string
	Reason  string
}

func (e *InputError) Error() string {
	return fmt.Sprintf("paycometrest: %s (%s): %s", e.Element, e.Key, e.Reason)
}

// IsAnswer reports whether err is PAYCOMET answering "no" (an *Error, a
// *ValidationError or ErrResponseFalse), as opposed to no usable answer at
// all (transport failure, timeout, *HTTPError, ErrMalformedResponse) or bad
// input (*InputError).
func IsAnswer(err error) bool {
	var e *Error
	var v *ValidationError
	return errors.As(err, &e) || errors.As(err, &v) || errors.Is(err, ErrResponseFalse)
}

// PAYCOMET error codes of the IVR service (PAYCOMET/woocommerce
// gateway-paytpv.php, get_error_description).
const (
	CodeProviderSignature   = 1002 // External provider signature error
	CodeProviderUnavailable = 1206 // ProviderID not available
	CodeCallTerminated      = 1255 // Call terminated by the client
	CodeIncorrectAttempts   = 1256 // Call terminated, incorrect attempts exceeded
	CodeOperationAttempts   = 1257 // Call terminated, operation attempts exceeded
	CodeStationUnavailable  = 1258 // stationID not available
	CodeSessionNotPossible  = 1259 // It has not been possible to establish the IVR session
)

var ivrMeanings = map[int]string{
	CodeProviderSignature:   "External provider signature error",
	CodeProviderUnavailable: "ProviderID not available",
	CodeCallTerminated:      "Call terminated by the client",
	CodeIncorrectAttempts:   "Call terminated, incorrect attempts exceeded",
	CodeOperationAttempts:   "Call terminated, operation attempts exceeded",
	CodeStationUnavailable:  "stationID not available",
	CodeSessionNotPossible:  "It has not been possible to establish the IVR session",
}

// ErrorMeaning describes a PAYCOMET error code: the IVR codes here, every
// other code from PAYCOMET's one error list (shared with BankStore XML).
func ErrorMeaning(code int) string {
	if m, ok := ivrMeanings[code]; ok {
		return m
	}
	return bankstore.ErrorMeaning(code)
}
