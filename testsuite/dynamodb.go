package testsuite

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
)

// DynamoDBServer is dynalite, a third-party DynamoDB implementation from the npm registry (pinned
// in testsuite/dynalite/package.json), run with node, in memory.
type DynamoDBServer struct {
	Endpoint string
	proc     *process
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
	d := &DynamoDBServer{Endpoint: "http://" + loopback(port), proc: proc}
	// Any HTTP answer means it listens; an unsigned GET gets a DynamoDB-shaped 4xx.
	if err := waitHTTP(ctx, proc, d.Endpoint, func(*http.Response) bool { return true }); err != nil {
		proc.stop()
		return nil, err
	}
	return d, nil
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

func (d *DynamoDBServer) stop() { d.proc.stop() }
