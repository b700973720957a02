package testsuite

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"
)

// DynamoDBServer is dynalite, a third-party DynamoDB implementation from the npm registry (pinned
// in testsuite/dynalite/package.json), run with node, in memory, behind a small shield.
type DynamoDBServer struct {
	Endpoint string // the shield's address: what clients use
	proc     *process
	shield   *http.Server
}

func startDynamoDB(ctx context.Context, logDir string, progress io.Writer) (*DynamoDBServer, error) {
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(root, "testsuite", "dynalite")
	cli := filepath.Join(dir, "node_modules", "dynalite", "cli.js")
	if err := installDynalite(ctx, dir, cli, progress); err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	log, err := newLogBuffer(logDir, "dynalite")
	if err != nil {
		return nil, err
	}
	proc, err := startProcess("dynalite", log, "node", cli, "--host", "127.0.0.1", "--port", strconv.Itoa(port))
	if err != nil {
		return nil, err
	}
	d := &DynamoDBServer{proc: proc}
	direct := "http://" + loopback(port)
	// Any HTTP answer means it listens; an unsigned GET gets a DynamoDB-shaped 4xx.
	if err := waitHTTP(ctx, proc, direct, func(*http.Response) bool { return true }); err != nil {
		proc.stop()
		return nil, err
	}
	if err := d.startShield(direct); err != nil {
		proc.stop()
		return nil, err
	}
	return d, nil
}

// startShield puts a reverse proxy in front of dynalite that forwards only whole requests and
// finishes every request it has begun, even when the client gives up: dynalite 4 throws on an aborted request ("Error: aborted",
// ECONNRESET) and the whole server exits, so one cancelled context in one test (a deny-list
// refresh stopped mid-query, a timed-out authorizer) would fail every test after it. DynamoDB
// itself shrugs such a client off.
func (d *DynamoDBServer) startShield(target string) error {
	u, err := url.Parse(target)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u)
			pr.Out = pr.Out.WithContext(context.WithoutCancel(pr.Out.Context()))
		},
		ErrorLog: log.New(io.Discard, "", 0),
	}
	whole := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Forward only requests whose body arrived whole: a body cut off by the client would reach
		// dynalite as an aborted request too.
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 16<<20)) // DynamoDB's request limit
		if err != nil {
			return
		}
		r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
		proxy.ServeHTTP(w, r)
	})
	d.shield = &http.Server{Handler: whole, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = d.shield.Serve(ln) }()
	d.Endpoint = "http://" + ln.Addr().String()
	return nil
}

// installDynalite runs `npm ci` once if the pinned packages are not installed yet.
func installDynalite(ctx context.Context, dir, cli string, progress io.Writer) error {
	if _, err := os.Stat(cli); err == nil {
		return nil
	}
	unlock, err := lockFile(filepath.Join(dir, ".install.lock"))
	if err != nil {
		return err
	}
	defer unlock()
	if _, err := os.Stat(cli); err == nil {
		return nil
	}
	fmt.Fprintf(progress, "installing dynalite (DynamoDB for the local test bed) from the npm registry into %s: once per clone\n", dir)
	defer reportProgress(progress, "installing dynalite")()
	cmd := exec.CommandContext(ctx, "npm", "ci", "--no-audit", "--no-fund")
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = progress, progress
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("npm ci in %s: %w", dir, err)
	}
	return nil
}

func (d *DynamoDBServer) stop() {
	if d.shield != nil {
		_ = d.shield.Close()
	}
	d.proc.stop()
}
