// Package bankstoretest is an in-process fake of PAYCOMET's BankStore XML
// service over real HTTP, for tests that must not reach PAYCOMET (the
// bankstore client's, the refresher's) and for demos (cmd/paycomet-fake).
//
// It speaks the same SOAP as the real service, checks every request's
// merchant code, terminal and signature with the formulas of the seed's
// Anexo I, keeps users, subscriptions, preauthorisations, charges and refunds
// in memory, and answers with PAYCOMET's error codes: 1003 for a wrong
// signature, 1001 for an unknown user, and so on (see the Code constants of
// package bankstore). Tests can make it fail on purpose (FailNext) and read
// back every call it received, in order (Calls).
//
// Two inputs the seed leaves to other PAYCOMET products are accepted as long
// as they are well formed: any JET token in add_user_token registers a
// standard test card, and any payment-by-reference identifier can be
// charged with execute_purchase_rtoken. Deferred preauthorisations are
// created through the web form in real life, so tests seed them with
// AddDeferredPreauthorization.
package bankstoretest

import (
	"bytes"
	"context"
	"crypto/hmac"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/paycomet-notify/paycomet-notify/bankstore"
	"github.com/paycomet-notify/paycomet-notify/secret"
)

// Config is the one terminal the fake serves.
type Config struct {
	MerchantCode string
	Terminal     string
	Password     string
	// OnCall, if set, sees every call once it has been answered (the demo
	// server prints them). It runs on the request's goroutine.
	OnCall func(Call)
}

// FailMode is a way to fail on purpose.
type FailMode int

// The failures FailNext can inject.
const (
	// FailHTTP500 answers 500 with a plain-text body and processes nothing.
	FailHTTP500 FailMode = iota + 1
	// FailSOAPFault answers 500 with a SOAP-ENV:Server fault and processes
	// nothing.
	FailSOAPFault
	// FailDelay processes the request, then holds the answer for the delay
	// set with SetDelay (2s by default): the operation happens even if the
	// client gives up, as with the real service.
	FailDelay
)

// String names the mode as the demo server prints it.
func (m FailMode) String() string {
	switch m {
	case FailHTTP500:
		return "http_500"
	case FailSOAPFault:
		return "soap_fault"
	case FailDelay:
		return "delay"
	}
	return ""
}

// Call is one request the fake received.
type Call struct {
	Op      bankstore.Operation
	IDUser  int64  // DS_IDUSER sent, or the one created (add_user, ...)
	Order   string // DS_MERCHANT_ORDER or DS_SUBSCRIPTION_ORDER sent
	ErrorID int    // DS_ERROR_ID answered; 0 when failed on purpose
	Failed  FailMode
	At      time.Time
}

// Server is a running fake.
type Server struct {
	// URL is the endpoint to give the client (BANKSTORE_URL).
	URL string

	cfg      Config
	password secret.Value
	ln       net.Listener
	hs       *http.Server
	closed   chan struct{}
	once     sync.Once
	served   sync.WaitGroup

	mu       sync.Mutex
	state    state
	failures []FailMode
	delay    time.Duration
	calls    []Call
}

// New returns a fake that only serves through ServeHTTP, for a server that
// mounts it beside other handlers (cmd/paycomet-fake); URL is left empty.
func New(cfg Config) (*Server, error) {
	if cfg.MerchantCode == "" || cfg.Terminal == "" || cfg.Password == "" {
		return nil, errors.New("bankstoretest: merchant code, terminal and password are required")
	}
	return &Server{
		cfg:      cfg,
		password: secret.New(cfg.Password),
		closed:   make(chan struct{}),
		delay:    2 * time.Second,
		state:    newState(),
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
		return nil, fmt.Errorf("bankstoretest: %w", err)
	}
	s.URL, s.ln = "http://"+ln.Addr().String()+"/gateway/xml-bankstore", ln
	s.hs = &http.Server{Handler: s, ReadHeaderTimeout: 5 * time.Second}
	s.served.Add(1)
	go func() {
		defer s.served.Done()
		s.hs.Serve(ln)
	}()
	return s, nil
}

// NewServer starts a fake on a free loopback port for one test and closes it
// at the test's cleanup.
func NewServer(t testing.TB, merchantCode, terminal, password string) *Server {
	t.Helper()
	s, err := Start("127.0.0.1:0", Config{MerchantCode: merchantCode, Terminal: terminal, Password: password})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// Close stops the server, cutting delayed answers short.
func (s *Server) Close() {
	s.once.Do(func() {
		close(s.closed)
		if s.hs != nil {
			s.hs.Close()
		}
		s.served.Wait()
	})
}

// Shutdown stops accepting and waits for answers in flight, up to ctx.
func (s *Server) Shutdown(ctx context.Context) error {
	var err error
	if s.hs != nil {
		err = s.hs.Shutdown(ctx)
	}
	s.Close()
	return err
}

// FailNext makes the next n requests fail with mode.
func (s *Server) FailNext(n int, mode FailMode) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.failures = append(s.failures, mode)
	}
}

// SetDelay sets how long FailDelay holds an answer.
func (s *Server) SetDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.delay = d
}

// Calls returns every request received so far, in order.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Call(nil), s.calls...)
}

// AddUser stores a card as user id with token, as if add_user had run.
// expiryMMYY is the card's expiry as mmyy.
func (s *Server) AddUser(id int64, token, pan, expiryMMYY string) error {
	var exp bankstore.CardExpiry
	if err := exp.UnmarshalText([]byte(expiryMMYY)); err != nil {
		return fmt.Errorf("bankstoretest: expiry: %w", err)
	}
	if id <= 0 || !tokenRE.MatchString(token) || !panRE.MatchString(pan) {
		return errors.New("bankstoretest: AddUser needs a positive id, a token of 1 to 20 letters or digits and a PAN of 16 to 19 digits")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.state.users[id] = newUser(id, token, pan, bankstore.YearMonth(exp))
	return nil
}

// DeleteUser forgets a user, as if it had been removed at PAYCOMET.
func (s *Server) DeleteUser(id int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.state.users, id)
	delete(s.state.subs, id)
}

// HasUser reports whether user id exists.
func (s *Server) HasUser(id int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.state.users[id]
	return ok
}

// AddDeferredPreauthorization holds amount on user id's card under order,
// as a deferred preauthorisation made through PAYCOMET's web form would.
func (s *Server) AddDeferredPreauthorization(idUser int64, order string, amount int64, currency string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.state.users[idUser]; !ok {
		return fmt.Errorf("bankstoretest: no user %d", idUser)
	}
	if _, dup := s.state.txns[order]; dup || !orderRE.MatchString(order) || amount <= 0 {
		return errors.New("bankstoretest: deferred preauthorisation needs a new order and a positive amount")
	}
	s.state.txns[order] = &txn{kind: kindDeferred, status: statusPending, idUser: idUser, order: order,
		amount: amount, currency: currency, authCode: randomString(upperDigits, 6)}
	return nil
}

// ServeHTTP answers one SOAP request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "BankStore takes SOAP requests by POST", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	if err != nil {
		writeFault(w, "SOAP-ENV:Client", "request body unreadable or too large")
		return
	}
	msg, err := bankstore.ReadMessage(bytes.NewReader(body))
	if err != nil {
		writeFault(w, "SOAP-ENV:Client", "Bad Request: not a SOAP envelope")
		return
	}
	op, ok := bankstore.ParseOperation(msg.Name)
	if !ok {
		writeFault(w, "SOAP-ENV:Server", fmt.Sprintf("Procedure '%s' not present", msg.Name))
		return
	}

	call := Call{Op: op, At: time.Now(), Order: msg.Elements["DS_MERCHANT_ORDER"]}
	if call.Order == "" {
		call.Order = msg.Elements["DS_SUBSCRIPTION_ORDER"]
	}
	call.IDUser, _ = strconv.ParseInt(msg.Elements["DS_IDUSER"], 10, 64)

	s.mu.Lock()
	var mode FailMode
	if len(s.failures) > 0 {
		mode, s.failures = s.failures[0], s.failures[1:]
	}
	delay := s.delay
	var out map[string]string
	if mode == 0 || mode == FailDelay {
		out, call.ErrorID = s.process(op, msg.Elements)
		if call.IDUser == 0 {
			call.IDUser, _ = strconv.ParseInt(out["DS_IDUSER"], 10, 64)
		}
	}
	call.Failed = mode
	s.calls = append(s.calls, call)
	s.mu.Unlock()
	if s.cfg.OnCall != nil {
		defer s.cfg.OnCall(call)
	}

	switch mode {
	case FailHTTP500:
		http.Error(w, "internal server error (injected)", http.StatusInternalServerError)
		return
	case FailSOAPFault:
		writeFault(w, "SOAP-ENV:Server", "Internal error (injected)")
		return
	case FailDelay:
		t := time.NewTimer(delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			return
		case <-s.closed:
			return
		}
	}
	writeAnswer(w, op, out, call.ErrorID)
}

// process checks the request's credentials and signature and runs it. It is
// called with s.mu held.
func (s *Server) process(op bankstore.Operation, el map[string]string) (map[string]string, int) {
	if el["DS_MERCHANT_MERCHANTCODE"] != s.cfg.MerchantCode || el["DS_MERCHANT_TERMINAL"] != s.cfg.Terminal {
		return nil, bankstore.CodeAccountNotFound
	}
	want := bankstore.Sign(op, el, s.password)
	if !hmac.Equal([]byte(el["DS_MERCHANT_MERCHANTSIGNATURE"]), []byte(want)) {
		return nil, bankstore.CodeInvalidSignature
	}
	for _, e := range op.RequestElements() {
		if e.Required && el[e.Name] == "" {
			return nil, bankstore.CodeInvalidParameter
		}
	}
	return s.state.run(op, el, time.Now())
}

const (
	soapHead = `<?xml version="1.0" encoding="UTF-8"?>` + "\n" +
		`<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/" xmlns:ns1="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:SOAP-ENC="http://schemas.xmlsoap.org/soap/encoding/" SOAP-ENV:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><SOAP-ENV:Body>`
	soapTail = `</SOAP-ENV:Body></SOAP-ENV:Envelope>`
)

// writeAnswer answers the way PAYCOMET's rpc/encoded service does: every
// response element of the operation, all empty except DS_ERROR_ID when the
// request failed.
func writeAnswer(w http.ResponseWriter, op bankstore.Operation, out map[string]string, code int) {
	var b bytes.Buffer
	b.WriteString(soapHead)
	fmt.Fprintf(&b, "<ns1:%sResponse>", op)
	for _, name := range op.ResponseElements() {
		v := out[name]
		if name == "DS_ERROR_ID" {
			v = strconv.Itoa(code)
		} else if code != 0 {
			v = ""
		}
		fmt.Fprintf(&b, `<%s xsi:type="xsd:string">`, name)
		xml.EscapeText(&b, []byte(v))
		fmt.Fprintf(&b, "</%s>", name)
	}
	fmt.Fprintf(&b, "</ns1:%sResponse>%s", op, soapTail)
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.Write(b.Bytes())
}

// writeFault answers a SOAP 1.1 fault, with status 500 as the standard says.
func writeFault(w http.ResponseWriter, code, text string) {
	var b bytes.Buffer
	b.WriteString(soapHead)
	b.WriteString("<SOAP-ENV:Fault><faultcode>")
	xml.EscapeText(&b, []byte(code))
	b.WriteString("</faultcode><faultstring>")
	xml.EscapeText(&b, []byte(text))
	b.WriteString("</faultstring></SOAP-ENV:Fault>")
	b.WriteString(soapTail)
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.WriteHeader(http.StatusInternalServerError)
	w.Write(b.Bytes())
}
