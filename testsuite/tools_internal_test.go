package testsuite

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// lockedBuffer collects progress written from several goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// A first run never sits silent: it says what it builds, why, that it happens once, and how long it
// has been going, also while it waits for another process that builds the same tool.
func TestToolBuild_SaysWhatItBuildsAndShowsProgress(t *testing.T) {
	t.Setenv("ROLLGATE_CACHE_DIR", t.TempDir())
	was := progressEvery
	progressEvery = 20 * time.Millisecond
	t.Cleanup(func() { progressEvery = was })
	hello := tool{name: "hellotool", dir: "testsuite/testdata/hellotool", pkg: ".", what: "a test tool", takes: "a second"}

	// Another process holds the build lock for a while, as a second test binary would.
	cache, _ := CacheDir()
	if err := os.MkdirAll(filepath.Join(cache, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	sum, err := hashFiles(filepath.Join(root, hello.dir))
	if err != nil {
		t.Fatal(err)
	}
	unlock, err := lockFile(filepath.Join(cache, "bin", hello.name+"-"+sum+".lock"))
	if err != nil {
		t.Fatal(err)
	}
	var out lockedBuffer
	built := make(chan error, 1)
	go func() { _, err := hello.path(context.Background(), &out); built <- err }()
	deadline := time.Now().Add(time.Minute)
	for !strings.Contains(out.String(), "still waiting for hellotool") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	unlock()
	if err := <-built; err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{
		"waiting for another process that is building hellotool",
		"still waiting for hellotool (",
		"building hellotool (a test tool for the local test bed) from the Go module proxy",
		"once per machine, a second on 2 cores; later starts reuse it",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("progress lacks %q:\n%s", want, got)
		}
	}
}

// The bed's servers get ports below the ephemeral range, where outgoing connections and other
// servers' :0 binds cannot take them between the pick and the bind.
func TestFreePort_IsBelowTheEphemeralRangeAndBindable(t *testing.T) {
	for range 50 {
		port, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		if port < 20000 || port >= 30000 {
			t.Fatalf("port %d: want 20000–29999", port)
		}
	}
}
