// Package events turns PAYCOMET server-to-server notifications into typed,
// versioned CloudEvents: it authenticates the raw form (Verifier), parses it
// into one data type per operation (Parse), derives the idempotency key and
// the NATS subject, and encodes the CloudEvents JSON. It does no I/O, so the
// handler, the fuzzers, the load generator and the refresher share one
// definition of what a notification means.
//
// The order is fixed by the contract: authenticate the raw strings first,
// parse only what was proven to come from PAYCOMET.
package events

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Event is one notification as published: a CloudEvent whose ID is the
// notification's idempotency key.
type Event struct {
	ID         string    // idempotency key (also the Nats-Msg-Id); see idempotency.go
	Source     string    // "/paycomet/terminals/<terminal>"
	Type       string    // "paycomet.<operation>.<outcome>", or EventTypeRejected
	Subject    string    // CloudEvents subject: Order, or IdUser for 108; may be empty
	Time       time.Time // BankDateTime/DateTime in Europe/Madrid, else the receive time
	DataSchema string    // "schemas/<operation>.v1.json"
	Data       any       // Authorization, Refund, ..., CardExpiry, OtherOperation or Rejection

	Terminal  string // "" for rejected events
	Operation string // "authorization", ..., "operation_N", or OperationRejected
	Outcome   string // OutcomeOK, OutcomeKO, OutcomePending, OutcomeNotice; "" for rejected

	// TraceParent is the W3C trace context of the request that caused the
	// event (the CloudEvents distributed-tracing extension attribute);
	// empty, and then absent from the JSON, when tracing is off.
	TraceParent string
}

// Topic is the NATS subject consumers filter on (contract section 6):
// "<prefix>.<terminal>.<operation>.<outcome>", and "<prefix>.rejected" for
// the quarantine.
func (e Event) Topic(prefix string) string {
	if e.Type == EventTypeRejected {
		return prefix + "." + OperationRejected
	}
	return prefix + "." + e.Terminal + "." + e.Operation + "." + e.Outcome
}

// ContentType is the Content-Type of an encoded event (CloudEvents
// structured mode).
const ContentType = "application/cloudevents+json"

// timeLayout is RFC 3339 that always writes a numeric offset ("+00:00", not
// "Z"), so every event's time reads the same way.
const timeLayout = "2006-01-02T15:04:05.999999999-07:00"

type envelope struct {
	SpecVersion     string `json:"specversion"`
	ID              string `json:"id"`
	Source          string `json:"source"`
	Type            string `json:"type"`
	Subject         string `json:"subject,omitempty"`
	Time            string `json:"time"`
	DataContentType string `json:"datacontenttype"`
	DataSchema      string `json:"dataschema"`
	TraceParent     string `json:"traceparent,omitempty"`
	Data            any    `json:"data"`
}

// Encode renders the CloudEvents 1.0 structured JSON that is published, so
// every consumer, in any language, reads the same envelope.
func (e Event) Encode() ([]byte, error) {
	if e.ID == "" || e.Source == "" || e.Type == "" || e.Time.IsZero() {
		return nil, errors.New("events: encode: event has no id, source, type or time")
	}
	if b, ok := e.encodeFast(); ok {
		return b, nil
	}
	return e.encodeReflect()
}

// encodeReflect is Encode through encoding/json: the reference the fast path
// is tested against, and the path of every data type it does not know.
func (e Event) encodeReflect() ([]byte, error) {
	b, err := json.Marshal(envelope{
		SpecVersion:     "1.0",
		ID:              e.ID,
		Source:          e.Source,
		Type:            e.Type,
		Subject:         e.Subject,
		Time:            e.Time.Format(timeLayout),
		DataContentType: "application/json",
		DataSchema:      e.DataSchema,
		TraceParent:     e.TraceParent,
		Data:            e.Data,
	})
	if err != nil {
		return nil, fmt.Errorf("events: encode %s: %w", e.Type, err)
	}
	return b, nil
}
