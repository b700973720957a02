package config_test

import (
	"context"
	"fmt"
	"github.com/aws/aws-sdk-go-v2/aws"
	"strings"
	"testing"
	"time"

	"github.com/sethvargo/go-envconfig"

	"github.com/rollgate/rollgate/internal/config"
	"github.com/rollgate/rollgate/internal/spec"
	"github.com/rollgate/rollgate/internal/tokens"
)

func TestLoad_DefaultsAndOverrides(t *testing.T) {
	c, err := config.Load(context.Background(), envconfig.MapLookuper(map[string]string{}))
	if err != nil {
		t.Fatal(err)
	}
	if c.TaskQueue != "rollgate" || c.Vault.Method != "token" || c.ShutdownTimeout != 30*time.Second || c.TokensTable != "rollgate-tokens" {
		t.Fatalf("defaults %+v", c)
	}
	if got := c.InvokeURLFunc()("abcdefghij", "prod"); got != "https://abcdefghij.execute-api.us-east-1.amazonaws.com/prod" {
		t.Fatal(got)
	}
	c, err = config.Load(context.Background(), envconfig.MapLookuper(map[string]string{
		"ROLLGATE_VAULT_AUTH": "approle", "ROLLGATE_VAULT_ROLE_ID": "r", "ROLLGATE_GATEWAY_INVOKE_URL": "http://127.0.0.1:9/",
		"ROLLGATE_SHUTDOWN_TIMEOUT": "5s",
	}))
	if err != nil || c.Vault.Method != "approle" || c.Vault.RoleID != "r" || c.ShutdownTimeout != 5*time.Second {
		t.Fatalf("overrides %+v, %v", c, err)
	}
	if got := c.InvokeURLFunc()("abcdefghij", "prod"); got != "http://127.0.0.1:9/abcdefghij/prod" {
		t.Fatal(got)
	}
	c, _ = config.Load(context.Background(), envconfig.MapLookuper(map[string]string{"ROLLGATE_GATEWAY_INVOKE_URL": "http://moto:5000/restapis/{apiId}/{stage}/_user_request_"}))
	if got := c.InvokeURLFunc()("abcdefghij", "prod"); got != "http://moto:5000/restapis/abcdefghij/prod/_user_request_" {
		t.Fatal(got)
	}
	if _, err := config.Load(context.Background(), envconfig.MapLookuper(map[string]string{"ROLLGATE_SHUTDOWN_TIMEOUT": "soon"})); err == nil {
		t.Fatal("a bad duration was accepted")
	}
}

func TestLoad_Webhooks(t *testing.T) {
	c, err := config.Load(context.Background(), envconfig.MapLookuper(map[string]string{
		"ROLLGATE_WEBHOOKS": "oncall=https://hooks.example.com/services/T0/B0/x?a=b;ops=http://127.0.0.1:9/h",
	}))
	if err != nil || c.Webhooks["oncall"] != "https://hooks.example.com/services/T0/B0/x?a=b" || c.Webhooks["ops"] != "http://127.0.0.1:9/h" {
		t.Fatalf("webhooks %v, %v", c.Webhooks, err)
	}
}

// A malformed ROLLGATE_WEBHOOKS is refused at start with the item named, never quoted: a webhook
// URL carries its secret in the path and query, and the error goes to the worker's log.
func TestLoad_BadWebhooksAreRefusedWithoutQuotingTheURL(t *testing.T) {
	for value, want := range map[string]string{
		"https://hooks.example.com/services/T0/B0/s3cr3t":                    "item 1: want name=url",
		"oncall=https://hooks.example.com/s3cr3t;https://h.example/s3cr3t":   "item 2: want name=url",
		"=https://hooks.example.com/services/T0/B0/s3cr3t":                   "item 1: want name=url",
		"oncall=hooks.example.com/services/T0/B0/s3cr3t":                     `"oncall": not an absolute http(s) URL`,
		"oncall=ftp://hooks.example.com/s3cr3t":                              `"oncall": not an absolute http(s) URL`,
		"oncall=https://hooks.example.com/a;oncall=https://h.example/s3cr3t": `"oncall" is named twice`,
	} {
		_, err := config.Load(context.Background(), envconfig.MapLookuper(map[string]string{"ROLLGATE_WEBHOOKS": value}))
		if err == nil || !strings.Contains(err.Error(), "ROLLGATE_WEBHOOKS") || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %s, want an error saying %q", strings.ReplaceAll(value, "s3cr3t", "<SECRET>"), strings.ReplaceAll(fmt.Sprint(err), "s3cr3t", "<SECRET>"), want)
		}
		if err != nil && (strings.Contains(err.Error(), "s3cr3t") || strings.Contains(err.Error(), "hooks.example.com")) {
			t.Errorf("the error quotes the webhook URL: %s", strings.ReplaceAll(err.Error(), "s3cr3t", "<SECRET>"))
		}
	}
}

func TestLoad_VerificationDefaultsOverridesAndRanges(t *testing.T) {
	c, err := config.Load(context.Background(), envconfig.MapLookuper(map[string]string{}))
	if err != nil || c.Verification.MaxLifetime != tokens.DefaultMaxLifetime || c.Verification.Leeway != 5*time.Second {
		t.Fatalf("defaults %+v, %v", c.Verification, err)
	}
	if c.Verification.MaxLifetime < spec.MaxTokenTTL {
		t.Fatalf("default maximum lifetime %s refuses tokens of the longest auth.tokenTtl %s", c.Verification.MaxLifetime, spec.MaxTokenTTL)
	}
	v, err := config.LoadVerification(context.Background(), envconfig.MapLookuper(map[string]string{
		"ROLLGATE_TOKEN_MAX_LIFETIME": "2h", "ROLLGATE_VERIFY_LEEWAY": "0s",
	}))
	if err != nil || v.MaxLifetime != 2*time.Hour || v.Leeway != 0 {
		t.Fatalf("overrides %+v, %v", v, err)
	}
	var o tokens.VerifierOptions
	v.Apply(&o)
	if o.MaxLifetime != 2*time.Hour || o.Leeway != 0 {
		t.Fatalf("applied %+v", o)
	}
	for name, value := range map[string]string{
		"ROLLGATE_TOKEN_MAX_LIFETIME": "30s", "ROLLGATE_VERIFY_LEEWAY": "1h",
	} {
		_, err := config.Load(context.Background(), envconfig.MapLookuper(map[string]string{name: value}))
		if err == nil || !strings.Contains(err.Error(), name) || !strings.Contains(err.Error(), "allowed") {
			t.Fatalf("%s=%s: %v, want an error naming the variable and its range", name, value, err)
		}
	}
}

func TestLoad_ScaleDefaultsOptionsAndRanges(t *testing.T) {
	c, err := config.Load(context.Background(), envconfig.MapLookuper(map[string]string{"ROLLGATE_GATEWAY_ACTIVITIES_PER_SECOND": "0.5"}))
	if err != nil {
		t.Fatal(err)
	}
	main, gw, rb := c.Scale.WorkerOptions(time.Minute)
	if main.MaxConcurrentActivityExecutionSize != 1000 || main.MaxConcurrentWorkflowTaskPollers != 4 || main.TaskQueueActivitiesPerSecond != 0 || main.WorkerStopTimeout != time.Minute {
		t.Fatalf("the workflows' worker %+v", main)
	}
	if !gw.DisableWorkflowWorker || gw.TaskQueueActivitiesPerSecond != 0.5 || gw.MaxConcurrentActivityTaskPollers != 4 {
		t.Fatalf("the gateway task queue's worker %+v", gw)
	}
	if !rb.DisableWorkflowWorker || rb.TaskQueueActivitiesPerSecond != 3 {
		t.Fatalf("the rollback gateway task queue's worker %+v", rb)
	}
	for name, value := range map[string]string{
		"ROLLGATE_GATEWAY_ACTIVITIES_PER_SECOND": "0", "ROLLGATE_WORKFLOW_POLLERS": "1", "ROLLGATE_MAX_CONCURRENT_ACTIVITIES": "0",
		"ROLLGATE_STICKY_CACHE_SIZE": "-1", "ROLLGATE_ACTIVITY_POLLERS": "1000", "ROLLGATE_ROLLBACK_ACTIVITIES_PER_SECOND": "-2",
	} {
		_, err := config.Load(context.Background(), envconfig.MapLookuper(map[string]string{name: value}))
		if err == nil || !strings.Contains(err.Error(), name) || !strings.Contains(err.Error(), "allowed") {
			t.Fatalf("%s=%s: %v, want an error naming the variable and its range", name, value, err)
		}
	}
}

// Production code knows no test bed: probes count canary answers by a header only when one is
// configured.
func TestLoad_CanaryHeaderIsOffUnlessConfigured(t *testing.T) {
	c, err := config.Load(context.Background(), envconfig.MapLookuper(map[string]string{}))
	if err != nil || c.CanaryHeader != "" {
		t.Fatalf("default canary header %q, %v; want none", c.CanaryHeader, err)
	}
	c, err = config.Load(context.Background(), envconfig.MapLookuper(map[string]string{"ROLLGATE_CANARY_HEADER": "X-Release-Canary"}))
	if err != nil || c.CanaryHeader != "X-Release-Canary" {
		t.Fatalf("canary header %q, %v", c.CanaryHeader, err)
	}
	_, err = config.Load(context.Background(), envconfig.MapLookuper(map[string]string{"ROLLGATE_CANARY_HEADER": "X Release: true"}))
	if err == nil || !strings.Contains(err.Error(), "ROLLGATE_CANARY_HEADER") || !strings.Contains(err.Error(), "allowed a header name") {
		t.Fatalf("a malformed header name: %v", err)
	}
}

// The Prometheus provider is configured from ROLLGATE_PROMETHEUS_*: off without a URL, built
// with its authentication when set, and no error or printed configuration carries a secret.
func TestLoad_PrometheusProvider(t *testing.T) {
	ctx := context.Background()
	c, err := config.Load(ctx, envconfig.MapLookuper(map[string]string{}))
	if err != nil {
		t.Fatal(err)
	}
	if ps, err := c.Providers(aws.Config{}); err != nil || len(ps) != 0 {
		t.Fatalf("without a URL: providers %v, %v", ps, err)
	}
	const secret = "pr0m-s3cret-value"
	c, err = config.Load(ctx, envconfig.MapLookuper(map[string]string{
		"ROLLGATE_PROMETHEUS_URL": "https://prom.example.com", "ROLLGATE_PROMETHEUS_USERNAME": "rollgate",
		"ROLLGATE_PROMETHEUS_PASSWORD": secret, "ROLLGATE_PROMETHEUS_TIMEOUT": "3s",
	}))
	if err != nil || c.Prometheus.Timeout != 3*time.Second {
		t.Fatalf("load: %+v, %v", c.Prometheus, err)
	}
	if ps, err := c.Providers(aws.Config{}); err != nil || ps[spec.ProviderPrometheus] == nil || ps[spec.ProviderCloudWatch] != nil {
		t.Fatalf("providers %v, %v", ps, err)
	}
	cw, err := config.Load(ctx, envconfig.MapLookuper(map[string]string{"ROLLGATE_CLOUDWATCH_ANALYSIS": "true"}))
	if err != nil {
		t.Fatal(err)
	}
	if ps, err := cw.Providers(aws.Config{Region: "us-east-1"}); err != nil || ps[spec.ProviderCloudWatch] == nil || ps[spec.ProviderPrometheus] != nil {
		t.Fatalf("with ROLLGATE_CLOUDWATCH_ANALYSIS: providers %v, %v", ps, err)
	}
	if printed := fmt.Sprintf("%v %+v %s", c, c, c.Prometheus); strings.Contains(printed, secret) {
		t.Fatal("the printed configuration shows the password")
	}
	for name, env := range map[string]map[string]string{
		"a secret without a URL": {"ROLLGATE_PROMETHEUS_BEARER_TOKEN": secret},
		"timeout out of range":   {"ROLLGATE_PROMETHEUS_URL": "http://127.0.0.1:9090", "ROLLGATE_PROMETHEUS_TIMEOUT": "0s"},
	} {
		_, err := config.Load(ctx, envconfig.MapLookuper(env))
		if err == nil || !strings.Contains(err.Error(), "ROLLGATE_PROMETHEUS_") || strings.Contains(err.Error(), secret) {
			t.Fatalf("%s: %v", name, err)
		}
	}
	// Checked when the provider is built: a password in clear text to another machine, two
	// authentications at once.
	for name, env := range map[string]map[string]string{
		"clear text": {"ROLLGATE_PROMETHEUS_URL": "http://prom.example.com", "ROLLGATE_PROMETHEUS_USERNAME": "u", "ROLLGATE_PROMETHEUS_PASSWORD": secret},
		"two auths":  {"ROLLGATE_PROMETHEUS_URL": "https://prom.example.com", "ROLLGATE_PROMETHEUS_BEARER_TOKEN": secret, "ROLLGATE_PROMETHEUS_USERNAME": "u", "ROLLGATE_PROMETHEUS_PASSWORD": secret},
	} {
		c, err := config.Load(ctx, envconfig.MapLookuper(env))
		if err != nil {
			t.Fatalf("%s: load: %v", name, err)
		}
		if _, err := c.Providers(aws.Config{}); err == nil || !strings.Contains(err.Error(), "ROLLGATE_PROMETHEUS_") || strings.Contains(err.Error(), secret) {
			t.Fatalf("%s: %v", name, err)
		}
	}
}

// A value that does not parse is named by its variable, as an operator set it, not by the Go
// fields it lands in.
func TestLoad_AValueThatDoesNotParseNamesItsVariable(t *testing.T) {
	for key, value := range map[string]string{
		"ROLLGATE_MAX_CONCURRENT_ACTIVITIES": "abc",
		"ROLLGATE_PROBE_TIMEOUT":             "soon",
		"ROLLGATE_VERIFY_LEEWAY":             "-x",
	} {
		_, err := config.Load(context.Background(), envconfig.MapLookuper(map[string]string{key: value}))
		if err == nil || !strings.HasPrefix(err.Error(), "configuration: "+key+": ") {
			t.Errorf("%s=%s: %v, want it named", key, value, err)
		}
	}
}
