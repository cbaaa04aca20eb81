package deploy_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/ecbridge/ecb/internal/config"
)

// defaultShutdown is ECB's default http.shutdownTimeout, from internal/config.
func defaultShutdown() time.Duration {
	var c config.Config
	c.SetDefaults()
	return c.HTTP.ShutdownTimeout
}

// The parts of the Kubernetes objects the test looks at.
type (
	object struct {
		Kind     string `yaml:"kind"`
		Metadata struct {
			Name   string            `yaml:"name"`
			Labels map[string]string `yaml:"labels"`
		} `yaml:"metadata"`
		Data map[string]string `yaml:"data"`
		Spec yaml.Node         `yaml:"spec"`
	}
	deploymentSpec struct {
		Replicas int `yaml:"replicas"`
		Selector struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
		Template struct {
			Metadata struct {
				Labels map[string]string `yaml:"labels"`
			} `yaml:"metadata"`
			Spec struct {
				TerminationGracePeriodSeconds int         `yaml:"terminationGracePeriodSeconds"`
				Containers                    []container `yaml:"containers"`
				Volumes                       []struct {
					Name      string `yaml:"name"`
					ConfigMap *struct {
						Name string `yaml:"name"`
					} `yaml:"configMap"`
				} `yaml:"volumes"`
			} `yaml:"spec"`
		} `yaml:"template"`
	}
	container struct {
		Args  []string `yaml:"args"`
		Ports []struct {
			Name          string `yaml:"name"`
			ContainerPort int    `yaml:"containerPort"`
		} `yaml:"ports"`
		Env []struct {
			Name      string     `yaml:"name"`
			Value     string     `yaml:"value"`
			ValueFrom *yaml.Node `yaml:"valueFrom"`
		} `yaml:"env"`
		ReadinessProbe probe `yaml:"readinessProbe"`
		LivenessProbe  probe `yaml:"livenessProbe"`
		Lifecycle      struct {
			PreStop struct {
				Sleep *struct {
					Seconds int `yaml:"seconds"`
				} `yaml:"sleep"`
			} `yaml:"preStop"`
		} `yaml:"lifecycle"`
		VolumeMounts []struct {
			Name      string `yaml:"name"`
			MountPath string `yaml:"mountPath"`
			SubPath   string `yaml:"subPath"`
		} `yaml:"volumeMounts"`
	}
	probe struct {
		HTTPGet *struct {
			Path string `yaml:"path"`
			Port string `yaml:"port"`
		} `yaml:"httpGet"`
	}
	serviceSpec struct {
		Selector        map[string]string `yaml:"selector"`
		SessionAffinity string            `yaml:"sessionAffinity"`
		Ports           []struct {
			TargetPort string `yaml:"targetPort"`
		} `yaml:"ports"`
	}
	pdbSpec struct {
		MaxUnavailable int `yaml:"maxUnavailable"`
		Selector       struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
	}
)

// manifests parses every YAML document of kubernetes/, by kind.
func manifests(t *testing.T) map[string]object {
	t.Helper()
	files, err := filepath.Glob("kubernetes/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no kubernetes/*.yaml: %v", err)
	}
	out := map[string]object{}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(raw))
		for {
			var o object
			if err := dec.Decode(&o); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if o.Kind == "" {
				t.Fatalf("%s: a document without kind", f)
			}
			if _, dup := out[o.Kind]; dup {
				t.Fatalf("%s: a second %s", f, o.Kind)
			}
			out[o.Kind] = o
		}
	}
	for _, kind := range []string{"Kustomization", "ConfigMap", "Deployment", "Service", "PodDisruptionBudget"} {
		if _, ok := out[kind]; !ok {
			t.Fatalf("kubernetes/: no %s", kind)
		}
	}
	return out
}

func decodeSpec(t *testing.T, o object, into any) {
	t.Helper()
	if err := o.Spec.Decode(into); err != nil {
		t.Fatalf("%s spec: %v", o.Kind, err)
	}
}

// TestKubernetes checks the manifests against ECB: the ConfigMap's ecb.yaml
// and the Deployment's environment load with internal/config, the probes hit
// /readyz and /healthz on the client port, the grace period covers preStop
// and the drain, the Service and the PodDisruptionBudget select the pods.
func TestKubernetes(t *testing.T) {
	objs := manifests(t)
	var d deploymentSpec
	decodeSpec(t, objs["Deployment"], &d)
	if d.Replicas != 3 {
		t.Errorf("Deployment: %d replicas, want 3", d.Replicas)
	}
	pods := d.Template.Metadata.Labels
	if len(d.Selector.MatchLabels) == 0 || !subset(d.Selector.MatchLabels, pods) {
		t.Errorf("Deployment: selector %v does not match the pod labels %v", d.Selector.MatchLabels, pods)
	}
	if len(d.Template.Spec.Containers) != 1 {
		t.Fatalf("Deployment: %d containers, want 1", len(d.Template.Spec.Containers))
	}
	c := d.Template.Spec.Containers[0]

	// The configuration: --config names the ConfigMap's ecb.yaml, mounted.
	i := slices.Index(c.Args, "--config")
	if len(c.Args) == 0 || c.Args[0] != "serve" || i < 0 || i+1 >= len(c.Args) {
		t.Fatalf("Deployment: args %q, want serve --config FILE", c.Args)
	}
	cfgPath := c.Args[i+1]
	mounted := false
	for _, m := range c.VolumeMounts {
		for _, v := range d.Template.Spec.Volumes {
			if v.Name == m.Name && v.ConfigMap != nil && v.ConfigMap.Name == objs["ConfigMap"].Metadata.Name &&
				m.MountPath == cfgPath && m.SubPath == "ecb.yaml" {
				mounted = true
			}
		}
	}
	if !mounted {
		t.Errorf("Deployment: %s is not the ConfigMap's ecb.yaml mounted with subPath", cfgPath)
	}
	ecbYAML, ok := objs["ConfigMap"].Data["ecb.yaml"]
	if !ok {
		t.Fatal("ConfigMap: no ecb.yaml")
	}
	// Every ECB_ variable is a setting; those from a Secret or the pod get
	// a stand-in value.
	var env []string
	for _, e := range c.Env {
		v := e.Value
		if e.ValueFrom != nil {
			v = map[string]string{"ECB_BACKEND_SECRET": strings.Repeat("s", 32)}[e.Name]
			if v == "" {
				v = "ecb-0"
			}
		}
		env = append(env, e.Name+"="+v)
	}
	if !slices.ContainsFunc(env, func(kv string) bool { return strings.HasPrefix(kv, "ECB_CLUSTER_REDIS_URL=redis") }) {
		t.Errorf("Deployment: no ECB_CLUSTER_REDIS_URL in %q", env)
	}
	file := filepath.Join(t.TempDir(), "ecb.yaml")
	if err := os.WriteFile(file, []byte(ecbYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(file, env, nil)
	if err != nil {
		t.Fatalf("the ConfigMap's ecb.yaml with the Deployment's environment does not load: %v", err)
	}
	if cfg.Cluster.RedisURL == "" {
		t.Error("the nodes share no Redis (cluster.redisURL)")
	}

	// Probes on the client port, which ECB's listen is.
	ports := map[string]int{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	listenPort := cfg.Listen[strings.LastIndex(cfg.Listen, ":")+1:]
	for name, p := range map[string]struct {
		probe probe
		path  string
	}{"readinessProbe": {c.ReadinessProbe, "/readyz"}, "livenessProbe": {c.LivenessProbe, "/healthz"}} {
		if p.probe.HTTPGet == nil || p.probe.HTTPGet.Path != p.path {
			t.Errorf("Deployment: %s is not httpGet %s", name, p.path)
			continue
		}
		if strconv.Itoa(ports[p.probe.HTTPGet.Port]) != listenPort {
			t.Errorf("Deployment: %s port %q is %d, ECB listens on %s", name, p.probe.HTTPGet.Port, ports[p.probe.HTTPGet.Port], cfg.Listen)
		}
	}

	// Drain: the grace period covers preStop, then the whole shutdown.
	if c.Lifecycle.PreStop.Sleep == nil || c.Lifecycle.PreStop.Sleep.Seconds < 1 {
		t.Fatal("Deployment: no preStop sleep (the balancer needs time to stop sending new sessions)")
	}
	preStop := time.Duration(c.Lifecycle.PreStop.Sleep.Seconds) * time.Second
	grace := time.Duration(d.Template.Spec.TerminationGracePeriodSeconds) * time.Second
	for _, shutdown := range []time.Duration{defaultShutdown(), cfg.HTTP.ShutdownTimeout} {
		if grace < preStop+shutdown {
			t.Errorf("Deployment: terminationGracePeriodSeconds %v < preStop %v + http.shutdownTimeout %v", grace, preStop, shutdown)
		}
	}

	var s serviceSpec
	decodeSpec(t, objs["Service"], &s)
	if len(s.Selector) == 0 || !subset(s.Selector, pods) {
		t.Errorf("Service: selector %v does not match the pod labels %v", s.Selector, pods)
	}
	if s.SessionAffinity != "" && s.SessionAffinity != "None" {
		t.Errorf("Service: sessionAffinity %q: no affinity wanted", s.SessionAffinity)
	}
	for _, p := range s.Ports {
		if _, ok := ports[p.TargetPort]; !ok {
			t.Errorf("Service: targetPort %q is no container port", p.TargetPort)
		}
	}
	var pdb pdbSpec
	decodeSpec(t, objs["PodDisruptionBudget"], &pdb)
	if pdb.MaxUnavailable != 1 || len(pdb.Selector.MatchLabels) == 0 || !subset(pdb.Selector.MatchLabels, pods) {
		t.Errorf("PodDisruptionBudget: maxUnavailable %d, selector %v; want 1 and the pods' labels %v", pdb.MaxUnavailable, pdb.Selector.MatchLabels, pods)
	}
}

func subset(sel, labels map[string]string) bool {
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// TestSystemdUnit: the unit runs `ecb serve --config`, stops with SIGTERM
// and waits longer than ECB's drain before SIGKILL.
func TestSystemdUnit(t *testing.T) {
	unit := unitFile(t, "systemd/ecb.service")
	want := map[string]string{"Type": "simple", "KillSignal": "SIGTERM", "Restart": "on-failure", "NoNewPrivileges": "yes", "ProtectSystem": "strict", "DynamicUser": "yes"}
	for k, v := range want {
		if unit["Service."+k] != v {
			t.Errorf("ecb.service: %s=%q, want %q", k, unit["Service."+k], v)
		}
	}
	if !regexp.MustCompile(`^/\S+/ecb serve --config /\S+\.yaml$`).MatchString(unit["Service.ExecStart"]) {
		t.Errorf("ecb.service: ExecStart=%q, want /.../ecb serve --config /....yaml", unit["Service.ExecStart"])
	}
	stop, err := systemdSeconds(unit["Service.TimeoutStopSec"])
	if err != nil {
		t.Fatalf("ecb.service: TimeoutStopSec: %v", err)
	}
	if stop <= defaultShutdown() {
		t.Errorf("ecb.service: TimeoutStopSec %v is not above http.shutdownTimeout %v", stop, defaultShutdown())
	}
}

// unitFile reads a systemd unit as Section.Key → value (the last one wins).
func unitFile(t *testing.T, path string) map[string]string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	section := ""
	for _, line := range strings.Split(string(raw), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case line[0] == '[' && line[len(line)-1] == ']':
			section = line[1 : len(line)-1]
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				t.Fatalf("%s: %q is not key=value", path, line)
			}
			out[section+"."+strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	return out
}

// systemdSeconds parses the systemd times this unit uses: 30, 30s, 2min, 1min 30s.
func systemdSeconds(s string) (time.Duration, error) {
	if s == "" {
		return 0, errors.New("not set")
	}
	var total time.Duration
	for _, part := range strings.Fields(s) {
		m := regexp.MustCompile(`^(\d+)(s|sec|min|m|h)?$`).FindStringSubmatch(part)
		if m == nil {
			return 0, errors.New(strconv.Quote(s) + " is not a time in seconds or minutes")
		}
		n, _ := strconv.Atoi(m[1])
		total += time.Duration(n) * map[string]time.Duration{"": time.Second, "s": time.Second, "sec": time.Second, "min": time.Minute, "m": time.Minute, "h": time.Hour}[m[2]]
	}
	return total, nil
}

// TestDockerfile: a static, trimmed build of ./cmd/ecb with the Go of
// go.mod, run as a non-root user, stopped with SIGTERM.
func TestDockerfile(t *testing.T) {
	raw, err := os.ReadFile("docker/Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	df := string(raw)
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "./cmd/ecb", "STOPSIGNAL SIGTERM", "EXPOSE 8080", "NOT BUILT HERE"} {
		if !strings.Contains(df, want) {
			t.Errorf("Dockerfile: no %q", want)
		}
	}
	gomod, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	goVersion := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(gomod)
	if goVersion == nil {
		t.Fatal("go.mod: no go line")
	}
	if !strings.Contains(df, "FROM golang:"+string(goVersion[1])+"-") {
		t.Errorf("Dockerfile: the build stage is not golang:%s (go.mod's Go)", goVersion[1])
	}
	user := regexp.MustCompile(`(?m)^USER\s+(\S+)`).FindStringSubmatch(df)
	if user == nil || strings.HasPrefix(user[1], "root") || strings.HasPrefix(user[1], "0") {
		t.Errorf("Dockerfile: USER %v, want a non-root user", user)
	}
	if !regexp.MustCompile(`(?m)^FROM (gcr\.io/distroless/static\S*|scratch)\s*$`).MatchString(df) {
		t.Error("Dockerfile: the runtime image is not distroless/static or scratch")
	}
	if !regexp.MustCompile(`(?m)^CMD \["serve", "--config", "/etc/ecb/ecb\.yaml"`).MatchString(df) {
		t.Error(`Dockerfile: CMD is not ["serve", "--config", "/etc/ecb/ecb.yaml", ...]`)
	}
}
