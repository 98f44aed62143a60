package refresher

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/paycomet-notify/paycomet-notify/handler"
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
// shows, from their real constructors on fresh registries.
func exportedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg, []string{"1000"})
	// The one vector NewMetrics cannot pre-create (its months label comes
	// from PAYCOMET): touch it the way handleNotice does.
	m.notice("1000", 1)
	handler.NewMetrics(reg)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, mf := range mfs {
		names[mf.GetName()] = true
		if mf.GetType().String() == "HISTOGRAM" || mf.GetType().String() == "SUMMARY" {
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				names[mf.GetName()+suffix] = true
			}
		}
	}
	return names
}

func TestRefresherAlertRules(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "deploy", "alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var f ruleFile
	if err := yaml.UnmarshalWithOptions(b, &f, yaml.Strict()); err != nil {
		t.Fatalf("deploy/alerts.yml: %v", err)
	}
	known := exportedMetrics(t)
	var alerts []string
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
		}
	}
	// The alerts issue 4 asks for, by what they read.
	for _, want := range []struct{ alert, metric string }{
		{"PaycometCardsExpiring", MetricExpiryNotices},
		{"PaycometCardTokensInvalid", MetricOutcomes},
		{"PaycometRefresherDeadLetters", MetricDeadLetters},
		{"PaycometNotificationAcceptedNotPublished", handler.MetricAcceptedUnpublished},
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
