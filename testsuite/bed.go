// Package testsuite is rollgate's local test bed: real servers started on free loopback ports
// (the Temporal CLI's dev server, a Vault dev server, dynalite for DynamoDB, gofakes3 for S3) and
// the project's own AWS API Gateway emulator, for integration tests and for the README's demo.
package testsuite

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/apigateway"
	"github.com/aws/aws-sdk-go-v2/service/apigatewayv2"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/rollgate/rollgate/testsuite/cloudwatchemu"
	"github.com/rollgate/rollgate/testsuite/gatewayemu"
)

// Region is the AWS region the bed pretends to be.
const Region = "us-east-1"

// Options choose what the bed starts. The zero value starts everything but the Temporal Web UI.
type Options struct {
	// LogDir, when set, receives one log file per server as well as the in-memory copy.
	LogDir string
	// TemporalUI serves the Temporal Web UI beside the dev server.
	TemporalUI bool
	// Progress receives one-off build output (cold builds of the server binaries). Default stderr.
	Progress io.Writer
	// Gateway tunes the API Gateway emulator.
	Gateway gatewayemu.Options
}

// Bed is a running test bed. Close stops every server.
type Bed struct {
	Temporal *TemporalServer
	Vault    *VaultServer
	DynamoDB *DynamoDBServer
	S3       *S3Server
	Gateway  *gatewayemu.Emulator
	// CloudWatch holds what the gateway's data plane and the authorizer's EMF lines publish.
	CloudWatch *cloudwatchemu.Server

	buildLog *logBuffer
	logs     map[string]*logBuffer

	namesMu sync.Mutex
	names   map[string]int // release names handed out, so a test that runs again gets new ones

	progress  io.Writer
	authzOnce sync.Once
	authzDir  string
	authzBin  string
	authzErr  error
}

// AuthorizerBootstrap builds rollgate's authorizer as its Lambda bootstrap (what `make authorizer`
// ships), once per bed, and returns its path.
func (b *Bed) AuthorizerBootstrap(ctx context.Context) (string, error) {
	b.authzOnce.Do(func() {
		if b.authzDir, b.authzErr = os.MkdirTemp("", "rollgate-authorizer-"); b.authzErr != nil {
			return
		}
		b.authzBin, b.authzErr = BuildLambdaBootstrap(ctx, "./authorizer", b.authzDir)
	})
	return b.authzBin, b.authzErr
}

// uniqueName returns name the first time it is asked for on this bed and name-2, name-3, … after,
// so a test repeated in one process (-count=3) never meets the bucket, key or API of its last run.
func (b *Bed) uniqueName(name string) string {
	b.namesMu.Lock()
	defer b.namesMu.Unlock()
	if b.names == nil {
		b.names = map[string]int{}
	}
	b.names[name]++
	if n := b.names[name]; n > 1 {
		return fmt.Sprintf("%s-%d", name, n)
	}
	return name
}

// Start starts every server in parallel and returns when all are healthy. On error, whatever did
// start is stopped again.
func Start(ctx context.Context, opts Options) (*Bed, error) {
	if opts.LogDir != "" {
		if err := os.MkdirAll(opts.LogDir, 0o755); err != nil {
			return nil, err
		}
	}
	buildLog, err := newLogBuffer(opts.LogDir, "build")
	if err != nil {
		return nil, err
	}
	progress := opts.Progress
	if progress == nil {
		progress = os.Stderr
	}
	b := &Bed{buildLog: buildLog, logs: map[string]*logBuffer{"build": buildLog}, progress: progress}
	teeBuild := &teeWriter{a: buildLog, b: progress}

	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	run := func(name string, start func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := start(); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("%s: %w", name, err))
				mu.Unlock()
			}
		}()
	}
	run("temporal", func() (err error) {
		b.Temporal, err = startTemporal(ctx, opts.LogDir, teeBuild, opts.TemporalUI, TemporalOptions{})
		return err
	})
	run("vault", func() (err error) { b.Vault, err = startVault(ctx, opts.LogDir, teeBuild); return err })
	run("dynamodb", func() (err error) { b.DynamoDB, err = startDynamoDB(ctx, opts.LogDir, teeBuild); return err })
	run("s3", func() (err error) { b.S3, err = startS3(); return err })
	run("apigateway", func() (err error) { b.Gateway, err = gatewayemu.Start(opts.Gateway); return err })
	run("cloudwatch", func() (err error) {
		b.CloudWatch, err = cloudwatchemu.Start()
		if err == nil {
			// As AWS may: a new metric is listed 15 minutes after its first value (GetMetricData
			// reads it at once), so that nothing on the bed counts on listing a new release's.
			b.CloudWatch.SetListDelay(cloudWatchListDelay)
		}
		return err
	})
	wg.Wait()
	if len(errs) > 0 {
		b.Close()
		return nil, errors.Join(errs...)
	}
	b.Gateway.PublishMetricsTo(b.CloudWatch.Store)
	if b.Temporal != nil {
		b.logs["temporal"] = b.Temporal.log
	}
	if b.Vault != nil {
		b.logs["vault"] = b.Vault.proc.log
	}
	if b.DynamoDB != nil {
		b.logs["dynalite"] = b.DynamoDB.proc.log
	}
	return b, nil
}

// Close stops every server that is running.
func (b *Bed) Close() {
	var wg sync.WaitGroup
	stop := func(f func()) {
		wg.Add(1)
		go func() { defer wg.Done(); f() }()
	}
	if b.Temporal != nil {
		stop(b.Temporal.stop)
	}
	if b.Vault != nil {
		stop(b.Vault.stop)
	}
	if b.DynamoDB != nil {
		stop(b.DynamoDB.stop)
	}
	if b.S3 != nil {
		stop(b.S3.stop)
	}
	if b.Gateway != nil {
		stop(func() { _ = b.Gateway.Close() })
	}
	if b.CloudWatch != nil {
		stop(func() { _ = b.CloudWatch.Close() })
	}
	wg.Wait()
	for _, l := range b.logs {
		l.close()
	}
	if b.authzDir != "" {
		_ = os.RemoveAll(b.authzDir)
	}
}

// Logs returns every server's output so far, for printing when a test fails.
func (b *Bed) Logs() string {
	names := make([]string, 0, len(b.logs))
	for name := range b.logs {
		names = append(names, name)
	}
	sort.Strings(names)
	var sb strings.Builder
	for _, name := range names {
		fmt.Fprintf(&sb, "----- %s -----\n%s\n", name, b.logs[name].String())
	}
	// The dev server prints its root token and unseal key; keep them out of test output.
	return redactVault(sb.String(), b.Vault)
}

// AWSConfig is an aws.Config for the bed: static test credentials, the bed's region, and the
// bed's endpoints for API Gateway (both APIs), DynamoDB and S3.
func (b *Bed) AWSConfig(ctx context.Context) (aws.Config, error) {
	return config.LoadDefaultConfig(ctx,
		config.WithRegion(Region),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("test", "test", "")),
	)
}

// APIGateway is a REST API (apigateway) client pointed at the emulator.
func (b *Bed) APIGateway(cfg aws.Config) *apigateway.Client {
	return apigateway.NewFromConfig(cfg, func(o *apigateway.Options) { o.BaseEndpoint = aws.String(b.Gateway.ControlURL) })
}

// APIGatewayV2 is an HTTP API (apigatewayv2) client pointed at the emulator.
func (b *Bed) APIGatewayV2(cfg aws.Config) *apigatewayv2.Client {
	return apigatewayv2.NewFromConfig(cfg, func(o *apigatewayv2.Options) { o.BaseEndpoint = aws.String(b.Gateway.ControlURL) })
}

// DynamoDBClient is a DynamoDB client pointed at dynalite.
func (b *Bed) DynamoDBClient(cfg aws.Config) *dynamodb.Client {
	return dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(b.DynamoDB.Endpoint) })
}

// S3Client is an S3 client pointed at the bed's S3, with path-style addressing.
func (b *Bed) S3Client(cfg aws.Config) *s3.Client {
	return s3.NewFromConfig(cfg, func(o *s3.Options) {
		o.BaseEndpoint = aws.String(b.S3.URL)
		o.UsePathStyle = true
	})
}

// Env is the bed as environment variables, in the names the standard SDK chains read, so the
// real CLIs and rollgate's worker can be pointed at it.
func (b *Bed) Env() [][2]string {
	env := [][2]string{
		{"TEMPORAL_ADDRESS", b.Temporal.HostPort},
		{"TEMPORAL_NAMESPACE", b.Temporal.Namespace},
		{"VAULT_ADDR", b.Vault.Addr},
		{"VAULT_TOKEN", b.Vault.Token},
		{"AWS_REGION", Region},
		{"AWS_DEFAULT_REGION", Region}, // what the AWS CLI v1 (botocore) reads; the SDKs read AWS_REGION
		{"AWS_ACCESS_KEY_ID", "test"},
		{"AWS_SECRET_ACCESS_KEY", "test"},
		{"AWS_ENDPOINT_URL_API_GATEWAY", b.Gateway.ControlURL},
		{"AWS_ENDPOINT_URL_APIGATEWAYV2", b.Gateway.ControlURL},
		{"AWS_ENDPOINT_URL_DYNAMODB", b.DynamoDB.Endpoint},
		{"AWS_ENDPOINT_URL_S3", b.S3.URL},
		{"AWS_ENDPOINT_URL_CLOUDWATCH", b.CloudWatch.URL},
		{"AWS_S3_USE_PATH_STYLE", "true"},
		{"ROLLGATE_GATEWAY_INVOKE_URL", b.Gateway.DataURL},
		{"ROLLGATE_CANARY_HEADER", gatewayemu.CanaryHeader},
	}
	if b.Temporal.UIURL != "" {
		env = append(env, [2]string{"TEMPORAL_UI_URL", b.Temporal.UIURL})
	}
	return env
}

// InstallTools builds the server binaries and installs dynalite if this machine lacks them, so a
// later Start is warm. It is what `make tools` runs.
func InstallTools(ctx context.Context, progress io.Writer) error {
	root, err := RepoRoot()
	if err != nil {
		return err
	}
	dir := root + "/testsuite/dynalite"
	var wg sync.WaitGroup
	tools := []tool{temporalTool, vaultTool, rieTool}
	errs := make([]error, len(tools)+1)
	for i, t := range tools { // in parallel: a cold build is mostly downloads
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			bin, err := t.path(ctx, progress)
			if err == nil {
				fmt.Fprintf(progress, "%s ready: %s (%s)\n", t.name, bin, time.Since(start).Round(time.Millisecond))
			}
			errs[i] = err
		}()
	}
	errs[len(tools)] = installDynalite(ctx, dir, dir+"/node_modules/dynalite/cli.js", progress)
	wg.Wait()
	return errors.Join(errs...)
}

type teeWriter struct{ a, b io.Writer }

func (t *teeWriter) Write(p []byte) (int, error) {
	_, _ = t.a.Write(p)
	return t.b.Write(p)
}
