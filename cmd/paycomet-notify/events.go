package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/paycomet-notify/paycomet-notify/config"
	"github.com/paycomet-notify/paycomet-notify/internal/service"
	"github.com/paycomet-notify/paycomet-notify/ops"
)

// Exit codes of the operating commands (contract section 12).
const (
	exitOK      = 0
	exitInput   = 1 // bad flags, arguments or ids
	exitBackend = 3 // NATS or the dedupe store failed
)

// opsConn is what the operating commands (events, quarantine, dlq) share:
// the configuration, one NATS connection and a reader of both streams.
type opsConn struct {
	cfg    config.Config
	nc     *nats.Conn
	js     jetstream.JetStream
	reader *ops.Reader
}

// openOps connects to NATS (NATS_URL, or the embedded server of a running
// `serve --demo`) the way every subcommand does.
func openOps(name string, cfg config.Config) (*opsConn, error) {
	hint := ""
	if cfg.NATSURL.IsZero() {
		hint = " (is `paycomet-notify serve --demo` running? with NATS_URL empty this command uses its embedded NATS)"
	}
	nc, err := service.ConnectNATS(service.NATSConfig{Name: "paycomet-notify " + name, URL: cfg.NATSServers(), Hint: hint,
		Timeout: 5 * time.Second, Auth: cfg.NATS}, slog.New(slog.DiscardHandler))
	if err != nil {
		return nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	return &opsConn{cfg: cfg, nc: nc, js: js, reader: ops.NewReader(js, ops.StreamsFor(streamsConfig(cfg)))}, nil
}

func (c *opsConn) close() { service.DrainNATS(c.nc, 5*time.Second) }

// parseSince reads --since: a duration back from now ("10m", "24h") or an
// RFC 3339 time.
func parseSince(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		if d <= 0 {
			return time.Time{}, fmt.Errorf("--since %q: a duration must be positive", s)
		}
		return now.Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("--since %q is neither a duration (10m, 24h) nor an RFC 3339 time (2025-01-31T10:00:00+01:00)", s)
	}
	return t, nil
}

// wantsColor reports whether w is a terminal and the environment does not
// ask for plain text (NO_COLOR, TERM=dumb).
func wantsColor(w io.Writer, env map[string]string) bool {
	f, ok := w.(*os.File)
	if !ok || env["NO_COLOR"] != "" || env["TERM"] == "dumb" {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// opsFlags parses a subcommand's flags; config comes from the environment.
// It returns exitOK and no error for --help.
func opsFlags(fs *flag.FlagSet, args []string, env map[string]string) (config.Config, error) {
	if err := fs.Parse(args); err != nil {
		return config.Config{}, err
	}
	return config.Load(env, nil)
}

const eventsUsage = `usage: paycomet-notify events tail [--subject S] [--since D|RFC3339] [--json]

Follows the event stream (and the quarantine, for <prefix>.rejected) until
interrupted, one readable line per event: time, terminal, operation,
outcome, order, amount, id. NATS_URL (empty: the embedded server of
'serve --demo'), SUBJECT_PREFIX and STREAM_NAME are read from the environment.
`

func runEvents(ctx context.Context, args []string, env map[string]string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "tail" {
		fmt.Fprint(stderr, eventsUsage)
		if len(args) > 0 && (args[0] == "help" || args[0] == "-h" || args[0] == "--help") {
			return exitOK
		}
		return exitInput
	}
	fail := func(code int, format string, a ...any) int {
		fmt.Fprintf(stderr, "paycomet-notify events tail: "+format+"\n", a...)
		return code
	}
	fs := flag.NewFlagSet("events tail", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, eventsUsage) }
	subject := fs.String("subject", "", "NATS subject filter (default <prefix>.>)")
	since := fs.String("since", "", "also show events since this duration ago (10m) or RFC 3339 time")
	asJSON := fs.Bool("json", false, "one CloudEvent per line instead of a readable line")
	cfg, err := opsFlags(fs, args[1:], env)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		return fail(exitInput, "%v", err)
	}
	if fs.NArg() > 0 {
		return fail(exitInput, "unexpected argument %q", fs.Arg(0))
	}
	from, err := parseSince(*since, time.Now())
	if err != nil {
		return fail(exitInput, "%v", err)
	}
	if s := *subject; s != "" && (strings.ContainsAny(s, " \t\r\n") || strings.HasPrefix(s, ".") || strings.HasSuffix(s, ".")) {
		return fail(exitInput, "--subject %q is not a NATS subject filter", s)
	}
	c, err := openOps("events tail", cfg)
	if err != nil {
		return fail(exitBackend, "%v", err)
	}
	defer c.close()
	err = c.reader.Tail(ctx, ops.TailOptions{Subject: *subject, Since: from, JSON: *asJSON, Color: wantsColor(stdout, env)}, stdout)
	if err != nil {
		return fail(exitBackend, "%v", err)
	}
	return exitOK
}
