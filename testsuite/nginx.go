package testsuite

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"text/template"
	"time"
)

// NginxOptions say what the bed's nginx proxies to.
type NginxOptions struct {
	// Backend is the host:port of the protected service.
	Backend string
	// Authorizer is the host:port of `authorizer serve`, called through auth_request.
	Authorizer string
	// Release is what nginx tells the authorizer the backend runs (the X-Rollgate-Release header
	// of the subrequest); default "stable".
	Release string
}

// Nginx is nginx from the distribution's package, run as a non-daemon child process on a free
// loopback port, with everything it writes (pid, logs, temporary files) in a folder of its own,
// so it runs unprivileged, or as root in CI, beside any other nginx.
type Nginx struct {
	// URL is http://127.0.0.1:<port>; the backend is served under /orders/, checked by the authorizer.
	URL  string
	dir  string
	proc *process
}

//go:embed testdata/nginx.conf.tmpl
var nginxConfTemplate string

var nginxConf = template.Must(template.New("nginx.conf").Parse(nginxConfTemplate))

// NginxBinary finds nginx on PATH or where Debian installs it (/usr/sbin is not on every PATH).
func NginxBinary() (string, error) {
	if bin, err := exec.LookPath("nginx"); err == nil {
		return bin, nil
	}
	const debian = "/usr/sbin/nginx"
	if _, err := os.Stat(debian); err == nil {
		return debian, nil
	}
	return "", errors.New("nginx is not installed: run `make tools` (apt-get install nginx-light on Debian)")
}

// StartNginx writes the configuration into dir, starts nginx and returns once it answers.
func StartNginx(ctx context.Context, dir string, opts NginxOptions) (*Nginx, error) {
	bin, err := NginxBinary()
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	conf, err := renderNginxConf(dir, port, opts)
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, conf, 0o644); err != nil {
		return nil, err
	}
	// -e: the error log before the configuration is read; the packaged default is outside dir.
	log := &logBuffer{}
	proc, err := startProcess("nginx", log, bin, "-p", dir, "-c", path, "-e", filepath.Join(dir, "error.log"))
	if err != nil {
		return nil, err
	}
	n := &Nginx{URL: "http://" + loopback(port), dir: dir, proc: proc}
	if err := waitHTTP(ctx, proc, n.URL+"/_bed_ready", func(r *http.Response) bool { return r.StatusCode == http.StatusNoContent }); err != nil {
		proc.stop()
		return nil, fmt.Errorf("%w\n%s", err, n.Logs())
	}
	return n, nil
}

func renderNginxConf(dir string, port int, opts NginxOptions) ([]byte, error) {
	if opts.Backend == "" || opts.Authorizer == "" {
		return nil, errors.New("nginx: Backend and Authorizer are required (host:port)")
	}
	if opts.Release == "" {
		opts.Release = "stable"
	}
	data := struct {
		NginxOptions
		Dir  string
		Port int
		Root bool
	}{opts, dir, port, os.Geteuid() == 0}
	var b bytes.Buffer
	if err := nginxConf.Execute(&b, data); err != nil {
		return nil, fmt.Errorf("nginx configuration: %w", err)
	}
	return b.Bytes(), nil
}

// Stop ends nginx (SIGTERM: fast shutdown) and waits for it.
func (n *Nginx) Stop() { n.proc.stop() }

// Logs are nginx's output, error log and access log.
func (n *Nginx) Logs() string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "----- nginx output -----\n%s\n", n.proc.log.String())
	for _, name := range []string{"error.log", "access.log"} {
		b, _ := os.ReadFile(filepath.Join(n.dir, name))
		fmt.Fprintf(&sb, "----- nginx %s -----\n%s\n", name, b)
	}
	return sb.String()
}

// StartNginxForTest starts nginx for one test, stops it at the end and prints its logs if the
// test failed. A machine without nginx fails the test: CI installs it (`make tools`).
func StartNginxForTest(tb testing.TB, opts NginxOptions) *Nginx {
	tb.Helper()
	SkipIfShort(tb)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	n, err := StartNginx(ctx, tb.TempDir(), opts)
	if err != nil {
		tb.Fatalf("start nginx: %v", err)
	}
	tb.Cleanup(func() {
		n.Stop()
		if tb.Failed() {
			tb.Logf("nginx logs:\n%s", n.Logs())
		}
	})
	return n
}
