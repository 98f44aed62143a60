// Command paycomet-notify receives PAYCOMET notifications and publishes them
// on NATS JetStream; its subcommands are listed in usage below.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

const usage = `usage: paycomet-notify <command> [flags]

commands:
  serve       run the notification receiver (HTTP in, JetStream out)
  refresher   run the card-token refresh consumer
  bankstore   call one BankStore XML operation: bankstore <operation> < request.json
  send        post one signed sample notification to a receiver
  loadgen     load-test a receiver and verify every accepted notification arrived once
  ivr         IVR phone payments over PAYCOMET REST: ivr start|state|cancel < request.json, ivr pay
  events      events tail: follow the events as they arrive, one readable line each
  quarantine  quarantine list|show|replay: rejected notifications, run again once fixed
  dlq         dlq list|show|replay: the refresher's dead letters
  reconcile   find PAYCOMET operations whose notification never reached the stream
  version     print the version, commit, build date and Go version

Configuration is read from the environment; see README.md.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], environ(), os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// environ returns the process environment as a map, the form run takes.
func environ() map[string]string {
	m := map[string]string{}
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return m
}

// run is the whole program: it takes everything it uses, so tests call it
// end to end. It returns the exit code: 0 ok, 1 bad input or failure, 2 a
// PAYCOMET business error (bankstore).
func run(ctx context.Context, args []string, env map[string]string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 1
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		return runServe(ctx, rest, env, stdout, stderr)
	case "refresher":
		return runRefresher(ctx, rest, env, stdout, stderr)
	case "send":
		return runSend(ctx, rest, env, stdout, stderr)
	case "bankstore":
		return runBankstore(ctx, rest, env, stdin, stdout, stderr)
	case "ivr":
		return runIVR(ctx, rest, env, stdin, stdout, stderr)
	case "loadgen":
		return runLoadgen(ctx, rest, env, stdout, stderr)
	case "events":
		return runEvents(ctx, rest, env, stdout, stderr)
	case "quarantine":
		return runQuarantine(ctx, rest, env, stdout, stderr)
	case "dlq":
		return runDLQ(ctx, rest, env, stdout, stderr)
	case "reconcile":
		return runReconcile(ctx, rest, env, stdout, stderr)
	case "version", "--version", "-v":
		return runVersion(rest, stdout, stderr)
	case "help", "--help", "-h":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "paycomet-notify: unknown command %q\n\n%s", cmd, usage)
		return 1
	}
}
