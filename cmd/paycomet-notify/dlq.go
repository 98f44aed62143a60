package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/paycomet-notify/paycomet-notify/ops"
)

const dlqUsage = `usage:
  paycomet-notify dlq list
  paycomet-notify dlq show ID
  paycomet-notify dlq replay [--all] [ID...]

The refresher's dead letters (paycomet.card.dead_letter events on
<prefix>.dlq). replay republishes each dead-lettered message on its original
subject under a replay-specific Nats-Msg-Id, so the refresher processes it
as new and gives one output; a dead letter replayed before prints
"duplicate" and publishes nothing. Exit 0 when every replay ran, 1 for bad
input, 3 when NATS failed.
`

func runDLQ(ctx context.Context, args []string, env map[string]string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, dlqUsage)
		return exitInput
	}
	fail := func(code int, format string, a ...any) int {
		fmt.Fprintf(stderr, "paycomet-notify dlq %s: "+format+"\n", append([]any{args[0]}, a...)...)
		return code
	}
	fs := flag.NewFlagSet("dlq "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, dlqUsage) }
	var all *bool
	switch args[0] {
	case "list", "show":
	case "replay":
		all = fs.Bool("all", false, "replay every dead letter")
	case "help", "-h", "--help":
		fmt.Fprint(stdout, dlqUsage)
		return exitOK
	default:
		fmt.Fprintf(stderr, "paycomet-notify dlq: unknown command %q\n\n%s", args[0], dlqUsage)
		return exitInput
	}
	cfg, err := opsFlags(fs, args[1:], env)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		return fail(exitInput, "%v", err)
	}
	switch {
	case args[0] == "list" && fs.NArg() > 0:
		return fail(exitInput, "unexpected argument %q", fs.Arg(0))
	case args[0] == "show" && fs.NArg() != 1:
		return fail(exitInput, "give one dead letter id")
	case args[0] == "replay" && (*all == (fs.NArg() > 0)):
		return fail(exitInput, "give dead letter ids or --all (not both)")
	}
	c, err := openOps("dlq", cfg)
	if err != nil {
		return fail(exitBackend, "%v", err)
	}
	defer c.close()
	marks := ops.NewMarks(c.js, c.reader.Streams())
	switch args[0] {
	case "list":
		err := c.reader.EachDeadLetter(ctx, func(d ops.DeadLetter) error {
			m, err := marks.Get(ctx, "dlq."+d.Event.ID)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(stdout, deadLetterLine(d, m))
			return err
		})
		if err != nil {
			return fail(exitBackend, "%v", err)
		}
		return exitOK
	case "show":
		found, err := c.reader.DeadLetterByID(ctx, fs.Arg(0))
		if err != nil {
			return fail(exitBackend, "%v", err)
		}
		d, ok := found[fs.Arg(0)]
		if !ok {
			return fail(exitInput, "%s is not a dead letter on %s", fs.Arg(0), c.reader.Streams().DLQSubject())
		}
		var out bytes.Buffer
		if json.Indent(&out, d.Message.Data, "", "  ") != nil {
			out.Reset()
			out.Write(d.Message.Data)
		}
		fmt.Fprintln(stdout, out.String())
		return exitOK
	}
	code := exitOK
	err = ops.NewReplayer(c.reader, nil).ReplayDeadLetters(ctx, fs.Args(), *all, func(r ops.Result) {
		fmt.Fprintln(stdout, r.Line())
		switch {
		case r.Outcome == ops.OutcomeNotFound:
			code = max(code, exitInput)
		case r.Outcome == ops.OutcomeFailed || r.Err != nil:
			code = exitBackend
			fmt.Fprintf(stderr, "paycomet-notify dlq replay: %s: %v\n", r.ID, r.Err)
		}
	})
	if err != nil {
		return fail(exitBackend, "%v", err)
	}
	return code
}

// deadLetterLine is one dead letter in `dlq list`: when the refresher gave
// up, its id, the cause, the original subject and sequence, the reason, and
// what a replay did.
func deadLetterLine(d ops.DeadLetter, m *ops.Mark) string {
	line := fmt.Sprintf("%s  %s  %-24s  %s #%d  %s", d.Data.FailedAt.Format(time.RFC3339), d.Event.ID, d.Data.Cause,
		d.Data.OriginalSubject, d.Data.StreamSequence, d.Data.Reason)
	if m != nil {
		line += fmt.Sprintf("  replayed: seq %d", m.Seq)
	}
	return line
}
