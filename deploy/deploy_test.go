// Package deploy holds no code: only the deploy kit (Dockerfile, compose
// file, Kubernetes manifests, alert rules) and this test of it. No container
// engine or cluster runs where the suite runs, so what is checked is what
// can be without one: every YAML file parses; every environment variable the
// compose file and the manifests set exists in the configuration and their
// values pass config.Load; ports and probe paths point at the listeners the
// binary really opens (started here); the NATS configuration loads in
// nats-server's own parser; the binary built with the Dockerfile's own
// `go build` line is static and starts as a non-root user.
package deploy

import (
	"bufio"
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/nats-io/nats-server/v2/server"

	"github.com/paycomet-notify/paycomet-notify/config"
	"github.com/paycomet-notify/paycomet-notify/demo"
	"github.com/paycomet-notify/paycomet-notify/paycometrest"
	"github.com/paycomet-notify/paycomet-notify/paycometrest/paycomettest"
	"github.com/paycomet-notify/paycomet-notify/tracing"
)

// nonRootUID is the image's user (distroless "nonroot").
const nonRootUID = 65532

// ---------------------------------------------------------------------------
// YAML

// yamlFiles lists every YAML file of deploy/.
func yamlFiles(t *testing.T) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && (strings.HasSuffix(p, ".yaml") || strings.HasSuffix(p, ".yml")) {
			out = append(out, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// documents decodes every YAML document of path into a generic value.
func documents(t *testing.T, path string) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var docs []map[string]any
	for {
		var d map[string]any
		err := dec.Decode(&d)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s does not parse: %v", path, err)
		}
		if d != nil {
			docs = append(docs, d)
		}
	}
	if len(docs) == 0 {
		t.Fatalf("%s holds no YAML document", path)
	}
	return docs
}

// decodeInto re-encodes a generic document into a typed one.
func decodeInto(t *testing.T, doc any, out any) {
	t.Helper()
	b, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, out); err != nil {
		t.Fatal(err)
	}
}

func TestEveryYAMLFileParses(t *testing.T) {
	files := yamlFiles(t)
	for _, want := range []string{"alerts.yml", "compose.yaml", "compose/prometheus.yml", "k8s/kustomization.yaml", "k8s/nats-values.yaml"} {
		if !slices.Contains(files, want) {
			t.Errorf("deploy/%s is missing (found %v)", want, files)
		}
	}
	for _, f := range files {
		documents(t, f)
	}
}

// ---------------------------------------------------------------------------
// The configuration's variables

// knownVariables are the environment variables something reads: the `env`
// tags of config.Config (by reflection), every `env:"..."` tag and
// `env["..."]` lookup in the module's non-test Go files (variables a
// subcommand reads itself, such as PAYCOMET_API_KEY), the Go runtime's, and
// the OpenTelemetry ones package tracing reads (tracing.Variables, in isKnown).
func knownVariables(t *testing.T) map[string]bool {
	t.Helper()
	known := map[string]bool{"GOMEMLIMIT": true, "GOGC": true, "GOMAXPROCS": true, "GODEBUG": true}
	var walk func(reflect.Type, string)
	walk = func(typ reflect.Type, prefix string) {
		for i := 0; i < typ.NumField(); i++ {
			f := typ.Field(i)
			if name, _, _ := strings.Cut(f.Tag.Get("env"), ","); name != "" {
				known[prefix+name] = true
			}
			if f.Type.Kind() == reflect.Struct && f.Tag.Get("env") == "" {
				walk(f.Type, prefix+f.Tag.Get("envPrefix"))
			}
		}
	}
	walk(reflect.TypeOf(config.Config{}), "")
	if !known["LISTEN_ADDR"] || !known["ADMIN_ADDR"] {
		t.Fatalf("config.Config has no LISTEN_ADDR/ADMIN_ADDR tags: the reflection is wrong (%v)", known)
	}
	tag := regexp.MustCompile(`env:"([A-Z][A-Z0-9_]*)`)
	lookup := regexp.MustCompile(`env\[\s*"([A-Z][A-Z0-9_]*)"\s*\]`)
	err := filepath.WalkDir("..", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, re := range []*regexp.Regexp{tag, lookup} {
			for _, m := range re.FindAllSubmatch(b, -1) {
				known[string(m[1])] = true
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return known
}

func isKnown(known map[string]bool, name string) bool {
	return known[name] || slices.Contains(tracing.Variables, name)
}

// ---------------------------------------------------------------------------
// Routes and listeners the binary really opens

// addrPort is the port of a host:port listen address.
func addrPort(t *testing.T, variable, addr string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("%s=%q is not host:port: %v", variable, addr, err)
	}
	n, err := strconv.Atoi(p)
	if err != nil || n <= 0 {
		t.Fatalf("%s=%q has no numeric port", variable, addr)
	}
	return n
}

// adminVariable is the variable that places each subcommand's admin
// listener (contract sections 3, 9 and 11).
var adminVariable = map[string]string{"serve": "ADMIN_ADDR", "refresher": "REFRESHER_ADMIN_ADDR", "reconcile": "ADMIN_ADDR"}

// ---------------------------------------------------------------------------
// compose

type composeFile struct {
	Services map[string]composeService `yaml:"services"`
	Networks map[string]struct {
		IPAM struct {
			Config []struct {
				Subnet string `yaml:"subnet"`
			} `yaml:"config"`
		} `yaml:"ipam"`
	} `yaml:"networks"`
	Secrets map[string]map[string]string `yaml:"secrets"`
}

type composeService struct {
	Image       string            `yaml:"image"`
	Command     []string          `yaml:"command"`
	Environment map[string]string `yaml:"environment"`
	Volumes     []string          `yaml:"volumes"`
	Ports       []string          `yaml:"ports"`
	Profiles    []string          `yaml:"profiles"`
	Secrets     []string          `yaml:"secrets"`
	Networks    any               `yaml:"networks"`
	Build       *struct {
		Context    string `yaml:"context"`
		Dockerfile string `yaml:"dockerfile"`
		Target     string `yaml:"target"`
	} `yaml:"build"`
}

func loadCompose(t *testing.T) composeFile {
	t.Helper()
	var c composeFile
	decodeInto(t, documents(t, "compose.yaml")[0], &c)
	return c
}

// readEnvFile reads KEY=value lines (Compose's .env format, no quoting).
func readEnvFile(t *testing.T, path string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || k == "" {
			t.Fatalf("%s:%d is not KEY=value", path, i+1)
		}
		out[k] = v
	}
	return out
}

var composeVar = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}`)

// interpolate expands ${VAR}, ${VAR:-default} and ${VAR:?message} as
// Compose does, from vars; a :? variable that is unset fails the test.
func interpolate(t *testing.T, s string, vars map[string]string) string {
	t.Helper()
	return composeVar.ReplaceAllStringFunc(s, func(m string) string {
		p := composeVar.FindStringSubmatch(m)
		v, ok := vars[p[1]]
		switch {
		case p[2] == ":?" && (!ok || v == ""):
			t.Errorf("compose.yaml needs %s (%s), which demo.env does not set", p[1], p[3])
		case p[2] == ":-" && (!ok || v == ""):
			return p[3]
		case p[2] == "" && !ok:
			t.Errorf("compose.yaml uses ${%s} with no default, and demo.env does not set it", p[1])
		}
		return v
	})
}

// appServices are the compose services that run paycomet-notify, by the
// subcommand each runs.
func appServices(t *testing.T, c composeFile) map[string]string {
	t.Helper()
	out := map[string]string{}
	for name, s := range c.Services {
		if strings.HasPrefix(s.Image, "paycomet-notify:") {
			if len(s.Command) == 0 {
				t.Fatalf("compose service %s runs paycomet-notify without a command", name)
			}
			out[name] = s.Command[0]
		}
	}
	return out
}

func TestComposeProductionShape(t *testing.T) {
	c := loadCompose(t)
	known := knownVariables(t)
	vars := readEnvFile(t, "demo.env")
	apps := appServices(t, c)

	var receivers []string
	count := map[string]int{}
	for name, sub := range apps {
		count[sub]++
		if sub == "serve" {
			receivers = append(receivers, name)
		}
	}
	sort.Strings(receivers)
	if count["serve"] != 2 || count["refresher"] != 1 || count["reconcile"] != 1 {
		t.Errorf("compose runs %v; want two serve, one refresher, one reconcile", count)
	}
	if cmd := c.Services["reconciler"].Command; !slices.Equal(cmd, []string{"reconcile", "--every", "15m", "--last", "1h"}) {
		t.Errorf("the reconciler runs %q, want reconcile --every 15m --last 1h", cmd)
	}

	// Every variable set for paycomet-notify exists, and the values (with
	// demo.env) pass the configuration's own checks.
	envs := map[string]map[string]string{}
	for name := range apps {
		env := map[string]string{}
		for k, v := range c.Services[name].Environment {
			if !isKnown(known, k) {
				t.Errorf("compose service %s sets %s, which no part of paycomet-notify reads", name, k)
			}
			env[k] = interpolate(t, v, vars)
		}
		envs[name] = env
		if _, err := config.Load(env, nil); err != nil {
			t.Errorf("compose service %s: config.Load refuses its environment: %v", name, err)
		}
		if env["STREAM_REPLICAS"] != "3" {
			t.Errorf("compose service %s: STREAM_REPLICAS=%q, want 3 on the three-node cluster", name, env["STREAM_REPLICAS"])
		}
	}

	// The demo works against the fake: its credentials are the fake's.
	for k, want := range map[string]string{
		"PAYCOMET_MERCHANT_CODE": demo.MerchantCode,
		"PAYCOMET_TERMINALS":     demo.Terminal + ":" + demo.Password,
		"URL_TOKEN":              demo.URLToken,
		"RECONCILE_API_KEY":      paycometrest.DemoAPIKey,
		"COMPOSE_PROFILES":       "demo",
	} {
		if vars[k] != want {
			t.Errorf("demo.env %s=%q, want %q (paycomet-fake's default)", k, vars[k], want)
		}
	}
	if fake, ok := c.Services["paycomet-fake"]; !ok || !slices.Contains(fake.Profiles, "demo") || fake.Build == nil || fake.Build.Target != "fake" {
		t.Errorf("paycomet-fake service = %+v; want one in profile demo built from the Dockerfile's fake stage", fake)
	}

	// Three NATS nodes from nats.conf, named as its routes name them, on
	// the nats-server version of go.mod.
	natsVersion := moduleVersion(t, "github.com/nats-io/nats-server/v2")
	var natsNodes []string
	for name, s := range c.Services {
		if strings.HasPrefix(s.Image, "nats:") {
			natsNodes = append(natsNodes, name)
			if want := "nats:" + strings.TrimPrefix(natsVersion, "v") + "-alpine"; s.Image != want {
				t.Errorf("compose service %s runs %s, want %s (go.mod's nats-server)", name, s.Image, want)
			}
			if i := slices.Index(s.Command, "--name"); i < 0 || i+1 >= len(s.Command) || s.Command[i+1] != name {
				t.Errorf("compose service %s command %q does not name the node %s", name, s.Command, name)
			}
			if !slices.Contains(s.Volumes, "./compose/nats.conf:/etc/nats/nats.conf:ro") {
				t.Errorf("compose service %s does not mount compose/nats.conf", name)
			}
		}
	}
	sort.Strings(natsNodes)
	opts, err := server.ProcessConfigFile("compose/nats.conf")
	if err != nil {
		t.Fatalf("compose/nats.conf: nats-server refuses it: %v", err)
	}
	if !opts.JetStream || opts.StoreDir == "" || opts.Cluster.Name == "" || opts.Cluster.Port != 6222 {
		t.Errorf("compose/nats.conf: jetstream %v store %q cluster %q port %d; want JetStream on file storage in a named cluster on 6222",
			opts.JetStream, opts.StoreDir, opts.Cluster.Name, opts.Cluster.Port)
	}
	var routeHosts []string
	for _, r := range opts.Routes {
		routeHosts = append(routeHosts, r.Hostname())
		if r.Port() != "6222" {
			t.Errorf("compose/nats.conf route %s is not on the cluster port", r)
		}
	}
	sort.Strings(routeHosts)
	if len(natsNodes) != 3 || !slices.Equal(routeHosts, natsNodes) {
		t.Errorf("NATS nodes %v, nats.conf routes %v; want the same three", natsNodes, routeHosts)
	}
	for name, env := range envs {
		var hosts []string
		for _, u := range strings.Split(env["NATS_URL"], ",") {
			host, port, _ := net.SplitHostPort(strings.TrimPrefix(u, "nats://"))
			hosts = append(hosts, host)
			if port != strconv.Itoa(opts.Port) {
				t.Errorf("compose service %s NATS_URL entry %s is not nats.conf's client port %d", name, u, opts.Port)
			}
		}
		sort.Strings(hosts)
		if !slices.Equal(hosts, natsNodes) {
			t.Errorf("compose service %s NATS_URL names %v, want every node %v", name, hosts, natsNodes)
		}
	}

	// Redis keeps its data: append-only, on a volume.
	redis := c.Services["redis"]
	if i := slices.Index(redis.Command, "--appendonly"); i < 0 || redis.Command[i+1] != "yes" || !slices.Contains(redis.Volumes, "redis:/data") {
		t.Errorf("redis runs %q with volumes %q; want --appendonly yes on a volume", redis.Command, redis.Volumes)
	}
	for _, r := range receivers {
		if u := envs[r]["REDIS_URL"]; !strings.HasPrefix(u, "redis://") || !strings.Contains(u, "@redis:6379") {
			t.Errorf("%s REDIS_URL does not point at the redis service", r)
		}
	}

	// The load balancer: its backends are the receivers on their
	// LISTEN_ADDR port, health-checked on /readyz at their ADMIN_ADDR port;
	// it is the only trusted proxy and the only published notification port.
	lb := parseHAProxy(t, "compose/haproxy.cfg")
	if !slices.Equal(lb.servers, receivers) {
		t.Errorf("haproxy backends %v, want the receivers %v", lb.servers, receivers)
	}
	for _, r := range receivers {
		env := envs[r]
		if p := addrPort(t, "LISTEN_ADDR", env["LISTEN_ADDR"]); lb.serverPort[r] != p {
			t.Errorf("haproxy sends to %s:%d, but its LISTEN_ADDR is %s", r, lb.serverPort[r], env["LISTEN_ADDR"])
		}
		if p := addrPort(t, "ADMIN_ADDR", env["ADMIN_ADDR"]); lb.checkPort != p {
			t.Errorf("haproxy checks port %d, but %s's ADMIN_ADDR is %s", lb.checkPort, r, env["ADMIN_ADDR"])
		}
	}
	if lb.checkPath != "/readyz" {
		t.Errorf("haproxy checks %q, want /readyz", lb.checkPath)
	}
	lbNet, _ := c.Services["lb"].Networks.(map[string]any)
	lbIP := fmt.Sprint(lbNet["back"].(map[string]any)["ipv4_address"])
	for _, r := range receivers {
		tp, err := config.Load(map[string]string{"TRUSTED_PROXIES": envs[r]["TRUSTED_PROXIES"]}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if ip := net.ParseIP(lbIP); ip == nil || len(tp.TrustedProxies) != 1 || tp.TrustedProxies[0].Bits() != 32 ||
			tp.TrustedProxies[0].Addr().String() != lbIP {
			t.Errorf("%s TRUSTED_PROXIES=%q, want exactly the load balancer %s", r, envs[r]["TRUSTED_PROXIES"], lbIP)
		}
	}
	for name, s := range c.Services {
		if name != "lb" && name != "prometheus" && len(s.Ports) > 0 {
			t.Errorf("compose service %s publishes %v; only the load balancer and Prometheus should", name, s.Ports)
		}
	}
	if p := c.Services["lb"].Ports; !slices.Equal(p, []string{fmt.Sprintf("%d:%d", lb.bindPort, lb.bindPort)}) {
		t.Errorf("lb publishes %v, want its bind port %d", p, lb.bindPort)
	}

	// Prometheus: loads alerts.yml and scrapes each admin listener where it
	// really is, with the ADMIN_TOKEN secret.
	prom := c.Services["prometheus"]
	if !slices.Contains(prom.Volumes, "./alerts.yml:/etc/prometheus/alerts.yml:ro") || !slices.Contains(prom.Secrets, "admin_token") {
		t.Errorf("prometheus volumes %v secrets %v; want alerts.yml mounted and the admin_token secret", prom.Volumes, prom.Secrets)
	}
	if c.Secrets["admin_token"]["environment"] != "ADMIN_TOKEN" {
		t.Errorf("secret admin_token = %v, want it from ADMIN_TOKEN", c.Secrets["admin_token"])
	}
	var pc struct {
		RuleFiles     []string `yaml:"rule_files"`
		ScrapeConfigs []struct {
			Authorization struct {
				CredentialsFile string `yaml:"credentials_file"`
			} `yaml:"authorization"`
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	decodeInto(t, documents(t, "compose/prometheus.yml")[0], &pc)
	if !slices.Equal(pc.RuleFiles, []string{"/etc/prometheus/alerts.yml"}) {
		t.Errorf("prometheus rule_files %v, want the mounted alerts.yml", pc.RuleFiles)
	}
	var targets []string
	for _, sc := range pc.ScrapeConfigs {
		if sc.Authorization.CredentialsFile != "/run/secrets/admin_token" {
			t.Errorf("a scrape config reads its token from %q, want the admin_token secret", sc.Authorization.CredentialsFile)
		}
		for _, st := range sc.StaticConfigs {
			targets = append(targets, st.Targets...)
		}
	}
	var want []string
	for name, sub := range apps {
		want = append(want, fmt.Sprintf("%s:%d", name, addrPort(t, adminVariable[sub], envs[name][adminVariable[sub]])))
	}
	sort.Strings(targets)
	sort.Strings(want)
	if !slices.Equal(targets, want) {
		t.Errorf("prometheus scrapes %v, want every admin listener %v", targets, want)
	}
}

type haproxy struct {
	servers    []string
	serverPort map[string]int
	checkPort  int
	checkPath  string
	bindPort   int
}

func parseHAProxy(t *testing.T, path string) haproxy {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := haproxy{serverPort: map[string]int{}}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		w := strings.Fields(sc.Text())
		if len(w) == 0 || strings.HasPrefix(w[0], "#") {
			continue
		}
		switch {
		case w[0] == "bind":
			h.bindPort = addrPort(t, "haproxy bind", w[1])
		case w[0] == "server" && len(w) >= 3:
			h.servers = append(h.servers, w[1])
			h.serverPort[w[1]] = addrPort(t, "haproxy server", w[2])
		case w[0] == "option" && len(w) >= 4 && w[1] == "httpchk":
			h.checkPath = w[3]
		case w[0] == "default-server":
			if i := slices.Index(w, "port"); i > 0 && i+1 < len(w) {
				h.checkPort, _ = strconv.Atoi(w[i+1])
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	sort.Strings(h.servers)
	return h
}

// moduleVersion is the version of module path that go.mod requires (the
// one the suite is tested against).
func moduleVersion(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\s*(?:require\s+)?` + regexp.QuoteMeta(path) + `\s+(v\S+)`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("go.mod does not require %s", path)
	}
	return string(m[1])
}

// ---------------------------------------------------------------------------
// Kubernetes

type Object struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name   string            `yaml:"name"`
		Labels map[string]string `yaml:"labels"`
	} `yaml:"metadata"`
}

type deployment struct {
	Object `yaml:",inline"`
	Spec   struct {
		Replicas int `yaml:"replicas"`
		Strategy struct {
			Type string `yaml:"type"`
		} `yaml:"strategy"`
		Selector struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
		Template struct {
			Metadata struct {
				Labels map[string]string `yaml:"labels"`
			} `yaml:"metadata"`
			Spec struct {
				SecurityContext struct {
					RunAsNonRoot bool `yaml:"runAsNonRoot"`
					RunAsUser    int  `yaml:"runAsUser"`
				} `yaml:"securityContext"`
				Containers []container `yaml:"containers"`
			} `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

type container struct {
	Name  string   `yaml:"name"`
	Image string   `yaml:"image"`
	Args  []string `yaml:"args"`
	Ports []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	Env []struct {
		Name      string `yaml:"name"`
		Value     string `yaml:"value"`
		ValueFrom *struct {
			SecretKeyRef *struct {
				Name string `yaml:"name"`
				Key  string `yaml:"key"`
			} `yaml:"secretKeyRef"`
			ResourceFieldRef *struct {
				ContainerName string `yaml:"containerName"`
				Resource      string `yaml:"resource"`
			} `yaml:"resourceFieldRef"`
		} `yaml:"valueFrom"`
	} `yaml:"env"`
	Resources struct {
		Requests map[string]string `yaml:"requests"`
		Limits   map[string]string `yaml:"limits"`
	} `yaml:"resources"`
	StartupProbe   *probe `yaml:"startupProbe"`
	LivenessProbe  *probe `yaml:"livenessProbe"`
	ReadinessProbe *probe `yaml:"readinessProbe"`
	Security       struct {
		AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
		ReadOnlyRootFilesystem   bool  `yaml:"readOnlyRootFilesystem"`
	} `yaml:"securityContext"`
}

type probe struct {
	HTTPGet *struct {
		Path string `yaml:"path"`
		Port any    `yaml:"port"`
	} `yaml:"httpGet"`
}

// port resolves a named or numbered port of c.
func (c container) port(t *testing.T, p any) int {
	t.Helper()
	switch v := p.(type) {
	case string:
		for _, cp := range c.Ports {
			if cp.Name == v {
				return cp.ContainerPort
			}
		}
		t.Errorf("container %s has no port named %q", c.Name, v)
	case uint64:
		return int(v)
	case int64:
		return int(v)
	case int:
		return v
	default:
		t.Errorf("container %s: port %v (%T) is neither a name nor a number", c.Name, p, p)
	}
	return 0
}

type k8sBase struct {
	deployments map[string]deployment // by subcommand
	objects     map[string][]map[string]any
}

func loadK8s(t *testing.T) k8sBase {
	t.Helper()
	var kust struct {
		Resources []string `yaml:"resources"`
		Images    []struct {
			Name string `yaml:"name"`
		} `yaml:"images"`
	}
	decodeInto(t, documents(t, "k8s/kustomization.yaml")[0], &kust)
	var onDisk []string
	for _, f := range yamlFiles(t) {
		if strings.HasPrefix(f, "k8s/") && f != "k8s/kustomization.yaml" && f != "k8s/nats-values.yaml" {
			onDisk = append(onDisk, strings.TrimPrefix(f, "k8s/"))
		}
	}
	listed := slices.Clone(kust.Resources)
	sort.Strings(listed)
	sort.Strings(onDisk)
	if !slices.Equal(listed, onDisk) {
		t.Errorf("kustomization resources %v, manifests on disk %v: every manifest must be listed, every listed one exist", listed, onDisk)
	}
	b := k8sBase{deployments: map[string]deployment{}, objects: map[string][]map[string]any{}}
	for _, r := range kust.Resources {
		for _, doc := range documents(t, filepath.Join("k8s", r)) {
			var o Object
			decodeInto(t, doc, &o)
			if o.APIVersion == "" || o.Kind == "" || o.Metadata.Name == "" {
				t.Errorf("k8s/%s: a document without apiVersion, kind or name", r)
			}
			b.objects[o.Kind] = append(b.objects[o.Kind], doc)
			if o.Kind == "Deployment" {
				var d deployment
				decodeInto(t, doc, &d)
				if len(d.Spec.Template.Spec.Containers) != 1 {
					t.Fatalf("deployment %s has %d containers, want 1", o.Metadata.Name, len(d.Spec.Template.Spec.Containers))
				}
				c := d.Spec.Template.Spec.Containers[0]
				if len(kust.Images) != 1 || c.Image != kust.Images[0].Name {
					t.Errorf("deployment %s image %q is not the kustomization's image %v", o.Metadata.Name, c.Image, kust.Images)
				}
				if len(c.Args) == 0 {
					t.Fatalf("deployment %s runs no subcommand", o.Metadata.Name)
				}
				b.deployments[c.Args[0]] = d
			}
		}
	}
	return b
}

func selectorMatches(sel, labels map[string]string) bool {
	if len(sel) == 0 {
		return false
	}
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// probePaths are the probes each subcommand's deployment must have.
var probePaths = map[string]map[string]string{
	"serve":     {"startup": "/healthz", "liveness": "/healthz", "readiness": "/readyz"},
	"refresher": {"startup": "/healthz", "liveness": "/healthz", "readiness": "/readyz"},
	"reconcile": {"liveness": "/healthz"},
}

func TestKubernetesBase(t *testing.T) {
	b := loadK8s(t)
	known := knownVariables(t)
	secretKeys := readEnvFile(t, "k8s/secrets.env.example")

	for _, sub := range []string{"serve", "refresher", "reconcile"} {
		d, ok := b.deployments[sub]
		if !ok {
			t.Errorf("no deployment runs %s", sub)
			continue
		}
		name := d.Metadata.Name
		ps := d.Spec.Template.Spec
		c := ps.Containers[0]
		if !selectorMatches(d.Spec.Selector.MatchLabels, d.Spec.Template.Metadata.Labels) {
			t.Errorf("deployment %s: selector %v does not select its pods %v", name, d.Spec.Selector.MatchLabels, d.Spec.Template.Metadata.Labels)
		}
		if !ps.SecurityContext.RunAsNonRoot || ps.SecurityContext.RunAsUser != nonRootUID {
			t.Errorf("deployment %s: runAsNonRoot %v runAsUser %d, want non-root %d", name, ps.SecurityContext.RunAsNonRoot, ps.SecurityContext.RunAsUser, nonRootUID)
		}
		if !c.Security.ReadOnlyRootFilesystem || c.Security.AllowPrivilegeEscalation == nil || *c.Security.AllowPrivilegeEscalation {
			t.Errorf("deployment %s: want a read-only root file system and no privilege escalation", name)
		}
		if sub != "serve" && (d.Spec.Replicas != 1 || d.Spec.Strategy.Type != "Recreate") {
			t.Errorf("deployment %s: replicas %d strategy %q, want 1 and Recreate", name, d.Spec.Replicas, d.Spec.Strategy.Type)
		}
		if c.Resources.Requests["cpu"] == "" || c.Resources.Requests["memory"] == "" || c.Resources.Limits["memory"] == "" {
			t.Errorf("deployment %s: resources %+v, want cpu and memory requests and a memory limit", name, c.Resources)
		}

		env := map[string]string{}
		gomemlimit := false
		for _, e := range c.Env {
			if !isKnown(known, e.Name) {
				t.Errorf("deployment %s sets %s, which no part of paycomet-notify reads", name, e.Name)
			}
			switch {
			case e.ValueFrom == nil:
				env[e.Name] = e.Value
			case e.ValueFrom.SecretKeyRef != nil:
				ref := e.ValueFrom.SecretKeyRef
				v, ok := secretKeys[ref.Key]
				if ref.Name != "paycomet-notify" || !ok {
					t.Errorf("deployment %s: %s from secret %s key %s, which secrets.env.example does not describe", name, e.Name, ref.Name, ref.Key)
				}
				env[e.Name] = v
			case e.ValueFrom.ResourceFieldRef != nil:
				ref := e.ValueFrom.ResourceFieldRef
				if e.Name == "GOMEMLIMIT" && ref.Resource == "limits.memory" && ref.ContainerName == c.Name {
					gomemlimit = true
				}
			}
		}
		if !gomemlimit {
			t.Errorf("deployment %s: GOMEMLIMIT is not set from its own limits.memory (resourceFieldRef)", name)
		}
		if _, err := config.Load(env, nil); err != nil {
			t.Errorf("deployment %s: config.Load refuses its environment (secrets from secrets.env.example): %v", name, err)
		}
		if env["STREAM_REPLICAS"] != "3" {
			t.Errorf("deployment %s: STREAM_REPLICAS=%q, want 3", name, env["STREAM_REPLICAS"])
		}

		// Probes on the admin port, the one the admin variable opens.
		adminPort := addrPort(t, adminVariable[sub], env[adminVariable[sub]])
		got := map[string]*probe{"startup": c.StartupProbe, "liveness": c.LivenessProbe, "readiness": c.ReadinessProbe}
		for kind, p := range got {
			wantPath, want := probePaths[sub][kind]
			if !want {
				if p != nil {
					t.Errorf("deployment %s has a %s probe, which %s does not answer", name, kind, sub)
				}
				continue
			}
			if p == nil || p.HTTPGet == nil {
				t.Errorf("deployment %s has no %s httpGet probe", name, kind)
				continue
			}
			if p.HTTPGet.Path != wantPath {
				t.Errorf("deployment %s %s probe on %s, want %s", name, kind, p.HTTPGet.Path, wantPath)
			}
			if port := c.port(t, p.HTTPGet.Port); port != adminPort {
				t.Errorf("deployment %s %s probe on port %d, but %s is %s", name, kind, port, adminVariable[sub], env[adminVariable[sub]])
			}
		}
		if sub == "serve" {
			if p := c.port(t, "http"); p != addrPort(t, "LISTEN_ADDR", env["LISTEN_ADDR"]) {
				t.Errorf("receiver port http %d is not LISTEN_ADDR %s", p, env["LISTEN_ADDR"])
			}
		}
	}

	recv, ok := b.deployments["serve"]
	if !ok {
		return
	}
	podLabels := recv.Spec.Template.Metadata.Labels
	rc := recv.Spec.Template.Spec.Containers[0]
	one := func(kind string) map[string]any {
		if len(b.objects[kind]) == 0 {
			t.Fatalf("the base has no %s", kind)
		}
		return b.objects[kind][0]
	}

	var svc struct {
		Object `yaml:",inline"`
		Spec   struct {
			Selector map[string]string `yaml:"selector"`
			Ports    []struct {
				Name       string `yaml:"name"`
				Port       int    `yaml:"port"`
				TargetPort any    `yaml:"targetPort"`
			} `yaml:"ports"`
		} `yaml:"spec"`
	}
	decodeInto(t, one("Service"), &svc)
	if !selectorMatches(svc.Spec.Selector, podLabels) {
		t.Errorf("service selector %v does not select the receiver pods %v", svc.Spec.Selector, podLabels)
	}
	svcPorts := map[string]bool{}
	for _, p := range svc.Spec.Ports {
		rc.port(t, p.TargetPort)
		svcPorts[p.Name] = true
	}

	var pdb struct {
		Spec struct {
			MinAvailable int `yaml:"minAvailable"`
			Selector     struct {
				MatchLabels map[string]string `yaml:"matchLabels"`
			} `yaml:"selector"`
		} `yaml:"spec"`
	}
	decodeInto(t, one("PodDisruptionBudget"), &pdb)
	if pdb.Spec.MinAvailable < 1 || !selectorMatches(pdb.Spec.Selector.MatchLabels, podLabels) {
		t.Errorf("PodDisruptionBudget %+v does not keep a receiver", pdb.Spec)
	}

	var hpa struct {
		Spec struct {
			ScaleTargetRef struct {
				Kind string `yaml:"kind"`
				Name string `yaml:"name"`
			} `yaml:"scaleTargetRef"`
			MinReplicas int `yaml:"minReplicas"`
			MaxReplicas int `yaml:"maxReplicas"`
		} `yaml:"spec"`
	}
	decodeInto(t, one("HorizontalPodAutoscaler"), &hpa)
	if hpa.Spec.ScaleTargetRef.Kind != "Deployment" || hpa.Spec.ScaleTargetRef.Name != recv.Metadata.Name ||
		hpa.Spec.MinReplicas < 2 || hpa.Spec.MaxReplicas < hpa.Spec.MinReplicas {
		t.Errorf("HorizontalPodAutoscaler %+v; want it on %s, from at least 2 replicas", hpa.Spec, recv.Metadata.Name)
	}

	// The public port is reachable from the ingress controller only.
	type rule struct {
		From []struct {
			NamespaceSelector map[string]any `yaml:"namespaceSelector"`
			PodSelector       map[string]any `yaml:"podSelector"`
		} `yaml:"from"`
		Ports []struct {
			Port any `yaml:"port"`
		} `yaml:"ports"`
	}
	type netpol struct {
		Spec struct {
			PodSelector struct {
				MatchLabels map[string]string `yaml:"matchLabels"`
			} `yaml:"podSelector"`
			PolicyTypes []string `yaml:"policyTypes"`
			Ingress     []rule   `yaml:"ingress"`
		} `yaml:"spec"`
	}
	var recvPolicy *netpol
	for _, doc := range b.objects["NetworkPolicy"] {
		var np netpol
		decodeInto(t, doc, &np)
		if selectorMatches(np.Spec.PodSelector.MatchLabels, podLabels) {
			recvPolicy = &np
		}
	}
	if recvPolicy == nil {
		t.Fatal("no NetworkPolicy selects the receiver pods")
	}
	publicPort := rc.port(t, "http")
	for _, r := range recvPolicy.Spec.Ingress {
		for _, p := range r.Ports {
			if rc.port(t, p.Port) != publicPort {
				continue
			}
			for _, f := range r.From {
				if !strings.Contains(fmt.Sprint(f.NamespaceSelector), "ingress") || !strings.Contains(fmt.Sprint(f.PodSelector), "ingress") {
					t.Errorf("the public port is open to %v/%v, not only to the ingress controller", f.NamespaceSelector, f.PodSelector)
				}
			}
		}
		if len(r.Ports) == 0 {
			t.Errorf("a NetworkPolicy rule opens every port of the receiver to %v", r.From)
		}
	}
	if !slices.Contains(recvPolicy.Spec.PolicyTypes, "Ingress") {
		t.Error("the receiver's NetworkPolicy does not restrict ingress")
	}

	var ing struct {
		Spec struct {
			Rules []struct {
				HTTP struct {
					Paths []struct {
						Path    string `yaml:"path"`
						Backend struct {
							Service struct {
								Name string `yaml:"name"`
								Port struct {
									Name string `yaml:"name"`
								} `yaml:"port"`
							} `yaml:"service"`
						} `yaml:"backend"`
					} `yaml:"paths"`
				} `yaml:"http"`
			} `yaml:"rules"`
		} `yaml:"spec"`
	}
	decodeInto(t, one("Ingress"), &ing)
	for _, r := range ing.Spec.Rules {
		for _, p := range r.HTTP.Paths {
			if p.Path != "/paycomet/notifications" || p.Backend.Service.Name != svc.Metadata.Name || p.Backend.Service.Port.Name != "http" || !svcPorts["http"] {
				t.Errorf("ingress path %+v; want only /paycomet/notifications to the receiver service's http port", p)
			}
		}
	}
}

func TestNATSHelmValues(t *testing.T) {
	var v struct {
		Config struct {
			Cluster struct {
				Enabled  bool `yaml:"enabled"`
				Replicas int  `yaml:"replicas"`
			} `yaml:"cluster"`
			JetStream struct {
				Enabled   bool `yaml:"enabled"`
				FileStore struct {
					Enabled bool `yaml:"enabled"`
					PVC     struct {
						Enabled bool   `yaml:"enabled"`
						Size    string `yaml:"size"`
					} `yaml:"pvc"`
				} `yaml:"fileStore"`
			} `yaml:"jetstream"`
		} `yaml:"config"`
		Container struct {
			Image struct {
				Repository string `yaml:"repository"`
				Tag        string `yaml:"tag"`
			} `yaml:"image"`
		} `yaml:"container"`
	}
	decodeInto(t, documents(t, "k8s/nats-values.yaml")[0], &v)
	c := v.Config
	if !c.Cluster.Enabled || c.Cluster.Replicas != 3 || !c.JetStream.Enabled || !c.JetStream.FileStore.Enabled ||
		!c.JetStream.FileStore.PVC.Enabled || c.JetStream.FileStore.PVC.Size == "" {
		t.Errorf("nats-values.yaml config %+v; want a 3-node cluster with JetStream on persistent file storage", c)
	}
	if want := strings.TrimPrefix(moduleVersion(t, "github.com/nats-io/nats-server/v2"), "v") + "-alpine"; v.Container.Image.Repository != "nats" || v.Container.Image.Tag != want {
		t.Errorf("nats-values.yaml image %s:%s, want nats:%s (go.mod's nats-server)", v.Container.Image.Repository, v.Container.Image.Tag, want)
	}
}

// ---------------------------------------------------------------------------
// Dockerfile and the binary it builds

type stage struct {
	base, name string
	lines      []string // instructions, continuations joined
}

func parseDockerfile(t *testing.T) (args map[string]string, stages []stage) {
	t.Helper()
	b, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	args = map[string]string{}
	var cur *stage
	var pending string
	for _, raw := range strings.Split(string(b), "\n") {
		line := strings.TrimSpace(raw)
		if pending == "" && (line == "" || strings.HasPrefix(line, "#")) {
			continue
		}
		if strings.HasSuffix(line, "\\") {
			pending += strings.TrimSuffix(line, "\\") + " "
			continue
		}
		line, pending = pending+line, ""
		w := strings.Fields(line)
		switch strings.ToUpper(w[0]) {
		case "FROM":
			s := stage{base: w[1]}
			if len(w) == 4 && strings.EqualFold(w[2], "AS") {
				s.name = w[3]
			}
			stages = append(stages, s)
			cur = &stages[len(stages)-1]
			continue
		case "ARG":
			if cur == nil {
				k, v, _ := strings.Cut(w[1], "=")
				args[k] = v
				continue
			}
		}
		if cur == nil {
			t.Fatalf("Dockerfile: %q before the first FROM", line)
		}
		cur.lines = append(cur.lines, line)
	}
	return args, stages
}

// shellWords splits a command line the way sh does for the simple quoting
// the Dockerfile uses (double quotes, no escapes), expanding ${VAR} from vars.
func shellWords(t *testing.T, s string, vars map[string]string) []string {
	t.Helper()
	expand := func(w string) string {
		return os.Expand(w, func(k string) string {
			v, ok := vars[k]
			if !ok {
				t.Fatalf("Dockerfile build line uses $%s, which no ARG or ENV defines", k)
			}
			return v
		})
	}
	var out []string
	var cur strings.Builder
	inWord, quoted := false, false
	for _, r := range s {
		switch {
		case r == '"':
			quoted, inWord = !quoted, true
		case (r == ' ' || r == '\t') && !quoted:
			if inWord {
				out = append(out, expand(cur.String()))
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if quoted {
		t.Fatalf("unbalanced quotes in %q", s)
	}
	if inWord {
		out = append(out, expand(cur.String()))
	}
	return out
}

// dockerBuild is what the Dockerfile's build stage runs for the receiver
// binary: the go build arguments and the environment the stage sets.
type dockerBuild struct {
	args []string // after "go"
	env  map[string]string
}

func TestDockerfile(t *testing.T) {
	checkDockerfile(t, map[string]string{"VERSION": "v9.9.9-test", "COMMIT": "c0ffee", "BUILD_DATE": "2026-12-01T00:00:00Z"})
}

func checkDockerfile(t *testing.T, buildArgs map[string]string) dockerBuild {
	t.Helper()
	globals, stages := parseDockerfile(t)
	if len(stages) < 2 {
		t.Fatalf("Dockerfile has %d stages, want a build stage and a final one", len(stages))
	}
	final := stages[len(stages)-1]
	if final.name != "runtime" {
		t.Errorf("the last (default) stage is %q, want the receiver's runtime stage", final.name)
	}
	for _, s := range stages {
		if s.name == "build" {
			continue
		}
		// A final image with no shell: distroless static or scratch, and so
		// no RUN (it would need /bin/sh) and exec-form ENTRYPOINT/CMD.
		if s.base != "scratch" && !strings.HasPrefix(s.base, "gcr.io/distroless/static") {
			t.Errorf("stage %s is FROM %s; want distroless static or scratch (no shell)", s.name, s.base)
		}
		user := ""
		for _, l := range s.lines {
			ins, rest, _ := strings.Cut(l, " ")
			switch strings.ToUpper(ins) {
			case "RUN":
				t.Errorf("stage %s runs %q, but it has no shell", s.name, l)
			case "ENTRYPOINT", "CMD":
				if !strings.HasPrefix(strings.TrimSpace(rest), "[") {
					t.Errorf("stage %s: %s in shell form needs a shell: %q", s.name, ins, l)
				}
			case "USER":
				user = strings.TrimSpace(rest)
			}
		}
		uid, _, _ := strings.Cut(user, ":")
		if n, err := strconv.Atoi(uid); user == "" || uid == "root" || (err == nil && n == 0) {
			t.Errorf("stage %s runs as %q, want a non-root USER", s.name, user)
		} else if err == nil && n != nonRootUID {
			t.Errorf("stage %s runs as uid %d; the manifests say %d", s.name, n, nonRootUID)
		}
	}

	var build *stage
	for i := range stages {
		if stages[i].name == "build" {
			build = &stages[i]
		}
	}
	if build == nil {
		t.Fatal("Dockerfile has no stage named build")
	}
	vars := map[string]string{}
	for k, v := range globals {
		vars[k] = v
	}
	env := map[string]string{}
	var goBuild string
	for _, l := range build.lines {
		ins, rest, _ := strings.Cut(l, " ")
		switch strings.ToUpper(ins) {
		case "ENV":
			for _, kv := range strings.Fields(rest) {
				k, v, _ := strings.Cut(kv, "=")
				env[k], vars[k] = v, v
			}
		case "ARG":
			k, v, _ := strings.Cut(strings.TrimSpace(rest), "=")
			vars[k] = v
			if a, ok := buildArgs[k]; ok {
				vars[k] = a
			}
		case "RUN":
			if strings.Contains(rest, "./cmd/paycomet-notify") {
				goBuild = rest
			}
		}
	}
	if env["CGO_ENABLED"] != "0" {
		t.Errorf("the build stage sets CGO_ENABLED=%q, want 0 (a static binary)", env["CGO_ENABLED"])
	}
	words := shellWords(t, goBuild, vars)
	for len(words) > 0 && strings.HasPrefix(words[0], "--mount=") {
		words = words[1:]
	}
	if len(words) < 2 || words[0] != "go" || words[1] != "build" {
		t.Fatalf("the receiver's RUN line is %q, want go build ...", goBuild)
	}
	if !slices.Contains(words, "-trimpath") {
		t.Errorf("go build line %q has no -trimpath", words)
	}
	i := slices.Index(words, "-ldflags")
	if i < 0 || i+1 >= len(words) {
		t.Fatalf("go build line %q has no -ldflags", words)
	}
	for _, v := range []string{"main.version=" + vars["VERSION"], "main.commit=" + vars["COMMIT"], "main.date=" + vars["BUILD_DATE"]} {
		if !strings.Contains(words[i+1], "-X "+v) {
			t.Errorf("-ldflags %q does not set %s", words[i+1], v)
		}
	}
	return dockerBuild{args: words[1:], env: env}
}

// TestImageBinary builds the receiver with the Dockerfile's own go build line
// and checks it is static, that `version` prints what the build stamped when
// run as the image's non-root user, and that the admin routes the probes,
// the load balancer and Prometheus use answer on the listeners the
// configuration opens.
func TestImageBinary(t *testing.T) {
	stamp := map[string]string{"VERSION": "v9.9.9-test", "COMMIT": "c0ffeec0ffee", "BUILD_DATE": "2026-12-01T10:00:00Z"}
	db := checkDockerfile(t, stamp)
	if t.Failed() {
		t.FailNow()
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "paycomet-notify")
	args := slices.Clone(db.args)
	o := slices.Index(args, "-o")
	if o < 0 || o+1 >= len(args) {
		t.Fatalf("go build line %q has no -o", args)
	}
	args[o+1] = bin
	// go test puts its own toolchain's bin first in PATH.
	gotool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("no go command to build the image's binary with: %v", err)
	}
	cmd := exec.Command(gotool, args...)
	cmd.Dir = ".."
	cmd.Env = os.Environ()
	for k, v := range db.env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	t0 := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	t.Logf("built with the Dockerfile's flags in %s: go %s", time.Since(t0).Round(time.Millisecond), strings.Join(args, " "))

	// Static: no program interpreter, no shared library.
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("the binary has a PT_INTERP program header: it is dynamically linked")
		}
	}
	libs, err := f.ImportedLibraries()
	if err != nil {
		t.Fatal(err)
	}
	if len(libs) > 0 {
		t.Errorf("the binary needs shared libraries %v", libs)
	}
	f.Close()

	// Run as the image's user. As root, switch to uid 65532 (the binary and
	// its directory must be reachable by it); otherwise the test already
	// runs as a non-root user.
	uid := os.Getuid()
	cred := (*syscall.Credential)(nil)
	if uid == 0 {
		cred = &syscall.Credential{Uid: nonRootUID, Gid: nonRootUID}
		uid = nonRootUID
		for d := dir; d != filepath.Dir(d) && d != os.TempDir(); d = filepath.Dir(d) {
			if err := os.Chmod(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Logf("running the binary as uid %d", uid)
	runAs := func(ctx context.Context, env map[string]string, arg ...string) *exec.Cmd {
		c := exec.CommandContext(ctx, bin, arg...)
		c.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		c.Dir = dir
		c.Env = []string{"HOME=" + dir}
		for k, v := range env {
			c.Env = append(c.Env, k+"="+v)
		}
		return c
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	out, err := runAs(ctx, nil, "version").CombinedOutput()
	if err != nil {
		t.Fatalf("version as uid %d: %v\n%s", uid, err, out)
	}
	want := fmt.Sprintf("paycomet-notify %s\ncommit: %s\nbuilt: %s\ngo: %s %s/%s\n",
		stamp["VERSION"], stamp["COMMIT"], stamp["BUILD_DATE"], runtime.Version(), runtime.GOOS, runtime.GOARCH)
	if string(out) != want {
		t.Errorf("version as uid %d printed\n%s\nwant\n%s", uid, out, want)
	}

	// serve --demo and a refresher on its embedded NATS: every admin route
	// the deploy kit points at answers 200 where the configuration says.
	data := filepath.Join(dir, "data")
	if err := os.Mkdir(data, 0o700); err != nil {
		t.Fatal(err)
	}
	if cred != nil {
		if err := os.Chown(data, nonRootUID, nonRootUID); err != nil {
			t.Fatal(err)
		}
	}
	natsAddr, serveAdmin, refresherAdmin := freeAddr(t), freeAddr(t), freeAddr(t)
	serveEnv := map[string]string{"DATA_DIR": data, "EMBEDDED_NATS_ADDR": natsAddr, "LISTEN_ADDR": freeAddr(t), "ADMIN_ADDR": serveAdmin}
	refresherEnv := map[string]string{"EMBEDDED_NATS_ADDR": natsAddr, "REFRESHER_ADMIN_ADDR": refresherAdmin}
	serveLog := start(t, runAs(ctx, serveEnv, "serve", "--demo"))
	waitOK(t, "serve", "http://"+serveAdmin, withMetrics(probePaths["serve"]), serveLog)
	refresherLog := start(t, runAs(ctx, refresherEnv, "refresher", "--demo"))
	waitOK(t, "refresher", "http://"+refresherAdmin, withMetrics(probePaths["refresher"]), refresherLog)

	// The reconciler with the manifests' own arguments, against the
	// PAYCOMET fake's REST API and serve's embedded NATS.
	rec, ok := loadK8s(t).deployments["reconcile"]
	if !ok {
		t.Fatal("no reconcile deployment to take the arguments from")
	}
	fake := paycomettest.NewServer(t, paycomettest.Config{APIKey: paycometrest.DemoAPIKey, MerchantCode: demo.MerchantCode,
		Terminals: map[string]string{demo.Terminal: demo.Password}, ProviderID: paycometrest.DemoProviderID})
	reconcileAdmin := freeAddr(t)
	reconcileEnv := map[string]string{
		"NATS_URL": "nats://" + natsAddr, "ADMIN_ADDR": reconcileAdmin, "PAYCOMET_REST_URL": fake.URL,
		"PAYCOMET_MERCHANT_CODE": demo.MerchantCode, "PAYCOMET_TERMINALS": demo.Terminal + ":" + demo.Password,
		"RECONCILE_API_KEY": paycometrest.DemoAPIKey,
	}
	reconcileLog := start(t, runAs(ctx, reconcileEnv, rec.Spec.Template.Spec.Containers[0].Args...))
	waitOK(t, "reconcile", "http://"+reconcileAdmin, withMetrics(probePaths["reconcile"]), reconcileLog)
}

// withMetrics adds /metrics, which Prometheus scrapes, to a set of probes.
func withMetrics(paths map[string]string) map[string]string {
	out := map[string]string{"scrape": "/metrics"}
	for k, v := range paths {
		out[k] = v
	}
	return out
}

// proc is a subcommand the test started.
type proc struct {
	name   string
	out    *syncBuffer
	exited chan struct{} // closed when it has exited; err is then set
	err    error
}

// start starts c and stops it with SIGTERM at the end of the test.
func start(t *testing.T, c *exec.Cmd) *proc {
	t.Helper()
	p := &proc{name: strings.Join(c.Args[1:], " "), out: &syncBuffer{}, exited: make(chan struct{})}
	c.Stdout, c.Stderr = p.out, p.out
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = c.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		_ = c.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(20 * time.Second):
			_ = c.Process.Kill()
			<-p.exited
			t.Errorf("%s did not stop within 20s of SIGTERM; its output:\n%s", p.name, p.out.String())
		}
	})
	return p
}

// waitOK polls every path until each answers 200, within a deadline; it
// fails at once if the process exits.
func waitOK(t *testing.T, name, base string, paths map[string]string, p *proc) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	client := &http.Client{Timeout: 2 * time.Second}
	for _, path := range paths {
		for {
			last := ""
			resp, err := client.Get(base + path)
			if err != nil {
				last = err.Error()
			} else {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					break
				}
				last = resp.Status
			}
			select {
			case <-p.exited:
				t.Fatalf("%s exited (%v) before %s answered 200; its output:\n%s", p.name, p.err, path, p.out.String())
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s %s did not answer 200 within 30s (last: %s); its output:\n%s", name, path, last, p.out.String())
			}
			time.Sleep(100 * time.Millisecond) // polling interval, with a deadline
		}
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// syncBuffer is an io.Writer a process writes while the test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}
