package testsuite

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// A tool is a server binary the bed builds from the Go module proxy, in a module of its own under
// testsuite/tools, once per machine, into the cache folder.
type tool struct {
	name  string // file name prefix in the cache folder
	dir   string // module folder, relative to the repository root
	pkg   string // package to build inside that module
	env   []string
	what  string // what the binary is, for the first-run message
	takes string // how long a cold build takes on 2 cores, for the first-run message
}

var (
	temporalTool = tool{name: "temporal-1.5.1", dir: "testsuite/tools/temporal", pkg: "github.com/temporalio/cli/cmd/temporal",
		what: "the Temporal dev server and Web UI", takes: "about 5 minutes"}
	vaultTool = tool{name: "vault-1.15.3", dir: "testsuite/tools/vault", pkg: ".", env: []string{"CGO_ENABLED=0"},
		what: "the Vault dev server", takes: "about 12 minutes and 3 GB of module downloads"}
	rieTool = tool{name: "aws-lambda-rie-bef5c4b", dir: "testsuite/tools/rie",
		pkg: "github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie", env: []string{"CGO_ENABLED=0"},
		what: "the AWS Lambda Runtime Interface Emulator", takes: "about 2 minutes"}
)

// progressEvery is how often a long first-run step says it is still going.
var progressEvery = 30 * time.Second

// reportProgress prints "still <doing> (elapsed)" every progressEvery until the returned stop is
// called, so a first run that builds for minutes never sits silent.
func reportProgress(w io.Writer, doing string) (stop func()) {
	start := time.Now()
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(progressEvery)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				fmt.Fprintf(w, "  … still %s (%s elapsed)\n", doing, time.Since(start).Round(time.Second))
			}
		}
	}()
	return func() { close(done); <-finished }
}

// CacheDir is where built server binaries are kept between runs: $ROLLGATE_CACHE_DIR, or
// rollgate/ in the user's cache folder. It lives outside the clone so a fresh clone reuses it.
func CacheDir() (string, error) {
	if dir := os.Getenv("ROLLGATE_CACHE_DIR"); dir != "" {
		return dir, nil
	}
	base, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no cache folder (set ROLLGATE_CACHE_DIR): %w", err)
	}
	return filepath.Join(base, "rollgate"), nil
}

// RepoRoot finds the repository root by walking up from the working directory, so the bed works
// from `go test` in any package and from `go run ./testsuite/cmd/bed`.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "testsuite", "tools", "temporal", "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("cannot find the rollgate repository root above the working directory")
		}
		dir = parent
	}
}

// path returns the tool's binary, building it first if this machine has not built this exact
// module (its go.mod, go.sum and sources hash into the file name). Concurrent callers, such as
// test binaries of several packages, wait on a file lock instead of building twice.
func (t tool) path(ctx context.Context, logw io.Writer) (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	modDir := filepath.Join(root, t.dir)
	sum, err := hashFiles(modDir)
	if err != nil {
		return "", fmt.Errorf("%s: %w", t.name, err)
	}
	cache, err := CacheDir()
	if err != nil {
		return "", err
	}
	binDir := filepath.Join(cache, "bin")
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		return "", err
	}
	bin := filepath.Join(binDir, t.name+"-"+sum)
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}

	unlock, err := t.lock(bin, logw)
	if err != nil {
		return "", err
	}
	defer unlock()
	if _, err := os.Stat(bin); err == nil { // built by another process while we waited
		return bin, nil
	}
	fmt.Fprintf(logw, "building %s (%s for the local test bed) from the Go module proxy into %s: once per machine, %s on 2 cores; later starts reuse it\n",
		t.name, t.what, binDir, t.takes)
	defer reportProgress(logw, "building "+t.name)()
	tmp := bin + ".tmp"
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", tmp, t.pkg)
	cmd.Dir = modDir
	cmd.Env = append(append(os.Environ(), "GOTOOLCHAIN=local", "GOFLAGS=-mod=readonly"), t.env...)
	cmd.Stdout, cmd.Stderr = logw, logw
	if err := cmd.Run(); err != nil {
		_ = os.Remove(tmp)
		return "", fmt.Errorf("build %s in %s: %w", t.name, t.dir, err)
	}
	if err := os.Rename(tmp, bin); err != nil {
		return "", err
	}
	return bin, nil
}

// lock takes the build lock of bin, saying so when another process holds it (a test binary of
// another package, or a second demo, building the same tool).
func (t tool) lock(bin string, logw io.Writer) (func(), error) {
	unlock, err := tryLockFile(bin + ".lock")
	if err != nil || unlock != nil {
		return unlock, err
	}
	fmt.Fprintf(logw, "waiting for another process that is building %s\n", t.name)
	defer reportProgress(logw, "waiting for "+t.name)()
	return lockFile(bin + ".lock")
}

func hashFiles(dir string) (string, error) {
	h := sha256.New()
	for _, name := range []string{"go.mod", "go.sum", "main.go"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s\x00%d\x00", name, len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))[:12], nil
}

// tryLockFile takes the lock if it is free, and returns a nil func if another process holds it.
func tryLockFile(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, nil
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

func lockFile(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}
