// Package faulttest holds the fault tests: `paycomet-notify serve` runs as a
// child process against a real Redis and a real JetStream server while
// loadgen drives a steady load at it, and each test breaks one thing under
// that load — NATS restarted, Redis restarted (losing every remembered
// notification), the receiver killed with SIGKILL and started again — and
// then proves from the stream that every notification answered 200 produced
// exactly one event, none was duplicated and none invented.
//
// The package has no code of its own; the tests run with the rest of the
// suite (`make test`).
package faulttest
