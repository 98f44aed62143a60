package main

import "runtime/debug"

// Garbage-collector defaults of serve, applied unless the operator set GOGC
// or GOMEMLIMIT in the environment. The receiver keeps almost nothing live
// between requests (a few MB: connections, pools, metrics), so Go's default
// GOGC=100 collects every few MB of garbage: at 32 connections the
// collector's background workers, assists and sweeping were 12% of serve's
// CPU (pprof). A growth target of 400% costs about 10 MB of resident memory
// and gave 12k -> 13-14k accepted notifications per second on the 2-core
// benchmark machine; the soft limit keeps the heap, and so RSS, bounded
// whatever a burst brings.
const (
	defaultGOGC       = 400
	defaultGOMEMLIMIT = 48 << 20 // bytes
)

// tuneGC applies the defaults above where env leaves them unset.
func tuneGC(env map[string]string) {
	if _, set := env["GOGC"]; !set {
		debug.SetGCPercent(defaultGOGC)
	}
	if _, set := env["GOMEMLIMIT"]; !set {
		debug.SetMemoryLimit(defaultGOMEMLIMIT)
	}
}
