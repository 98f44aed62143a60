package handler

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the receiver's Prometheus series. Label values are bounded:
// transaction types outside the contract's table count as "other".
type Metrics struct {
	notifications       *prometheus.CounterVec   // type, result
	responses           *prometheus.CounterVec   // code
	duplicates          *prometheus.CounterVec   // layer
	publishSeconds      prometheus.Histogram     //
	dedupeErrors        *prometheus.CounterVec   // op
	acceptedUnpublished prometheus.Counter       //
	quarantined         *prometheus.CounterVec   // status
	withoutDedupe       prometheus.Counter       //
	inflightWaits       *prometheus.CounterVec   // result
	requestSeconds      *prometheus.HistogramVec // code class

	// Series of the notification path resolved once, so a request neither
	// formats label values nor looks them up: the statuses answer() gives,
	// and the two classes a delivered notification ends in.
	answers                       map[int]prometheus.Counter
	okSeconds, unavailableSeconds prometheus.Observer
}

// Metric names, exported so alert rules and tests can refer to them.
const (
	MetricNotifications       = "paycomet_notify_notifications_total"
	MetricResponses           = "paycomet_notify_http_responses_total"
	MetricDuplicates          = "paycomet_notify_duplicates_total"
	MetricPublishSeconds      = "paycomet_notify_publish_duration_seconds"
	MetricDedupeErrors        = "paycomet_notify_dedupe_store_errors_total"
	MetricAcceptedUnpublished = "paycomet_notify_accepted_not_published_total"
	MetricQuarantined         = "paycomet_notify_quarantined_total"
	MetricWithoutDedupe       = "paycomet_notify_published_without_dedupe_store_total"
	MetricInflightWaits       = "paycomet_notify_inflight_waits_total"
	MetricRequestSeconds      = "paycomet_notify_request_duration_seconds"
)

// NewMetrics registers the receiver's series on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		notifications: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricNotifications,
			Help: "Notifications by TransactionType and result (published, duplicate, rejected, unavailable)."}, []string{"type", "result"}),
		responses: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricResponses,
			Help: "Answers on the notification URL by HTTP status."}, []string{"code"}),
		duplicates: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricDuplicates,
			Help: "Duplicates caught, by layer: the dedupe store (redis, jetstream_kv) or JetStream's Nats-Msg-Id window (jetstream)."}, []string{"layer"}),
		publishSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: MetricPublishSeconds,
			Help:    "Time from publish to JetStream ack.",
			Buckets: []float64{.0005, .001, .002, .003, .005, .0075, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}}),
		dedupeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricDedupeErrors,
			Help: "Dedupe store calls that failed, by operation (claim, mark_seen, release)."}, []string{"op"}),
		acceptedUnpublished: prometheus.NewCounter(prometheus.CounterOpts{Name: MetricAcceptedUnpublished,
			Help: "Notifications answered 200 without a JetStream ack or an earlier publish. Must stay 0."}),
		quarantined: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricQuarantined,
			Help: "Rejected notifications published on <prefix>.rejected, by HTTP status."}, []string{"status"}),
		withoutDedupe: prometheus.NewCounter(prometheus.CounterOpts{Name: MetricWithoutDedupe,
			Help: "Notifications published while the dedupe store was unreachable (JetStream's window deduped them)."}),
		inflightWaits: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricInflightWaits,
			Help: "Copies that arrived while the first copy was being published, by how the wait ended."}, []string{"result"}),
		requestSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: MetricRequestSeconds,
			Help:    "Time to answer a notification, by status class.",
			Buckets: []float64{.0005, .001, .002, .003, .005, .0075, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}}, []string{"class"}),
	}
	reg.MustRegister(m.notifications, m.responses, m.duplicates, m.publishSeconds, m.dedupeErrors,
		m.acceptedUnpublished, m.quarantined, m.withoutDedupe, m.inflightWaits, m.requestSeconds)
	m.answers = map[int]prometheus.Counter{}
	for _, code := range []int{200, 400, 401, 403, 413, 415, 500, 503} {
		m.answers[code] = m.responses.WithLabelValues(strconv.Itoa(code))
	}
	m.okSeconds = m.requestSeconds.WithLabelValues("2xx")
	m.unavailableSeconds = m.requestSeconds.WithLabelValues("5xx")
	// Pre-create the series alerting reads, so they exist at 0.
	m.acceptedUnpublished.Add(0)
	for _, l := range []string{"redis", "jetstream_kv", "jetstream"} {
		m.duplicates.WithLabelValues(l)
	}
	for _, op := range []string{"claim", "mark_seen", "release"} {
		m.dedupeErrors.WithLabelValues(op)
	}
	return m
}

// typeLabel keeps the label set bounded whatever number PAYCOMET sends.
func typeLabel(t int) string {
	switch t {
	case 1, 2, 3, 4, 6, 9, 13, 14, 16, 106, 107, 108:
		return strconv.Itoa(t)
	case 0:
		return "none"
	}
	return "other"
}

// answered counts one answer of status.
func (m *Metrics) answered(status int) {
	if c, ok := m.answers[status]; ok {
		c.Inc()
		return
	}
	m.responses.WithLabelValues(strconv.Itoa(status)).Inc()
}
