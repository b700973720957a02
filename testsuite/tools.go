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
)

// A tool is a server binary the bed builds from the Go module proxy, in a module of its own under
// testsuite/tools, once per machine, into the cache folder.
type tool struct {
	name string // file name prefix in the cache folder
	dir  string // module folder, relative to the repository root
	pkg  string // package to build inside that module
	env  []string
}

var (
	temporalTool = tool{name: "temporal-1.5.1", dir: "testsuite/tools/temporal", pkg: "github.com/temporalio/cli/cmd/temporal"}
	vaultTool    = tool{name: "vault-1.15.3", dir: "testsuite/tools/vault", pkg: ".", env: []string{"CGO_ENABLED=0"}}
)

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

	unlock, err := lockFile(bin + ".lock")
	if err != nil {
		return "", err
	}
	defer unlock()
	if _, err := os.Stat(bin); err == nil { // built by another process while we waited
		return bin, nil
	}
	fmt.Fprintf(logw, "building %s from the Go module proxy into %s (once per machine; several minutes)\n", t.name, binDir)
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
