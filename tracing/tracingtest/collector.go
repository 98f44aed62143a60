package tracingtest

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// Collector is a real OTLP/HTTP trace endpoint on httptest: it decodes
// every export request's protobuf body and keeps it.
type Collector struct {
	URL string // base URL, for OTEL_EXPORTER_OTLP_ENDPOINT

	mu       sync.Mutex
	requests []*collectortrace.ExportTraceServiceRequest
	paths    []string
	headers  []http.Header
}

// StartCollector starts a collector, closed when the test ends.
func StartCollector(t testing.TB) *Collector {
	c := &Collector{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil || r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/x-protobuf" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		var req collectortrace.ExportTraceServiceRequest
		if err := proto.Unmarshal(body, &req); err != nil {
			http.Error(w, "not an export request", http.StatusBadRequest)
			return
		}
		c.mu.Lock()
		c.requests, c.paths, c.headers = append(c.requests, &req), append(c.paths, r.URL.Path), append(c.headers, r.Header.Clone())
		c.mu.Unlock()
		b, _ := proto.Marshal(&collectortrace.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.Write(b)
	}))
	t.Cleanup(srv.Close)
	c.URL = srv.URL
	return c
}

// Span is one exported span with its resource's string attributes.
type Span struct {
	*tracepb.Span
	Resource map[string]string
	Path     string      // the request path it came on
	Header   http.Header // the request's headers
}

// Spans are every span received so far.
func (c *Collector) Spans() []Span {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []Span
	for i, req := range c.requests {
		for _, rs := range req.ResourceSpans {
			res := map[string]string{}
			for _, kv := range rs.GetResource().GetAttributes() {
				res[kv.Key] = kv.Value.GetStringValue()
			}
			for _, ss := range rs.ScopeSpans {
				for _, s := range ss.Spans {
					out = append(out, Span{Span: s, Resource: res, Path: c.paths[i], Header: c.headers[i]})
				}
			}
		}
	}
	return out
}

// Attr is s's attribute k as text ("" when absent): strings as they are,
// integers in decimal.
func (s Span) Attr(k string) string {
	for _, kv := range s.Attributes {
		if kv.Key != k {
			continue
		}
		if iv, ok := kv.Value.GetValue().(*commonpb.AnyValue_IntValue); ok {
			return strconv.FormatInt(iv.IntValue, 10)
		}
		return kv.Value.GetStringValue()
	}
	return ""
}
