// Package paycomettest is an in-process fake of PAYCOMET REST over real HTTP,
// for tests that must not reach PAYCOMET (the paycometrest client's, `ivr`'s)
// and for demos (cmd/paycomet-fake).
//
// It is as strict as PAYCOMET's spec: every call must be a POST with
// Content-Type application/json and the right PAYCOMET-API-TOKEN (else 403
// {"errorCode": 1004}); the body must be one JSON object with exactly the
// members the call takes, each of the spec's JSON type (integers as JSON
// integers, ivrTransactionType as a string), the required ones present and
// the seed's bounds held, else HTTP 422 {errorCode: 127, error: {message,
// detail}} with one detail per problem naming the member.
//
// IVR sessions follow a Script chosen by the order's ending (see Script):
// they progress over time (digits typed, then OK, KO or a timeout), can be
// cancelled with session-cancel, and when one ends OK or KO the fake POSTs
// the payment's notification to Config.NotifyURL the way PAYCOMET does: a
// form body with the fields of paycomet-notifications.md section 4, signed
// with formula A (types 1, 3, 9) or B (107) with the terminal's password.
//
// Where PAYCOMET's behaviour is not published the fake chooses, and says so:
// 127 in a 422, 1130 for a terminal the key does not cover, 1026 for an order
// already used, ivrResponse false with state 5 for an unknown session, no
// notification after a timeout or cancel.
package paycomettest

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/paycomet-notify/paycomet-notify/paycometrest"
)

// Config is what the fake serves.
type Config struct {
	// APIKey is the only PAYCOMET-API-TOKEN accepted.
	APIKey string
	// MerchantCode and Terminals (number to password) sign the
	// notifications; a terminal not listed is refused.
	MerchantCode string
	Terminals    map[string]string
	// ProviderID is the IVR provider the key may use (else 1206), and
	// Stations the station ids it has (empty: any; else 1258).
	ProviderID int
	Stations   []string
	// NotifyURL receives the notification of every session that ends OK or
	// KO; empty sends none.
	NotifyURL string
	// Step is one step of a Script; default 500ms.
	Step time.Duration
	// DefaultSessionTimeout applies when get-session gives no
	// ivrSessionTimeout; default 120s.
	DefaultSessionTimeout time.Duration
	// OnCall and OnNotify, if set, see every call once answered and every
	// notification once posted (the demo server prints them).
	OnCall   func(Call)
	OnNotify func(Notification)
}

// Call is one request the fake received.
type Call struct {
	Op        string // "get-session", "session-state", "session-cancel", or the path
	Order     string // ivrMerchantOrder sent, if readable
	Status    int    // HTTP status answered
	ErrorCode int    // errorCode answered
	Body      []byte // the request body as received
	At        time.Time
}

// Notification is one notification the fake posted.
type Notification struct {
	Order    string // the Order field posted
	Type     string // TransactionType
	Response string // OK or KO
	Status   int    // the receiver's HTTP status; 0 when it could not be reached
	Err      string // why it could not be delivered
	Attempts int
	At       time.Time
}

// Server is a fake PAYCOMET REST service. It is an http.Handler; Start also
// listens.
type Server struct {
	// URL is the base URL to give the client (PAYCOMET_REST_URL) once
	// Start has run.
	URL string

	cfg  Config
	hc   *http.Client
	ln   net.Listener
	hs   *http.Server
	once sync.Once
	wg   sync.WaitGroup // notifications in flight and the listener
	quit chan struct{}

	mu       sync.Mutex
	sessions map[string]*session // by terminal + "/" + order
	calls    []Call
	notes    []Notification
	closed   bool
	pay      payments // payment search and info (payments.go)
}

// New returns a fake that serves through ServeHTTP.
func New(cfg Config) (*Server, error) {
	if cfg.APIKey == "" || cfg.MerchantCode == "" || len(cfg.Terminals) == 0 || cfg.ProviderID == 0 {
		return nil, errors.New("paycomettest: API key, merchant code, terminals and provider id are required")
	}
	if cfg.Step <= 0 {
		cfg.Step = 500 * time.Millisecond
	}
	if cfg.DefaultSessionTimeout <= 0 {
		cfg.DefaultSessionTimeout = 120 * time.Second
	}
	return &Server{
		cfg:      cfg,
		hc:       &http.Client{Timeout: 10 * time.Second},
		quit:     make(chan struct{}),
		sessions: map[string]*session{},
	}, nil
}

// Start runs a fake on addr ("127.0.0.1:0" picks a free port) until Close.
func Start(addr string, cfg Config) (*Server, error) {
	s, err := New(cfg)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("paycomettest: %w", err)
	}
	s.ln, s.URL = ln, "http://"+ln.Addr().String()
	s.hs = &http.Server{Handler: s, ReadHeaderTimeout: 5 * time.Second}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.hs.Serve(ln)
	}()
	return s, nil
}

// NewServer starts a fake on a free loopback port for one test and closes
// it at the test's cleanup.
func NewServer(t testing.TB, cfg Config) *Server {
	t.Helper()
	s, err := Start("127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// Close stops the listener, the sessions' timers and notifications in
// flight, and waits for them.
func (s *Server) Close() {
	s.once.Do(func() {
		s.mu.Lock()
		s.closed = true
		for _, se := range s.sessions {
			if se.timer != nil {
				se.timer.Stop()
			}
		}
		s.mu.Unlock()
		close(s.quit)
		if s.hs != nil {
			s.hs.Close()
		}
		s.wg.Wait()
	})
}

// Shutdown stops accepting, waits for answers in flight up to ctx, then
// closes.
func (s *Server) Shutdown(ctx context.Context) error {
	var err error
	if s.hs != nil {
		err = s.hs.Shutdown(ctx)
	}
	s.Close()
	return err
}

// Calls returns every request received so far, in order.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Call(nil), s.calls...)
}

// CallsTo returns the requests to one call ("session-cancel"...).
func (s *Server) CallsTo(op string) []Call {
	var out []Call
	for _, c := range s.Calls() {
		if c.Op == op {
			out = append(out, c)
		}
	}
	return out
}

// Notifications returns every notification posted so far, in order.
func (s *Server) Notifications() []Notification {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Notification(nil), s.notes...)
}

// member is one JSON member a call takes.
type member struct {
	key      string
	integer  bool // else string
	required bool
}

// The members of each call, from PAYCOMET's generated client
// (spazious/paycomet-client ivr_getsession_body.py and friends), including
// the provider data fields with the spec's own typo vrProviderData02.
var (
	getSessionMembers = []member{
		{"terminal", true, true}, {"ivrProviderId", true, true}, {"ivrStationId", false, true},
		{"ivrMerchantAmount", true, true}, {"ivrMerchantCurrency", false, true},
		{"ivrMerchantOrder", false, true}, {"ivrMerchantLanguage", false, true},
		{"ivrTransactionType", false, true}, {"ivrMerchantConcept", false, false},
		{"ivrSubscriptionStartdate", false, false}, {"ivrSubscriptionEnddate", false, false},
		{"ivrSubscriptionPeriodicity", true, false}, {"ivrMaxRetries", true, false},
		{"ivrSessionTimeout", true, false}, {"ivrCallbackStationTimeout", false, false},
		{"ivrCallbackStationOk", false, false}, {"ivrCallbackStationKo", false, false},
		{"ivrCallerPhoneNumber", false, false}, {"ivrProviderData01", false, false},
		{"vrProviderData02", false, false}, {"ivrProviderData03", false, false},
		{"ivrProviderData04", false, false}, {"ivrProviderData05", false, false},
	}
	sessionRefMembers = []member{
		{"terminal", true, true}, {"ivrProviderId", true, true}, {"ivrMerchantOrder", false, true},
	}
)

// codeValidation is the errorCode of the fake's 422 answers; PAYCOMET's
// own is not published.
const codeValidation = 127

// Codes the fake answers with where PAYCOMET's choice is not published.
const (
	codeForbidden     = 1004 // wrong or missing API key
	codeNoTerminal    = 1130 // terminal not covered by the key ("Product not found")
	codeDuplicateOrde = 1026 // order already used
)

// ServeHTTP answers one REST call.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.servePayments(w, r) {
		return
	}
	var op string
	var members []member
	switch r.URL.Path {
	case "/v1/ivr/get-session":
		op, members = "get-session", getSessionMembers
	case "/v1/ivr/session-state":
		op, members = "session-state", sessionRefMembers
	case "/v1/ivr/session-cancel":
		op, members = "session-cancel", sessionRefMembers
	default:
		s.record(Call{Op: r.URL.Path, Status: http.StatusNotFound, At: time.Now()})
		http.NotFound(w, r)
		return
	}
	x, ok := s.admit(w, r, Call{Op: op})
	if !ok {
		return
	}
	call, answer, body := &x.call, x.answer, x.call.Body
	fields, problems := checkMembers(body, members)
	call.Order, _ = fields["ivrMerchantOrder"].(string)
	if len(problems) > 0 {
		call.ErrorCode = codeValidation
		answer(http.StatusUnprocessableEntity, validation(problems...))
		return
	}
	var out map[string]any
	switch op {
	case "get-session":
		out, problems = s.getSession(fields)
	case "session-state":
		out = s.sessionState(fields)
	case "session-cancel":
		out = s.sessionCancel(fields)
	}
	if len(problems) > 0 {
		call.ErrorCode = codeValidation
		answer(http.StatusUnprocessableEntity, validation(problems...))
		return
	}
	call.ErrorCode, _ = out["errorCode"].(int)
	answer(http.StatusOK, out)
}

// exchange is one admitted REST call: the call as it will be recorded, and
// the writer its answer goes to.
type exchange struct {
	s    *Server
	w    http.ResponseWriter
	call Call
}

// answer records the call with status and writes v as JSON.
func (x *exchange) answer(status int, v any) {
	x.call.Status = status
	x.s.record(x.call)
	x.w.Header().Set("Content-Type", "application/json")
	x.w.WriteHeader(status)
	json.NewEncoder(x.w).Encode(v)
}

// admit checks what every PAYCOMET REST call needs, as PAYCOMET does: POST,
// the API key (403 otherwise), a JSON body of at most 1 MiB (422). A refusal
// is answered and recorded here and ok is false; otherwise the exchange holds
// the body in call.Body.
func (s *Server) admit(w http.ResponseWriter, r *http.Request, call Call) (*exchange, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	call.Body, call.At = body, time.Now()
	x := &exchange{s: s, w: w, call: call}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		x.call.Status = http.StatusMethodNotAllowed
		s.record(x.call)
		http.Error(w, "PAYCOMET REST takes POST", http.StatusMethodNotAllowed)
		return nil, false
	}
	if got := r.Header.Get(paycometrest.HeaderAPIToken); subtle.ConstantTimeCompare([]byte(got), []byte(s.cfg.APIKey)) != 1 {
		x.call.ErrorCode = codeForbidden
		x.answer(http.StatusForbidden, map[string]int{"errorCode": codeForbidden})
		return nil, false
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		x.call.ErrorCode = codeValidation
		x.answer(http.StatusUnprocessableEntity, validation("Content-Type must be application/json"))
		return nil, false
	}
	if err != nil {
		x.call.ErrorCode = codeValidation
		x.answer(http.StatusUnprocessableEntity, validation("body unreadable or larger than 1 MiB"))
		return nil, false
	}
	return x, true
}

func (s *Server) record(c Call) {
	s.mu.Lock()
	s.calls = append(s.calls, c)
	s.mu.Unlock()
	if s.cfg.OnCall != nil {
		s.cfg.OnCall(c)
	}
}

// validation is the body of a 422.
func validation(detail ...string) map[string]any {
	return map[string]any{
		"errorCode": codeValidation,
		"error":     map[string]any{"message": "Validation error", "detail": detail},
	}
}

// checkMembers reads body as one JSON object and checks it against the
// call's members. Integers come back as int64, strings as string.
func checkMembers(body []byte, members []member) (map[string]any, []string) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var raw map[string]json.RawMessage
	if err := dec.Decode(&raw); err != nil || raw == nil {
		return nil, []string{"the body must be one JSON object"}
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, []string{"the body must be one JSON object"}
	}
	known := map[string]member{}
	for _, m := range members {
		known[m.key] = m
	}
	var problems []string
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	fields := map[string]any{}
	for _, k := range keys {
		m, ok := known[k]
		if !ok {
			problems = append(problems, k+": unknown member")
			continue
		}
		v := bytes.TrimSpace(raw[k])
		if m.integer {
			n, err := strconv.ParseInt(string(v), 10, 64)
			if err != nil {
				problems = append(problems, k+": must be an integer")
				continue
			}
			fields[k] = n
			continue
		}
		var str string
		if len(v) == 0 || v[0] != '"' || json.Unmarshal(v, &str) != nil {
			problems = append(problems, k+": must be a string")
			continue
		}
		fields[k] = str
	}
	for _, m := range members {
		if _, ok := raw[m.key]; m.required && !ok {
			problems = append(problems, m.key+": required")
		}
	}
	return fields, problems
}
