package refresher

import (
	"slices"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metric names, exported so alert rules (deploy/alerts.yml) and tests refer
// to the same strings the code registers.
const (
	MetricExpiryNotices    = "paycomet_refresher_expiry_notices_total"
	MetricOutcomes         = "paycomet_refresher_outcomes_total"
	MetricBankstoreSeconds = "paycomet_refresher_bankstore_call_duration_seconds"
	MetricBankstoreErrors  = "paycomet_refresher_bankstore_errors_total"
	MetricDeadLetters      = "paycomet_refresher_dead_letters_total"
	MetricTokensLearnt     = "paycomet_refresher_tokens_learnt_total"
	MetricRetries          = "paycomet_refresher_retries_total"
	MetricTokensRefused    = "paycomet_refresher_tokens_refused_total"
)

// Reasons a new or changed IdUser -> TokenUser pair was not learnt, the
// reason label of MetricTokensRefused.
const (
	// RefusedUserNotFound: info_user answered 1001, BankStore does not know
	// the pair. IdUser and TokenUser are not signed, so a replayed
	// notification with edited values ends here.
	RefusedUserNotFound = "user_not_found"
	// RefusedBankstoreError: info_user answered another PAYCOMET error code
	// (the message is also dead-lettered, with the code).
	RefusedBankstoreError = "bankstore_error"
	// RefusedInvalidToken: the BankStore client refuses to send the token
	// (longer than DS_TOKEN_USER allows, ...).
	RefusedInvalidToken = "invalid_token"
	// RefusedTerminalNotConfigured: the terminal has no BankStore
	// credentials here, so nothing can confirm the pair.
	RefusedTerminalNotConfigured = "terminal_not_configured"
)

var refusals = []string{RefusedUserNotFound, RefusedBankstoreError, RefusedInvalidToken, RefusedTerminalNotConfigured}

// Outcomes, the kind label of MetricOutcomes: the four output events, and
// what happened to messages that publish nothing.
const (
	OutcomeRefreshRequired  = KindRefreshRequired
	OutcomeTokenInvalid     = KindTokenInvalid
	OutcomeTokenUnknown     = KindTokenUnknown
	OutcomeTokenReplaced    = KindTokenReplaced
	OutcomeAlreadyProcessed = "already_processed" // a redelivered notice whose output exists
	OutcomeRenewalPending   = "renewal_pending"   // renewal_started recorded, its registration not seen yet
	OutcomeDeadLetter       = "dead_letter"
)

var outcomes = []string{OutcomeRefreshRequired, OutcomeTokenInvalid, OutcomeTokenUnknown, OutcomeTokenReplaced,
	OutcomeAlreadyProcessed, OutcomeRenewalPending, OutcomeDeadLetter}

// Sources of a learnt token, the source label of MetricTokensLearnt.
const (
	SourceCardRegistration = "card_registration"
	SourcePayment          = "payment"
)

// BankStore operations, the operation label.
const (
	opInfoUser   = "info_user"
	opRemoveUser = "remove_user"
)

// Metrics are the refresher's Prometheus series. Every label is bounded:
// terminals are the configured ones (anything else is "other"), months to
// expire are capped, kinds and causes are closed sets.
type Metrics struct {
	terminals      []string
	notices        *prometheus.CounterVec   // terminal, months_to_expire
	outcomes       *prometheus.CounterVec   // kind
	bankSeconds    *prometheus.HistogramVec // operation
	bankErrors     *prometheus.CounterVec   // operation, kind
	deadLetters    *prometheus.CounterVec   // cause
	tokensLearnt   *prometheus.CounterVec   // source
	retries        *prometheus.CounterVec   // message
	tokensRefused  *prometheus.CounterVec   // reason
	maxMonthsLabel int
}

// NewMetrics registers the refresher's series on reg. terminals are the
// configured terminal numbers, the only values of the terminal label.
func NewMetrics(reg prometheus.Registerer, terminals []string) *Metrics {
	m := &Metrics{
		terminals:      slices.Clone(terminals),
		maxMonthsLabel: 12,
		notices: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricExpiryNotices,
			Help: "Card-expiry notices (108) handled, by terminal and months to expire (values over 12 count as \"13+\")."},
			[]string{"terminal", "months_to_expire"}),
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricOutcomes,
			Help: "What the refresher did with a message: refresh_required, token_invalid, token_unknown, token_replaced (events published), already_processed, renewal_pending, dead_letter."},
			[]string{"kind"}),
		bankSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: MetricBankstoreSeconds,
			Help:    "BankStore XML call latency, by operation, whatever the answer.",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}}, []string{"operation"}),
		bankErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricBankstoreErrors,
			Help: "BankStore calls that failed, by operation and kind: business (a PAYCOMET error code, 1001 included), input, soap_fault, http_5xx, http_other, malformed, timeout, transport."},
			[]string{"operation", "kind"}),
		deadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricDeadLetters,
			Help: "Messages published on <prefix>.dlq, by cause. Each one needs an operator."},
			[]string{"cause"}),
		tokensLearnt: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricTokensLearnt,
			Help: "IdUser -> TokenUser pairs written to the registry (new or changed, each confirmed by info_user), by the event they came from."},
			[]string{"source"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricRetries,
			Help: "Messages Nak'd with backoff after a transient failure, by message kind (notice, registration, renewal)."},
			[]string{"message"}),
		tokensRefused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricTokensRefused,
			Help: "New or changed IdUser -> TokenUser pairs not learnt because info_user did not confirm them, by reason: user_not_found (1001), bankstore_error (another code), invalid_token, terminal_not_configured."},
			[]string{"reason"}),
	}
	reg.MustRegister(m.notices, m.outcomes, m.bankSeconds, m.bankErrors, m.deadLetters, m.tokensLearnt, m.retries, m.tokensRefused)
	// Pre-create the series alerting reads, so they exist at 0 and
	// increase() sees the first event.
	for _, k := range outcomes {
		m.outcomes.WithLabelValues(k)
	}
	for _, c := range causes {
		m.deadLetters.WithLabelValues(c)
	}
	for _, op := range []string{opInfoUser, opRemoveUser} {
		m.bankSeconds.WithLabelValues(op)
		for _, k := range errorKinds {
			m.bankErrors.WithLabelValues(op, k)
		}
	}
	for _, s := range []string{SourceCardRegistration, SourcePayment} {
		m.tokensLearnt.WithLabelValues(s)
	}
	for _, k := range []string{msgNotice, msgRegistration, msgRenewal} {
		m.retries.WithLabelValues(k)
	}
	for _, k := range refusals {
		m.tokensRefused.WithLabelValues(k)
	}
	return m
}

func (m *Metrics) terminalLabel(t string) string {
	if slices.Contains(m.terminals, t) {
		return t
	}
	return "other"
}

// notice counts one handled expiry notice.
func (m *Metrics) notice(terminal string, months int) {
	label := strconv.Itoa(months)
	if months > m.maxMonthsLabel {
		label = strconv.Itoa(m.maxMonthsLabel+1) + "+"
	}
	m.notices.WithLabelValues(m.terminalLabel(terminal), label).Inc()
}

func (m *Metrics) outcome(kind string) { m.outcomes.WithLabelValues(kind).Inc() }

func (m *Metrics) bankCall(op string, took time.Duration, err error) {
	m.bankSeconds.WithLabelValues(op).Observe(took.Seconds())
	if err != nil {
		m.bankErrors.WithLabelValues(op, errorKind(err)).Inc()
	}
}

func (m *Metrics) deadLetter(cause string) {
	m.deadLetters.WithLabelValues(cause).Inc()
	m.outcome(OutcomeDeadLetter)
}

func (m *Metrics) learnt(source string) { m.tokensLearnt.WithLabelValues(source).Inc() }

func (m *Metrics) refused(reason string) { m.tokensRefused.WithLabelValues(reason).Inc() }

func (m *Metrics) retry(message string) { m.retries.WithLabelValues(message).Inc() }
