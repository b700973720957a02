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
	"slices"
	"sort"
	"strings"
	"sync"
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
	// EnvironmentLog, when set, makes one more writer per execution environment that receives
	// that environment's output alone, as each Lambda environment has a log stream of its own
	// (whole lines never interleave with another environment's): the bed's EMF extraction.
	EnvironmentLog func() io.Writer
	// Progress receives the first-run build of the emulator. Default stderr.
	Progress io.Writer
	// MaxConcurrency bounds the execution environments (default DefaultLambdaConcurrency), as a
	// function's reserved concurrency does: beyond it an invocation waits for a free one.
	MaxConcurrency int
}

// DefaultLambdaConcurrency is how many execution environments a LambdaFunction runs at most
// unless told otherwise: enough for a test's traffic beside a worker's probes on a small machine.
const DefaultLambdaConcurrency = 4

// LambdaFunction is a function's bootstrap running as Lambda runs it: in execution
// environments, each the AWS Lambda Runtime Interface Emulator on free loopback ports serving one
// invocation at a time (the emulator refuses a second one while the first runs, as a Lambda
// sandbox never gets two). A concurrent invocation gets a warm environment that is free or a new
// one, cold-started (Lambda's init on its first invocation), up to MaxConcurrency; each keeps its
// own state (its deny list, its JWKS cache) as Lambda's environments do.
type LambdaFunction struct {
	// InvokeURL is the first execution environment's endpoint: an event posted there gets the
	// function's response payload. Invoke spreads concurrent invocations over environments.
	InvokeURL string
	// Started is when the first environment's emulator was started, for cold-start measurements.
	Started time.Time

	opts   LambdaOptions
	rie    string
	client *http.Client
	idle   chan *sandbox // warm environments not serving an invocation
	mu     sync.Mutex
	all    []*sandbox // every environment started, for Logs and Close
	slots  int        // environments running or starting
	closed bool
	stats  InvokeStats
}

// InvokeStats count a function's invocations and how long they waited for a free execution
// environment: the pool's queueing, which Lambda's concurrency limit would show as throttles.
type InvokeStats struct {
	Invocations int
	Waited      time.Duration
}

// sandbox is one execution environment: an emulator process and the bootstrap it runs.
type sandbox struct {
	url  string
	proc *process
}

// StartLambda starts the function's first execution environment and returns once it accepts
// invocations.
func StartLambda(ctx context.Context, opts LambdaOptions) (*LambdaFunction, error) {
	progress := opts.Progress
	if progress == nil {
		progress = os.Stderr
	}
	if opts.MaxConcurrency <= 0 {
		opts.MaxConcurrency = DefaultLambdaConcurrency
	}
	rie, err := rieTool.path(ctx, progress)
	if err != nil {
		return nil, err
	}
	f := &LambdaFunction{opts: opts, rie: rie, client: &http.Client{Timeout: time.Minute}, idle: make(chan *sandbox, opts.MaxConcurrency), slots: 1}
	f.Started = time.Now()
	sb, err := f.startSandbox(ctx)
	if err != nil {
		return nil, err
	}
	f.InvokeURL = sb.url
	f.idle <- sb
	return f, nil
}

// startSandbox starts one execution environment and waits until its emulator listens.
func (f *LambdaFunction) startSandbox(ctx context.Context) (*sandbox, error) {
	invokePort, err := freePort()
	if err != nil {
		return nil, err
	}
	// The emulator's Runtime API defaults to port 9001: a fixed port would collide between
	// environments and test binaries running at once.
	runtimePort, err := freePort()
	if err != nil {
		return nil, err
	}
	log := &logBuffer{}
	out := io.Writer(log)
	if f.opts.Log != nil {
		out = &teeWriter{a: log, b: f.opts.Log}
	}
	if f.opts.EnvironmentLog != nil {
		out = &teeWriter{a: out, b: f.opts.EnvironmentLog()}
	}
	proc, err := startProcessEnv("aws-lambda-rie", log, out, lambdaEnv(f.opts.Env), f.rie,
		"--runtime-interface-emulator-address", loopback(invokePort),
		"--runtime-api-address", loopback(runtimePort),
		"--log-level", "error",
		f.opts.Bootstrap)
	if err != nil {
		return nil, err
	}
	sb := &sandbox{url: "http://" + loopback(invokePort) + InvokePath, proc: proc}
	f.mu.Lock()
	f.all = append(f.all, sb)
	f.mu.Unlock()
	if err := waitListening(ctx, proc, loopback(invokePort)); err != nil {
		proc.stop()
		return nil, err
	}
	return sb, nil
}

// acquire takes a free warm environment, or starts one while fewer than MaxConcurrency run, or
// waits for one to be released.
func (f *LambdaFunction) acquire(ctx context.Context) (*sandbox, error) {
	for {
		select {
		case sb := <-f.idle:
			if f.alive(sb) {
				return sb, nil
			}
			continue
		default:
		}
		f.mu.Lock()
		if f.closed {
			f.mu.Unlock()
			return nil, errors.New("invoke: the function is closed")
		}
		grow := f.slots < f.opts.MaxConcurrency
		if grow {
			f.slots++
		}
		f.mu.Unlock()
		if grow {
			sb, err := f.startSandbox(ctx)
			if err != nil {
				f.mu.Lock()
				f.slots--
				f.mu.Unlock()
				return nil, fmt.Errorf("invoke: start an execution environment: %w", err)
			}
			return sb, nil
		}
		select {
		case sb := <-f.idle:
			if f.alive(sb) {
				return sb, nil
			}
		case <-ctx.Done():
			return nil, fmt.Errorf("invoke: no free execution environment: %w", ctx.Err())
		}
	}
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

// alive reports whether a released environment can serve again; a dead one gives its slot back,
// to be replaced as Lambda replaces a crashed environment.
func (f *LambdaFunction) alive(sb *sandbox) bool {
	if sb.proc.exited() == nil {
		return true
	}
	f.mu.Lock()
	f.slots--
	f.mu.Unlock()
	return false
}

// Invoke posts an event to a free execution environment and returns the function's response
// payload. A function error is a payload too ({"errorMessage": …, "errorType": …}), as the
// Lambda Invoke API returns it.
func (f *LambdaFunction) Invoke(ctx context.Context, event []byte) ([]byte, error) {
	asked := time.Now()
	sb, err := f.acquire(ctx)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	f.stats.Invocations++
	f.stats.Waited += time.Since(asked)
	f.mu.Unlock()
	defer func() { f.idle <- sb }()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, sb.url, bytes.NewReader(event))
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

// Environments is how many execution environments have been started so far.
func (f *LambdaFunction) Environments() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.all)
}

// Stats is what the function's invocations so far counted.
func (f *LambdaFunction) Stats() InvokeStats {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.stats
}

// Logs is what the emulators and the function wrote so far, environment after environment.
func (f *LambdaFunction) Logs() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var b strings.Builder
	for _, sb := range f.all {
		b.WriteString(sb.proc.log.String())
	}
	return b.String()
}

// Close stops every execution environment.
func (f *LambdaFunction) Close() {
	f.mu.Lock()
	f.closed = true
	all := slices.Clone(f.all)
	f.mu.Unlock()
	for _, sb := range all {
		sb.proc.stop()
	}
}
