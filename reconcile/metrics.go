package reconcile

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metric names (contract section 11), for alert rules and tests.
const (
	MetricMissing     = "paycomet_notify_reconcile_missing_total"
	MetricRuns        = "paycomet_notify_reconcile_runs_total"
	MetricFailures    = "paycomet_notify_reconcile_failures_total"
	MetricDuration    = "paycomet_notify_reconcile_run_duration_seconds"
	MetricLastSuccess = "paycomet_notify_reconcile_last_success_timestamp_seconds"
)

// Metrics are a long-running reconciler's series (reconcile --every).
type Metrics struct {
	missing     *prometheus.CounterVec
	runs        prometheus.Counter
	failures    prometheus.Counter
	duration    prometheus.Histogram
	lastSuccess prometheus.Gauge
}

// NewMetrics registers the series on reg; terminals' missing series start
// at 0, so an alert on their increase sees the first finding.
func NewMetrics(reg prometheus.Registerer, terminals []string) *Metrics {
	m := &Metrics{
		missing: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricMissing,
			Help: "Operations PAYCOMET reports whose notification never reached the stream, counted once when their finding is first published."}, []string{"terminal"}),
		runs: prometheus.NewCounter(prometheus.CounterOpts{Name: MetricRuns, Help: "Reconciliation runs started."}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{Name: MetricFailures,
			Help: "Reconciliation runs that did not complete: a PAYCOMET REST call or NATS failed."}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{Name: MetricDuration, Help: "Duration of reconciliation runs.",
			Buckets: []float64{0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600}}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{Name: MetricLastSuccess,
			Help: "Unix time at which the last reconciliation run completed (0: none yet)."}),
	}
	reg.MustRegister(m.missing, m.runs, m.failures, m.duration, m.lastSuccess)
	for _, t := range terminals {
		m.missing.WithLabelValues(t)
	}
	return m
}

// Observe records one run: rep may be nil when err ended it early.
func (m *Metrics) Observe(rep *Report, err error, took time.Duration, now time.Time) {
	m.runs.Inc()
	m.duration.Observe(took.Seconds())
	if rep != nil {
		for _, t := range rep.Terminals {
			for _, ms := range t.Missing {
				if ms.New {
					m.missing.WithLabelValues(t.Terminal).Inc()
				}
			}
		}
	}
	if err != nil || rep == nil || rep.Failed() {
		m.failures.Inc()
		return
	}
	m.lastSuccess.Set(float64(now.Unix()))
}
