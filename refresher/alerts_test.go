package refresher

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/goccy/go-yaml"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/paycomet-notify/paycomet-notify/notify"
)

// The alert rules live in deploy/ (no Go there, by house style), so their
// test lives here, next to the metrics most of them read.

type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []rule `yaml:"rules"`
	} `yaml:"groups"`
}

type rule struct {
	Alert       string            `yaml:"alert"`
	Record      string            `yaml:"record"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

// exportedMetrics are the names a scrape of the receiver and the refresher
// can show: every series their real metric constructors register (read from
// the collectors' descriptors, so a vector without a child yet counts too),
// histograms with their _bucket, _sum and _count series. The command's own
// series (the stream storage gauges, in package main, which a test cannot
// import; today internal/service) are read from the source: every "paycomet_notify_*" or
// "paycomet_refresher_*" string literal in a non-test Go file of the module.
func exportedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	reg := &descRegistry{names: map[string]bool{}}
	NewMetrics(reg, []string{"1000"})
	notify.NewMetrics(reg)
	names := reg.names
	for name := range sourceMetricNames(t, "..") {
		names[name] = true
	}
	return names
}

// descRegistry is a prometheus.Registerer that only records names.
type descRegistry struct{ names map[string]bool }

var fqNameRE = regexp.MustCompile(`fqName: "([^"]+)"`)

func (r *descRegistry) Register(c prometheus.Collector) error {
	_, histogram := c.(prometheus.Histogram) // summaries too: same method set
	if _, ok := c.(*prometheus.HistogramVec); ok {
		histogram = true
	}
	if _, ok := c.(*prometheus.SummaryVec); ok {
		histogram = true
	}
	ch := make(chan *prometheus.Desc)
	go func() { c.Describe(ch); close(ch) }()
	for d := range ch {
		m := fqNameRE.FindStringSubmatch(d.String())
		if m == nil {
			continue
		}
		r.names[m[1]] = true
		if histogram {
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				r.names[m[1]+suffix] = true
			}
		}
	}
	return nil
}

func (r *descRegistry) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		_ = r.Register(c)
	}
}

func (r *descRegistry) Unregister(prometheus.Collector) bool { return true }

var metricLiteralRE = regexp.MustCompile(`"(paycomet_(?:notify|refresher)_[a-z0-9_]+)"`)

// sourceMetricNames are the metric-name string literals of the module's
// non-test Go files under root.
func sourceMetricNames(t *testing.T, root string) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "vendor") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range metricLiteralRE.FindAllSubmatch(b, -1) {
			names[string(m[1])] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// metricStreamBytes is what the stream storage rules read; serve exports it
// (internal/service.MetricStreamBytes, found by the source scan).
const metricStreamBytes = "paycomet_notify_stream_bytes"

func TestRefresherAlertRules(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "deploy", "alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var f ruleFile
	if err := yaml.UnmarshalWithOptions(b, &f, yaml.Strict()); err != nil {
		t.Fatalf("deploy/alerts.yml: %v", err)
	}
	runbook := runbookEntries(t, filepath.Join("..", "docs", "operations.md"))
	known := exportedMetrics(t)
	var alerts []string
	linked := map[string]bool{}
	for _, g := range f.Groups {
		if g.Name == "" || len(g.Rules) == 0 {
			t.Errorf("group %q has no name or no rules", g.Name)
		}
		for _, r := range g.Rules {
			alerts = append(alerts, r.Alert)
			if r.Alert == "" || strings.TrimSpace(r.Expr) == "" {
				t.Errorf("group %s: rule %+v has no alert name or expr", g.Name, r)
				continue
			}
			if r.Labels["severity"] == "" || r.Annotations["summary"] == "" {
				t.Errorf("%s: needs labels.severity and annotations.summary", r.Alert)
			}
			if r.For != "" {
				if _, err := time.ParseDuration(r.For); err != nil {
					t.Errorf("%s: for %q: %v", r.Alert, r.For, err)
				}
			}
			url := r.Annotations["runbook_url"]
			anchor, ok := strings.CutPrefix(url, "docs/operations.md#")
			switch {
			case !ok || anchor == "":
				t.Errorf("%s: runbook_url %q, want docs/operations.md#<entry>", r.Alert, url)
			case runbook[anchor] == "":
				t.Errorf("%s: runbook_url %q names no entry of docs/operations.md", r.Alert, url)
			default:
				linked[anchor] = true
				for _, part := range []string{"**What it means.**", "**What to look at.**", "**What to do.**"} {
					if !strings.Contains(runbook[anchor], part) {
						t.Errorf("%s: its runbook entry has no %s", r.Alert, part)
					}
				}
			}
			metrics, err := metricNames(r.Expr)
			if err != nil {
				t.Errorf("%s: expr %q: %v", r.Alert, r.Expr, err)
				continue
			}
			if len(metrics) == 0 {
				t.Errorf("%s: expr %q names no metric", r.Alert, r.Expr)
			}
			for _, name := range metrics {
				if !known[name] {
					t.Errorf("%s: expr names %s, which neither the receiver nor the refresher exports", r.Alert, name)
				}
			}
			if slices.Contains(metrics, "paycomet_notify_accepted_not_published_total") {
				t.Errorf("%s reads accepted_not_published_total, which cannot grow (a 200 before the ack cannot happen)", r.Alert)
			}
		}
	}
	for anchor := range runbook {
		if !linked[anchor] {
			t.Errorf("docs/operations.md#%s is an entry no rule links", anchor)
		}
	}
	// The alerts issues 4 and 8 ask for, by what they read.
	for _, want := range []struct{ alert, metric string }{
		{"PaycometNotify503Share", notify.MetricResponses},
		{"PaycometNotifyUnauthorizedBurst", notify.MetricUnauthorized},
		{"PaycometNotifyConflictingCopies", notify.MetricConflictingCopies},
		{"PaycometNotifyStaleNotifications", notify.MetricQuarantined},
		{"PaycometNotifyRejectionsNotStored", notify.MetricRejectedNotStored},
		{"PaycometNotifyDedupeStoreErrors", notify.MetricDedupeErrors},
		{"PaycometNotifyDedupeStoreDown", notify.MetricDedupeStoreUp},
		{"PaycometNotifyPublishedWithoutDedupeStore", notify.MetricWithoutDedupe},
		{"PaycometNotifyPublishLatencyHigh", notify.MetricPublishSeconds + "_bucket"},
		{"PaycometNotifyQuarantineNearlyFull", metricStreamBytes},
		{"PaycometNotifyEventStreamGrowth", metricStreamBytes},
		{"PaycometCardsExpiring", MetricExpiryNotices},
		{"PaycometCardTokensInvalid", MetricOutcomes},
		{"PaycometRefresherTokensRefused", MetricTokensRefused},
		{"PaycometRefresherDeadLetters", MetricDeadLetters},
		{"PaycometRefresherBankstoreFailing", MetricBankstoreErrors},
	} {
		found := false
		for _, g := range f.Groups {
			for _, r := range g.Rules {
				names, _ := metricNames(r.Expr)
				found = found || (r.Alert == want.alert && slices.Contains(names, want.metric))
			}
		}
		if !found {
			t.Errorf("no alert %s on %s (alerts: %v)", want.alert, want.metric, alerts)
		}
	}
}

// runbookEntries maps the anchor of each third-level heading of the runbook
// (GitHub's: lower case, spaces to hyphens, other punctuation dropped) to
// the text under it.
func runbookEntries(t *testing.T, path string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	entries := map[string]string{}
	var anchor string
	for _, line := range strings.Split(string(b), "\n") {
		if heading, ok := strings.CutPrefix(line, "### "); ok {
			anchor = slug(heading)
			if _, dup := entries[anchor]; dup {
				t.Errorf("%s: two entries #%s", path, anchor)
			}
			entries[anchor] = heading + "\n"
			continue
		}
		if strings.HasPrefix(line, "#") {
			anchor = ""
			continue
		}
		if anchor != "" {
			entries[anchor] += line + "\n"
		}
	}
	return entries
}

func slug(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(heading)) {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

// metricNames lists the metric names a PromQL expression selects. It is a
// small lexer, not a PromQL parser, but enough for rule files: it drops
// string literals, label matchers ({...}), ranges and subqueries ([...]),
// label lists after by/without/on/ignoring/group_left/group_right, function
// names (an identifier followed by "("), aggregation operators and
// keywords; what is left are
// metric names.
func metricNames(expr string) ([]string, error) {
	keywords := map[string]bool{"and": true, "or": true, "unless": true, "bool": true, "offset": true,
		"inf": true, "nan": true, "by": true, "without": true, "on": true, "ignoring": true,
		"group_left": true, "group_right": true, "atan2": true,
		// aggregation operators, which may be followed by by/without
		// before their parenthesis
		"sum": true, "min": true, "max": true, "avg": true, "group": true, "stddev": true, "stdvar": true,
		"count": true, "count_values": true, "bottomk": true, "topk": true, "quantile": true,
		"limitk": true, "limit_ratio": true}
	labelLists := map[string]bool{"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true}
	var names []string
	s := expr
	skipTo := func(i int, close byte) (int, bool) {
		j := strings.IndexByte(s[i+1:], close)
		if j < 0 {
			return 0, false
		}
		return i + 1 + j + 1, true
	}
	isStart := func(c byte) bool { return c == '_' || c == ':' || (c|0x20 >= 'a' && c|0x20 <= 'z') }
	isPart := func(c byte) bool { return isStart(c) || (c >= '0' && c <= '9') }
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '"' || c == '\'' || c == '`':
			j, ok := skipTo(i, c)
			if !ok {
				return nil, errUnbalanced(c)
			}
			i = j
		case c == '{':
			j, ok := skipTo(i, '}')
			if !ok {
				return nil, errUnbalanced(c)
			}
			i = j
		case c == '[':
			j, ok := skipTo(i, ']')
			if !ok {
				return nil, errUnbalanced(c)
			}
			i = j
		case c >= '0' && c <= '9' || c == '.':
			// A number, possibly with an exponent or a duration unit.
			for i < len(s) && (isPart(s[i]) || s[i] == '.') {
				i++
			}
		case isStart(c):
			j := i
			for j < len(s) && isPart(s[j]) {
				j++
			}
			word := s[i:j]
			k := j
			for k < len(s) && s[k] == ' ' {
				k++
			}
			nextParen := k < len(s) && s[k] == '('
			switch {
			case labelLists[word] && nextParen:
				end, ok := skipTo(k, ')')
				if !ok {
					return nil, errUnbalanced('(')
				}
				j = end
			case keywords[word], nextParen:
				// keyword or function name
			default:
				if !slices.Contains(names, word) {
					names = append(names, word)
				}
			}
			i = j
		default:
			i++
		}
	}
	return names, nil
}

type errUnbalanced byte

func (e errUnbalanced) Error() string { return "unbalanced " + string(rune(e)) }

func TestRefresherAlertMetricNames(t *testing.T) {
	for _, tc := range []struct {
		expr string
		want []string
	}{
		{`foo_total > 0`, []string{"foo_total"}},
		{`sum by (terminal, months) (increase(foo_total{kind="a,b",x=~"y"}[1d])) > 0`, []string{"foo_total"}},
		{`rate(a_total[5m]) / on(job) group_left(instance) rate(b_seconds_count[5m:1m]) > 0.5e-1`, []string{"a_total", "b_seconds_count"}},
		{`a unless b or sum without (le) (c) and bool 1`, []string{"a", "b", "c"}},
		{`histogram_quantile(0.99, sum by (le) (rate(d_bucket[5m]))) > 2`, []string{"d_bucket"}},
		{`absent(up{job="x"})`, []string{"up"}},
	} {
		got, err := metricNames(tc.expr)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("metricNames(%q) = %v, %v, want %v", tc.expr, got, err, tc.want)
		}
	}
	if _, err := metricNames(`foo{a="b"`); err == nil {
		t.Error("metricNames of an unbalanced expression: no error")
	}
}
