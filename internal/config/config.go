// Package config reads rollgate's worker configuration from the environment. Temporal, AWS and
// Vault connection settings come from their own standard variables (TEMPORAL_*, AWS_*, VAULT_*);
// only rollgate's own settings are ROLLGATE_*.
package config

import (
	"context"
	"fmt"
	"net/url"
	"reflect"
	"regexp"
	"strings"
	"time"

	"github.com/sethvargo/go-envconfig"
	"go.temporal.io/sdk/worker"

	"github.com/rollgate/rollgate/internal/codec"
	"github.com/rollgate/rollgate/internal/envname"
	"github.com/rollgate/rollgate/internal/keys"
	"github.com/rollgate/rollgate/internal/tokens"
)

// Worker is the worker's configuration.
type Worker struct {
	TaskQueue       string        `env:"ROLLGATE_TASK_QUEUE, default=rollgate"`
	MetricsAddr     string        `env:"ROLLGATE_METRICS_ADDR, default=:9090"`
	ShutdownTimeout time.Duration `env:"ROLLGATE_SHUTDOWN_TIMEOUT, default=30s"`
	// Registry tables, created at start when CreateTables is set.
	TokensTable      string `env:"ROLLGATE_TOKENS_TABLE, default=rollgate-tokens"`
	RevocationsTable string `env:"ROLLGATE_REVOCATIONS_TABLE, default=rollgate-revocations"`
	RevokedUsesTable string `env:"ROLLGATE_REVOKED_USES_TABLE, default=rollgate-revoked-uses"`
	ReleasesTable    string `env:"ROLLGATE_RELEASES_TABLE, default=rollgate-releases"`
	CreateTables     bool   `env:"ROLLGATE_CREATE_TABLES, default=false"`
	// Vault mounts and login.
	TransitMount string `env:"ROLLGATE_TRANSIT_MOUNT, default=transit"`
	KVMount      string `env:"ROLLGATE_KV_MOUNT, default=secret"`
	Vault        keys.VaultAuth
	// Codec encrypts workflow payloads when a key is configured.
	Codec codec.Config
	// InvokeURL is where health probes reach a stage: a template with {apiId} and {stage}, or a
	// base to which /<apiId>/<stage> is appended; empty means AWS's
	// https://{apiId}.execute-api.{region}.amazonaws.com/{stage}.
	InvokeURL string `env:"ROLLGATE_GATEWAY_INVOKE_URL"`
	Region    string `env:"AWS_REGION, default=us-east-1"`
	// CanaryHeader is a response header the release's backend sets to "true", so that health
	// probes count the answers the canary served; empty (the default) counts none.
	CanaryHeader string `env:"ROLLGATE_CANARY_HEADER"`
	// Webhooks are the notification endpoints specs may name: name=url pairs separated by ";".
	Webhooks map[string]string `env:"ROLLGATE_WEBHOOKS, delimiter=;, separator=="`
	// ProbeTimeout bounds one health probe request.
	ProbeTimeout time.Duration `env:"ROLLGATE_PROBE_TIMEOUT, default=10s"`
	// Verification is what every verifier of the issuer's tokens enforces; the worker reissues no
	// token its verifiers would refuse.
	Verification Verification
	// Scale tunes the worker for many releases at once.
	Scale Scale
	// Prometheus is the provider of analysis metrics a spec names "prometheus".
	Prometheus Prometheus
	// CloudWatchAnalysis makes CloudWatch (through the worker's AWS configuration) the provider a
	// spec names "cloudwatch"; off by default, since its role needs cloudwatch:GetMetricData and
	// cloudwatch:ListMetrics, which AWS grants only on every resource.
	CloudWatchAnalysis bool `env:"ROLLGATE_CLOUDWATCH_ANALYSIS, default=false"`
}

// Scale is what a worker runs at once and how fast it calls the gateway's control plane.
type Scale struct {
	// MaxConcurrentActivities and MaxConcurrentWorkflowTasks bound the activities and workflow
	// tasks one worker runs at once (Temporal's worker.Options).
	MaxConcurrentActivities    int `env:"ROLLGATE_MAX_CONCURRENT_ACTIVITIES, default=1000"`
	MaxConcurrentWorkflowTasks int `env:"ROLLGATE_MAX_CONCURRENT_WORKFLOW_TASKS, default=1000"`
	// ActivityPollers and WorkflowPollers are the long polls kept open per task queue.
	ActivityPollers int `env:"ROLLGATE_ACTIVITY_POLLERS, default=4"`
	WorkflowPollers int `env:"ROLLGATE_WORKFLOW_POLLERS, default=4"`
	// StickyCacheSize is how many workflow executions a worker keeps in memory between tasks
	// (process-wide); an evicted one is replayed from its history on its next task.
	StickyCacheSize int `env:"ROLLGATE_STICKY_CACHE_SIZE, default=10000"`
	// GatewayActivitiesPerSecond paces control-plane activities across every worker of the task
	// queue (Temporal's TaskQueueActivitiesPerSecond). API Gateway allows an account about 10
	// control-plane requests per second; an activity makes one to four.
	GatewayActivitiesPerSecond float64 `env:"ROLLGATE_GATEWAY_ACTIVITIES_PER_SECOND, default=3"`
	// RollbackActivitiesPerSecond paces a rollback's control-plane activities, on a queue of their
	// own so that a rollback never waits behind releases going forward.
	RollbackActivitiesPerSecond float64 `env:"ROLLGATE_ROLLBACK_ACTIVITIES_PER_SECOND, default=3"`
}

// WorkerOptions are the options of the worker on the workflows' task queue and of the one on its
// gateway task queue (control-plane activities only, paced for every worker together).
func (s Scale) WorkerOptions(stopTimeout time.Duration) (main, gateway, rollback worker.Options) {
	main = worker.Options{
		WorkerStopTimeout:                      stopTimeout,
		MaxConcurrentActivityExecutionSize:     s.MaxConcurrentActivities,
		MaxConcurrentWorkflowTaskExecutionSize: s.MaxConcurrentWorkflowTasks,
		MaxConcurrentActivityTaskPollers:       s.ActivityPollers,
		MaxConcurrentWorkflowTaskPollers:       s.WorkflowPollers,
	}
	gateway = worker.Options{
		WorkerStopTimeout:                  stopTimeout,
		MaxConcurrentActivityExecutionSize: s.MaxConcurrentActivities,
		MaxConcurrentActivityTaskPollers:   s.ActivityPollers,
		TaskQueueActivitiesPerSecond:       s.GatewayActivitiesPerSecond,
		DisableWorkflowWorker:              true,
	}
	rollback = gateway
	rollback.TaskQueueActivitiesPerSecond = s.RollbackActivitiesPerSecond
	return main, gateway, rollback
}

// Check refuses values a worker could not run with, naming the variable and its range.
func (s Scale) Check() error {
	ints := []struct {
		name      string
		v, lo, hi int
	}{
		{"ROLLGATE_MAX_CONCURRENT_ACTIVITIES", s.MaxConcurrentActivities, 1, 100000},
		{"ROLLGATE_MAX_CONCURRENT_WORKFLOW_TASKS", s.MaxConcurrentWorkflowTasks, 2, 100000},
		{"ROLLGATE_ACTIVITY_POLLERS", s.ActivityPollers, 1, 100},
		{"ROLLGATE_WORKFLOW_POLLERS", s.WorkflowPollers, 2, 100},
		{"ROLLGATE_STICKY_CACHE_SIZE", s.StickyCacheSize, 0, 1000000},
	}
	for _, c := range ints {
		if c.v < c.lo || c.v > c.hi {
			return fmt.Errorf("%s %d: allowed %d to %d", c.name, c.v, c.lo, c.hi)
		}
	}
	for name, v := range map[string]float64{"ROLLGATE_GATEWAY_ACTIVITIES_PER_SECOND": s.GatewayActivitiesPerSecond, "ROLLGATE_ROLLBACK_ACTIVITIES_PER_SECOND": s.RollbackActivitiesPerSecond} {
		if !(v > 0 && v <= 1000) {
			return fmt.Errorf("%s %g: allowed more than 0, at most 1000", name, v)
		}
	}
	return nil
}

// Verification configures token verifiers (tokens.VerifierOptions).
type Verification struct {
	// Leeway is the clock skew allowed on exp, nbf and iat.
	Leeway time.Duration `env:"ROLLGATE_VERIFY_LEEWAY, default=5s"`
	// MaxLifetime is the longest exp - iat a verifier accepts; the default is the longest
	// auth.tokenTtl a deploy spec may ask for.
	MaxLifetime time.Duration `env:"ROLLGATE_TOKEN_MAX_LIFETIME, default=24h"`
}

// Check refuses values NewVerifier would refuse, naming the variable and its range.
func (v Verification) Check() error {
	if v.Leeway < 0 || v.Leeway > 5*time.Minute {
		return fmt.Errorf("ROLLGATE_VERIFY_LEEWAY %s: allowed 0 to 5m", v.Leeway)
	}
	if v.MaxLifetime < time.Minute || v.MaxLifetime > 8760*time.Hour {
		return fmt.Errorf("ROLLGATE_TOKEN_MAX_LIFETIME %s: allowed 1m to 8760h", v.MaxLifetime)
	}
	return nil
}

// Apply sets the leeway and maximum lifetime of verifier options.
func (v Verification) Apply(o *tokens.VerifierOptions) {
	o.Leeway, o.MaxLifetime = v.Leeway, v.MaxLifetime
}

// LoadVerification reads only the verification settings, for programs that verify tokens but
// run no worker.
func LoadVerification(ctx context.Context, lookup envconfig.Lookuper) (Verification, error) {
	var v Verification
	if err := envconfig.ProcessWith(ctx, &envconfig.Config{Target: &v, Lookuper: lookup}); err != nil {
		return Verification{}, fmt.Errorf("configuration: %w", envname.Named(err, reflect.TypeFor[Verification]()))
	}
	if err := v.Check(); err != nil {
		return Verification{}, fmt.Errorf("configuration: %w", err)
	}
	return v, nil
}

// Load reads the worker configuration and checks it.
func Load(ctx context.Context, lookup envconfig.Lookuper) (Worker, error) {
	var c Worker
	if err := checkWebhooks(lookup); err != nil {
		return Worker{}, fmt.Errorf("configuration: %w", err)
	}
	if err := envconfig.ProcessWith(ctx, &envconfig.Config{Target: &c, Lookuper: lookup}); err != nil {
		return Worker{}, fmt.Errorf("configuration: %w", envname.Named(err, reflect.TypeFor[Worker]()))
	}
	if c.ShutdownTimeout <= 0 || c.ProbeTimeout <= 0 {
		return Worker{}, fmt.Errorf("configuration: ROLLGATE_SHUTDOWN_TIMEOUT and ROLLGATE_PROBE_TIMEOUT must be positive")
	}
	if c.CanaryHeader != "" && !headerName.MatchString(c.CanaryHeader) {
		return Worker{}, fmt.Errorf("configuration: ROLLGATE_CANARY_HEADER %q: allowed a header name of 1-64 letters, digits and '-', or empty", c.CanaryHeader)
	}
	if err := c.Verification.Check(); err != nil {
		return Worker{}, fmt.Errorf("configuration: %w", err)
	}
	if err := c.Scale.Check(); err != nil {
		return Worker{}, fmt.Errorf("configuration: %w", err)
	}
	if err := c.Prometheus.check(); err != nil {
		return Worker{}, fmt.Errorf("configuration: %w", err)
	}
	return c, nil
}

var headerName = regexp.MustCompile(`^[A-Za-z0-9-]{1,64}$`)

// InvokeURLFunc returns a stage's invoke URL.
func (c Worker) InvokeURLFunc() func(apiID, stage string) string {
	if strings.Contains(c.InvokeURL, "{apiId}") {
		return func(apiID, stage string) string {
			return strings.NewReplacer("{apiId}", apiID, "{stage}", stage).Replace(c.InvokeURL)
		}
	}
	if c.InvokeURL != "" {
		base := strings.TrimSuffix(c.InvokeURL, "/")
		return func(apiID, stage string) string { return base + "/" + apiID + "/" + stage }
	}
	return func(apiID, stage string) string {
		return "https://" + apiID + ".execute-api." + c.Region + ".amazonaws.com/" + stage
	}
}

// checkWebhooks checks ROLLGATE_WEBHOOKS before envconfig parses it, naming items by position
// or name only: envconfig's own error quotes the item, and a webhook URL holds its secret.
func checkWebhooks(lookup envconfig.Lookuper) error {
	raw, ok := lookup.Lookup("ROLLGATE_WEBHOOKS")
	if !ok || raw == "" {
		return nil
	}
	seen := map[string]bool{}
	for i, item := range strings.Split(raw, ";") {
		name, rawURL, ok := strings.Cut(item, "=")
		if !ok || name == "" {
			return fmt.Errorf("ROLLGATE_WEBHOOKS item %d: want name=url", i+1)
		}
		if seen[name] {
			return fmt.Errorf("ROLLGATE_WEBHOOKS: %q is named twice", name)
		}
		seen[name] = true
		if u, err := url.Parse(rawURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return fmt.Errorf("ROLLGATE_WEBHOOKS %q: not an absolute http(s) URL", name)
		}
	}
	return nil
}
