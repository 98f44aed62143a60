//go:build race

package faulttest

// raceEnabled builds the child serve with the race detector too when the
// tests run with it: it reuses the packages `go test -race` just compiled,
// and a race in the receiver under faults then fails the test.
const raceEnabled = true
