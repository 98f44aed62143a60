package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"

	"github.com/paycomet-notify/paycomet-notify/bankstore"
	"github.com/paycomet-notify/paycomet-notify/config"
	"github.com/paycomet-notify/paycomet-notify/secret"
)

const bankstoreUsage = `usage: paycomet-notify bankstore <operation> [--terminal N] [--timeout D] [--demo] < request.json
       paycomet-notify bankstore list
       paycomet-notify bankstore <operation> --help

Calls one BankStore XML operation. Standard input is a JSON object of the
operation's request elements keyed by the seed's names, for example
  {"DS_IDUSER": "1234", "DS_TOKEN_USER": "abc"}
Values may be strings, numbers or booleans; DS_MERCHANT_DATA and
DS_ESCROW_TARGETS may also be JSON objects. The merchant code, terminal and
signature come from PAYCOMET_MERCHANT_CODE and PAYCOMET_TERMINALS (--terminal
chooses when several are configured) and the endpoint from BANKSTORE_URL;
DS_ORIGINAL_IP, unless given, is this host's IPv4 address towards it.

The answer is printed as one JSON object keyed by element name.
Exit status: 0 done; 2 PAYCOMET refused (DS_ERROR_ID not 0: the answer is
still printed, the code and its meaning go to standard error); 1 bad input
(nothing is sent), configuration or transport failure.

flags:
`

// maxRequestJSON bounds standard input; a request is a few hundred bytes.
const maxRequestJSON = 1 << 20

// runBankstore is `paycomet-notify bankstore` (contract section 8).
func runBankstore(ctx context.Context, args []string, env map[string]string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bankstore", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	terminal := fs.String("terminal", "", "terminal `number` to use when several are configured")
	timeout := fs.Duration("timeout", bankstore.DefaultTimeout, "how long to wait for the answer")
	demo := fs.Bool("demo", false, "use the demo merchant and terminal (those of the bankstore fake) when none is configured")
	usage := func(w io.Writer) {
		fmt.Fprint(w, bankstoreUsage)
		fs.SetOutput(w)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
		fmt.Fprintln(w, "\noperations:")
		listOperations(w)
	}
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "paycomet-notify bankstore: "+format+"\n", a...)
		return 1
	}

	// Flags may come before and after the operation.
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			usage(stdout)
			return 0
		}
		return fail("%v", err)
	}
	if fs.NArg() == 0 {
		usage(stderr)
		return 1
	}
	name := fs.Arg(0)
	if name == "list" || name == "help" {
		listOperations(stdout)
		return 0
	}
	op, ok := bankstore.ParseOperation(name)
	if !ok {
		fmt.Fprintf(stderr, "paycomet-notify bankstore: unknown operation %q; the operations are:\n", name)
		listOperations(stderr)
		return 1
	}
	if err := fs.Parse(fs.Args()[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			describeOperation(stdout, op)
			return 0
		}
		return fail("%v", err)
	}
	if fs.NArg() > 0 {
		return fail("unexpected argument %q (the request is read from standard input)", fs.Arg(0))
	}

	elems, err := readElements(stdin)
	if err != nil {
		return fail("%s: %v", op, err)
	}
	cfg, err := config.Load(env, nil)
	if err != nil {
		return fail("%v", err)
	}
	if *demo {
		cfg.ApplyDemo()
	}
	if err := cfg.RequireTerminals(); err != nil {
		return fail("%v", err)
	}
	term, password, err := chooseTerminal(cfg.Terminals, *terminal)
	if err != nil {
		return fail("%v", err)
	}
	client, err := bankstore.New(cfg.BankstoreURL,
		bankstore.Credentials{MerchantCode: cfg.MerchantCode, Terminal: term, Password: password},
		bankstore.WithHTTPClient(&http.Client{Timeout: *timeout}))
	if err != nil {
		return fail("%v", err)
	}

	answer, err := client.Call(ctx, op, elems)
	var refused *bankstore.Error
	switch {
	case errors.As(err, &refused):
		writeElements(stdout, answer)
		fmt.Fprintf(stderr, "paycomet-notify bankstore: %s: PAYCOMET error %d: %s\n", op, refused.Code, refused.Meaning())
		return 2
	case err != nil:
		// The client's errors already start with "bankstore: <operation>".
		fmt.Fprintf(stderr, "paycomet-notify: %s\n", strings.ReplaceAll(err.Error(), "\n", "\npaycomet-notify: "))
		return 1
	}
	writeElements(stdout, answer)
	return 0
}

// readElements reads the request: one JSON object whose members are element
// names. Strings are taken as they are, numbers as written, booleans as 1 or
// 0, objects and arrays as compact JSON text, null as absent. Values are
// never repeated in errors: they may be card data.
func readElements(r io.Reader) (map[string]string, error) {
	raw, err := readJSONObject(r, `standard input is not a JSON object of request elements, such as {"DS_IDUSER": "1234", "DS_TOKEN_USER": "abc"}`)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for name, v := range raw {
		switch v[0] {
		case 'n':
			continue
		case '"':
			var s string
			if err := json.Unmarshal(v, &s); err != nil {
				return nil, fmt.Errorf("%s: not a JSON string", name)
			}
			out[name] = s
		case 't':
			out[name] = "1"
		case 'f':
			out[name] = "0"
		case '{', '[':
			var b bytes.Buffer
			if err := json.Compact(&b, v); err != nil {
				return nil, fmt.Errorf("%s: not valid JSON", name)
			}
			out[name] = b.String()
		default:
			out[name] = string(v)
		}
	}
	return out, nil
}

// chooseTerminal picks the terminal the call is made for.
func chooseTerminal(terminals config.Terminals, chosen string) (string, secret.Value, error) {
	ids := terminals.IDs()
	if chosen != "" {
		pw, ok := terminals[chosen]
		if !ok {
			return "", secret.Value{}, fmt.Errorf("terminal %s is not configured (configured: %s)", chosen, strings.Join(ids, ", "))
		}
		return chosen, pw, nil
	}
	if len(ids) != 1 {
		return "", secret.Value{}, fmt.Errorf("%d terminals are configured (%s): choose one with --terminal", len(ids), strings.Join(ids, ", "))
	}
	return ids[0], terminals[ids[0]], nil
}

func writeElements(w io.Writer, elems map[string]string) {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	enc.Encode(elems)
}

func listOperations(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	for _, op := range bankstore.Operations() {
		fmt.Fprintf(tw, "  %s\t%s\n", op, op.Description())
	}
	tw.Flush()
}

func describeOperation(w io.Writer, op bankstore.Operation) {
	fmt.Fprintf(w, "usage: paycomet-notify bankstore %s [--terminal N] [--timeout D] [--demo] < request.json\n\n%s.\n\nrequest elements (JSON object keyed by name):\n", op, op.Description())
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	for _, e := range op.RequestElements() {
		need, format := "optional", e.Format
		if e.Required && e.Default == "" {
			need = "required"
		}
		if e.Default != "" {
			format += " (default: " + e.Default + ")"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", e.Name, need, format)
	}
	tw.Flush()
	fmt.Fprintf(w, "\nset by the command: DS_MERCHANT_MERCHANTCODE, DS_MERCHANT_TERMINAL, DS_MERCHANT_MERCHANTSIGNATURE\nanswer elements: %s\n",
		strings.Join(op.ResponseElements(), " "))
	if op.MovesMoney() {
		fmt.Fprintf(w, "\n%s moves money: it is sent once and never retried; after a timeout, check the outcome before trying again.\n", op)
	}
}

// readJSONObject reads standard input as at most one JSON object (empty
// input is an empty object), bounded by maxRequestJSON; notAnObject is the
// message when it is something else. Members are returned undecoded, and no
// value is ever repeated in an error: it may be card data.
func readJSONObject(r io.Reader, notAnObject string) (map[string]json.RawMessage, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxRequestJSON+1))
	if err != nil {
		return nil, fmt.Errorf("reading standard input: %w", err)
	}
	if len(data) > maxRequestJSON {
		return nil, fmt.Errorf("standard input is larger than %d bytes", maxRequestJSON)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return map[string]json.RawMessage{}, nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	var raw map[string]json.RawMessage
	if err := dec.Decode(&raw); err != nil || raw == nil {
		return nil, errors.New(notAnObject)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("standard input holds more than one JSON value")
	}
	return raw, nil
}
