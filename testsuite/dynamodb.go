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
	log, err := newLogBuffer(logDir, "dynalite")
	if err != nil {
		return nil, err
	}
	// A free port can be taken by another server of the bed (they start at once) before dynalite
	// binds it: dynalite then exits with EADDRINUSE while the other server answers on the port.
	// So only dynalite's own health answer counts, and a lost port is tried again with another.
	var proc *process
	var direct string
	for attempt := 1; ; attempt++ {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		if proc, err = startProcess("dynalite", log, "node", cli, "--host", "127.0.0.1", "--port", strconv.Itoa(port)); err != nil {
			return nil, err
		}
		direct = "http://" + loopback(port)
		err = waitHTTP(ctx, proc, direct, func(r *http.Response) bool {
			return r.StatusCode == http.StatusOK && r.Header.Get("x-amzn-RequestId") != ""
		})
		if err == nil {
			break
		}
		proc.stop()
		if attempt == 3 || ctx.Err() != nil {
			return nil, err
		}
	}
	d := &DynamoDBServer{proc: proc}
	if err := d.startShield(direct); err != nil {
		proc.stop()
		return nil, err
	}
	return d, nil
}

// startShield puts a reverse proxy in front of dynalite that forwards only whole requests and
// finishes every request it has begun, even when the client gives up: dynalite 4 throws on an
// aborted request ("Error: aborted", ECONNRESET) and the whole server exits, so one cancelled context in one test (a deny-list
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
