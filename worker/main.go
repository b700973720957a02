// Command worker runs rollgate's workflows and activities against Temporal (a dev server, a
// cluster or Temporal Cloud), Vault and AWS, all configured from the environment. It serves
// Prometheus metrics and stops gracefully on SIGTERM.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/apigateway"
	"github.com/aws/aws-sdk-go-v2/service/apigatewayv2"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	vault "github.com/hashicorp/vault/api"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/sethvargo/go-envconfig"
	"go.temporal.io/sdk/client"
	temporalenv "go.temporal.io/sdk/contrib/envconfig"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"

	"github.com/rollgate/rollgate/activities"
	"github.com/rollgate/rollgate/internal/codec"
	"github.com/rollgate/rollgate/internal/config"
	"github.com/rollgate/rollgate/internal/keys"
	"github.com/rollgate/rollgate/internal/registry"
	"github.com/rollgate/rollgate/internal/telemetry"
	"github.com/rollgate/rollgate/internal/tokens"
	"github.com/rollgate/rollgate/workflows"
)

func main() {
	logger := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := run(ctx, logger); err != nil {
		logger.Error("worker stopped", "error", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, logger *slog.Logger) error {
	cfg, err := config.Load(ctx, envconfig.OsLookuper())
	if err != nil {
		return err
	}

	opts, err := temporalenv.LoadDefaultClientOptions()
	if err != nil {
		return fmt.Errorf("temporal client configuration: %w", err)
	}
	opts.Logger = tlog.NewStructuredLogger(logger)
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	handler, closeMetrics, err := sdkMetrics(reg, logger)
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	defer closeMetrics.Close()
	opts.MetricsHandler = handler
	tracer, flushTraces, err := telemetry.Tracing(ctx, "rollgate-worker")
	if err != nil {
		return err
	}
	defer func() {
		fctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = flushTraces(fctx)
	}()
	if tracer != nil {
		opts.Interceptors = append(opts.Interceptors, tracer)
	}
	vc, err := keys.NewVaultClient(ctx, cfg.Vault, logger)
	if err != nil {
		return err
	}
	cdc, err := cfg.Codec.Load(ctx, func(context.Context) (*vault.Client, error) { return vc, nil })
	if err != nil {
		return err
	}
	codec.Apply(&opts, cdc)
	tc, err := client.DialContext(ctx, opts)
	if err != nil {
		return fmt.Errorf("connect to temporal at %s: %w", opts.HostPort, err)
	}
	defer tc.Close()

	awsCfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return fmt.Errorf("aws configuration: %w", err)
	}

	providers, err := cfg.Providers(awsCfg)
	if err != nil {
		return err
	}
	metrics := tokens.NewMetrics(reg)
	set := activities.NewSet(activities.Clients{
		Vault: vc, TransitKV: cfg.TransitMount, KVMount: cfg.KVMount,
		APIGateway: apigateway.NewFromConfig(awsCfg),
		HTTPAPIs:   apigatewayv2.NewFromConfig(awsCfg),
		S3:         s3.NewFromConfig(awsCfg, func(o *s3.Options) { o.UsePathStyle = os.Getenv("AWS_S3_USE_PATH_STYLE") == "true" }),
		DynamoDB:   dynamodb.NewFromConfig(awsCfg),
		Registry:   registry.Registry{TokensTable: cfg.TokensTable, RevocationsTable: cfg.RevocationsTable, RevokedUsesTable: cfg.RevokedUsesTable},
		Metrics:    metrics,
		HTTP:       &http.Client{Timeout: cfg.ProbeTimeout},
		InvokeURL:  cfg.InvokeURLFunc(), CanaryHeader: cfg.CanaryHeader,
		Webhooks: cfg.Webhooks, ReleasesTable: cfg.ReleasesTable,
		MaxTokenLifetime: cfg.Verification.MaxLifetime,
		Providers:        providers,
	})
	if cfg.CreateTables {
		if err := set.Tokens.Registry.CreateTables(ctx); err != nil {
			return err
		}
		if err := set.Releases.History.CreateTable(ctx); err != nil {
			return err
		}
	}

	worker.SetStickyWorkflowCacheSize(cfg.Scale.StickyCacheSize)
	mainOpts, gatewayOpts, rollbackOpts := cfg.Scale.WorkerOptions(cfg.ShutdownTimeout)
	w := worker.New(tc, cfg.TaskQueue, mainOpts)
	workflows.Register(w)
	set.Register(w) // control-plane activities too: those a workflow scheduled here before the gateway task queues
	for queue, opts := range map[string]worker.Options{workflows.GatewayTaskQueue(cfg.TaskQueue): gatewayOpts, workflows.RollbackGatewayTaskQueue(cfg.TaskQueue): rollbackOpts} {
		gw := worker.New(tc, queue, opts)
		set.RegisterGateway(gw)
		if err := gw.Start(); err != nil {
			return fmt.Errorf("start the worker of task queue %s: %w", queue, err)
		}
		defer gw.Stop()
	}

	metricsSrv := &http.Server{Addr: cfg.MetricsAddr, Handler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := metricsSrv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("metrics server", "error", err)
		}
	}()
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = metricsSrv.Shutdown(sctx)
	}()

	encryption := "off"
	if cdc != nil {
		encryption = "aes-256-gcm key " + cdc.KeyID()
	}
	logger.Info("worker started", "task_queue", cfg.TaskQueue, "gateway_task_queue", workflows.GatewayTaskQueue(cfg.TaskQueue),
		"gateway_activities_per_second", cfg.Scale.GatewayActivitiesPerSecond, "temporal", opts.HostPort, "namespace", opts.Namespace, "metrics", cfg.MetricsAddr,
		"payload_encryption", encryption, "tracing", tracer != nil)
	stopCh := make(chan any)
	go func() { <-ctx.Done(); close(stopCh) }()
	return w.Run(stopCh)
}
