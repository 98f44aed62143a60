package service

import (
	"context"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// Stream storage gauges, exported so alert rules and tests can refer to them.
const (
	MetricStreamBytes    = "paycomet_notify_stream_bytes"
	MetricStreamMaxBytes = "paycomet_notify_stream_max_bytes"
	MetricStreamMessages = "paycomet_notify_stream_messages"
)

// StreamGauges shows how full each stream is: the event stream grows
// without bound by design (an operator has to watch its disk), the
// quarantine stream up to REJECTED_MAX_BYTES. They are refreshed from stream
// info by one background loop, never per scrape, so scrapes cost no NATS
// round trip.
type StreamGauges struct {
	bytes, maxBytes, msgs *prometheus.GaugeVec
}

// NewStreamGauges registers the gauges on reg.
func NewStreamGauges(reg prometheus.Registerer) *StreamGauges {
	g := &StreamGauges{
		bytes: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: MetricStreamBytes,
			Help: "Bytes stored in the stream, from its info (refreshed periodically)."}, []string{"stream"}),
		maxBytes: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: MetricStreamMaxBytes,
			Help: "The stream's MaxBytes limit; -1 when unbounded."}, []string{"stream"}),
		msgs: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: MetricStreamMessages,
			Help: "Messages stored in the stream."}, []string{"stream"}),
	}
	reg.MustRegister(g.bytes, g.maxBytes, g.msgs)
	return g
}

// Refresh reads each stream's info once and sets its gauges. A stream that
// cannot be read (not created yet, NATS down) keeps its last values; the
// first error is returned.
func (g *StreamGauges) Refresh(ctx context.Context, js jetstream.StreamManager, streams ...string) error {
	var first error
	for _, name := range streams {
		s, err := js.Stream(ctx, name)
		if err != nil {
			if first == nil {
				first = err
			}
			continue
		}
		info := s.CachedInfo() // js.Stream has just fetched it
		g.bytes.WithLabelValues(name).Set(float64(info.State.Bytes))
		g.maxBytes.WithLabelValues(name).Set(float64(info.Config.MaxBytes))
		g.msgs.WithLabelValues(name).Set(float64(info.State.Msgs))
	}
	return first
}

// Task refreshes the gauges now and every interval until stopped.
func (g *StreamGauges) Task(js jetstream.StreamManager, every time.Duration, log *slog.Logger, streams ...string) Task {
	return ContextTask("stream gauges", func(ctx context.Context) error {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			rctx, cancel := context.WithTimeout(ctx, every)
			if err := g.Refresh(rctx, js, streams...); err != nil && ctx.Err() == nil {
				log.Debug("stream gauges not refreshed", "err", err)
			}
			cancel()
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
			}
		}
	})
}
