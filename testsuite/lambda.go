package testsuite

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"time"
)

// InvokePath is the AWS Lambda Runtime Interface Emulator's invoke endpoint, the same path the
// Lambda Invoke API uses.
const InvokePath = "/2015-03-31/functions/function/invocations"

// BuildLambdaBootstrap builds the Go package pkg (relative to the repository root, such as
// "./authorizer") as Lambda's provided.al2023 runtime runs it: a static binary named bootstrap,
// without the RPC mode only the retired go1.x runtime used. It returns the binary's path in dir.
func BuildLambdaBootstrap(ctx context.Context, pkg, dir string) (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	out := filepath.Join(dir, "bootstrap")
	cmd := exec.CommandContext(ctx, "go", "build", "-tags", "lambda.norpc", "-trimpath", "-o", out, pkg)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build the Lambda bootstrap of %s: %w\n%s", pkg, err, b)
	}
	return out, nil
}

// LambdaOptions say what to run under the emulator.
type LambdaOptions struct {
	// Bootstrap is the function's binary (BuildLambdaBootstrap).
	Bootstrap string
	// Env is the function's configuration. The emulator and the function see only these
	// variables (and PATH), as a Lambda function sees only its configured ones.
	Env map[string]string
	// Log receives the emulator's and the function's output (stdout: EMF lines; stderr: logs).
	Log io.Writer
	// Progress receives the first-run build of the emulator. Default stderr.
	Progress io.Writer
}

// LambdaFunction is a function's bootstrap running under the AWS Lambda Runtime Interface
// Emulator on free loopback ports. The emulator starts the bootstrap (Lambda's init) on the
// first invocation, as Lambda does on a cold start.
type LambdaFunction struct {
	// InvokeURL is where an event is posted; the answer is the function's response payload.
	InvokeURL string
	// Started is when the emulator process was started, for cold-start measurements.
	Started time.Time

	proc   *process
	client *http.Client
}

// StartLambda starts the emulator with the bootstrap as its handler and returns once the
// emulator accepts invocations.
func StartLambda(ctx context.Context, opts LambdaOptions) (*LambdaFunction, error) {
	progress := opts.Progress
	if progress == nil {
		progress = os.Stderr
	}
	rie, err := rieTool.path(ctx, progress)
	if err != nil {
		return nil, err
	}
	invokePort, err := freePort()
	if err != nil {
		return nil, err
	}
	// The emulator's Runtime API defaults to port 9001: a fixed port would collide between
	// functions and test binaries running at once.
	runtimePort, err := freePort()
	if err != nil {
		return nil, err
	}
	log := &logBuffer{}
	out := io.Writer(log)
	if opts.Log != nil {
		out = &teeWriter{a: log, b: opts.Log}
	}
	started := time.Now()
	proc, err := startProcessEnv("aws-lambda-rie", log, out, lambdaEnv(opts.Env), rie,
		"--runtime-interface-emulator-address", loopback(invokePort),
		"--runtime-api-address", loopback(runtimePort),
		"--log-level", "error",
		opts.Bootstrap)
	if err != nil {
		return nil, err
	}
	f := &LambdaFunction{InvokeURL: "http://" + loopback(invokePort) + InvokePath, Started: started, proc: proc,
		client: &http.Client{Timeout: time.Minute}}
	if err := waitListening(ctx, proc, loopback(invokePort)); err != nil {
		proc.stop()
		return nil, err
	}
	return f, nil
}

// lambdaEnv is the function's environment: its configuration and PATH, in a stable order.
func lambdaEnv(vars map[string]string) []string {
	env := []string{"PATH=" + os.Getenv("PATH")}
	for k, v := range vars {
		env = append(env, k+"="+v)
	}
	sort.Strings(env[1:])
	return env
}

// waitListening polls until addr accepts connections, the process dies or ctx ends. The
// emulator has no health endpoint, and an invocation would start the function's init.
func waitListening(ctx context.Context, p *process, addr string) error {
	for {
		if err := p.exited(); err != nil {
			return err
		}
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-ctx.Done():
			return errors.Join(fmt.Errorf("%s not listening at %s", p.name, addr), ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// Invoke posts an event and returns the function's response payload. A function error is a
// payload too ({"errorMessage": …, "errorType": …}), as the Lambda Invoke API returns it.
func (f *LambdaFunction) Invoke(ctx context.Context, event []byte) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.InvokeURL, bytes.NewReader(event))
	if err != nil {
		return nil, err
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("invoke: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 6<<20)) // Lambda's synchronous payload limit
	if err != nil {
		return nil, fmt.Errorf("invoke: read the answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("invoke: emulator answered %s: %.200s", resp.Status, body)
	}
	return body, nil
}

// Logs is what the emulator and the function wrote so far.
func (f *LambdaFunction) Logs() string { return f.proc.log.String() }

// Close stops the emulator and the function it started.
func (f *LambdaFunction) Close() { f.proc.stop() }
