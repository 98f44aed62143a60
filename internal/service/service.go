// Package service is the wiring every long-running subcommand (serve,
// refresher) shares instead of a copy each: the JSON logger, the NATS
// connection (options, redacted logging, the minimum server version), the
// admin listener (healthz, readyz, metrics, pprof, the bearer token) and an
// ordered shutdown. It knows no notification and no card: a subcommand
// brings its own readiness checks and tasks.
package service

import (
	"fmt"
	"io"
	"log/slog"
)

// NewLogger is the JSON logger of every subcommand. level is LOG_LEVEL
// (debug, info, warn, error).
func NewLogger(w io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("LOG_LEVEL: %q is not debug, info, warn or error", level)
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l})), nil
}
