package paycometrest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"
	_ "time/tzdata" // Europe/Madrid on machines without a zoneinfo database
)

// The payment queries the reconciler uses (contract section 11). They need
// a key with PAYCOMET's "Query" privilege only (RECONCILE_API_KEY).
var (
	epSearch = endpoint{name: "payments-search", path: "/v1/payments/search"}
)

// DateLayout is how PAYCOMET writes dates in search requests and answers:
// "YmdHis", read in Europe/Madrid (PAYCOMET is Spanish; the zone is not
// documented).
const DateLayout = "20060102150405"

// Madrid is the zone of PAYCOMET's dates.
var Madrid = func() *time.Location {
	l, err := time.LoadLocation("Europe/Madrid")
	if err != nil {
		panic("paycometrest: Europe/Madrid: " + err.Error()) // time/tzdata is linked in
	}
	return l
}()

// FormatDate writes t as PAYCOMET's yyyymmddhhmmss in Europe/Madrid.
func FormatDate(t time.Time) string { return t.In(Madrid).Format(DateLayout) }

// ParseDate reads PAYCOMET's yyyymmddhhmmss as Europe/Madrid time.
func ParseDate(s string) (time.Time, error) { return time.ParseInLocation(DateLayout, s, Madrid) }

// DefaultSearchLimit is PAYCOMET's own default for limit.
const DefaultSearchLimit = 10000

// Operation states of a search (the state filter and each row's state).
const (
	OperationFailed    = 0
	OperationSucceeded = 1
	OperationPending   = 2 // not finished (pending SCA/3DS)
)

// SearchRequest is one POST /v1/payments/search. From and To are both
// inclusive and sent at whole seconds in Europe/Madrid; a caller that wants
// half-open windows [a, b) sends To = b - 1s. PAYCOMET has no paging: an
// answer with Limit rows may have left some out.
type SearchRequest struct {
	Terminal   int
	Operations []int // operation types (the notifications' TransactionType)
	State      int   // OperationFailed, OperationSucceeded or OperationPending
	From, To   time.Time
	Currency   string // ISO 4217, required by PAYCOMET
	MinAmount  int64  // minor units; 0 by default
	MaxAmount  int64  // minor units; 0 means no upper bound (999999999999)
	Limit      int    // 0 means DefaultSearchLimit
	Order      string // optional merchant reference
	ExactOrder bool   // searchType 1 (exact) instead of 0 (LIKE %order%)
	// SortType and SortOrder: 1 (date) and "ASC" unless set.
	SortType  int
	SortOrder string
}

// noUpperAmount is sent as maxAmount when the caller gives none; the spec
// requires the member.
const noUpperAmount = 999999999999

// Validate checks the request before anything is sent.
func (r SearchRequest) Validate() error {
	var errs []error
	bad := func(key, reason string) {
		errs = append(errs, &InputError{Element: "search", Key: key, Reason: reason})
	}
	if r.Terminal <= 0 {
		bad("terminal", "must be a positive terminal number")
	}
	if len(r.Operations) == 0 {
		bad("operations", "at least one operation type is required")
	}
	for _, t := range r.Operations {
		if t <= 0 {
			bad("operations", "operation types are positive numbers")
			break
		}
	}
	if r.State < OperationFailed || r.State > OperationPending {
		bad("state", "must be 0 (failed), 1 (succeeded) or 2 (pending)")
	}
	if r.From.IsZero() || r.To.IsZero() || r.To.Before(r.From) {
		bad("fromDate", "from and to are required, to not before from")
	}
	if len(r.Currency) != 3 || strings.ToUpper(r.Currency) != r.Currency {
		bad("currency", "must be an ISO 4217 code such as EUR")
	}
	if r.MinAmount < 0 || r.MaxAmount < 0 || (r.MaxAmount > 0 && r.MaxAmount < r.MinAmount) {
		bad("maxAmount", "amounts are minor units, max not below min")
	}
	if r.Limit < 0 {
		bad("limit", "must not be negative")
	}
	return errors.Join(errs...)
}

type searchBody struct {
	Terminal   int    `json:"terminal"`
	SortType   int    `json:"sortType"`
	SortOrder  string `json:"sortOrder"`
	Operations []int  `json:"operations"`
	MinAmount  int64  `json:"minAmount"`
	MaxAmount  int64  `json:"maxAmount"`
	State      int    `json:"state"`
	FromDate   string `json:"fromDate"`
	ToDate     string `json:"toDate"`
	Currency   string `json:"currency"`
	Limit      int    `json:"limit"`
	Order      string `json:"order,omitempty"`
	SearchType *int   `json:"searchType,omitempty"`
}

func (r SearchRequest) body() searchBody {
	b := searchBody{Terminal: r.Terminal, SortType: r.SortType, SortOrder: r.SortOrder, Operations: r.Operations,
		MinAmount: r.MinAmount, MaxAmount: r.MaxAmount, State: r.State, FromDate: FormatDate(r.From),
		ToDate: FormatDate(r.To), Currency: r.Currency, Limit: r.Limit, Order: r.Order}
	if b.SortType == 0 {
		b.SortType = 1
	}
	if b.SortOrder == "" {
		b.SortOrder = "ASC"
	}
	if b.MaxAmount == 0 {
		b.MaxAmount = noUpperAmount
	}
	if b.Limit == 0 {
		b.Limit = DefaultSearchLimit
	}
	if r.Order != "" {
		st := 0
		if r.ExactOrder {
			st = 1
		}
		b.SearchType = &st
	}
	return b
}

// Operation is one row of a search answer (or info's payment and history
// entries), typed where the reconciler reads it. PAYCOMET's spec says some
// of these are integers and a public mock sends them as strings, so every
// member is read either way; Raw is the row exactly as PAYCOMET sent it.
type Operation struct {
	PaycometID       int64  // paycometId, PAYCOMET's id of the operation
	OperationID      int64  // operationId, the bank's reference
	MethodID         int    // 1 card
	Timestamp        string // yyyymmddhhmmss, Europe/Madrid
	SettlementDate   string
	Order            string
	OperationType    int // the notification's TransactionType
	OperationName    string
	State            int    // 0 failed, 1 succeeded, 2 pending
	StateName        string //
	Response         string // OK, KO, or UF/SF (pending)
	Terminal         int
	TerminalName     string
	User             string
	Amount           int64 // minor units
	Currency         string
	AmountDisplay    string
	ErrorCode        int // the operation's own error (why it failed), not the call's
	ErrorDescription string
	AuthCode         string
	CardBrand        string
	CardCountry      string
	Pan              string // masked
	Secure           string // "0" or "1"
	Raw              json.RawMessage
}

// Time is Timestamp as a time; an error when PAYCOMET sent none or another
// form.
func (o Operation) Time() (time.Time, error) {
	t, err := ParseDate(o.Timestamp)
	if err != nil {
		return time.Time{}, fmt.Errorf("paycometrest: operation %d: timestamp %q is not yyyymmddhhmmss", o.PaycometID, o.Timestamp)
	}
	return t, nil
}

type operationJSON struct {
	PaycometID       looseInt    `json:"paycometId"`
	OperationID      looseInt    `json:"operationId"`
	MethodID         looseInt    `json:"methodId"`
	Timestamp        looseString `json:"timestamp"`
	SettlementDate   looseString `json:"settlementDate"`
	Order            looseString `json:"order"`
	OperationType    looseInt    `json:"operationType"`
	OperationName    looseString `json:"operationName"`
	State            looseInt    `json:"state"`
	StateName        looseString `json:"stateName"`
	Response         looseString `json:"response"`
	Terminal         looseInt    `json:"terminal"`
	TerminalName     looseString `json:"terminalName"`
	User             looseString `json:"user"`
	Amount           looseInt    `json:"amount"`
	Currency         looseString `json:"currency"`
	AmountDisplay    looseString `json:"amountDisplay"`
	ErrorCode        looseInt    `json:"errorCode"`
	ErrorDescription looseString `json:"errorDescription"`
	AuthCode         looseString `json:"authCode"`
	CardBrand        looseString `json:"cardBrand"`
	CardCountry      looseString `json:"cardCountry"`
	Pan              looseString `json:"pan"`
	Secure           looseString `json:"secure"`
}

// UnmarshalJSON reads a row tolerantly and keeps it whole in Raw.
func (o *Operation) UnmarshalJSON(b []byte) error {
	var j operationJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*o = Operation{
		PaycometID: j.PaycometID.v, OperationID: j.OperationID.v, MethodID: int(j.MethodID.v),
		Timestamp: j.Timestamp.v, SettlementDate: j.SettlementDate.v, Order: j.Order.v,
		OperationType: int(j.OperationType.v), OperationName: j.OperationName.v, State: int(j.State.v),
		StateName: j.StateName.v, Response: strings.ToUpper(j.Response.v), Terminal: int(j.Terminal.v),
		TerminalName: j.TerminalName.v, User: j.User.v, Amount: j.Amount.v, Currency: strings.ToUpper(j.Currency.v),
		AmountDisplay: j.AmountDisplay.v, ErrorCode: int(j.ErrorCode.v), ErrorDescription: j.ErrorDescription.v,
		AuthCode: j.AuthCode.v, CardBrand: j.CardBrand.v, CardCountry: j.CardCountry.v, Pan: j.Pan.v,
		Secure: j.Secure.v, Raw: append(json.RawMessage(nil), b...),
	}
	return nil
}

// SearchAnswer is a search's rows. Truncated reports that PAYCOMET returned
// Limit rows, so more may exist: the caller must search a smaller window.
type SearchAnswer struct {
	Operations []Operation
	Limit      int
	Truncated  bool
}

// Search lists one terminal's operations of one state and currency in a
// time range. A non-zero errorCode is an *Error; HTTP 429 is waited out
// (Retry-After honoured) up to the client's rate-limit patience, see
// WithRateLimitWait.
func (c *Client) Search(ctx context.Context, r SearchRequest) (*SearchAnswer, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	b := r.body()
	data, err := c.postPatient(ctx, epSearch, b)
	if err != nil {
		return nil, err
	}
	var a struct {
		Operations []Operation `json:"operations"`
	}
	code, err := decode(epSearch, data, &a)
	if err != nil {
		return nil, err
	}
	if code != 0 {
		return nil, &Error{Op: epSearch.name, Status: http.StatusOK, Code: code}
	}
	return &SearchAnswer{Operations: a.Operations, Limit: b.Limit, Truncated: len(a.Operations) >= b.Limit}, nil
}

// OrderInfo is POST /v1/payments/{order}/info's payment: the order's
// operation and its history (refunds and the like). Raw is the payment
// object exactly as PAYCOMET returned it.
type OrderInfo struct {
	Payment Operation
	History []Operation
	Raw     json.RawMessage
}

// Info asks for one order's details on a terminal.
func (c *Client) Info(ctx context.Context, terminal int, order string) (*OrderInfo, error) {
	if terminal <= 0 {
		return nil, &InputError{Element: "info", Key: "terminal", Reason: "must be a positive terminal number"}
	}
	if order == "" || len(order) > 64 || strings.ContainsAny(order, "/?#%\\") || strings.ContainsFunc(order, func(r rune) bool { return r <= ' ' || r > '~' }) {
		return nil, &InputError{Element: "info", Key: "order", Reason: "must be 1 to 64 printable ASCII characters without '/', '?', '#', '%' or '\\'"}
	}
	ep := endpoint{name: "payments-info", path: "/v1/payments/" + order + "/info"}
	body := map[string]any{"payment": map[string]int{"terminal": terminal}}
	data, err := c.postPatient(ctx, ep, body)
	if err != nil {
		return nil, err
	}
	var a struct {
		Payment json.RawMessage `json:"payment"`
	}
	code, err := decode(ep, data, &a)
	if err != nil {
		return nil, err
	}
	if code != 0 {
		return nil, &Error{Op: ep.name, Status: http.StatusOK, Code: code}
	}
	if len(a.Payment) == 0 || bytes.Equal(a.Payment, []byte("null")) {
		return nil, fmt.Errorf("paycometrest: %s: %w: no payment", ep.name, ErrMalformedResponse)
	}
	var p struct {
		History []Operation `json:"history"`
	}
	info := &OrderInfo{Raw: a.Payment}
	if err := json.Unmarshal(a.Payment, &info.Payment); err != nil {
		return nil, fmt.Errorf("paycometrest: %s: %w: %v", ep.name, ErrMalformedResponse, jsonProblem(err))
	}
	if err := json.Unmarshal(a.Payment, &p); err != nil {
		return nil, fmt.Errorf("paycometrest: %s: %w: %v", ep.name, ErrMalformedResponse, jsonProblem(err))
	}
	info.History = p.History
	return info, nil
}

// RateLimitWait bounds how long a read call waits out HTTP 429 in all
// (WithRateLimitWait changes it). PAYCOMET documents no rate limit, so
// nothing says how long one lasts; past this the *HTTPError 429 is
// returned and the caller fails loudly.
const RateLimitWait = 10 * time.Minute

// defaultRetryAfter is the pause after a 429 without a usable Retry-After;
// it doubles on each further 429, up to maxRetryAfter.
const (
	defaultRetryAfter = time.Second
	maxRetryAfter     = time.Minute
)

// patience holds the per-client rate-limit settings. The IVR calls never
// use it (GetSession is never retried).
var patience sync.Map // *Client -> time.Duration

// WithRateLimitWait sets how long Search and Info wait out HTTP 429 in all
// before giving up; 0 gives up at the first 429.
func WithRateLimitWait(d time.Duration) Option {
	return func(c *Client) { patience.Store(c, d) }
}

func (c *Client) rateLimitWait() time.Duration {
	if v, ok := patience.Load(c); ok {
		return v.(time.Duration)
	}
	return RateLimitWait
}

// postPatient is post for read-only calls: an HTTP 429 is waited out,
// honouring Retry-After (seconds or an HTTP date), within the client's
// rate-limit patience and ctx. Any other outcome is post's.
func (c *Client) postPatient(ctx context.Context, ep endpoint, body any) ([]byte, error) {
	rec := &retryAfterRecorder{}
	cc := *c
	hc := *c.hc
	rec.next = hc.Transport
	if rec.next == nil {
		rec.next = http.DefaultTransport
	}
	hc.Transport = rec
	cc.hc = &hc
	budget := c.rateLimitWait()
	deadline := time.Now().Add(budget)
	pause := defaultRetryAfter
	for {
		data, err := cc.post(ctx, ep, body)
		var he *HTTPError
		if err == nil || !errors.As(err, &he) || he.Status != http.StatusTooManyRequests {
			return data, err
		}
		wait := rec.last()
		if wait <= 0 {
			wait = pause
			pause = min(pause*2, maxRetryAfter)
		}
		if time.Now().Add(wait).After(deadline) {
			return nil, fmt.Errorf("%w (rate limited for longer than %s)", err, budget)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("paycometrest: %s: waiting out HTTP 429: %w", ep.name, ctx.Err())
		case <-t.C:
		}
	}
}

// retryAfterRecorder notes the Retry-After of the last 429 answer.
type retryAfterRecorder struct {
	next http.RoundTripper
	mu   sync.Mutex
	wait time.Duration
}

func (r *retryAfterRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	res, err := r.next.RoundTrip(req)
	if err == nil && res.StatusCode == http.StatusTooManyRequests {
		r.mu.Lock()
		r.wait = parseRetryAfter(res.Header.Get("Retry-After"), time.Now())
		r.mu.Unlock()
	}
	return res, err
}

func (r *retryAfterRecorder) last() time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.wait
}

// parseRetryAfter reads Retry-After: delay-seconds or an HTTP date; 0 when
// absent or unreadable. A delay is capped at maxRetryAfter.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	var d time.Duration
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 {
			return 0
		}
		d = time.Duration(min(n, int64(maxRetryAfter/time.Second))) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	if d < 0 {
		return 0
	}
	return min(d, maxRetryAfter)
}

// looseInt is an integer PAYCOMET may send as a number, a string, an empty
// string or null (zero then).
type looseInt struct{ v int64 }

func (f *looseInt) UnmarshalJSON(b []byte) error {
	s := string(bytes.TrimSpace(b))
	if s == "null" || s == `""` {
		return nil
	}
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		s = strings.TrimSpace(s[1 : len(s)-1])
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		f.v = n
		return nil
	}
	// "12.0" from a float-minded serialiser is still an integer.
	if x, err := strconv.ParseFloat(s, 64); err == nil && x == float64(int64(x)) {
		f.v = int64(x)
		return nil
	}
	return &json.UnmarshalTypeError{Value: "value", Type: typeInt}
}

// looseString is text PAYCOMET may send as a string, a number or null.
type looseString struct{ v string }

func (f *looseString) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case string(b) == "null":
		return nil
	case len(b) > 0 && b[0] == '"':
		return json.Unmarshal(b, &f.v)
	case len(b) > 0 && (b[0] == '-' || (b[0] >= '0' && b[0] <= '9')):
		f.v = string(b)
		return nil
	case string(b) == "true" || string(b) == "false":
		f.v = string(b)
		return nil
	}
	return &json.UnmarshalTypeError{Value: "value", Type: typeString}
}

var typeString = reflect.TypeOf("")
