package refresher

import (
	"context"
	"errors"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/paycomet-notify/paycomet-notify/tracing"
)

// Tracing: each consumed message is a consumer span continuing the trace
// its traceparent header carries (the receiver's publish span), with a
// client span per BankStore call; the outputs are published inside it, so
// their headers and their events' traceparent continue the same trace.
// Attributes name the subject, the message kind, the terminal and the
// BankStore operation: never a token.

const tracerName = "github.com/paycomet-notify/paycomet-notify/refresher"

// Span names.
const (
	SpanConsume = "refresher.handle"
	// SpanBankStore is prefixed to the operation: "bankstore.info_user".
	SpanBankStore = "bankstore."
)

var noSpan trace.Span = noop.Span{}

func (r *Refresher) consumeSpan(ctx context.Context, d delivery, kind string) (context.Context, trace.Span) {
	if r.trace == nil {
		return ctx, noSpan
	}
	ctx = r.cfg.Tracing.ExtractNATS(ctx, d.msg.Headers())
	return r.trace.Start(ctx, SpanConsume, trace.WithSpanKind(trace.SpanKindConsumer), trace.WithAttributes(
		attribute.String("messaging.system", "nats"),
		attribute.String("messaging.operation.type", "process"),
		attribute.String("messaging.destination.name", d.msg.Subject()),
		attribute.Int64("paycomet.jetstream.sequence", int64(d.seq)),
		attribute.Int64("paycomet.deliveries", int64(d.delivered)),
		attribute.String("paycomet.refresher.kind", kind),
		attribute.String("paycomet.terminal", d.terminal),
	))
}

func (r *Refresher) bankSpan(ctx context.Context, op, terminal string) (context.Context, trace.Span) {
	if r.trace == nil {
		return ctx, noSpan
	}
	return r.trace.Start(ctx, SpanBankStore+op, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(
		attribute.String("rpc.system", "soap"),
		attribute.String("rpc.method", op),
		attribute.String("paycomet.terminal", terminal),
	))
}

// failed marks span with err's verdict: a permanent error (dead letter) or
// a failure to retry. The message names the cause, not the error text.
func failed(span trace.Span, err error) {
	if err == nil || !span.IsRecording() {
		return
	}
	var perm *permanentError
	if errors.As(err, &perm) {
		span.SetStatus(codes.Error, "permanent: "+perm.cause)
	} else {
		span.SetStatus(codes.Error, "failed; will retry")
	}
}

func (r *Refresher) traceParent(ctx context.Context) string {
	if r.trace == nil {
		return ""
	}
	return tracing.TraceParent(ctx)
}
