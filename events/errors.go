package events

import (
	"errors"
	"strconv"
)

// FieldError says that the notification itself is malformed: a field is
// missing, badly formed, or sent twice with different values. The handler
// answers 400 with Error() as the body, so PAYCOMET's support (or whoever
// reads the quarantine) learns which field to look at.
type FieldError struct {
	Field   string // the form field's exact name, e.g. "Amount"; "body" or "query" for DecodeForm's form-level problems
	Problem string // what is wrong with it, e.g. `"12.50" is not an integer in minor units`
	// Err is a sentinel for callers that branch on the kind of problem
	// (ErrStale from CheckFresh), nil for plain malformed fields.
	Err error
}

// Error names the field first, so the 400 body tells PAYCOMET's support
// where to look: `Amount: "12.50" is not an integer in minor units`.
func (e *FieldError) Error() string { return e.Field + ": " + e.Problem }

// Unwrap exposes Err, so errors.Is(err, ErrStale) works.
func (e *FieldError) Unwrap() error { return e.Err }

// AuthError says that the notification could not be proven to come from
// PAYCOMET. The handler answers 401. Reason never contains the terminal
// password, its MD5 or the expected hash, so it is safe to log and to answer.
type AuthError struct {
	Reason string
	// Err is one of the sentinel errors below, so callers can branch with
	// errors.Is without parsing Reason.
	Err error
}

// Error is safe to log and to answer: it never carries key material.
func (e *AuthError) Error() string { return "authentication failed: " + e.Reason }

// Unwrap exposes the sentinel.
func (e *AuthError) Unwrap() error { return e.Err }

// Sentinels carried by AuthError. Metrics and alerts count them separately:
// a burst of ErrBadSignature means someone is forging, a burst of
// ErrUnknownTerminal usually means a terminal was not configured.
var (
	// ErrMissingSignature: a type that PAYCOMET signs arrived without a
	// NotificationHash.
	ErrMissingSignature = errors.New("missing NotificationHash")
	// ErrBadSignature: the NotificationHash does not match any formula the
	// type allows with the terminal's password.
	ErrBadSignature = errors.New("NotificationHash does not match")
	// ErrUnknownTerminal: the terminal named by TpvID (Terminal on 108) is not
	// configured.
	ErrUnknownTerminal = errors.New("unknown terminal")
	// ErrUnsignedNotAllowed: an unsigned card-expiry notice (108) that came
	// neither through the URL token path nor from an allowed address.
	ErrUnsignedNotAllowed = errors.New("unsigned notification not allowed on this channel")
)

func authError(sentinel error, detail string) *AuthError {
	r := sentinel.Error()
	if detail != "" {
		r += " (" + detail + ")"
	}
	return &AuthError{Reason: r, Err: sentinel}
}

// maxQuoted bounds how much of an attacker-controlled value an error repeats.
const maxQuoted = 64

// quote renders a received value for an error message: quoted, so control
// characters cannot forge log lines or answers, and truncated.
func quote(s string) string {
	if len(s) > maxQuoted {
		return strconv.Quote(s[:maxQuoted]) + "..."
	}
	return strconv.Quote(s)
}

func missing(field string) *FieldError { return &FieldError{Field: field, Problem: "missing"} }

func malformed(field, value, want string) *FieldError {
	return &FieldError{Field: field, Problem: quote(value) + " is not " + want}
}
