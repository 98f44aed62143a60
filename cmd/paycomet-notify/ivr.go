package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/paycomet-notify/paycomet-notify/config"
	"github.com/paycomet-notify/paycomet-notify/events"
	"github.com/paycomet-notify/paycomet-notify/internal/service"
	"github.com/paycomet-notify/paycomet-notify/paycometrest"
	"github.com/paycomet-notify/paycomet-notify/secret"
)

const ivrUsage = `usage: paycomet-notify ivr start|state|cancel [--terminal N] [--timeout D] [--demo] < request.json
       paycomet-notify ivr pay [--order O] [--amount N] [--currency C] [--type T] [--language L]
                               [--station S] [--provider P] [--wait D] [--json < request.json] [--demo]

IVR phone payments over PAYCOMET REST (contract section 10): an agent starts
a session for an order, PAYCOMET's voice system collects the caller's card
from the keypad, and the result arrives as an ordinary notification.

start, state and cancel read one JSON object of the seed's elements with
string values on standard input, for example
  {"IVR_MERCHANT_ORDER": "A1", "IVR_MERCHANT_AMOUNT": "1999", "IVR_MERCHANT_CURRENCY": "EUR",
   "IVR_MERCHANT_LANGUAGE": "ES", "IVR_TRANSACTION_TYPE": "1"}
and print the answer as one JSON object under the seed's names (IVR_RESPONSE,
IVR_SESSION_STATE, IVR_SESSION_RESULT, IVR_TIME_LEFT, IVR_DIGIT_PAN,
IVR_DIGIT_EXP, IVR_DIGIT_CVC, IVR_ERROR_ID).

pay starts a session, follows it on standard error, cancels it at PAYCOMET
on Ctrl-C, then prints the payment's event from NATS on standard output.

Configuration: PAYCOMET_API_KEY (a REST key with the Authorization
privilege), PAYCOMET_REST_URL, PAYCOMET_MERCHANT_CODE, PAYCOMET_TERMINALS,
IVR_PROVIDER_ID and IVR_STATION_ID (standard input wins), and for pay
NATS_URL and SUBJECT_PREFIX. --demo fills what is unset with the demo
terminal and the demo key, provider and station of paycomet-fake, whose URL
(` + paycometrest.DemoURL + `) it uses unless PAYCOMET_REST_URL is set.

Exit status: 0 success (pay: the payment's event is ok); 2 PAYCOMET answered
but not with success (errorCode not 0, HTTP 422 or 403, IVR_RESPONSE 0; pay:
the payment failed, the session was cancelled, timed out or not found, or no
event came in time); 1 bad input or configuration, nothing sent; 3 no usable
answer (timeout, HTTP 5xx, unreadable).
`

// Exit codes of `ivr` (contract section 10).
const (
	ivrExitOK       = 0
	ivrExitInput    = 1
	ivrExitRefused  = 2
	ivrExitNoAnswer = 3
)

// ivrElements are the seed's request elements each call takes.
var ivrElements = map[string][]string{
	"start": {"IVR_PROVIDER_ID", "IVR_STATION_ID", "IVR_MERCHANT_CODE", "IVR_MERCHANT_TERMINAL",
		"IVR_MERCHANT_AMOUNT", "IVR_MERCHANT_CURRENCY", "IVR_MERCHANT_ORDER", "IVR_MERCHANT_LANGUAGE",
		"IVR_TRANSACTION_TYPE", "IVR_MERCHANT_CONCEPT", "IVR_SUBSCRIPTION_STARTDATE", "IVR_SUBSCRIPTION_ENDDATE",
		"IVR_SUBSCRIPTION_PERIODICITY", "IVR_MAX_RETRIES", "IVR_SESSION_TIMEOUT", "IVR_CALLBACK_STATION_TIMEOUT",
		"IVR_CALLBACK_STATION_OK", "IVR_CALLBACK_STATION_KO", "IVR_CALLER_PHONE_NUMBER"},
	"state":  {"IVR_PROVIDER_ID", "IVR_MERCHANT_CODE", "IVR_MERCHANT_TERMINAL", "IVR_MERCHANT_ORDER"},
	"cancel": {"IVR_PROVIDER_ID", "IVR_MERCHANT_CODE", "IVR_MERCHANT_TERMINAL", "IVR_MERCHANT_ORDER"},
}

// runIVR is `paycomet-notify ivr`.
func runIVR(ctx context.Context, args []string, env map[string]string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, ivrUsage)
		return ivrExitInput
	}
	switch args[0] {
	case "start", "state", "cancel":
		return runIVRCall(ctx, args[0], args[1:], env, stdin, stdout, stderr)
	case "pay":
		return runIVRPay(ctx, args[1:], env, stdin, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, ivrUsage)
		return ivrExitOK
	}
	fmt.Fprintf(stderr, "paycomet-notify ivr: unknown call %q\n\n%s", args[0], ivrUsage)
	return ivrExitInput
}

// ivrSetup is what every ivr call needs from the environment.
type ivrSetup struct {
	cfg       config.Config
	client    *paycometrest.Client
	terminal  string
	provider  string // IVR_PROVIDER_ID from the environment (or the demo's)
	station   string // IVR_STATION_ID from the environment (or the demo's)
	restShown string
}

// newIVRSetup reads the configuration. PAYCOMET_API_KEY, PAYCOMET_REST_URL,
// IVR_PROVIDER_ID and IVR_STATION_ID are read here from the same injected
// environment as config.Load (contract section 3).
func newIVRSetup(env map[string]string, demoMode bool, terminal, elemTerminal, elemMerchant string, timeout time.Duration) (*ivrSetup, error) {
	cfg, err := config.Load(env, nil)
	if err != nil {
		return nil, err
	}
	if demoMode {
		cfg.ApplyDemo()
	}
	if err := cfg.RequireTerminals(); err != nil {
		return nil, err
	}
	if elemTerminal != "" {
		if terminal != "" && terminal != elemTerminal {
			return nil, errors.New("IVR_MERCHANT_TERMINAL and --terminal name different terminals")
		}
		terminal = elemTerminal
	}
	term, _, err := chooseTerminal(cfg.Terminals, terminal)
	if err != nil {
		return nil, fmt.Errorf("IVR_MERCHANT_TERMINAL: %w", err)
	}
	if elemMerchant != "" && elemMerchant != cfg.MerchantCode {
		return nil, errors.New("IVR_MERCHANT_CODE is not PAYCOMET_MERCHANT_CODE")
	}
	s := &ivrSetup{cfg: cfg, terminal: term, provider: env["IVR_PROVIDER_ID"], station: env["IVR_STATION_ID"]}
	key := secret.New(env["PAYCOMET_API_KEY"])
	restURL := env["PAYCOMET_REST_URL"]
	if demoMode {
		if key.IsZero() {
			key = secret.New(paycometrest.DemoAPIKey)
		}
		if restURL == "" {
			restURL = paycometrest.DemoURL
		}
		if s.provider == "" {
			s.provider = strconv.Itoa(paycometrest.DemoProviderID)
		}
		if s.station == "" {
			s.station = paycometrest.DemoStationID
		}
	}
	if key.IsZero() {
		return nil, errors.New("set PAYCOMET_API_KEY (a PAYCOMET REST API key with the Authorization privilege), or run with --demo")
	}
	if restURL == "" {
		restURL = paycometrest.DefaultURL
	}
	s.restShown = secret.RedactURL(restURL)
	if s.client, err = paycometrest.New(restURL, key, paycometrest.WithHTTPClient(&http.Client{Timeout: timeout})); err != nil {
		return nil, fmt.Errorf("PAYCOMET_REST_URL or PAYCOMET_API_KEY: %w", err)
	}
	return s, nil
}

// runIVRCall is `ivr start|state|cancel`.
func runIVRCall(ctx context.Context, call string, args []string, env map[string]string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("ivr "+call, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	terminal := fs.String("terminal", "", "terminal `number` when several are configured")
	timeout := fs.Duration("timeout", paycometrest.DefaultTimeout, "how long to wait for PAYCOMET's answer")
	demoMode := fs.Bool("demo", false, "use the demo terminal and paycomet-fake's key, provider, station and URL where unset")
	prefix := "paycomet-notify ivr " + call + ": "
	fail := func(code int, format string, a ...any) int {
		fmt.Fprintf(stderr, prefix+format+"\n", a...)
		return code
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, ivrUsage)
			return ivrExitOK
		}
		return fail(ivrExitInput, "%v", err)
	}
	if fs.NArg() > 0 {
		return fail(ivrExitInput, "unexpected argument %q (the request is read from standard input)", fs.Arg(0))
	}
	elems, err := readIVRElements(stdin, ivrElements[call])
	if err != nil {
		return fail(ivrExitInput, "%v", err)
	}
	s, err := newIVRSetup(env, *demoMode, *terminal, elems["IVR_MERCHANT_TERMINAL"], elems["IVR_MERCHANT_CODE"], *timeout)
	if err != nil {
		return fail(ivrExitInput, "%v", err)
	}

	answer, err := s.do(ctx, call, elems)
	var in *paycometrest.InputError
	switch {
	case errors.As(err, &in) || errors.Is(err, errBadElement):
		return fail(ivrExitInput, "%s", inputMessage(err))
	case err == nil:
		writeIVRAnswer(stdout, answer)
		return ivrExitOK
	case paycometrest.IsAnswer(err):
		writeIVRAnswer(stdout, answer)
		fmt.Fprintf(stderr, "paycomet-notify ivr %s: %s\n", call, refusal(err))
		return ivrExitRefused
	}
	return fail(ivrExitNoAnswer, "no usable answer from PAYCOMET REST (%s): %v", s.restShown, err)
}

// do makes one call and returns its answer under the seed's names: also
// with a PAYCOMET refusal, nil without a usable answer.
func (s *ivrSetup) do(ctx context.Context, call string, elems map[string]string) (map[string]string, error) {
	if call == "start" {
		req, err := s.sessionRequest(elems)
		if err != nil {
			return nil, err
		}
		a, err := s.client.GetSession(ctx, req)
		if a == nil && !paycometrest.IsAnswer(err) {
			return nil, err
		}
		out := map[string]string{"IVR_RESPONSE": "0", "IVR_ERROR_ID": strconv.Itoa(errorID(err))}
		if a != nil && a.Created {
			out["IVR_RESPONSE"] = "1"
		}
		return out, err
	}
	ref, err := s.sessionRef(elems)
	if err != nil {
		return nil, err
	}
	if call == "state" {
		st, err := s.client.SessionState(ctx, ref)
		switch {
		case st != nil:
			return map[string]string{
				"IVR_RESPONSE": boolDigit(st.Found), "IVR_SESSION_STATE": strconv.Itoa(int(st.State)),
				"IVR_SESSION_RESULT": strconv.Itoa(int(st.Result)), "IVR_TIME_LEFT": strconv.Itoa(int(st.TimeLeft / time.Second)),
				"IVR_DIGIT_PAN": strconv.Itoa(st.DigitsPAN), "IVR_DIGIT_EXP": strconv.Itoa(st.DigitsExpiry),
				"IVR_DIGIT_CVC": strconv.Itoa(st.DigitsCVC), "IVR_ERROR_ID": strconv.Itoa(st.ErrorCode),
			}, err
		case paycometrest.IsAnswer(err):
			return map[string]string{"IVR_RESPONSE": "0", "IVR_ERROR_ID": strconv.Itoa(errorID(err))}, err
		}
		return nil, err
	}
	ca, err := s.client.SessionCancel(ctx, ref)
	switch {
	case ca != nil:
		return map[string]string{"IVR_RESPONSE": boolDigit(ca.Cancelled), "IVR_SESSION_STATE": strconv.Itoa(int(ca.State)), "IVR_ERROR_ID": strconv.Itoa(ca.ErrorCode)}, err
	case paycometrest.IsAnswer(err):
		return map[string]string{"IVR_RESPONSE": "0", "IVR_ERROR_ID": strconv.Itoa(errorID(err))}, err
	}
	return nil, err
}

// inputMessage lists the input problems, one per line, without the
// client package's prefix.
func inputMessage(err error) string {
	return strings.ReplaceAll(err.Error(), "paycometrest: ", "")
}

// errorID is the IVR_ERROR_ID of a refusal: its errorCode, 0 otherwise.
func errorID(err error) int {
	var e *paycometrest.Error
	var v *paycometrest.ValidationError
	switch {
	case errors.As(err, &e):
		return e.Code
	case errors.As(err, &v):
		return v.Code
	}
	return 0
}

// refusal is the line a person reads on standard error: the code and its
// meaning, and PAYCOMET's own text for a 422.
func refusal(err error) string {
	var e *paycometrest.Error
	var v *paycometrest.ValidationError
	switch {
	case errors.As(err, &e):
		return fmt.Sprintf("PAYCOMET error %d: %s", e.Code, e.Meaning())
	case errors.As(err, &v):
		msg := fmt.Sprintf("PAYCOMET refused the request (HTTP 422), error %d: %s", v.Code, paycometrest.ErrorMeaning(v.Code))
		if v.Message != "" {
			msg += ": " + v.Message
		}
		if len(v.Detail) > 0 {
			msg += " (" + strings.Join(v.Detail, "; ") + ")"
		}
		return msg
	}
	return strings.TrimPrefix(err.Error(), "paycometrest: ")
}

func boolDigit(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

func writeIVRAnswer(w io.Writer, answer map[string]string) {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	enc.Encode(answer)
}

// errBadElement marks input errors found before the client's own checks.
var errBadElement = errors.New("bad element")

type elementError struct{ name, reason string }

func (e *elementError) Error() string { return e.name + ": " + e.reason }
func (e *elementError) Unwrap() error { return errBadElement }

// readIVRElements reads standard input: one JSON object whose members are
// the call's element names with string values. Values are never repeated
// in errors.
func readIVRElements(r io.Reader, allowed []string) (map[string]string, error) {
	raw, err := readJSONObject(r, `standard input is not a JSON object of IVR elements with string values, such as {"IVR_MERCHANT_ORDER": "A1"}`)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	ok := map[string]bool{}
	for _, a := range allowed {
		ok[a] = true
	}
	names := make([]string, 0, len(raw))
	for name := range raw {
		names = append(names, name)
	}
	sort.Strings(names)
	var errs []error
	for _, name := range names {
		if !ok[name] {
			errs = append(errs, &elementError{name, "not an element of this call (it takes " + strings.Join(allowed, ", ") + ")"})
			continue
		}
		var v string
		if err := json.Unmarshal(raw[name], &v); err != nil {
			errs = append(errs, &elementError{name, "must be a JSON string"})
			continue
		}
		out[name] = v
	}
	return out, errors.Join(errs...)
}

// number reads a digits-only element; absent gives def.
func number(elems map[string]string, name string, def int64, errs *[]error) int64 {
	v, ok := elems[name]
	if !ok || v == "" {
		return def
	}
	for _, r := range v {
		if r < '0' || r > '9' {
			*errs = append(*errs, &elementError{name, "must be digits only"})
			return def
		}
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n > 1e12 {
		*errs = append(*errs, &elementError{name, "is too large"})
		return def
	}
	return n
}

func (s *ivrSetup) providerID(elems map[string]string, errs *[]error) int {
	if _, ok := elems["IVR_PROVIDER_ID"]; !ok && s.provider != "" {
		elems["IVR_PROVIDER_ID"] = s.provider
	}
	if elems["IVR_PROVIDER_ID"] == "" {
		*errs = append(*errs, &elementError{"IVR_PROVIDER_ID", "required (or set IVR_PROVIDER_ID in the environment)"})
		return 0
	}
	return int(number(elems, "IVR_PROVIDER_ID", 0, errs))
}

func (s *ivrSetup) terminalNumber() int {
	n, _ := strconv.Atoi(s.terminal)
	return n
}

// sessionRequest turns start's elements into the typed request; the client
// checks the seed's bounds.
func (s *ivrSetup) sessionRequest(elems map[string]string) (paycometrest.SessionRequest, error) {
	var errs []error
	if _, ok := elems["IVR_STATION_ID"]; !ok && s.station != "" {
		elems["IVR_STATION_ID"] = s.station
	}
	r := paycometrest.SessionRequest{
		Terminal:   s.terminalNumber(),
		ProviderID: s.providerID(elems, &errs),
		StationID:  elems["IVR_STATION_ID"], Currency: elems["IVR_MERCHANT_CURRENCY"],
		Order: elems["IVR_MERCHANT_ORDER"], Language: elems["IVR_MERCHANT_LANGUAGE"],
		Type: paycometrest.TransactionType(elems["IVR_TRANSACTION_TYPE"]), Concept: elems["IVR_MERCHANT_CONCEPT"],
		CallbackStationTimeout: elems["IVR_CALLBACK_STATION_TIMEOUT"], CallbackStationOK: elems["IVR_CALLBACK_STATION_OK"],
		CallbackStationKO: elems["IVR_CALLBACK_STATION_KO"], CallerPhoneNumber: elems["IVR_CALLER_PHONE_NUMBER"],
	}
	if _, ok := elems["IVR_MERCHANT_AMOUNT"]; !ok && r.Type != paycometrest.TypeCardRegistration {
		errs = append(errs, &elementError{"IVR_MERCHANT_AMOUNT", "required (minor units: 1999 is 19.99 EUR)"})
	}
	r.Amount = number(elems, "IVR_MERCHANT_AMOUNT", 0, &errs)
	for _, opt := range []struct {
		name string
		dst  **int
	}{{"IVR_MAX_RETRIES", &r.MaxRetries}, {"IVR_SESSION_TIMEOUT", &r.SessionTimeout}} {
		if _, ok := elems[opt.name]; ok {
			n := int(number(elems, opt.name, 0, &errs))
			*opt.dst = &n
		}
	}
	_, a := elems["IVR_SUBSCRIPTION_STARTDATE"]
	_, b := elems["IVR_SUBSCRIPTION_ENDDATE"]
	_, c := elems["IVR_SUBSCRIPTION_PERIODICITY"]
	if a || b || c {
		r.Subscription = &paycometrest.Subscription{
			Start: elems["IVR_SUBSCRIPTION_STARTDATE"], End: elems["IVR_SUBSCRIPTION_ENDDATE"],
			PeriodicityDays: int(number(elems, "IVR_SUBSCRIPTION_PERIODICITY", 0, &errs)),
		}
	}
	if err := errors.Join(errs...); err != nil {
		return r, err
	}
	return r, r.Validate()
}

func (s *ivrSetup) sessionRef(elems map[string]string) (paycometrest.SessionRef, error) {
	var errs []error
	ref := paycometrest.SessionRef{Terminal: s.terminalNumber(), ProviderID: s.providerID(elems, &errs), Order: elems["IVR_MERCHANT_ORDER"]}
	if err := errors.Join(errs...); err != nil {
		return ref, err
	}
	return ref, ref.Validate()
}

// maxPoll is the contract's bound on how long `ivr pay` may go without
// asking for the session's state.
const maxPoll = 2 * time.Second

// cancelTimeout bounds the session-cancel sent after Ctrl-C.
const cancelTimeout = 10 * time.Second

// runIVRPay is `ivr pay`: start a session, follow it, print its event.
func runIVRPay(ctx context.Context, args []string, env map[string]string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("ivr pay", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	flagElems := map[string]string{
		"order": "IVR_MERCHANT_ORDER", "amount": "IVR_MERCHANT_AMOUNT", "currency": "IVR_MERCHANT_CURRENCY",
		"type": "IVR_TRANSACTION_TYPE", "language": "IVR_MERCHANT_LANGUAGE", "station": "IVR_STATION_ID",
		"provider": "IVR_PROVIDER_ID", "concept": "IVR_MERCHANT_CONCEPT", "session-timeout": "IVR_SESSION_TIMEOUT",
		"max-retries": "IVR_MAX_RETRIES", "subscription-start": "IVR_SUBSCRIPTION_STARTDATE",
		"subscription-end": "IVR_SUBSCRIPTION_ENDDATE", "subscription-periodicity": "IVR_SUBSCRIPTION_PERIODICITY",
		"caller": "IVR_CALLER_PHONE_NUMBER",
	}
	defaults := map[string]string{"currency": "EUR", "type": "1", "language": "ES"}
	values := map[string]*string{}
	for name, el := range flagElems {
		values[name] = fs.String(name, defaults[name], el)
	}
	terminal := fs.String("terminal", "", "terminal `number` when several are configured")
	wait := fs.Duration("wait", 60*time.Second, "how long to wait for the payment's event after the session ended")
	poll := fs.Duration("poll", time.Second, "how often to ask for the session's state (at most 2s)")
	timeout := fs.Duration("timeout", 15*time.Second, "how long to wait for each PAYCOMET answer")
	fromJSON := fs.Bool("json", false, "read the request's IVR_* elements from standard input (flags given override them)")
	demoMode := fs.Bool("demo", false, "use the demo terminal and paycomet-fake's key, provider, station and URL where unset (and 1999 as amount)")
	fail := func(code int, format string, a ...any) int {
		fmt.Fprintf(stderr, "paycomet-notify ivr pay: "+format+"\n", a...)
		return code
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, ivrUsage)
			fs.SetOutput(stdout)
			fs.PrintDefaults()
			return ivrExitOK
		}
		return fail(ivrExitInput, "%v", err)
	}
	if fs.NArg() > 0 {
		return fail(ivrExitInput, "unexpected argument %q", fs.Arg(0))
	}
	if *poll <= 0 || *poll > maxPoll {
		return fail(ivrExitInput, "--poll must be more than 0 and at most %s", maxPoll)
	}
	if *wait < 0 || *timeout <= 0 {
		return fail(ivrExitInput, "--wait must not be negative and --timeout must be positive")
	}
	elems := map[string]string{}
	if *fromJSON {
		var err error
		if elems, err = readIVRElements(stdin, ivrElements["start"]); err != nil {
			return fail(ivrExitInput, "%v", err)
		}
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for name, el := range flagElems {
		_, inJSON := elems[el]
		if set[name] || (!inJSON && defaults[name] != "") {
			elems[el] = *values[name]
		}
	}
	if _, ok := elems["IVR_MERCHANT_ORDER"]; !ok {
		t := time.Now()
		elems["IVR_MERCHANT_ORDER"] = fmt.Sprintf("IVR%s%03d", t.Format("060102150405"), t.Nanosecond()/1e6)
	}
	if _, ok := elems["IVR_MERCHANT_AMOUNT"]; !ok && *demoMode && elems["IVR_TRANSACTION_TYPE"] != string(paycometrest.TypeCardRegistration) {
		elems["IVR_MERCHANT_AMOUNT"] = "1999"
	}
	s, err := newIVRSetup(env, *demoMode, *terminal, elems["IVR_MERCHANT_TERMINAL"], elems["IVR_MERCHANT_CODE"], *timeout)
	if err != nil {
		return fail(ivrExitInput, "%v", err)
	}
	req, err := s.sessionRequest(elems)
	if err != nil {
		return fail(ivrExitInput, "%s", inputMessage(err))
	}
	ref := paycometrest.SessionRef{Terminal: req.Terminal, ProviderID: req.ProviderID, Order: req.Order}
	tt, _ := strconv.Atoi(string(req.Type))
	operation := events.OperationName(tt)

	// Subscribe before the session starts, so its event cannot be missed.
	nc, sub, err := ivrSubscribe(s.cfg, s.terminal, operation)
	if err != nil {
		return fail(ivrExitInput, "%v; the session was not started (is `paycomet-notify serve` running, and NATS_URL right?)", err)
	}
	defer nc.Close()

	pr := newProgress(stderr, req.Order)
	pr.note(fmt.Sprintf("starting an IVR session at %s: order %s, terminal %s, %s %d (minor units), type %s (%s); Ctrl-C cancels it",
		s.restShown, req.Order, s.terminal, req.Currency, req.Amount, req.Type, req.Type.Meaning()))
	if _, err := s.client.GetSession(ctx, req); err != nil {
		switch {
		case ctx.Err() != nil:
			// Interrupted while PAYCOMET may already have created it.
			return ivrCancel(s, ref, pr, fail)
		case paycometrest.IsAnswer(err):
			return fail(ivrExitRefused, "get-session: %s", refusal(err))
		}
		return fail(ivrExitNoAnswer, "no usable answer to get-session (%v); the session may exist: check with `ivr state` and end it with `ivr cancel`", err)
	}

	final, code := ivrFollow(ctx, s, ref, *poll, pr, fail)
	if final == nil {
		return code
	}
	switch final.State {
	case paycometrest.StateOK, paycometrest.StateKO:
	default:
		return fail(ivrExitRefused, "the session ended %s (%s)%s", final.State, final.State.Meaning(), errorSuffix(final.ErrorCode))
	}
	pr.note(fmt.Sprintf("session finished %s%s; waiting up to %s for the payment's event on NATS", final.State, errorSuffix(final.ErrorCode), *wait))
	ev, err := ivrAwaitEvent(ctx, sub, s.terminal, req.Order, req.Type == paycometrest.TypeSubscription, *wait)
	if err != nil {
		return fail(ivrExitRefused, "no event for order %s on terminal %s: %v", req.Order, s.terminal, err)
	}
	var pretty bytes.Buffer
	if json.Indent(&pretty, ev.Data, "", "  ") != nil {
		pretty.Reset()
		pretty.Write(ev.Data)
	}
	fmt.Fprintln(stdout, pretty.String())
	var head struct {
		Type string `json:"type"`
	}
	_ = json.Unmarshal(ev.Data, &head)
	if strings.HasSuffix(head.Type, ".ok") {
		pr.note("payment succeeded: " + head.Type + " on " + ev.Subject)
		return ivrExitOK
	}
	pr.note("payment failed: " + head.Type + " on " + ev.Subject)
	return ivrExitRefused
}

func errorSuffix(code int) string {
	if code == 0 {
		return ""
	}
	return fmt.Sprintf(", PAYCOMET error %d: %s", code, paycometrest.ErrorMeaning(code))
}

// ivrSubscribe connects to the receiver's NATS and subscribes to the
// events of one terminal and operation (all outcomes). It is the only place
// `ivr` touches NATS.
func ivrSubscribe(cfg config.Config, terminal, operation string) (*nats.Conn, *nats.Subscription, error) {
	nc, err := service.ConnectNATS(service.NATSConfig{Name: "paycomet-notify ivr pay", URL: cfg.NATSServers(), Timeout: 3 * time.Second, Auth: cfg.NATS},
		slog.New(slog.DiscardHandler))
	if err != nil {
		return nil, nil, err
	}
	sub, err := nc.SubscribeSync(cfg.SubjectPrefix + "." + terminal + "." + operation + ".*")
	if err == nil {
		err = nc.Flush()
	}
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("subscribe on NATS %s: %s", cfg.NATSServers(), cfg.NATSServers().Scrub(err.Error()))
	}
	return nc, sub, nil
}

// ivrFollow polls the session until it is final, showing progress. On
// Ctrl-C it cancels the session and returns nil with the exit code.
func ivrFollow(ctx context.Context, s *ivrSetup, ref paycometrest.SessionRef, poll time.Duration, pr *progress,
	fail func(int, string, ...any) int) (*paycometrest.SessionStatus, int) {
	const giveUp = 30 * time.Second // without a usable answer
	lastGood := time.Now()
	ticker := time.NewTicker(poll)
	defer ticker.Stop()
	for {
		st, err := s.client.SessionState(ctx, ref)
		if ctx.Err() != nil {
			return nil, ivrCancel(s, ref, pr, fail)
		}
		switch {
		case st != nil:
			lastGood = time.Now()
			pr.show(st)
			if st.State.Final() {
				pr.done()
				return st, 0
			}
		case paycometrest.IsAnswer(err):
			pr.done()
			return nil, fail(ivrExitRefused, "session-state: %s", refusal(err))
		default:
			pr.note("session state unavailable: " + strings.TrimPrefix(err.Error(), "paycometrest: "))
			if time.Since(lastGood) > giveUp {
				pr.note(fmt.Sprintf("no usable answer for %s; cancelling the session", giveUp))
				if code := ivrCancel(s, ref, pr, fail); code != ivrExitRefused {
					return nil, code
				}
				return nil, ivrExitNoAnswer
			}
		}
		select {
		case <-ctx.Done():
			return nil, ivrCancel(s, ref, pr, fail)
		case <-ticker.C:
		}
	}
}

// ivrCancel ends the session at PAYCOMET after Ctrl-C: exit 2 when PAYCOMET
// answered, 3 when it could not be reached (the session may go on).
func ivrCancel(s *ivrSetup, ref paycometrest.SessionRef, pr *progress, fail func(int, string, ...any) int) int {
	pr.done()
	ctx, cancel := context.WithTimeout(context.Background(), cancelTimeout)
	defer cancel()
	ca, err := s.client.SessionCancel(ctx, ref)
	switch {
	case err == nil:
		return fail(ivrExitRefused, "interrupted: session %s cancelled at PAYCOMET (state %s)", ref.Order, ca.State)
	case ca != nil:
		return fail(ivrExitRefused, "interrupted: session %s not cancelled, it had already ended (state %s)", ref.Order, ca.State)
	case paycometrest.IsAnswer(err):
		return fail(ivrExitRefused, "interrupted: session-cancel: %s", refusal(err))
	}
	return fail(ivrExitNoAnswer, "interrupted, and the session could not be cancelled (%v): end it with `ivr cancel`", err)
}

// ivrAwaitEvent returns the first event for the terminal and order (for a
// subscription, an order that begins with it) within wait.
func ivrAwaitEvent(ctx context.Context, sub *nats.Subscription, terminal, order string, subscription bool, wait time.Duration) (*nats.Msg, error) {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	source := "/paycomet/terminals/" + terminal
	for {
		msg, err := sub.NextMsgWithContext(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("none within %s", wait)
			}
			return nil, err
		}
		var ev struct {
			Source  string `json:"source"`
			Subject string `json:"subject"`
		}
		if json.Unmarshal(msg.Data, &ev) != nil || ev.Source != source {
			continue
		}
		if ev.Subject == order || (subscription && strings.HasPrefix(ev.Subject, order+"[")) {
			return msg, nil
		}
	}
}

// progress is the line a person watches: on a terminal one line updated in
// place, otherwise a line per change.
type progress struct {
	w     io.Writer
	tty   bool
	order string
	last  string // last state shown, without the time left
	open  bool   // a tty line is being updated
}

func newProgress(w io.Writer, order string) *progress {
	return &progress{w: w, tty: isTerminal(w), order: order}
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func (p *progress) show(st *paycometrest.SessionStatus) {
	what := fmt.Sprintf("IVR %s: %s · card %d digits · expiry %d · CVC %d", p.order, st.State.Meaning(), st.DigitsPAN, st.DigitsExpiry, st.DigitsCVC)
	if st.Result != paycometrest.ResultNone {
		what += " · " + st.Result.Meaning()
	}
	line := what
	if !st.State.Final() {
		line += fmt.Sprintf(" · %ds left", int(st.TimeLeft/time.Second))
	}
	if p.tty {
		fmt.Fprintf(p.w, "\r\x1b[K%s", line)
		p.open = true
		return
	}
	if what != p.last {
		fmt.Fprintln(p.w, line)
	}
	p.last = what
}

// note prints a message on a line of its own.
func (p *progress) note(msg string) {
	p.done()
	fmt.Fprintln(p.w, msg)
	p.last = ""
}

// done ends an updating line.
func (p *progress) done() {
	if p.open {
		fmt.Fprintln(p.w)
		p.open = false
	}
}
