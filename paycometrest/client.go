package paycometrest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/paycomet-notify/paycomet-notify/secret"
)

// DefaultURL is PAYCOMET's REST base URL (PAYCOMET_REST_URL's default).
const DefaultURL = "https://rest.paycomet.com"

// HeaderAPIToken carries the API key on every call.
const HeaderAPIToken = "PAYCOMET-API-TOKEN"

// DefaultTimeout bounds a call when no *http.Client is injected. PAYCOMET's
// plugins wait 120 s; an agent on the phone should not wait that long.
const DefaultTimeout = 30 * time.Second

// maxAnswerBytes caps what is read of an answer; PAYCOMET's IVR answers are
// a few hundred bytes, a search answer of 10000 operations a few megabytes.
const maxAnswerBytes = 16 << 20

// Client calls PAYCOMET REST with one API key. It is safe for concurrent use.
type Client struct {
	base *url.URL
	key  secret.Value
	hc   *http.Client
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient sends requests through hc, whose Timeout bounds each call.
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.hc = hc } }

// New returns a client for the REST base URL (PAYCOMET_REST_URL) that
// authenticates with apiKey (PAYCOMET_API_KEY or RECONCILE_API_KEY).
func New(baseURL string, apiKey secret.Value, opts ...Option) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		// The URL is not echoed: a mis-pasted one may hold the key.
		return nil, errors.New("paycometrest: the REST URL is not an http(s) URL without credentials, query or fragment")
	}
	if apiKey.IsZero() {
		return nil, errors.New("paycometrest: the API key is empty")
	}
	for _, r := range apiKey.Reveal() {
		if r <= ' ' || r > '~' {
			return nil, errors.New("paycometrest: the API key holds a space, control or non-ASCII character")
		}
	}
	u.Path = strings.TrimRight(u.Path, "/")
	c := &Client{base: u, key: apiKey, hc: &http.Client{Timeout: DefaultTimeout}}
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

// endpoint is one REST call: its name in errors and its path.
type endpoint struct {
	name string
	path string
}

// post sends body as JSON to ep and returns the body of a 2xx answer. Every
// other outcome is an error: *ValidationError (422), *Error (a 4xx with an
// errorCode), *HTTPError, or the transport's error.
func (c *Client) post(ctx context.Context, ep endpoint, body any) ([]byte, error) {
	payload, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("paycometrest: %s: encoding the request: %w", ep.name, err)
	}
	u := *c.base
	u.Path += ep.path
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(payload))
	if err != nil {
		return nil, fmt.Errorf("paycometrest: %s: %w", ep.name, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set(HeaderAPIToken, c.key.Reveal())
	res, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("paycometrest: %s: %w", ep.name, c.scrubbed(err))
	}
	defer res.Body.Close()
	data, err := io.ReadAll(io.LimitReader(res.Body, maxAnswerBytes+1))
	if err != nil {
		return nil, fmt.Errorf("paycometrest: %s: reading the answer: %w", ep.name, c.scrubbed(err))
	}
	if len(data) > maxAnswerBytes {
		return nil, fmt.Errorf("paycometrest: %s: %w: larger than %d bytes", ep.name, ErrMalformedResponse, maxAnswerBytes)
	}
	switch {
	case res.StatusCode >= 200 && res.StatusCode <= 299:
		return data, nil
	case res.StatusCode == http.StatusUnprocessableEntity:
		return nil, c.validationError(ep, data)
	case res.StatusCode >= 400 && res.StatusCode <= 499:
		var e struct {
			ErrorCode *flexInt `json:"errorCode"`
		}
		if json.Unmarshal(data, &e) == nil && e.ErrorCode != nil && e.ErrorCode.v != 0 {
			return nil, &Error{Op: ep.name, Status: res.StatusCode, Code: int(e.ErrorCode.v)}
		}
	}
	return nil, &HTTPError{Op: ep.name, Status: res.StatusCode}
}

// validationError reads a 422 body. One that does not parse is still
// PAYCOMET refusing the request, so it stays a *ValidationError.
func (c *Client) validationError(ep endpoint, data []byte) *ValidationError {
	var body struct {
		ErrorCode flexInt `json:"errorCode"`
		Error     struct {
			Message string            `json:"message"`
			Detail  []json.RawMessage `json:"detail"`
		} `json:"error"`
	}
	v := &ValidationError{Op: ep.name}
	if json.Unmarshal(data, &body) != nil {
		return v
	}
	v.Code = int(body.ErrorCode.v)
	v.Message = c.scrub(body.Error.Message)
	for _, d := range body.Error.Detail {
		var s string
		if json.Unmarshal(d, &s) != nil {
			var b bytes.Buffer
			if json.Compact(&b, d) != nil {
				continue
			}
			s = b.String()
		}
		v.Detail = append(v.Detail, c.scrub(s))
	}
	return v
}

// decode reads a 2xx answer into out and returns its errorCode. A body that
// does not parse, or has no numeric errorCode, is ErrMalformedResponse.
func decode(ep endpoint, data []byte, out any) (int, error) {
	var head struct {
		ErrorCode *flexInt `json:"errorCode"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return 0, fmt.Errorf("paycometrest: %s: %w: %v", ep.name, ErrMalformedResponse, jsonProblem(err))
	}
	if head.ErrorCode == nil {
		return 0, fmt.Errorf("paycometrest: %s: %w: no errorCode", ep.name, ErrMalformedResponse)
	}
	if err := json.Unmarshal(data, out); err != nil {
		return 0, fmt.Errorf("paycometrest: %s: %w: %v", ep.name, ErrMalformedResponse, jsonProblem(err))
	}
	return int(head.ErrorCode.v), nil
}

// jsonProblem describes a decoding error without quoting the answer.
func jsonProblem(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return "not valid JSON at offset " + strconv.FormatInt(syn.Offset, 10)
	case errors.As(err, &typ):
		return typ.Field + " is not a " + typ.Type.String()
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "truncated JSON"
	}
	return "unreadable JSON"
}

// scrub removes the API key from text that leaves the client.
func (c *Client) scrub(s string) string {
	if k := c.key.Reveal(); k != "" {
		s = strings.ReplaceAll(s, k, "[redacted]")
	}
	return s
}

// scrubbed wraps err so its text has the API key removed while errors.Is
// and errors.As still see through it (context.DeadlineExceeded, *url.Error).
func (c *Client) scrubbed(err error) error { return &scrubbedError{err: err, c: c} }

type scrubbedError struct {
	err error
	c   *Client
}

func (e *scrubbedError) Error() string { return e.c.scrub(e.err.Error()) }
func (e *scrubbedError) Unwrap() error { return e.err }

// flexInt is an integer in an answer. PAYCOMET's spec says integer, but a
// public mock of it sends some numbers as strings, so both are read.
type flexInt struct{ v int64 }

func (f *flexInt) UnmarshalJSON(b []byte) error {
	s := string(b)
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		s = s[1 : len(s)-1]
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return &json.UnmarshalTypeError{Value: "value", Type: typeInt}
	}
	f.v = n
	return nil
}

// flexBool is a boolean in an answer: true/false, or 1/0 as number or
// string (the seed's IVR_RESPONSE is [0-1]).
type flexBool struct{ v bool }

func (f *flexBool) UnmarshalJSON(b []byte) error {
	switch string(b) {
	case "true", "1", `"1"`, `"true"`:
		f.v = true
	case "false", "0", `"0"`, `"false"`:
		f.v = false
	default:
		return &json.UnmarshalTypeError{Value: "value", Type: typeBool}
	}
	return nil
}

var (
	typeInt  = reflect.TypeOf(int64(0))
	typeBool = reflect.TypeOf(false)
)
