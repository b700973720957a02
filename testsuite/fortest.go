package testsuite

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"
)

// StartForTest starts a bed for one test (or, through TestMain, one package) and stops it at the
// end; when the test failed, every server's log is printed first.
func StartForTest(tb testing.TB, opts Options) *Bed {
	tb.Helper()
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

// RunWithBed is a TestMain body for packages whose tests share one bed: it starts the bed, hands
// it to use, runs the tests, prints every server's log if any failed, and stops the bed.
//
//	func TestMain(m *testing.M) { os.Exit(testsuite.RunWithBed(m, func(b *testsuite.Bed) { bed = b })) }
func RunWithBed(m *testing.M, use func(*Bed)) int {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	b, err := Start(ctx, Options{})
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "start test bed:", err)
		return 1
	}
	defer b.Close()
	use(b)
	code := m.Run()
	if code != 0 {
		fmt.Fprintf(os.Stderr, "test bed logs:\n%s", b.Logs())
	}
	return code
}
