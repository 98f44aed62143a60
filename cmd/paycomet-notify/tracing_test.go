package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/paycomet-notify/paycomet-notify/demo"
	"github.com/paycomet-notify/paycomet-notify/internal/testenv"
	"github.com/paycomet-notify/paycomet-notify/notify"
	"github.com/paycomet-notify/paycomet-notify/ops/opstest"
	"github.com/paycomet-notify/paycomet-notify/tracing/tracingtest"
)

// TestServeExportsTraces: serve with OTEL_EXPORTER_OTLP_ENDPOINT sends the
// spans of a notification to a real OTLP/HTTP endpoint (flushed by the
// ordered shutdown), and the event on NATS carries the notification span's
// traceparent in its envelope and a traceparent header in the same trace.
func TestServeExportsTraces(t *testing.T) {
	c := tracingtest.StartCollector(t)
	n := testenv.StartNATS(t)
	env := map[string]string{
		"PAYCOMET_MERCHANT_CODE":      "MC000001",
		"PAYCOMET_TERMINALS":          "11:pw-eleven",
		"NATS_URL":                    n.URL(),
		"OTEL_EXPORTER_OTLP_ENDPOINT": c.URL,
		"OTEL_EXPORTER_OTLP_HEADERS":  "api-key=collector-secret",
	}
	s := startServe(t, env)
	if code, out, errOut := runCmd(t, env, "send", "--type", "1"); code != 0 || !strings.Contains(out, "200 OK") {
		t.Fatalf("send = %d\n%s\n%s", code, out, errOut)
	}
	if code := s.stop(t); code != 0 {
		t.Fatalf("serve exited %d:\n%s", code, s.stderr)
	}

	js, err := jetstream.New(n.Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, "PAYCOMET")
	if err != nil {
		t.Fatal(err)
	}
	m, err := st.GetMsg(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	var ev struct {
		ID          string `json:"id"`
		TraceParent string `json:"traceparent"`
	}
	if err := json.Unmarshal(m.Data, &ev); err != nil {
		t.Fatal(err)
	}

	var root *tracingtest.Span
	names := []string{}
	for _, sp := range c.Spans() {
		names = append(names, sp.Name)
		if sp.Name == "paycomet.notification" {
			root = &sp
		}
	}
	if root == nil {
		t.Fatalf("no notification span arrived at the collector; spans: %v\n%s", names, s.stderr)
	}
	if root.Resource["service.name"] != "paycomet-notify-serve" || root.Attr("cloudevents.event_id") != ev.ID ||
		root.Attr("paycomet.outcome") != "accepted" || root.Attr("paycomet.transaction_type") != "1" || root.Header.Get("Api-Key") != "collector-secret" {
		t.Errorf("notification span: resource %v, attributes %v", root.Resource, root.Attributes)
	}
	want := "00-" + hex.EncodeToString(root.TraceId) + "-" + hex.EncodeToString(root.SpanId) + "-01"
	if ev.TraceParent != want {
		t.Errorf("event traceparent %q, want the exported notification span's %q", ev.TraceParent, want)
	}
	if h := m.Header.Get("traceparent"); !strings.HasPrefix(h, "00-"+hex.EncodeToString(root.TraceId)+"-") {
		t.Errorf("message traceparent header %q, not in trace %x", h, root.TraceId)
	}
	if len(names) < 5 {
		t.Errorf("spans exported: %v, want the notification and its four steps", names)
	}
	if strings.Contains(s.stderr.String(), "collector-secret") || strings.Contains(s.stderr.String(), "pw-eleven") {
		t.Errorf("the log shows a secret:\n%s", s.stderr)
	}
}

// TestQuarantineReplayExportsTraces: `quarantine replay` with OTLP set
// exports its replay span, in the trace of the quarantined request (which
// a traced receiver put in the quarantine event), before it exits.
func TestQuarantineReplayExportsTraces(t *testing.T) {
	rig := opstest.New(t)
	recvTr, recv := tracingtest.New(t)
	rig.Send(rig.TracedPath("wrong-password", true, recvTr), opstest.Sample("order-T1", 1000), notify.Rejected)
	orig := recv.Wait(notify.SpanNotification)

	c := tracingtest.StartCollector(t)
	env := opsEnv(rig, demo.Password)
	env["OTEL_EXPORTER_OTLP_ENDPOINT"] = c.URL
	if code, out, errs := runOps(t, env, "quarantine", "replay"); code != 0 || !strings.Contains(out, " accepted ") {
		t.Fatalf("quarantine replay = %d\n%s%s", code, out, errs)
	}
	var replay, notification *tracingtest.Span
	for _, s := range c.Spans() {
		switch s.Name {
		case "replay rejected":
			replay = &s
		case notify.SpanNotification:
			notification = &s
		}
	}
	if replay == nil || notification == nil {
		t.Fatalf("spans exported: %v", c.Spans())
	}
	if [16]byte(replay.TraceId) != orig.SpanContext.TraceID() || [8]byte(replay.ParentSpanId) != orig.SpanContext.SpanID() {
		t.Errorf("replay span in trace %x under %x, want the quarantined request's %s/%s", replay.TraceId, replay.ParentSpanId,
			orig.SpanContext.TraceID(), orig.SpanContext.SpanID())
	}
	if [8]byte(notification.ParentSpanId) != [8]byte(replay.SpanId) || notification.Resource["service.name"] != "paycomet-notify-quarantine" {
		t.Errorf("notification span under %x (want %x), resource %v", notification.ParentSpanId, replay.SpanId, notification.Resource)
	}
}

// TestReconcilePublishMissingExportsTraces: each copy reconcile
// --publish-missing publishes is a span exported before the command exits,
// and the copy's event carries that span's traceparent.
func TestReconcilePublishMissingExportsTraces(t *testing.T) {
	env, _ := reconcileRig(t)
	c := tracingtest.StartCollector(t)
	env["OTEL_EXPORTER_OTLP_ENDPOINT"] = c.URL
	if code, out, errs := runCmd(t, env, "reconcile", "--demo", "--last", "1h", "--publish-missing"); code != 0 {
		t.Fatalf("reconcile --publish-missing = %d\n%s%s", code, out, errs)
	}
	spans := map[string]tracingtest.Span{} // traceparent -> span
	for _, s := range c.Spans() {
		if s.Name == notify.SpanReconciled {
			if s.Resource["service.name"] != "paycomet-notify-reconcile" || s.Attr("paycomet.outcome") != "accepted" {
				t.Errorf("reconciled span: resource %v, attributes %v", s.Resource, s.Attributes)
			}
			spans["00-"+hex.EncodeToString(s.TraceId)+"-"+hex.EncodeToString(s.SpanId)+"-01"] = s
		}
	}
	copies := 0
	for _, e := range streamEvents(t, env, "PAYCOMET", "paycomet.>") {
		if d, _ := e["data"].(map[string]any); d["authenticated_by"] != "reconciliation" {
			continue
		}
		copies++
		tp, _ := e["traceparent"].(string)
		if s, ok := spans[tp]; !ok || s.Attr("cloudevents.event_id") != e["id"] {
			t.Errorf("copy %v: traceparent %q matches no exported reconciled span of its id", e["id"], tp)
		}
	}
	if copies == 0 || len(spans) != copies {
		t.Errorf("%d copies, %d reconciled spans; want as many, at least one", copies, len(spans))
	}
}
