package service

import (
	"context"
	"log/slog"

	"go.opentelemetry.io/otel"

	"github.com/paycomet-notify/paycomet-notify/tracing"
)

// SetupTracing is OpenTelemetry for one long-running subcommand, from the
// OTEL_* variables of env (tracing.Setup; off when none is set). The task
// does nothing until stopped; its Stop flushes the spans not yet exported,
// so it goes last in Run's order, after the listeners and consumers whose
// spans it sends. service is the default service.name
// ("paycomet-notify-serve").
func SetupTracing(ctx context.Context, env map[string]string, service, version string, log *slog.Logger) (*tracing.Tracing, Task, error) {
	tr, err := tracing.Setup(ctx, env, tracing.Options{ServiceName: service, Version: version, Log: log})
	if err != nil {
		return nil, Task{}, err
	}
	if tr.On() {
		log.Info("tracing on", "otlp_endpoint", tr.Endpoint)
		// The SDK's own complaints (a full span queue, say) go to the JSON
		// log, not to its plain-text default on stderr.
		otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) { log.Warn("tracing", "err", err.Error()) }))
	}
	stopped := make(chan struct{})
	return tr, Task{
		Name: "tracing",
		Run:  func() error { <-stopped; return nil },
		Stop: func(ctx context.Context) error {
			close(stopped)
			return tr.Shutdown(ctx)
		},
	}, nil
}
