// Package faulttest holds the fault tests: `paycomet-notify serve` runs as a
// child process against a real Redis and a real JetStream server while
// loadgen drives a steady load at it, and each test breaks one thing under
// that load — NATS restarted, Redis restarted (losing every remembered
// notification), the receiver killed with SIGKILL and started again — and
// then proves from the stream that every notification answered 200 produced
// exactly one event, none was duplicated and none invented.
//
// TestClusterFaultsUnderLoad does the same on the production shape: three
// nats-server processes clustered with JetStream (testenv.StartNATSCluster),
// R3 streams, two receivers sharing loadgen's connections, the refresher and
// Redis; it kills the stream leader, a follower, Redis and a receiver in
// turn and logs availability (first attempts answered 200) and p99 per
// phase.
//
// The package has no code of its own; the tests run with the rest of the
// suite (`make test`).
package faulttest
