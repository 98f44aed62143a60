package events

import "errors"

// Reason codes of quarantined requests (contract section 4): data.reason of
// a paycomet.rejected event and the reason label of the quarantine metrics.
// ReasonOf gives the code of an error of this package; the others name what
// the HTTP layer or the notification path decides.
const (
	ReasonBadSignature         = "bad_signature"
	ReasonMissingSignature     = "missing_signature"
	ReasonUnknownTerminal      = "unknown_terminal"
	ReasonUnsignedWithoutToken = "unsigned_without_token"
	ReasonForbiddenSource      = "forbidden_source"
	ReasonMalformed            = "malformed"
	ReasonTooLarge             = "too_large"
	ReasonMediaType            = "media_type"
	ReasonBodyTimeout          = "body_timeout"
	ReasonStale                = "stale"
	ReasonConflictingCopy      = "conflicting_copy"
	ReasonReconciledCopy       = "reconciled_copy"
)

// ReasonOf maps an error of this package (from DecodeForm, Authenticate,
// Parse or CheckFresh, wrapped or not) to its reason code: a stale
// notification before any other *FieldError, since CheckFresh's error is
// one. It returns "" for an error that is not this package's verdict on a
// request (ErrNotAuthenticated, a nil error, anything else).
func ReasonOf(err error) string {
	if err == nil {
		return ""
	}
	if errors.Is(err, ErrStale) {
		return ReasonStale
	}
	var ae *AuthError
	if errors.As(err, &ae) {
		switch {
		case errors.Is(ae.Err, ErrBadSignature):
			return ReasonBadSignature
		case errors.Is(ae.Err, ErrMissingSignature):
			return ReasonMissingSignature
		case errors.Is(ae.Err, ErrUnknownTerminal):
			return ReasonUnknownTerminal
		case errors.Is(ae.Err, ErrUnsignedNotAllowed):
			return ReasonUnsignedWithoutToken
		}
		return ""
	}
	var fe *FieldError
	if errors.As(err, &fe) {
		return ReasonMalformed
	}
	return ""
}
