package telemetry_test

import (
	"context"
	"strings"
	"testing"

	"github.com/rollgate/rollgate/internal/telemetry"
)

func TestEnabled_FollowsTheStandardVariables(t *testing.T) {
	for env, want := range map[string]bool{
		"": false,
		"OTEL_EXPORTER_OTLP_ENDPOINT=http://c:4318":                                           true,
		"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=http://c:4318/v1/traces":                          true,
		"OTEL_EXPORTER_OTLP_ENDPOINT=http://c:4318 OTEL_SDK_DISABLED=true":                    false,
		"OTEL_EXPORTER_OTLP_ENDPOINT=http://c:4318 OTEL_TRACES_EXPORTER=none":                 false,
		"OTEL_EXPORTER_OTLP_ENDPOINT=http://c:4318 OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf": true,
	} {
		vars := map[string]string{}
		for _, kv := range strings.Fields(env) {
			k, v, _ := strings.Cut(kv, "=")
			vars[k] = v
		}
		if got := telemetry.Enabled(func(k string) string { return vars[k] }); got != want {
			t.Errorf("%q: enabled %v, want %v", env, got, want)
		}
	}
}

func TestTracing_OffWithoutAnEndpointAndRefusesAnUnknownProtocol(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
	ic, shutdown, err := telemetry.Tracing(context.Background(), "rollgate-test")
	if ic != nil || err != nil || shutdown(context.Background()) != nil {
		t.Fatalf("without an endpoint: %v, %v", ic, err)
	}
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")
	if _, _, err := telemetry.Tracing(context.Background(), "rollgate-test"); err == nil || !strings.Contains(err.Error(), "http/json") {
		t.Fatalf("unknown protocol: %v", err)
	}
}
