package tracing_test

import (
	"strings"
	"testing"

	"github.com/ecbridge/ecb/internal/tracing"
)

func env(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }

func TestEndpoint(t *testing.T) {
	cases := []struct {
		cfg  string
		env  map[string]string
		want string
	}{
		{"", nil, ""}, // off by default
		{"http://c:4318", nil, "http://c:4318/v1/traces"},
		{"http://c:4318/", nil, "http://c:4318/v1/traces"},
		{"https://c/otlp/v1/traces", nil, "https://c/otlp/v1/traces"},
		{"http://c:4318", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://e:4318"}, "http://c:4318/v1/traces"}, // the config wins
		{"", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://e:4318"}, "http://e:4318/v1/traces"},
		{"", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://e:4318", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://t:1/x"}, "http://t:1/x"},
	}
	for _, tc := range cases {
		c := tracing.Config{OTLPEndpoint: tc.cfg}
		if got := c.Endpoint(env(tc.env)); got != tc.want {
			t.Errorf("endpoint %q, env %v: %q, want %q", tc.cfg, tc.env, got, tc.want)
		}
	}
}

func TestStartOffAndOn(t *testing.T) {
	p, err := tracing.Start(tracing.Config{}, "n1", env(nil))
	if err != nil || p.TracerProvider() != nil || p.Endpoint() != "" {
		t.Fatalf("off: %v, %v, %q", err, p.TracerProvider(), p.Endpoint())
	}
	if err := p.Shutdown(t.Context()); err != nil {
		t.Errorf("off: shutdown %v", err)
	}
	p, err = tracing.Start(tracing.Config{OTLPEndpoint: "http://127.0.0.1:1"}, "n1", nil)
	if err != nil || p.TracerProvider() == nil {
		t.Fatalf("on: %v, %v", err, p.TracerProvider())
	}
	_ = p.Shutdown(t.Context()) // nothing buffered: nothing to send to the closed port
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		cfg  tracing.Config
		want string
	}{
		{tracing.Config{OTLPEndpoint: "collector:4318"}, "tracing.otlpEndpoint"},
		{tracing.Config{OTLPEndpoint: "ftp://c"}, "tracing.otlpEndpoint"},
		{tracing.Config{SampleRatio: 1.5}, "tracing.sampleRatio"},
		{tracing.Config{SampleRatio: -1}, "tracing.sampleRatio"},
	} {
		err := tc.cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want an error naming %s", tc.cfg, err, tc.want)
		}
	}
	ok := tracing.Config{OTLPEndpoint: "https://c:4318", SampleRatio: 0.25}
	if err := ok.Validate(); err != nil {
		t.Errorf("%+v: %v", ok, err)
	}
}
