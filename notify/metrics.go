package notify

import (
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/paycomet-notify/paycomet-notify/events"
)

// Metric names, exported so alert rules and tests can refer to them.
const (
	MetricNotifications     = "paycomet_notify_notifications_total"
	MetricResponses         = "paycomet_notify_http_responses_total"
	MetricDuplicates        = "paycomet_notify_duplicates_total"
	MetricPublishSeconds    = "paycomet_notify_publish_duration_seconds"
	MetricDedupeErrors      = "paycomet_notify_dedupe_store_errors_total"
	MetricQuarantined       = "paycomet_notify_quarantined_total"
	MetricWithoutDedupe     = "paycomet_notify_published_without_dedupe_store_total"
	MetricInflightWaits     = "paycomet_notify_inflight_waits_total"
	MetricRequestSeconds    = "paycomet_notify_request_duration_seconds"
	MetricConflictingCopies = "paycomet_notify_conflicting_copies_total"
	MetricRejectedNotStored = "paycomet_notify_rejected_not_stored_total"
	MetricUnauthorized      = "paycomet_notify_unauthorized_total"
	MetricDedupeStoreUp     = "paycomet_notify_dedupe_store_up"
)

// Causes of MetricRejectedNotStored.
const (
	// CauseRateLimited: the source was past REJECTED_RATE_PER_SOURCE.
	CauseRateLimited = "rate_limited"
	// CauseQuarantineUnavailable: a conflicting copy (answered 200, its
	// event durable) whose quarantine message could not be published. Other
	// rejections are answered 503 instead and counted as unavailable.
	CauseQuarantineUnavailable = "quarantine_unavailable"
)

// Metrics are the receiver's Prometheus series: the notification path's and
// the HTTP answers'. Label values are bounded: transaction types outside the
// contract's table count as "other", terminals that are not configured as
// "other", reasons are the contract's codes.
type Metrics struct {
	notifications  *prometheus.CounterVec   // type, result
	responses      *prometheus.CounterVec   // status
	duplicates     *prometheus.CounterVec   // layer
	publishSeconds prometheus.Histogram     //
	dedupeErrors   *prometheus.CounterVec   // op
	quarantined    *prometheus.CounterVec   // reason
	withoutDedupe  prometheus.Counter       //
	inflightWaits  *prometheus.CounterVec   // result
	requestSeconds *prometheus.HistogramVec // class
	conflicting    prometheus.Counter       //
	notStored      *prometheus.CounterVec   // cause
	unauthorized   *prometheus.CounterVec   // terminal

	// Series the hot path uses, resolved once so a request neither formats
	// label values nor hashes them.
	byType                                     map[int]*typeSeries
	otherType, noType                          *typeSeries
	dupJetStream, claimErrors                  prometheus.Counter
	notStoredRateLimited, notStoredUnavailable prometheus.Counter
	answers                                    map[int]prometheus.Counter
	classes                                    [6]prometheus.Observer // by status/100
	storeUp                                    atomic.Pointer[func() bool]
	dupStores                                  map[string]prometheus.Counter
}

// typeSeries are the result counters of one TransactionType label.
type typeSeries struct {
	published, duplicate, rejected, unavailable prometheus.Counter
}

// NewMetrics registers the receiver's series on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	buckets := []float64{.0005, .001, .002, .003, .005, .0075, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}
	m := &Metrics{
		notifications: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricNotifications,
			Help: "Notifications by TransactionType and result (published, duplicate, rejected, unavailable)."}, []string{"type", "result"}),
		responses: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricResponses,
			Help: "Answers on the notification URL by HTTP status."}, []string{"status"}),
		duplicates: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricDuplicates,
			Help: "Duplicates caught, by layer: the dedupe store (redis, jetstream_kv) or JetStream's Nats-Msg-Id window (jetstream)."}, []string{"layer"}),
		publishSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: MetricPublishSeconds,
			Help: "Time from publish to JetStream ack.", Buckets: buckets}),
		dedupeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricDedupeErrors,
			Help: "Dedupe store calls that failed, by operation (claim, mark_seen, release); a claim failing fast while the store is known down counts too."}, []string{"op"}),
		quarantined: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricQuarantined,
			Help: "Rejected requests stored in the quarantine stream, by reason code."}, []string{"reason"}),
		withoutDedupe: prometheus.NewCounter(prometheus.CounterOpts{Name: MetricWithoutDedupe,
			Help: "Notifications published while the dedupe store was unreachable (JetStream's window deduped them)."}),
		inflightWaits: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricInflightWaits,
			Help: "Copies that arrived while the first copy was being published, by how the wait ended (claimed, seen, takeover: published the copy too after INFLIGHT_WAIT)."}, []string{"result"}),
		requestSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: MetricRequestSeconds,
			Help: "Time to answer a notification, by status class.", Buckets: buckets}, []string{"class"}),
		conflicting: prometheus.NewCounter(prometheus.CounterOpts{Name: MetricConflictingCopies,
			Help: "Copies whose signed fields equal an accepted notification's but whose other fields differ (a replay with edited fields, or an anomaly at PAYCOMET)."}),
		notStored: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricRejectedNotStored,
			Help: "Rejected requests answered but not stored in the quarantine, by cause (rate_limited, quarantine_unavailable)."}, []string{"cause"}),
		unauthorized: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricUnauthorized,
			Help: "Notifications answered 401, by the configured terminal they named (other: none or unknown)."}, []string{"terminal"}),
	}
	up := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: MetricDedupeStoreUp,
		Help: "1 while the dedupe store is reachable as far as the receiver knows, else 0 (the receiver then publishes through JetStream's window)."},
		func() float64 {
			if f := m.storeUp.Load(); f != nil && (*f)() {
				return 1
			}
			return 0
		})
	reg.MustRegister(m.notifications, m.responses, m.duplicates, m.publishSeconds, m.dedupeErrors,
		m.quarantined, m.withoutDedupe, m.inflightWaits, m.requestSeconds, m.conflicting, m.notStored,
		m.unauthorized, up)

	series := func(label string) *typeSeries {
		return &typeSeries{
			published:   m.notifications.WithLabelValues(label, "published"),
			duplicate:   m.notifications.WithLabelValues(label, "duplicate"),
			rejected:    m.notifications.WithLabelValues(label, "rejected"),
			unavailable: m.notifications.WithLabelValues(label, "unavailable"),
		}
	}
	m.byType = map[int]*typeSeries{}
	for _, t := range []int{1, 2, 3, 4, 6, 9, 13, 14, 16, 106, 107, 108} {
		m.byType[t] = series(strconv.Itoa(t))
	}
	m.otherType, m.noType = series("other"), series("none")
	m.dupJetStream = m.duplicates.WithLabelValues("jetstream")
	m.dupStores = map[string]prometheus.Counter{}
	for _, l := range []string{"redis", "jetstream_kv"} {
		m.dupStores[l] = m.duplicates.WithLabelValues(l)
	}
	m.claimErrors = m.dedupeErrors.WithLabelValues("claim")
	for _, op := range []string{"mark_seen", "release"} {
		m.dedupeErrors.WithLabelValues(op)
	}
	m.notStoredRateLimited = m.notStored.WithLabelValues(CauseRateLimited)
	m.notStoredUnavailable = m.notStored.WithLabelValues(CauseQuarantineUnavailable)
	for _, r := range []string{events.ReasonBadSignature, events.ReasonMissingSignature, events.ReasonUnknownTerminal,
		events.ReasonUnsignedWithoutToken, events.ReasonForbiddenSource, events.ReasonMalformed, events.ReasonTooLarge,
		events.ReasonMediaType, events.ReasonBodyTimeout, events.ReasonStale, events.ReasonConflictingCopy} {
		m.quarantined.WithLabelValues(r)
	}
	m.unauthorized.WithLabelValues("other")
	for _, r := range []string{"claimed", "seen", "takeover"} {
		m.inflightWaits.WithLabelValues(r)
	}
	m.answers = map[int]prometheus.Counter{}
	for _, code := range []int{200, 400, 401, 403, 404, 405, 408, 413, 415, 500, 503} {
		m.answers[code] = m.responses.WithLabelValues(strconv.Itoa(code))
	}
	for c := 1; c < len(m.classes); c++ {
		m.classes[c] = m.requestSeconds.WithLabelValues(strconv.Itoa(c) + "xx")
	}
	return m
}

// types are the result counters of TransactionType t.
func (m *Metrics) types(t int) *typeSeries {
	if s, ok := m.byType[t]; ok {
		return s
	}
	if t == 0 {
		return m.noType
	}
	return m.otherType
}

// dupStore is the duplicates series of a dedupe store's layer.
func (m *Metrics) dupStore(name string) prometheus.Counter {
	if c, ok := m.dupStores[name]; ok {
		return c
	}
	return m.duplicates.WithLabelValues(name)
}

// watchStore makes the store-up gauge read up.
func (m *Metrics) watchStore(up func() bool) { m.storeUp.Store(&up) }

// Answered counts one answer on the notification URL and how long it took;
// the handler calls it once per request.
func (m *Metrics) Answered(status int, elapsed time.Duration) {
	if c, ok := m.answers[status]; ok {
		c.Inc()
	} else {
		m.responses.WithLabelValues(strconv.Itoa(status)).Inc()
	}
	if class := status / 100; class > 0 && class < len(m.classes) {
		m.classes[class].Observe(elapsed.Seconds())
	}
}
