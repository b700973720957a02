// Command authorizer is rollgate's runtime half: it verifies the token of every request that
// reaches the gateway with the same core as the worker's probes (internal/tokens and the deny
// list of internal/registry), and counts what happens to tokens by release, kid, outcome and
// reason. It runs as an AWS Lambda authorizer (the default when AWS_LAMBDA_RUNTIME_API is set)
// or as a forward-auth server for nginx, Envoy, Traefik and Caddy (`authorizer serve`).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/sethvargo/go-envconfig"
)

const usage = `usage:
  authorizer                        run as an AWS Lambda authorizer (needs AWS_LAMBDA_RUNTIME_API)
  authorizer serve [--listen :8080] run the forward-auth server (GET|POST /auth, /metrics, /healthz)
configuration: ROLLGATE_* environment variables (see the README, "The gateway authorizer")`

func main() {
	logger := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	err := run(ctx, os.Args[1:], logger)
	var u usageError
	switch {
	case errors.As(err, &u):
		fmt.Fprintln(os.Stderr, u.Error())
		os.Exit(2)
	case err != nil:
		logger.Error("authorizer stopped", "error", err)
		os.Exit(1)
	}
}

// usageError is a command line the authorizer does not understand; it is printed, not logged.
type usageError struct{ problem string }

func (u usageError) Error() string { return strings.TrimSpace(u.problem + "\n" + usage) }

func run(ctx context.Context, args []string, logger *slog.Logger) error {
	switch {
	case len(args) > 0 && args[0] == "serve":
		return runServe(ctx, args[1:], logger)
	case len(args) == 0 && os.Getenv("AWS_LAMBDA_RUNTIME_API") != "":
		return runLambda(ctx, logger)
	}
	return usageError{}
}

func runServe(ctx context.Context, args []string, logger *slog.Logger) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	listen := fs.String("listen", ":8080", "address of the forward-auth server")
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 {
		return usageError{fmt.Sprintf("serve: bad arguments %q", args)}
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	a, err := build(ctx, logger, false, func(cfg Config) recorder { return newPromRecorder(reg, cfg.Issuer) })
	if err != nil {
		return err
	}
	return a.serve(ctx, *listen, reg)
}

func runLambda(ctx context.Context, logger *slog.Logger) error {
	// Stdout carries the EMF lines; the JSON logs go to stderr. Lambda sends both to CloudWatch Logs.
	a, err := build(ctx, logger, true, func(cfg Config) recorder { return newEMFRecorder(os.Stdout, cfg.Issuer) })
	if err != nil {
		return err
	}
	lambda.StartWithOptions(a.handleEvent, lambda.WithContext(ctx))
	return nil
}

// build reads the configuration and connects the core to the issuer and DynamoDB through the
// standard AWS chain (AWS_REGION, credentials, AWS_ENDPOINT_URL_DYNAMODB).
func build(ctx context.Context, logger *slog.Logger, inline bool, rec func(Config) recorder) (*Authorizer, error) {
	cfg, err := loadConfig(ctx, envconfig.OsLookuper())
	if err != nil {
		return nil, err
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("aws configuration: %w", err)
	}
	// Lambda gives a function's init 10 s: the discovery document and the JWKS (3 s each) and the
	// first deny-list read (refreshTimeout) fit in it even when the issuer hangs.
	return newAuthorizer(ctx, cfg, deps{
		DB: dynamodb.NewFromConfig(awsCfg), HTTP: &http.Client{Timeout: 3 * time.Second},
		Logger: logger, Rec: rec(cfg), Inline: inline,
	})
}
