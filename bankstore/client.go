package bankstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/paycomet-notify/paycomet-notify/secret"
)

// Credentials identify one PAYCOMET terminal. Every request carries the
// merchant code and terminal and is signed with the password, which only
// hashing ever reads.
type Credentials struct {
	MerchantCode string
	Terminal     string
	Password     secret.Value
}

// Client calls BankStore XML for one terminal. It is safe for concurrent use.
type Client struct {
	endpoint     string
	cred         Credentials
	hc           *http.Client
	infoAttempts int
	infoBackoff  time.Duration
	fixedIP      netip.Addr

	ipMu       sync.Mutex
	detectedIP netip.Addr
}

// DefaultTimeout bounds a call when no *http.Client is injected.
const DefaultTimeout = 30 * time.Second

// maxResponseBytes caps what is read of an answer; BankStore's are a few
// hundred bytes.
const maxResponseBytes = 1 << 20

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient sends requests through hc, whose Timeout (and Transport's)
// bound each attempt. The default has DefaultTimeout.
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.hc = hc } }

// WithOriginalIP sets the DS_ORIGINAL_IP sent when a request leaves it empty.
// Without it the client uses the IPv4 address this host reaches the
// endpoint from.
func WithOriginalIP(ip netip.Addr) Option { return func(c *Client) { c.fixedIP = ip } }

// WithInfoUserRetry sets how often info_user, the only read-only operation,
// is tried on a transport error, a 5xx answer, a SOAP fault or an unreadable
// answer, and the first pause between tries (doubled each time). The
// default is 3 attempts from 200ms; attempts 1 turns retrying off.
func WithInfoUserRetry(attempts int, backoff time.Duration) Option {
	return func(c *Client) { c.infoAttempts, c.infoBackoff = max(attempts, 1), backoff }
}

// New returns a client for the BankStore endpoint (BANKSTORE_URL).
func New(endpoint string, cred Credentials, opts ...Option) (*Client, error) {
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("bankstore: endpoint %q is not an http(s) URL", endpoint)
	}
	if err := checkFormat(elemMerchantCode, cred.MerchantCode); err != nil {
		return nil, fmt.Errorf("bankstore: merchant code: %w", err)
	}
	if err := checkFormat(elemTerminal, cred.Terminal); err != nil {
		return nil, fmt.Errorf("bankstore: terminal: %w", err)
	}
	if cred.Password.IsZero() {
		return nil, errors.New("bankstore: terminal password is empty")
	}
	c := &Client{
		endpoint:     endpoint,
		cred:         cred,
		hc:           &http.Client{Timeout: DefaultTimeout},
		infoAttempts: 3,
		infoBackoff:  200 * time.Millisecond,
	}
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

// Call is the untyped form of every operation, the one the command line
// uses: elems are the request elements keyed by the seed's names, as text,
// without the merchant code, terminal and signature (the client adds them).
// It returns every element of the answer by name, also when the answer is a
// PAYCOMET error (an *Error), so it can be shown whole.
func (c *Client) Call(ctx context.Context, op Operation, elems map[string]string) (map[string]string, error) {
	s, ok := lookup(op)
	if !ok {
		return nil, fmt.Errorf("bankstore: unknown operation %q", op)
	}
	req := reflect.New(s.req)
	if err := decodeRequest(op, elems, req.Elem()); err != nil {
		return nil, err
	}
	return c.do(ctx, op, req.Interface(), reflect.New(s.resp).Interface())
}

// call is the body of every typed method.
func call[Resp any](ctx context.Context, c *Client, op Operation, req any) (*Resp, error) {
	resp := new(Resp)
	if _, err := c.do(ctx, op, req, resp); err != nil {
		return nil, err
	}
	return resp, nil
}

// do checks, signs and sends one request and reads its answer into resp. It
// returns the answer's elements.
func (c *Client) do(ctx context.Context, op Operation, req, resp any) (map[string]string, error) {
	s, ok := lookup(op)
	if !ok {
		return nil, fmt.Errorf("bankstore: unknown operation %q", op)
	}
	rv := reflect.ValueOf(req).Elem()
	if rv.Type() != s.req || reflect.TypeOf(resp).Elem() != s.resp {
		panic(fmt.Sprintf("bankstore: %s takes %s and answers %s", op, s.req, s.resp))
	}
	body, secrets, err := c.envelope(ctx, s, rv)
	if err != nil {
		return nil, err
	}

	attempts := 1
	if op == OpInfoUser {
		attempts = c.infoAttempts
	}
	var elems map[string]string
	for try := 1; ; try++ {
		elems, err = c.post(ctx, op, body, secrets)
		if err == nil || try >= attempts || !retryable(err) || !pause(ctx, c.infoBackoff<<(try-1)) {
			break
		}
	}
	if err == nil {
		err = readAnswer(op, elems, reflect.ValueOf(resp).Elem())
	}
	var business *Error
	if err != nil && s.movesMoney && !errors.As(err, &business) {
		err = fmt.Errorf("%w; %w", err, ErrOutcomeUnknown)
	}
	return elems, err
}

// envelope checks the request, fills DS_ORIGINAL_IP, signs, and writes the
// SOAP envelope. It also returns the request's secret values.
func (c *Client) envelope(ctx context.Context, s *spec, rv reflect.Value) ([]byte, []string, error) {
	elems, secrets, problems := encodeRequest(s.op, rv)
	if cc, ok := rv.Addr().Interface().(crossChecker); ok {
		problems = append(problems, cc.crossCheck(s.op, NewDate(time.Now()))...)
	}
	if err := errors.Join(problems...); err != nil {
		return nil, nil, err
	}
	values := map[string]string{elemMerchantCode: c.cred.MerchantCode, elemTerminal: c.cred.Terminal}
	for i := range elems {
		if elems[i].name == elemOriginalIP && elems[i].value == "" {
			ip, err := c.originalIP(ctx)
			if err != nil {
				return nil, nil, fmt.Errorf("bankstore: %s: DS_ORIGINAL_IP not given and this host's IPv4 address not found: %w", s.op, err)
			}
			elems[i].value = ip.String()
		}
		values[elems[i].name] = elems[i].value
	}
	out := []element{
		{name: elemMerchantCode, value: c.cred.MerchantCode, xsd: "string"},
		{name: elemTerminal, value: c.cred.Terminal, xsd: "string"},
	}
	for _, e := range elems {
		out = append(out, e)
		if e.name == s.sigAfter {
			out = append(out, element{name: elemSignature, value: Sign(s.op, values, c.cred.Password), xsd: "string"})
		}
	}
	return writeEnvelope(s.op, out), secrets, nil
}

// post sends one attempt and returns the answer's elements.
func (c *Client) post(ctx context.Context, op Operation, body []byte, secrets []string) (map[string]string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("bankstore: %s: %w", op, err)
	}
	req.Header.Set("Content-Type", "text/xml; charset=utf-8")
	req.Header.Set("SOAPAction", soapAction(op))
	res, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("bankstore: %s: %w", op, err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(io.LimitReader(res.Body, maxResponseBytes+1))
	if err != nil {
		return nil, fmt.Errorf("bankstore: %s: reading the answer: %w", op, err)
	}
	if len(data) > maxResponseBytes {
		return nil, fmt.Errorf("bankstore: %s: %w: larger than %d bytes", op, ErrMalformedResponse, maxResponseBytes)
	}
	msg, err := ReadMessage(bytes.NewReader(data))
	// SOAP 1.1 sends faults with status 500, so a fault is recognised first.
	var f *FaultError
	if errors.As(err, &f) {
		f.Op, f.String = op, scrub(f.String, secrets)
		return nil, f
	}
	if res.StatusCode < 200 || res.StatusCode > 299 {
		return nil, &HTTPError{Op: op, StatusCode: res.StatusCode}
	}
	if err != nil {
		return nil, fmt.Errorf("bankstore: %s: %w", op, err)
	}
	return msg.Elements, nil
}

// readAnswer turns DS_ERROR_ID into an *Error and decodes the rest.
func readAnswer(op Operation, elems map[string]string, resp reflect.Value) error {
	if text := elems[elemErrorID]; text != "" {
		code, err := strconv.Atoi(text)
		if err != nil || code < 0 {
			return fmt.Errorf("bankstore: %s: %w: DS_ERROR_ID is not a number", op, ErrMalformedResponse)
		}
		if code != 0 {
			return &Error{Op: op, Code: code}
		}
	}
	return decodeResponse(op, elems, resp)
}

// retryable says whether info_user may try again after err.
func retryable(err error) bool {
	var h *HTTPError
	if errors.As(err, &h) {
		return h.StatusCode >= 500
	}
	var b *Error
	var in *InputError
	return !errors.As(err, &b) && !errors.As(err, &in)
}

// pause waits d unless ctx ends first; it reports whether to go on.
func pause(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// originalIP is the default DS_ORIGINAL_IP: the configured one, or the IPv4
// address this host uses towards the endpoint. "Dialling" UDP sends nothing;
// it only asks the kernel for the route.
func (c *Client) originalIP(ctx context.Context) (netip.Addr, error) {
	if c.fixedIP.IsValid() {
		return c.fixedIP, nil
	}
	c.ipMu.Lock()
	defer c.ipMu.Unlock()
	if c.detectedIP.IsValid() {
		return c.detectedIP, nil
	}
	u, err := url.Parse(c.endpoint)
	if err != nil {
		return netip.Addr{}, err
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "udp4", net.JoinHostPort(u.Hostname(), port))
	if err != nil {
		return netip.Addr{}, err
	}
	defer conn.Close()
	ip := conn.LocalAddr().(*net.UDPAddr).AddrPort().Addr().Unmap()
	if !ip.Is4() {
		return netip.Addr{}, errors.New("no IPv4 route to the endpoint")
	}
	c.detectedIP = ip
	return ip, nil
}

var digitRun = regexp.MustCompile(`[0-9]+`)

// scrub removes the request's secret values (PAN, CVV2) from text the server
// sent, in case it echoes them.
func scrub(s string, secrets []string) string {
	for _, v := range secrets {
		if len(v) >= 12 {
			s = strings.ReplaceAll(s, v, "[redacted]")
		}
	}
	return digitRun.ReplaceAllStringFunc(s, func(run string) string {
		for _, v := range secrets {
			if run == v {
				return "[redacted]"
			}
		}
		return run
	})
}
