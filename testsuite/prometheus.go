package testsuite

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
	"sigs.k8s.io/yaml"
)

// PrometheusOptions say what the bed's Prometheus scrapes and how it is protected.
type PrometheusOptions struct {
	// Targets are the host:port addresses scraped at /metrics every second (job "bed").
	Targets []string
	// Username and Password, when set, protect every endpoint with basic auth (Prometheus's web
	// configuration), as a provider talking to a protected server meets it.
	Username, Password string
}

// Prometheus is Prometheus from the distribution's package, run as a child process on a free
// loopback port, with its configuration and its storage in a folder of its own.
type Prometheus struct {
	// URL is http://127.0.0.1:<port>, the base of its HTTP API.
	URL  string
	dir  string
	opts PrometheusOptions
	proc *process
}

// PrometheusScrapeInterval is how often the bed's Prometheus scrapes its targets.
const PrometheusScrapeInterval = time.Second

// PrometheusBinary finds prometheus on PATH or where Debian installs it.
func PrometheusBinary() (string, error) {
	if bin, err := exec.LookPath("prometheus"); err == nil {
		return bin, nil
	}
	const debian = "/usr/bin/prometheus"
	if _, err := os.Stat(debian); err == nil {
		return debian, nil
	}
	return "", errors.New("prometheus is not installed: run `make tools` (apt-get install prometheus on Debian)")
}

// StartPrometheus writes the configuration into dir, starts Prometheus and returns once it is
// ready (/-/ready).
func StartPrometheus(ctx context.Context, dir string, opts PrometheusOptions) (*Prometheus, error) {
	bin, err := PrometheusBinary()
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	args, err := writePrometheusConfig(dir, port, opts)
	if err != nil {
		return nil, err
	}
	log := &logBuffer{}
	proc, err := startProcess("prometheus", log, bin, args...)
	if err != nil {
		return nil, err
	}
	p := &Prometheus{URL: "http://" + loopback(port), dir: dir, opts: opts, proc: proc}
	if err := p.waitReady(ctx); err != nil {
		proc.stop()
		return nil, fmt.Errorf("%w\n%s", err, log.String())
	}
	return p, nil
}

// writePrometheusConfig writes prometheus.yml (and web.yml for basic auth) into dir and returns
// the command line.
func writePrometheusConfig(dir string, port int, opts PrometheusOptions) ([]string, error) {
	interval := PrometheusScrapeInterval.String()
	conf := map[string]any{
		"global": map[string]any{"scrape_interval": interval, "scrape_timeout": interval, "evaluation_interval": interval},
		"scrape_configs": []any{map[string]any{
			"job_name":       "bed",
			"static_configs": []any{map[string]any{"targets": append([]string{}, opts.Targets...)}},
		}},
	}
	path := filepath.Join(dir, "prometheus.yml")
	if err := writeYAML(path, conf); err != nil {
		return nil, err
	}
	args := []string{
		"--config.file=" + path,
		"--storage.tsdb.path=" + filepath.Join(dir, "data"),
		"--web.listen-address=" + loopback(port),
		"--log.level=warn",
	}
	if opts.Username != "" {
		hash, err := bcrypt.GenerateFromPassword([]byte(opts.Password), bcrypt.MinCost)
		if err != nil {
			return nil, err
		}
		web := filepath.Join(dir, "web.yml")
		if err := writeYAML(web, map[string]any{"basic_auth_users": map[string]string{opts.Username: string(hash)}}); err != nil {
			return nil, err
		}
		args = append(args, "--web.config.file="+web)
	}
	return args, nil
}

func writeYAML(path string, v any) error {
	b, err := yaml.Marshal(v)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o600)
}

// waitReady polls /-/ready (with the basic auth every endpoint then needs).
func (p *Prometheus) waitReady(ctx context.Context) error {
	client := &http.Client{Timeout: time.Second}
	for {
		if err := p.proc.exited(); err != nil {
			return err
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.URL+"/-/ready", nil)
		if p.opts.Username != "" {
			req.SetBasicAuth(p.opts.Username, p.opts.Password)
		}
		if resp, err := client.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return errors.Join(fmt.Errorf("prometheus not ready at %s", p.URL), ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Stop ends Prometheus (SIGTERM) and waits for it.
func (p *Prometheus) Stop() { p.proc.stop() }

// Logs are Prometheus's output and its configuration.
func (p *Prometheus) Logs() string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "----- prometheus output -----\n%s\n", p.proc.log.String())
	b, _ := os.ReadFile(filepath.Join(p.dir, "prometheus.yml"))
	fmt.Fprintf(&sb, "----- prometheus.yml -----\n%s\n", b)
	return sb.String()
}

// StartPrometheusForTest starts Prometheus for one test, stops it at the end and prints its logs
// if the test failed. A machine without prometheus fails the test: CI installs it (`make tools`).
func StartPrometheusForTest(tb testing.TB, opts PrometheusOptions) *Prometheus {
	tb.Helper()
	SkipIfShort(tb)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p, err := StartPrometheus(ctx, tb.TempDir(), opts)
	if err != nil {
		tb.Fatalf("start prometheus: %v", err)
	}
	tb.Cleanup(func() {
		p.Stop()
		if tb.Failed() {
			tb.Logf("prometheus logs:\n%s", p.Logs())
		}
	})
	return p
}
