package paycometrest

import (
	"context"
	"fmt"
	"time"
)

// The IVR calls (contract section 10). They need a key with PAYCOMET's
// "Authorization" privilege.
var (
	epGetSession    = endpoint{name: "get-session", path: "/v1/ivr/get-session"}
	epSessionState  = endpoint{name: "session-state", path: "/v1/ivr/session-state"}
	epSessionCancel = endpoint{name: "session-cancel", path: "/v1/ivr/session-cancel"}
)

// TransactionType is what an IVR session does; the notification that
// reports its result carries the same TransactionType. PAYCOMET's generated
// clients send it as a JSON string.
type TransactionType string

// The four types the seed's Appendix I authorises.
const (
	TypeAuthorization    TransactionType = "1"
	TypePreauthorization TransactionType = "3"
	TypeSubscription     TransactionType = "9"
	TypeCardRegistration TransactionType = "107"
)

// Valid reports whether t is one of the four types.
func (t TransactionType) Valid() bool {
	switch t {
	case TypeAuthorization, TypePreauthorization, TypeSubscription, TypeCardRegistration:
		return true
	}
	return false
}

// Meaning is the seed's name of the type.
func (t TransactionType) Meaning() string {
	switch t {
	case TypeAuthorization:
		return "Authorisation"
	case TypePreauthorization:
		return "Pre-authorisation"
	case TypeSubscription:
		return "Subscription"
	case TypeCardRegistration:
		return "Bankstore user registration"
	}
	return "not an IVR transaction type"
}

// SessionState is ivrSessionState (IVR_SESSION_STATE).
type SessionState int

// The states of the seed's get_ivr_sessionstate.
const (
	StateWaiting    SessionState = 0 // waiting for the call
	StateProcessing SessionState = 1 // the caller is entering the card
	StateOK         SessionState = 2 // finished, OK
	StateKO         SessionState = 3 // finished, KO
	StateTimedOut   SessionState = 4 // communication time exceeded
	StateNotFound   SessionState = 5 // reference not found
	StateCancelled  SessionState = 6 // operation cancelled by the agent
	StateCallEnded  SessionState = 7 // call ended, waiting for the next call
)

// String is a short name for progress lines.
func (s SessionState) String() string {
	switch s {
	case StateWaiting:
		return "waiting"
	case StateProcessing:
		return "processing"
	case StateOK:
		return "ok"
	case StateKO:
		return "ko"
	case StateTimedOut:
		return "timed_out"
	case StateNotFound:
		return "not_found"
	case StateCancelled:
		return "cancelled"
	case StateCallEnded:
		return "call_ended"
	}
	return fmt.Sprintf("state_%d", int(s))
}

// Meaning is the seed's description of the state.
func (s SessionState) Meaning() string {
	switch s {
	case StateWaiting:
		return "Waiting"
	case StateProcessing:
		return "Processing"
	case StateOK:
		return "Finalised. OK"
	case StateKO:
		return "Finalised. KO"
	case StateTimedOut:
		return "Communication time exceeded"
	case StateNotFound:
		return "Reference not found"
	case StateCancelled:
		return "Operation cancelled by the agent"
	case StateCallEnded:
		return "Call ended. Waiting for next call"
	}
	return "Unknown state"
}

// Final reports whether the session can no longer change: OK, KO, timed
// out, not found or cancelled. State 7 is not final: the session waits for
// the next call.
func (s SessionState) Final() bool {
	switch s {
	case StateOK, StateKO, StateTimedOut, StateNotFound, StateCancelled:
		return true
	}
	return false
}

// SessionResult is ivrSessionResult (IVR_SESSION_RESULT): what went wrong.
type SessionResult int

// The results of the seed's get_ivr_sessionstate.
const (
	ResultNone        SessionResult = 0 // no error
	ResultPayment     SessionResult = 1 // payment operation error
	ResultCardData    SessionResult = 2 // error entering card data
	ResultExpiryMonth SessionResult = 3 // error entering expiration month
	ResultExpiryYear  SessionResult = 4 // error entering expiration year
	ResultCVV         SessionResult = 5 // error entering CVV
)

// Meaning is the seed's description of the result.
func (r SessionResult) Meaning() string {
	switch r {
	case ResultNone:
		return "No error"
	case ResultPayment:
		return "Payment operation error"
	case ResultCardData:
		return "Error entering card data"
	case ResultExpiryMonth:
		return "Error entering expiration month"
	case ResultExpiryYear:
		return "Error entering expiration year"
	case ResultCVV:
		return "Error entering CVV"
	}
	return "Unknown result"
}

// SessionRequest starts an IVR session (get_ivr_session). Amount is in minor
// units of Currency. Subscription is required for TypeSubscription and
// refused for the other types.
type SessionRequest struct {
	Terminal   int    // ivrMerchantTerminal's REST form: terminal
	ProviderID int    // IVR_PROVIDER_ID, [0-9]{1,6}
	StationID  string // IVR_STATION_ID
	Amount     int64  // IVR_MERCHANT_AMOUNT, 0 to 99999999; 0 for 107
	Currency   string // IVR_MERCHANT_CURRENCY, ISO 4217
	Order      string // IVR_MERCHANT_ORDER, [A-Za-z0-9]{1,20}
	Language   string // IVR_MERCHANT_LANGUAGE, ISO 639-1
	Type       TransactionType
	Concept    string // IVR_MERCHANT_CONCEPT, optional

	Subscription *Subscription

	MaxRetries     *int // IVR_MAX_RETRIES, 0 to 9, optional
	SessionTimeout *int // IVR_SESSION_TIMEOUT in seconds, 0 to 999, optional

	CallbackStationTimeout string // IVR_CALLBACK_STATION_TIMEOUT ("same": the caller's extension)
	CallbackStationOK      string // IVR_CALLBACK_STATION_OK
	CallbackStationKO      string // IVR_CALLBACK_STATION_KO
	CallerPhoneNumber      string // IVR_CALLER_PHONE_NUMBER
}

// Subscription is the schedule of a TypeSubscription session.
type Subscription struct {
	Start           string // IVR_SUBSCRIPTION_STARTDATE, YYYY-MM-DD
	End             string // IVR_SUBSCRIPTION_ENDDATE, after Start, at most 5 years after it
	PeriodicityDays int    // IVR_SUBSCRIPTION_PERIODICITY, 1 to 365
}

// SessionRef names an existing session (session-state, session-cancel).
type SessionRef struct {
	Terminal   int
	ProviderID int
	Order      string
}

// SessionAnswer is get-session's answer.
type SessionAnswer struct {
	ErrorCode int  // IVR_ERROR_ID
	Created   bool // IVR_RESPONSE: the session was established
}

// SessionStatus is session-state's answer.
type SessionStatus struct {
	ErrorCode    int  // IVR_ERROR_ID; with StateKO it says why
	Found        bool // IVR_RESPONSE
	State        SessionState
	Result       SessionResult
	TimeLeft     time.Duration // IVR_TIME_LEFT; informational (spec and seed disagree on when it is 0)
	DigitsPAN    int           // card digits entered so far
	DigitsExpiry int           // expiry digits entered so far
	DigitsCVC    int           // CVC digits entered so far
}

// CancelAnswer is session-cancel's answer.
type CancelAnswer struct {
	ErrorCode int  // IVR_ERROR_ID
	Cancelled bool // IVR_RESPONSE
	State     SessionState
}

// The JSON bodies, member by member as PAYCOMET's generated clients
// (ivr_getsession_body.py, ivr_sessionstate_body.py,
// ivr_sessioncancel_body.py) send them: unset optional members are left out.
type getSessionBody struct {
	Terminal                  int    `json:"terminal"`
	IvrProviderID             int    `json:"ivrProviderId"`
	IvrStationID              string `json:"ivrStationId"`
	IvrMerchantAmount         int64  `json:"ivrMerchantAmount"`
	IvrMerchantCurrency       string `json:"ivrMerchantCurrency"`
	IvrMerchantOrder          string `json:"ivrMerchantOrder"`
	IvrMerchantLanguage       string `json:"ivrMerchantLanguage"`
	IvrTransactionType        string `json:"ivrTransactionType"`
	IvrMerchantConcept        string `json:"ivrMerchantConcept,omitempty"`
	IvrSubscriptionStartdate  string `json:"ivrSubscriptionStartdate,omitempty"`
	IvrSubscriptionEnddate    string `json:"ivrSubscriptionEnddate,omitempty"`
	IvrSubscriptionPeriodic   *int   `json:"ivrSubscriptionPeriodicity,omitempty"`
	IvrMaxRetries             *int   `json:"ivrMaxRetries,omitempty"`
	IvrSessionTimeout         *int   `json:"ivrSessionTimeout,omitempty"`
	IvrCallbackStationTimeout string `json:"ivrCallbackStationTimeout,omitempty"`
	IvrCallbackStationOk      string `json:"ivrCallbackStationOk,omitempty"`
	IvrCallbackStationKo      string `json:"ivrCallbackStationKo,omitempty"`
	IvrCallerPhoneNumber      string `json:"ivrCallerPhoneNumber,omitempty"`
}

type sessionRefBody struct {
	Terminal         int    `json:"terminal"`
	IvrProviderID    int    `json:"ivrProviderId"`
	IvrMerchantOrder string `json:"ivrMerchantOrder"`
}

type getSessionAnswer struct {
	IvrResponse *flexBool `json:"ivrResponse"`
}

type sessionStateAnswer struct {
	IvrResponse      *flexBool `json:"ivrResponse"`
	IvrSessionState  *flexInt  `json:"ivrSessionState"`
	IvrSessionResult flexInt   `json:"ivrSessionResult"`
	IvrTimeLeft      flexInt   `json:"ivrTimeLeft"`
	IvrDigitPan      flexInt   `json:"ivrDigitPan"`
	IvrDigitExp      flexInt   `json:"ivrDigitExp"`
	IvrDigitCvc      flexInt   `json:"ivrDigitCvc"`
}

type sessionCancelAnswer struct {
	IvrResponse     *flexBool `json:"ivrResponse"`
	IvrSessionState *flexInt  `json:"ivrSessionState"`
}

// GetSession starts an IVR session: PAYCOMET's voice system takes the call
// and collects the card. It is sent once and never retried. The answer is
// returned whenever PAYCOMET gave a readable one, also with an *Error or
// ErrResponseFalse.
func (c *Client) GetSession(ctx context.Context, r SessionRequest) (*SessionAnswer, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	data, err := c.post(ctx, epGetSession, r.body())
	if err != nil {
		return nil, err
	}
	var a getSessionAnswer
	code, err := decode(epGetSession, data, &a)
	if err != nil {
		return nil, err
	}
	out := &SessionAnswer{ErrorCode: code}
	if code != 0 {
		return out, &Error{Op: epGetSession.name, Status: 200, Code: code}
	}
	if a.IvrResponse == nil {
		return nil, fmt.Errorf("paycometrest: %s: %w: no ivrResponse", epGetSession.name, ErrMalformedResponse)
	}
	out.Created = a.IvrResponse.v
	if !out.Created {
		return out, fmt.Errorf("paycometrest: %s: the session was not established: %w", epGetSession.name, ErrResponseFalse)
	}
	return out, nil
}

// SessionState reads a session's state. With errorCode not 0 the status is
// returned with an *Error (a KO session says why this way); with ivrResponse
// false, with ErrResponseFalse and State StateNotFound unless PAYCOMET
// said otherwise.
func (c *Client) SessionState(ctx context.Context, ref SessionRef) (*SessionStatus, error) {
	if err := ref.Validate(); err != nil {
		return nil, err
	}
	data, err := c.post(ctx, epSessionState, ref.body())
	if err != nil {
		return nil, err
	}
	var a sessionStateAnswer
	code, err := decode(epSessionState, data, &a)
	if err != nil {
		return nil, err
	}
	st := &SessionStatus{
		ErrorCode:    code,
		State:        StateNotFound,
		Result:       SessionResult(a.IvrSessionResult.v),
		TimeLeft:     time.Duration(a.IvrTimeLeft.v) * time.Second,
		DigitsPAN:    int(a.IvrDigitPan.v),
		DigitsExpiry: int(a.IvrDigitExp.v),
		DigitsCVC:    int(a.IvrDigitCvc.v),
	}
	if a.IvrResponse != nil {
		st.Found = a.IvrResponse.v
	}
	if a.IvrSessionState != nil {
		st.State = SessionState(a.IvrSessionState.v)
	}
	switch {
	case code != 0:
		return st, &Error{Op: epSessionState.name, Status: 200, Code: code}
	case a.IvrResponse == nil:
		return nil, fmt.Errorf("paycometrest: %s: %w: no ivrResponse", epSessionState.name, ErrMalformedResponse)
	case !st.Found:
		return st, fmt.Errorf("paycometrest: %s: the session was not found: %w", epSessionState.name, ErrResponseFalse)
	case a.IvrSessionState == nil:
		return nil, fmt.Errorf("paycometrest: %s: %w: no ivrSessionState", epSessionState.name, ErrMalformedResponse)
	}
	return st, nil
}

// SessionCancel ends a session at PAYCOMET (the agent's cancel).
func (c *Client) SessionCancel(ctx context.Context, ref SessionRef) (*CancelAnswer, error) {
	if err := ref.Validate(); err != nil {
		return nil, err
	}
	data, err := c.post(ctx, epSessionCancel, ref.body())
	if err != nil {
		return nil, err
	}
	var a sessionCancelAnswer
	code, err := decode(epSessionCancel, data, &a)
	if err != nil {
		return nil, err
	}
	out := &CancelAnswer{ErrorCode: code, State: StateNotFound}
	if a.IvrSessionState != nil {
		out.State = SessionState(a.IvrSessionState.v)
	}
	if a.IvrResponse != nil {
		out.Cancelled = a.IvrResponse.v
	}
	switch {
	case code != 0:
		return out, &Error{Op: epSessionCancel.name, Status: 200, Code: code}
	case a.IvrResponse == nil:
		return nil, fmt.Errorf("paycometrest: %s: %w: no ivrResponse", epSessionCancel.name, ErrMalformedResponse)
	case !out.Cancelled:
		return out, fmt.Errorf("paycometrest: %s: the session was not cancelled: %w", epSessionCancel.name, ErrResponseFalse)
	}
	return out, nil
}

func (r SessionRequest) body() getSessionBody {
	b := getSessionBody{
		Terminal:                  r.Terminal,
		IvrProviderID:             r.ProviderID,
		IvrStationID:              r.StationID,
		IvrMerchantAmount:         r.Amount,
		IvrMerchantCurrency:       r.Currency,
		IvrMerchantOrder:          r.Order,
		IvrMerchantLanguage:       r.Language,
		IvrTransactionType:        string(r.Type),
		IvrMerchantConcept:        r.Concept,
		IvrMaxRetries:             r.MaxRetries,
		IvrSessionTimeout:         r.SessionTimeout,
		IvrCallbackStationTimeout: r.CallbackStationTimeout,
		IvrCallbackStationOk:      r.CallbackStationOK,
		IvrCallbackStationKo:      r.CallbackStationKO,
		IvrCallerPhoneNumber:      r.CallerPhoneNumber,
	}
	if s := r.Subscription; s != nil {
		b.IvrSubscriptionStartdate, b.IvrSubscriptionEnddate = s.Start, s.End
		p := s.PeriodicityDays
		b.IvrSubscriptionPeriodic = &p
	}
	return b
}

func (r SessionRef) body() sessionRefBody {
	return sessionRefBody{Terminal: r.Terminal, IvrProviderID: r.ProviderID, IvrMerchantOrder: r.Order}
}
