// Package tracing is OpenTelemetry for paycomet-notify: set up from the
// standard OTEL_* variables (off when none asks for it), W3C trace context
// in and out of NATS message headers, and the traceparent string an event
// carries (the CloudEvents distributed-tracing extension).
//
// Off is the default and costs nothing on the hot path: a *Tracing that is
// off (or nil) starts no span, extracts nothing and allocates nothing; the
// code that uses it checks On (or gets the context back unchanged).
//
// The variables are read from the environment map the command was given
// (house style), not from the process: OTEL_SDK_DISABLED,
// OTEL_TRACES_EXPORTER (otlp or none), OTEL_EXPORTER_OTLP_ENDPOINT and
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, _HEADERS, _TIMEOUT, _COMPRESSION,
// _PROTOCOL (http/protobuf only), OTEL_SERVICE_NAME,
// OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG.
// The exporter's TLS files (OTEL_EXPORTER_OTLP_CERTIFICATE, ...) and the
// batch processor's OTEL_BSP_* are read by the SDK itself from the process
// environment, which is the same map in production. The propagator is
// always W3C trace context (the contract's traceparent).
package tracing

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Variables are the environment variables Setup reads (for checks that
// every variable a deployment sets is one the program knows).
var Variables = []string{
	"OTEL_SDK_DISABLED",
	"OTEL_TRACES_EXPORTER",
	"OTEL_EXPORTER_OTLP_ENDPOINT",
	"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
	"OTEL_EXPORTER_OTLP_HEADERS",
	"OTEL_EXPORTER_OTLP_TRACES_HEADERS",
	"OTEL_EXPORTER_OTLP_TIMEOUT",
	"OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
	"OTEL_EXPORTER_OTLP_COMPRESSION",
	"OTEL_EXPORTER_OTLP_TRACES_COMPRESSION",
	"OTEL_EXPORTER_OTLP_PROTOCOL",
	"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
	"OTEL_EXPORTER_OTLP_CERTIFICATE",
	"OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
	"OTEL_EXPORTER_OTLP_CLIENT_KEY",
	"OTEL_SERVICE_NAME",
	"OTEL_RESOURCE_ATTRIBUTES",
	"OTEL_TRACES_SAMPLER",
	"OTEL_TRACES_SAMPLER_ARG",
	"OTEL_PROPAGATORS",
}

// Tracing is one process's tracer provider. The zero value and nil are off.
type Tracing struct {
	tp  trace.TracerProvider
	sdk *sdktrace.TracerProvider // owned: flushed and stopped by Shutdown
	// Endpoint is where spans go (no user information), for the start-up
	// log line; empty when off or not exporting over OTLP.
	Endpoint string
}

// Off is tracing off.
func Off() *Tracing { return nil }

// New wraps a tracer provider someone else owns (tests: an SDK provider
// with an in-memory exporter). Shutdown does not stop it.
func New(tp trace.TracerProvider) *Tracing {
	if tp == nil {
		return nil
	}
	if _, isNoop := tp.(noop.TracerProvider); isNoop {
		return nil
	}
	return &Tracing{tp: tp}
}

// On reports whether spans are made and trace context is carried.
func (t *Tracing) On() bool { return t != nil && t.tp != nil }

// Tracer is the named tracer; a no-op one when off.
func (t *Tracing) Tracer(name string) trace.Tracer {
	if !t.On() {
		return noop.NewTracerProvider().Tracer(name)
	}
	return t.tp.Tracer(name)
}

// Shutdown flushes the spans not yet exported and stops the exporter,
// within ctx. Nothing when off or when the provider is not ours.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if t == nil || t.sdk == nil {
		return nil
	}
	if err := t.sdk.Shutdown(ctx); err != nil {
		return fmt.Errorf("tracing: flush spans: %w", err)
	}
	return nil
}

// Options are a subcommand's defaults.
type Options struct {
	// ServiceName is service.name unless OTEL_SERVICE_NAME is set
	// ("paycomet-notify-serve").
	ServiceName string
	Version     string // service.version
	// Log receives export failures (at most one line per 30 s).
	Log *slog.Logger
}

// Setup reads the OTEL_* variables from env. Tracing is on when
// OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is
// set, or OTEL_TRACES_EXPORTER is otlp (then to localhost:4318, the
// standard default); off when none is, when OTEL_TRACES_EXPORTER is none or
// OTEL_SDK_DISABLED is true. A value that cannot be right is an error
// naming the variable; header values (which often carry an API key) are
// never shown.
func Setup(ctx context.Context, env map[string]string, o Options) (*Tracing, error) {
	get := func(k string) string { return strings.TrimSpace(env[k]) }
	if v := get("OTEL_SDK_DISABLED"); v != "" {
		off, err := strconv.ParseBool(v)
		if err != nil {
			return nil, fmt.Errorf("OTEL_SDK_DISABLED: %q is not true or false", v)
		}
		if off {
			return nil, nil
		}
	}
	switch exp := strings.ToLower(get("OTEL_TRACES_EXPORTER")); exp {
	case "none":
		return nil, nil
	case "":
		if get("OTEL_EXPORTER_OTLP_ENDPOINT") == "" && get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") == "" {
			return nil, nil
		}
	case "otlp":
	default:
		return nil, fmt.Errorf("OTEL_TRACES_EXPORTER: %q is not supported (otlp or none)", exp)
	}

	var opts []otlptracehttp.Option
	endpoint := "http://localhost:4318/v1/traces"
	if v := get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"); v != "" {
		u, err := parseEndpoint("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", v)
		if err != nil {
			return nil, err
		}
		if u.Path == "" {
			u.Path = "/"
		}
		endpoint = u.String()
	} else if v := get("OTEL_EXPORTER_OTLP_ENDPOINT"); v != "" {
		u, err := parseEndpoint("OTEL_EXPORTER_OTLP_ENDPOINT", v)
		if err != nil {
			return nil, err
		}
		u.Path = path.Join("/", u.Path, "v1/traces")
		endpoint = u.String()
	}
	opts = append(opts, otlptracehttp.WithEndpointURL(endpoint))
	for _, k := range []string{"OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"} {
		if v := get(k); v != "" && v != "http/protobuf" {
			return nil, fmt.Errorf("%s: %q is not supported; paycomet-notify exports OTLP over HTTP (http/protobuf, port 4318)", k, v)
		}
	}
	headers := map[string]string{}
	for _, k := range []string{"OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_TRACES_HEADERS"} {
		if err := parseHeaders(k, get(k), headers); err != nil {
			return nil, err
		}
	}
	if len(headers) > 0 {
		opts = append(opts, otlptracehttp.WithHeaders(headers))
	}
	for _, k := range []string{"OTEL_EXPORTER_OTLP_TIMEOUT", "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT"} {
		if v := get(k); v != "" {
			ms, err := strconv.Atoi(v)
			if err != nil || ms <= 0 {
				return nil, fmt.Errorf("%s: %q is not a positive number of milliseconds", k, v)
			}
			opts = append(opts, otlptracehttp.WithTimeout(time.Duration(ms)*time.Millisecond))
		}
	}
	for _, k := range []string{"OTEL_EXPORTER_OTLP_COMPRESSION", "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION"} {
		switch v := get(k); v {
		case "":
		case "gzip":
			opts = append(opts, otlptracehttp.WithCompression(otlptracehttp.GzipCompression))
		case "none":
			opts = append(opts, otlptracehttp.WithCompression(otlptracehttp.NoCompression))
		default:
			return nil, fmt.Errorf("%s: %q is not gzip or none", k, v)
		}
	}
	if v := get("OTEL_PROPAGATORS"); v != "" && !strings.Contains(v, "tracecontext") {
		return nil, fmt.Errorf("OTEL_PROPAGATORS: %q: paycomet-notify carries W3C trace context (tracecontext) only", v)
	}
	sampler, err := parseSampler(get("OTEL_TRACES_SAMPLER"), get("OTEL_TRACES_SAMPLER_ARG"))
	if err != nil {
		return nil, err
	}
	res, err := newResource(get("OTEL_SERVICE_NAME"), get("OTEL_RESOURCE_ATTRIBUTES"), o)
	if err != nil {
		return nil, err
	}
	exp, err := otlptracehttp.New(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("tracing: OTLP exporter: %w", err)
	}
	sdk := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(&loggingExporter{SpanExporter: exp, log: o.Log}),
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sampler),
	)
	return &Tracing{tp: sdk, sdk: sdk, Endpoint: redact(endpoint)}, nil
}

func parseEndpoint(k, v string) (*url.URL, error) {
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%s: %q is not an http:// or https:// URL", k, redact(v))
	}
	return u, nil
}

// redact drops a URL's user information.
func redact(v string) string {
	u, err := url.Parse(v)
	if err != nil {
		return "(unparsable URL)"
	}
	if u.User != nil {
		u.User = url.User("REDACTED")
	}
	return u.String()
}

// parseHeaders reads "key=value,key2=value2" (values percent-encoded, as
// W3C baggage). An error names the variable and the key, never a value.
func parseHeaders(k, v string, into map[string]string) error {
	if v == "" {
		return nil
	}
	for i, kv := range strings.Split(v, ",") {
		name, val, ok := strings.Cut(kv, "=")
		name = strings.TrimSpace(name)
		if !ok || name == "" {
			return fmt.Errorf("%s: entry %d is not key=value", k, i+1)
		}
		dec, err := url.PathUnescape(strings.TrimSpace(val))
		if err != nil {
			return fmt.Errorf("%s: the value of %q is not percent-encoded correctly", k, name)
		}
		into[name] = dec
	}
	return nil
}

func parseSampler(name, arg string) (sdktrace.Sampler, error) {
	ratio := func() (float64, error) {
		if arg == "" {
			return 1, nil
		}
		f, err := strconv.ParseFloat(arg, 64)
		if err != nil || f < 0 || f > 1 {
			return 0, fmt.Errorf("OTEL_TRACES_SAMPLER_ARG: %q is not a ratio between 0 and 1", arg)
		}
		return f, nil
	}
	switch name {
	case "", "parentbased_always_on":
		return sdktrace.ParentBased(sdktrace.AlwaysSample()), nil
	case "always_on":
		return sdktrace.AlwaysSample(), nil
	case "always_off":
		return sdktrace.NeverSample(), nil
	case "parentbased_always_off":
		return sdktrace.ParentBased(sdktrace.NeverSample()), nil
	case "traceidratio", "parentbased_traceidratio":
		f, err := ratio()
		if err != nil {
			return nil, err
		}
		if name == "traceidratio" {
			return sdktrace.TraceIDRatioBased(f), nil
		}
		return sdktrace.ParentBased(sdktrace.TraceIDRatioBased(f)), nil
	}
	return nil, fmt.Errorf("OTEL_TRACES_SAMPLER: %q is not always_on, always_off, traceidratio or their parentbased_ forms", name)
}

func newResource(service, attrs string, o Options) (*resource.Resource, error) {
	kvs := []attribute.KeyValue{}
	if attrs != "" {
		for i, kv := range strings.Split(attrs, ",") {
			k, v, ok := strings.Cut(kv, "=")
			k = strings.TrimSpace(k)
			if !ok || k == "" {
				return nil, fmt.Errorf("OTEL_RESOURCE_ATTRIBUTES: entry %d is not key=value", i+1)
			}
			dec, err := url.PathUnescape(strings.TrimSpace(v))
			if err != nil {
				return nil, fmt.Errorf("OTEL_RESOURCE_ATTRIBUTES: the value of %q is not percent-encoded correctly", k)
			}
			if k == "service.name" && service == "" {
				service = dec
				continue
			}
			kvs = append(kvs, attribute.String(k, dec))
		}
	}
	if service == "" {
		service = o.ServiceName
	}
	if service == "" {
		service = "paycomet-notify"
	}
	kvs = append(kvs, attribute.String("service.name", service))
	if o.Version != "" {
		kvs = append(kvs, attribute.String("service.version", o.Version))
	}
	kvs = append(kvs, attribute.String("telemetry.sdk.language", "go"), attribute.String("telemetry.sdk.name", "opentelemetry"))
	return resource.NewSchemaless(kvs...), nil
}

// loggingExporter logs export failures to the JSON log (at most one line
// per 30 s: a collector that is down fails every batch) instead of the
// SDK's global handler, and drops the batch: tracing never holds up or
// fails the service.
type loggingExporter struct {
	sdktrace.SpanExporter
	log *slog.Logger

	mu         sync.Mutex
	last       time.Time
	suppressed int
}

func (e *loggingExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	err := e.SpanExporter.ExportSpans(ctx, spans)
	if err == nil || e.log == nil {
		return nil
	}
	e.mu.Lock()
	now := time.Now()
	if now.Sub(e.last) < 30*time.Second {
		e.suppressed++
		e.mu.Unlock()
		return nil
	}
	n := e.suppressed
	e.last, e.suppressed = now, 0
	e.mu.Unlock()
	attrs := []any{"err", err.Error(), "spans_dropped", len(spans)}
	if n > 0 {
		attrs = append(attrs, "suppressed", n)
	}
	e.log.Warn("tracing: spans not exported", attrs...)
	return nil
}

// propagator is W3C trace context: traceparent and tracestate.
var propagator = propagation.TraceContext{}
