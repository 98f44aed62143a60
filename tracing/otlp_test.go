package tracing_test

import (
	"context"
	"strings"
	"testing"

	"github.com/paycomet-notify/paycomet-notify/tracing"
	"github.com/paycomet-notify/paycomet-notify/tracing/tracingtest"
)

// TestExportsOverOTLPHTTP: set up from the standard variables alone, spans
// reach a real OTLP/HTTP endpoint at <endpoint>/v1/traces with the service
// name and the configured headers, once Shutdown has flushed them.
func TestExportsOverOTLPHTTP(t *testing.T) {
	c := tracingtest.StartCollector(t)
	url := c.URL
	tr, err := tracing.Setup(context.Background(), map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT": url + "/otlp",
		"OTEL_EXPORTER_OTLP_HEADERS":  "authorization=Bearer%20collector-key,x-tenant=paycomet",
		"OTEL_RESOURCE_ATTRIBUTES":    "deployment.environment.name=test",
	}, tracing.Options{ServiceName: "paycomet-notify-serve", Version: "1.2.3"})
	if err != nil {
		t.Fatal(err)
	}
	if !tr.On() || tr.Endpoint != url+"/otlp/v1/traces" {
		t.Fatalf("On() = %v, endpoint %q", tr.On(), tr.Endpoint)
	}
	_, span := tr.Tracer("test").Start(context.Background(), "paycomet.notification")
	want := span.SpanContext()
	span.End()
	if err := tr.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	spans := c.Spans()
	if len(spans) != 1 {
		t.Fatalf("%d spans arrived, want 1", len(spans))
	}
	s := spans[0]
	if s.Name != "paycomet.notification" || [16]byte(s.TraceId) != want.TraceID() || [8]byte(s.SpanId) != want.SpanID() {
		t.Errorf("span %s %x/%x, want paycomet.notification %s/%s", s.Name, s.TraceId, s.SpanId, want.TraceID(), want.SpanID())
	}
	if s.Path != "/otlp/v1/traces" || s.Header.Get("Authorization") != "Bearer collector-key" || s.Header.Get("X-Tenant") != "paycomet" {
		t.Errorf("export to %s with headers %v", s.Path, s.Header)
	}
	if s.Resource["service.name"] != "paycomet-notify-serve" || s.Resource["service.version"] != "1.2.3" ||
		s.Resource["deployment.environment.name"] != "test" {
		t.Errorf("resource %v", s.Resource)
	}
}

// TestSetup: which variables turn tracing on, and what is refused, naming
// the variable and never a header value.
func TestSetup(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		on   bool
		err  string // part of the error; "" none
	}{
		{"nothing set", nil, false, ""},
		{"service name alone", map[string]string{"OTEL_SERVICE_NAME": "x"}, false, ""},
		{"endpoint", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, true, ""},
		{"traces endpoint", map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "https://collector/v1/traces"}, true, ""},
		{"exporter otlp, default endpoint", map[string]string{"OTEL_TRACES_EXPORTER": "otlp"}, true, ""},
		{"exporter none wins", map[string]string{"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, false, ""},
		{"sdk disabled", map[string]string{"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, false, ""},
		{"sampler ratio", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.25"}, true, ""},
		{"grpc refused", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, false, "OTEL_EXPORTER_OTLP_PROTOCOL"},
		{"unknown exporter", map[string]string{"OTEL_TRACES_EXPORTER": "zipkin"}, false, "OTEL_TRACES_EXPORTER"},
		{"endpoint not a URL", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4318"}, false, "OTEL_EXPORTER_OTLP_ENDPOINT"},
		{"bad timeout", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_EXPORTER_OTLP_TIMEOUT": "5s"}, false, "OTEL_EXPORTER_OTLP_TIMEOUT"},
		{"bad sampler", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_SAMPLER": "sometimes"}, false, "OTEL_TRACES_SAMPLER"},
		{"bad ratio", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "2"}, false, "OTEL_TRACES_SAMPLER_ARG"},
		{"bad headers", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_EXPORTER_OTLP_HEADERS": "api-key=s3cret%zz"}, false, "OTEL_EXPORTER_OTLP_HEADERS"},
		{"headers without =", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_EXPORTER_OTLP_HEADERS": "s3cret"}, false, "OTEL_EXPORTER_OTLP_HEADERS"},
		{"endpoint password", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "ftp://u:s3cret@c:4318"}, false, "OTEL_EXPORTER_OTLP_ENDPOINT"},
		{"propagator", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_PROPAGATORS": "b3"}, false, "OTEL_PROPAGATORS"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr, err := tracing.Setup(context.Background(), tc.env, tracing.Options{})
			defer tr.Shutdown(context.Background())
			switch {
			case tc.err == "" && err != nil:
				t.Fatalf("Setup() = %v", err)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Fatalf("Setup() = %v, want an error naming %s", err, tc.err)
			case err != nil && strings.Contains(err.Error(), "s3cret"):
				t.Errorf("the error shows a secret: %v", err)
			}
			if tr.On() != tc.on {
				t.Errorf("On() = %v, want %v", tr.On(), tc.on)
			}
		})
	}
}
