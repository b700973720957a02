// Command bed starts rollgate's local test bed and prints its endpoints as shell export lines, so
// the real temporal, vault and aws CLIs and rollgate's worker can be pointed at it:
//
//	eval "$(go run ./testsuite/cmd/bed)"   # in one shell, stays up until interrupted
//
// With -demo it runs the release demo (the README's main job). With -smoke it starts the bed, runs the smoke scenario (Vault-signed tokens checked by the
// gateway against a JWKS on S3, a REST canary split, a workflow on Temporal), prints the timeline
// and exits. With -install it only builds the server binaries and installs dynalite (a cold machine needs
// this once; later starts are warm).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/rollgate/rollgate/testsuite"
)

func main() {
	install := flag.Bool("install", false, "build the server binaries and install dynalite, then exit")
	smoke := flag.Bool("smoke", false, "run the smoke scenario on a fresh bed, print its timeline and exit")
	demo := flag.Bool("demo", false, "run the demo (four releases: promoted, rolled back automatically, by an operator, by the analysis; then the token monitor) and exit")
	logDir := flag.String("logs", "", "folder for one log file per server (default: none)")
	ui := flag.Bool("ui", true, "serve the Temporal Web UI")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *install, *smoke, *demo, *logDir, *ui); err != nil {
		fmt.Fprintln(os.Stderr, "bed:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, install, smoke, demo bool, logDir string, ui bool) error {
	if install {
		return testsuite.InstallTools(ctx, os.Stderr)
	}
	if demo {
		return testsuite.Demo(ctx, testsuite.DemoOptions{LogDir: logDir}, os.Stdout)
	}
	start := time.Now()
	bed, err := testsuite.Start(ctx, testsuite.Options{LogDir: logDir, TemporalUI: ui && !smoke})
	if err != nil {
		return err
	}
	defer bed.Close()
	if smoke {
		fmt.Printf("test bed up in %s: Temporal %s, Vault %s, DynamoDB %s, S3 %s, API Gateway %s\n",
			time.Since(start).Round(time.Millisecond), bed.Temporal.HostPort, bed.Vault.Addr, bed.DynamoDB.Endpoint, bed.S3.URL, bed.Gateway.ControlURL)
		if _, err := testsuite.RunSmoke(ctx, bed, os.Stdout); err != nil {
			return fmt.Errorf("smoke scenario: %w\n%s", err, bed.Logs())
		}
		fmt.Println("smoke scenario passed")
		return nil
	}
	for _, kv := range bed.Env() {
		fmt.Printf("export %s=%q\n", kv[0], kv[1])
	}
	// CLIs older than the service-specific endpoint variables (AWS CLI v1 before 1.29, v2 before
	// 2.13) need the endpoint on every command.
	for _, kv := range bed.Env() {
		if service, ok := strings.CutPrefix(kv[0], "AWS_ENDPOINT_URL_"); ok {
			fmt.Printf("# older AWS CLIs: aws %s --endpoint-url %s ...\n", cliService(service), kv[1])
		}
	}
	fmt.Fprintf(os.Stderr, "# test bed up in %s; Ctrl-C stops it\n", time.Since(start).Round(time.Millisecond))
	<-ctx.Done()
	return nil
}

// cliService is the AWS CLI's command for an AWS_ENDPOINT_URL_<SERVICE> variable's service.
func cliService(service string) string {
	switch service {
	case "API_GATEWAY":
		return "apigateway"
	case "S3":
		return "s3api"
	default:
		return strings.ToLower(service)
	}
}
