package paycomettest

import (
	"strings"
	"time"

	"github.com/paycomet-notify/paycomet-notify/paycometrest"
)

// Script is how a fake session unfolds, chosen by the order's ending (in
// capitals or not):
//
//	...KO       the caller types the card (16 digits), the expiry (4) and the
//	            CVC (3), the payment is refused: state 3 (KO), result 1,
//	            and a KO notification is posted (ErrorID 105)
//	...TIMEOUT  the caller types 6 card digits and stops: state 4 (timed out)
//	            ten steps after the start; no notification
//	...HOLD     the call never comes: state 0 (waiting) until the session is
//	            cancelled or its ivrSessionTimeout runs out (state 4)
//	anything else (OK)
//	            as KO, but the payment is authorised: state 2 (OK) and an OK
//	            notification
//
// One step is Config.Step (500 ms by default): OK and KO end 16 steps (8 s)
// after the start.
type Script string

// The scripts.
const (
	ScriptOK      Script = "ok"
	ScriptKO      Script = "ko"
	ScriptTimeout Script = "timeout"
	ScriptHold    Script = "hold"
)

// ScriptFor is the script an order runs.
func ScriptFor(order string) Script {
	o := strings.ToUpper(order)
	switch {
	case strings.HasSuffix(o, "TIMEOUT"):
		return ScriptTimeout
	case strings.HasSuffix(o, "HOLD"):
		return ScriptHold
	case strings.HasSuffix(o, "KO"):
		return ScriptKO
	}
	return ScriptOK
}

// Steps after the start at which the scripts end.
const (
	endStepPayment = 16
	endStepTimeout = 10
)

// snapshot is what session-state reports.
type snapshot struct {
	state          paycometrest.SessionState
	result         paycometrest.SessionResult
	errorCode      int
	pan, exp, cvc  int
	sessionSeconds int // time left, in seconds
}

// at is the script's state n whole steps after the start; ended reports
// that the script has reached its final state.
func (s Script) at(n int) (snap snapshot, ended bool) {
	switch s {
	case ScriptHold:
		return snapshot{state: paycometrest.StateWaiting}, false
	case ScriptTimeout:
		if n >= endStepTimeout {
			return snapshot{state: paycometrest.StateTimedOut, pan: 6}, true
		}
		if n < 2 {
			return snapshot{state: paycometrest.StateWaiting}, false
		}
		return snapshot{state: paycometrest.StateProcessing, pan: min(6, (n-1)*2)}, false
	}
	if n >= endStepPayment {
		if s == ScriptKO {
			return snapshot{state: paycometrest.StateKO, result: paycometrest.ResultPayment, errorCode: 105, pan: 16, exp: 4, cvc: 3}, true
		}
		return snapshot{state: paycometrest.StateOK, pan: 16, exp: 4, cvc: 3}, true
	}
	switch {
	case n < 2:
		return snapshot{state: paycometrest.StateWaiting}, false
	case n < 10:
		return snapshot{state: paycometrest.StateProcessing, pan: (n - 1) * 2}, false
	case n < 12:
		return snapshot{state: paycometrest.StateProcessing, pan: 16, exp: (n - 9) * 2}, false
	case n < 15:
		return snapshot{state: paycometrest.StateProcessing, pan: 16, exp: 4, cvc: n - 11}, false
	}
	return snapshot{state: paycometrest.StateProcessing, pan: 16, exp: 4, cvc: 3}, false
}

// endAfter is when the script ends by itself, or 0 when it never does.
func (s Script) endAfter(step time.Duration) time.Duration {
	switch s {
	case ScriptHold:
		return 0
	case ScriptTimeout:
		return endStepTimeout * step
	}
	return endStepPayment * step
}
