package testsuite

import (
	"context"
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
