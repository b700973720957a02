package testsuite_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/rollgate/rollgate/testsuite"
	"github.com/rollgate/rollgate/workflows"
)

// The Temporal server is restarted in the middle of two releases' bakes, on the same port and
// database file: the worker program and the client reconnect by themselves, the healthy release
// is promoted and the broken one rolled back and verified, each after exactly one rotation.
func TestFaults_TemporalServerRestartedMidBake_ReleasesResume(t *testing.T) {
	shared.Bed(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	srv, err := testsuite.StartTemporal(ctx, testsuite.TemporalOptions{DBFile: filepath.Join(t.TempDir(), "temporal.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("the test's Temporal server log:\n%s", srv.Logs())
		}
		srv.Stop()
	})
	tc, err := srv.Client()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tc.Close)

	rels := []*faultRelease{newFaultRelease(t, "restartgood", "v2"), newFaultRelease(t, "restartbad", "v3")}
	want := []string{workflows.OutcomePromoted, workflows.OutcomeRolledBack}
	faultWorker(t, "TEMPORAL_ADDRESS="+srv.HostPort)
	for _, fr := range rels {
		fr.temporal = tc
		fr.start(t, faultBake)
	}
	awaitFaultStatus(t, rels[0], func(st workflows.Status) bool { return st.Phase == workflows.PhaseBaking && st.Step == 1 })
	if err := srv.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	t.Log("Temporal server restarted mid-bake")

	results := make([]workflows.DeployResult, len(rels))
	var wg sync.WaitGroup
	for i, fr := range rels {
		wg.Add(1)
		go func() { defer wg.Done(); results[i] = awaitResult(t, fr) }()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	for i, fr := range rels {
		fr.converged(t, results[i], want[i])
	}
}
