package testsuite

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"
)

// StartForTest starts a bed for one test (or, through TestMain, one package) and stops it at the
// end; when the test failed, every server's log is printed first.
func StartForTest(tb testing.TB, opts Options) *Bed {
	tb.Helper()
	SkipIfShort(tb)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute) // a cold machine builds first
	defer cancel()
	b, err := Start(ctx, opts)
	if err != nil {
		tb.Fatalf("start test bed: %v", err)
	}
	tb.Cleanup(func() {
		if tb.Failed() {
			tb.Logf("test bed logs:\n%s", b.Logs())
		}
		b.Close()
	})
	return b
}

// Shared is one bed for the tests of a package, started on first use, so that fuzz targets and
// benchmarks of the same package that need no servers start none.
//
//	var shared testsuite.Shared
//	func TestMain(m *testing.M) { os.Exit(shared.Run(m)) }
//	func TestX(t *testing.T) { bed := shared.Bed(t); … }
type Shared struct {
	once sync.Once
	bed  *Bed
	err  error
}

// Bed returns the package's bed, starting it on the first call.
func (s *Shared) Bed(tb testing.TB) *Bed {
	tb.Helper()
	SkipIfShort(tb)
	s.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
		defer cancel()
		s.bed, s.err = Start(ctx, Options{})
	})
	if s.err != nil {
		tb.Fatalf("start test bed: %v", s.err)
	}
	return s.bed
}

// Run runs the package's tests, prints every server's log if any failed, and stops the bed if
// one was started.
func (s *Shared) Run(m *testing.M) int {
	code := m.Run()
	if s.bed != nil {
		if code != 0 {
			fmt.Fprintf(os.Stderr, "test bed logs:\n%s", s.bed.Logs())
		}
		s.bed.Close()
	}
	return code
}

// SkipIfShort skips a test that needs the bed when the run is -short, the contributor's quick
// loop that starts no server.
func SkipIfShort(tb testing.TB) {
	tb.Helper()
	if testing.Short() {
		tb.Skip("needs the local test bed (Temporal dev server, Vault, dynalite, S3, API Gateway emulator); runs without -short")
	}
}
