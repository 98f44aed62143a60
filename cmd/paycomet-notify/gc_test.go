package main

import (
	"math"
	"runtime/debug"
	"testing"
)

func TestTuneGC(t *testing.T) {
	prevPercent, prevLimit := debug.SetGCPercent(100), debug.SetMemoryLimit(math.MaxInt64)
	t.Cleanup(func() { debug.SetGCPercent(prevPercent); debug.SetMemoryLimit(prevLimit) })

	tuneGC(map[string]string{})
	if got := debug.SetGCPercent(100); got != defaultGOGC {
		t.Errorf("GOGC after tuneGC = %d, want %d", got, defaultGOGC)
	}
	if got := debug.SetMemoryLimit(math.MaxInt64); got != defaultGOMEMLIMIT {
		t.Errorf("GOMEMLIMIT after tuneGC = %d, want %d", got, defaultGOMEMLIMIT)
	}

	tuneGC(map[string]string{"GOGC": "100", "GOMEMLIMIT": "1GiB"}) // the runtime read them; tuneGC must not override
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("GOGC set by the operator was overridden: %d", got)
	}
	if got := debug.SetMemoryLimit(math.MaxInt64); got != math.MaxInt64 {
		t.Errorf("GOMEMLIMIT set by the operator was overridden: %d", got)
	}
}
