package refresher

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/paycomet-notify/paycomet-notify/bankstore"
)

// Every handler error is either permanent (a *permanentError: no retry can
// fix it, so the message goes to the dead-letter subject at once) or
// transient (anything else: BankStore or NATS unavailable, so the message is
// Nak'd with backoff and dead-lettered only at the delivery limit).
//
// Which BankStore failures are which:
//
//   - a network error, a timeout, an HTTP error, a SOAP fault or an
//     unreadable answer is transient: the service was not reached or did not
//     process the request, and the next try may well succeed;
//   - a PAYCOMET business error (*bankstore.Error) is an answer, not an
//     outage. 1001 on info_user is the token_invalid outcome, 1001 on
//     remove_user means the user is already gone (done). Every other code
//     (1000 account not found, 1003 invalid signature, 1004 forbidden,
//     1339 terminal configuration, ...) describes our configuration or
//     PAYCOMET's account state, which retrying the same request every few
//     minutes cannot change; the message is dead-lettered at once with the
//     code and its meaning, and an operator republishes it once fixed;
//   - an *bankstore.InputError (a learnt token the client refuses to send)
//     is permanent for the same reason.

// Dead-letter causes, the cause member of a dead letter and the label of the
// dead-letters metric. The set is closed so the label stays bounded.
const (
	CauseDeliveryLimit         = "delivery_limit"
	CauseBankstoreError        = "bankstore_error"
	CauseBankstoreInput        = "bankstore_input"
	CauseMalformed             = "malformed"
	CauseTerminalNotConfigured = "terminal_not_configured"
	CauseOldTokenUnknown       = "old_token_unknown"
	CauseRenewalConflict       = "renewal_conflict"
)

var causes = []string{CauseDeliveryLimit, CauseBankstoreError, CauseBankstoreInput, CauseMalformed,
	CauseTerminalNotConfigured, CauseOldTokenUnknown, CauseRenewalConflict}

// permanentError marks a failure that retrying cannot fix.
type permanentError struct {
	cause string
	code  int // PAYCOMET's code for CauseBankstoreError
	err   error
}

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

func permanent(cause string, format string, a ...any) error {
	return &permanentError{cause: cause, err: fmt.Errorf(format, a...)}
}

// bankstoreFailure turns a BankStore error that is not an expected outcome
// into a permanent or transient handler error. The client's errors already
// name the operation ("bankstore: info_user: ..."), so they are not wrapped
// again.
func bankstoreFailure(err error) error {
	var be *bankstore.Error
	if errors.As(err, &be) {
		return &permanentError{cause: CauseBankstoreError, code: be.Code, err: err}
	}
	var ie *bankstore.InputError
	if errors.As(err, &ie) {
		return &permanentError{cause: CauseBankstoreInput, err: err}
	}
	return err
}

// isUserNotFound is PAYCOMET's 1001: the IdUser/TokenUser pair does not
// exist.
func isUserNotFound(err error) bool {
	var be *bankstore.Error
	return errors.As(err, &be) && be.Code == bankstore.CodeUserNotFound
}

// BankStore error kinds, the kind label of the BankStore errors metric.
var errorKinds = []string{"business", "input", "soap_fault", "http_5xx", "http_other", "malformed", "timeout", "transport"}

// errorKind classifies a BankStore call's error for the metric.
func errorKind(err error) string {
	var (
		be *bankstore.Error
		ie *bankstore.InputError
		fe *bankstore.FaultError
		he *bankstore.HTTPError
		ne net.Error
	)
	switch {
	case errors.As(err, &be):
		return "business"
	case errors.As(err, &ie):
		return "input"
	case errors.As(err, &fe):
		return "soap_fault"
	case errors.As(err, &he):
		if he.StatusCode >= 500 {
			return "http_5xx"
		}
		return "http_other"
	case errors.Is(err, bankstore.ErrMalformedResponse):
		return "malformed"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	}
	return "transport"
}
