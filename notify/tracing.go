package notify

import (
	"context"
	"net/url"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/paycomet-notify/paycomet-notify/dedupe"
	"github.com/paycomet-notify/paycomet-notify/events"
	"github.com/paycomet-notify/paycomet-notify/tracing"
)

// Tracing: one span per notification (SpanNotification) with children for
// authentication, the dedupe claim, the publish (made by the publisher,
// ending at the JetStream ack) and the seen mark. Attributes say which
// notification it was and what became of it: transaction type, terminal,
// outcome, event id, quarantine reason. Never a secret, a field value
// PAYCOMET sent or TokenUser.
//
// Off (p.tracer nil), none of this runs: no span, no context, no
// attribute, no allocation.

const tracerName = "github.com/paycomet-notify/paycomet-notify/notify"

// Span names.
const (
	SpanNotification = "paycomet.notification"
	SpanAuthenticate = "authenticate"
	SpanClaim        = "dedupe.claim"
	SpanMarkSeen     = "dedupe.mark_seen"
	// SpanReconciled is PublishReconciled: the reconciler's copy of a
	// missing notification.
	SpanReconciled = "paycomet.reconciled"
)

// Span attribute keys.
const (
	AttrTransactionType = attribute.Key("paycomet.transaction_type")
	AttrTerminal        = attribute.Key("paycomet.terminal")
	AttrOutcome         = attribute.Key("paycomet.outcome")
	AttrReason          = attribute.Key("paycomet.reason")
	AttrStatus          = attribute.Key("http.response.status_code")
	AttrEventID         = attribute.Key("cloudevents.event_id")
	AttrQuarantineID    = attribute.Key("paycomet.quarantine_id")
	AttrClaim           = attribute.Key("paycomet.dedupe.claim")
	AttrStore           = attribute.Key("paycomet.dedupe.store")
)

// noSpan is what the helpers return when tracing is off: ending it does
// nothing (and it is never the caller's span).
var noSpan trace.Span = noop.Span{}

func (p *Path) processTraced(ctx context.Context, r Request) Outcome {
	ctx, span := p.tracer.Start(ctx, SpanNotification, trace.WithSpanKind(trace.SpanKindServer))
	defer span.End()
	o := p.process(ctx, r)
	attrs := []attribute.KeyValue{AttrOutcome.String(o.Kind.String())}
	if o.EventID != "" {
		attrs = append(attrs, AttrEventID.String(o.EventID))
	}
	if o.Reason != "" {
		attrs = append(attrs, AttrReason.String(o.Reason))
	}
	if o.Status != 0 {
		attrs = append(attrs, AttrStatus.Int(o.Status))
	}
	if o.QuarantineID != "" {
		attrs = append(attrs, AttrQuarantineID.String(o.QuarantineID))
	}
	span.SetAttributes(attrs...)
	switch o.Kind {
	case Unavailable, Internal:
		span.SetStatus(codes.Error, o.Detail)
	}
	return o
}

func (p *Path) reconciledTraced(ctx context.Context, ev events.Event, matchKey string) Outcome {
	ctx, span := p.tracer.Start(ctx, SpanReconciled, trace.WithAttributes(AttrTerminal.String(ev.Terminal), AttrEventID.String(ev.ID)))
	defer span.End()
	o := p.publishReconciled(ctx, ev, matchKey)
	span.SetAttributes(AttrOutcome.String(o.Kind.String()))
	if o.Kind == Unavailable || o.Kind == Internal {
		// Not o.Detail: it may carry a store's error text.
		span.SetStatus(codes.Error, o.Kind.String())
	}
	return o
}

// child starts a child span of ctx's when tracing is on.
func (p *Path) child(ctx context.Context, name string) (context.Context, trace.Span) {
	if p.tracer == nil {
		return ctx, noSpan
	}
	return p.tracer.Start(ctx, name)
}

func (p *Path) authenticate(ctx context.Context, values url.Values, ch events.Channel) (events.Auth, error) {
	if p.tracer == nil {
		return p.verifier.Authenticate(values, ch)
	}
	_, span := p.child(ctx, SpanAuthenticate)
	auth, err := p.verifier.Authenticate(values, ch)
	if err != nil {
		// The error says which check failed and names no value.
		span.SetStatus(codes.Error, events.ReasonOf(err))
	}
	span.End()
	// Type and terminal as far as authentication got, on the notification
	// span: what a person searches traces by.
	var attrs []attribute.KeyValue
	if auth.Type != 0 {
		attrs = append(attrs, AttrTransactionType.Int(auth.Type))
	}
	if auth.Terminal != "" {
		attrs = append(attrs, AttrTerminal.String(clip(auth.Terminal)))
	}
	trace.SpanFromContext(ctx).SetAttributes(attrs...)
	return auth, err
}

func (p *Path) tracedClaim(ctx context.Context, id string) (dedupe.Lease, bool, claimResult) {
	if p.tracer == nil {
		return p.claim(ctx, id)
	}
	ctx, span := p.child(ctx, SpanClaim)
	lease, held, st := p.claim(ctx, id)
	result := "claimed"
	switch {
	case st == claimSeen:
		result = "seen"
	case st != claimPublish:
		result = "takeover"
	case !held:
		result = "store_unavailable"
	}
	span.SetAttributes(AttrClaim.String(result), AttrStore.String(p.store.Name()))
	span.End()
	return lease, held, st
}

func (p *Path) markSeen(ctx context.Context, l dedupe.Lease, fp string) error {
	if p.tracer == nil {
		return p.store.MarkSeen(ctx, l, fp)
	}
	ctx, span := p.child(ctx, SpanMarkSeen)
	defer span.End()
	err := p.store.MarkSeen(ctx, l, fp)
	if err != nil {
		span.SetStatus(codes.Error, "mark seen failed")
	}
	return err
}

// traceParent is the event's traceparent: the notification span's context.
func (p *Path) traceParent(ctx context.Context) string {
	if p.tracer == nil {
		return ""
	}
	return tracing.TraceParent(ctx)
}
