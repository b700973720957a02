package testsuite_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/converter"

	"github.com/rollgate/rollgate/workflows"
)

// Three releases at once on three worker programs: the one that ran every release so far is
// killed with SIGKILL mid-bake, a second is drained with SIGTERM during the second bake, and the
// third finishes the work. The healthy releases are promoted, the broken one is rolled back and
// verified with no canary left, and each release rotated its key exactly once.
func TestFaults_WorkerKilledAndWorkerDrained_EveryReleaseConverges(t *testing.T) {
	rels := []*faultRelease{newFaultRelease(t, "killa", "v2"), newFaultRelease(t, "killb", "v2"), newFaultRelease(t, "killc", "v3")}
	want := []string{workflows.OutcomePromoted, workflows.OutcomePromoted, workflows.OutcomeRolledBack}

	// The first worker alone picks up every release, so killing it cuts bakes for sure.
	first := faultWorker(t)
	for _, fr := range rels {
		fr.start(t, faultBake)
	}
	for _, fr := range rels[:2] {
		awaitFaultStatus(t, fr, func(st workflows.Status) bool { return st.Phase == workflows.PhaseBaking && st.Step == 1 })
	}
	second, third := faultWorker(t), faultWorker(t)
	first.kill()
	t.Log("first worker killed with SIGKILL mid-bake")

	awaitFaultStatus(t, rels[0], func(st workflows.Status) bool { return st.Phase == workflows.PhaseBaking && st.Step == 2 })
	second.drain(t)
	t.Log("second worker drained with SIGTERM during the second bake")

	results := make([]workflows.DeployResult, len(rels))
	var wg sync.WaitGroup
	for i, fr := range rels {
		wg.Add(1)
		go func() { defer wg.Done(); results[i] = awaitResult(t, fr) }()
	}
	wg.Wait()
	if t.Failed() {
		t.Fatalf("the remaining worker's log:\n%s", third.logs())
	}
	for i, fr := range rels {
		fr.converged(t, results[i], want[i])
	}
	t.Logf("the broken release's compensation attempts: %v", retried(results[2].Rollback))
}

// awaitFaultStatus polls the release's status query until ok accepts it; the deadline allows for a
// worker's activities to time out and be retried elsewhere.
func awaitFaultStatus(t *testing.T, fr *faultRelease, ok func(workflows.Status) bool) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	var last workflows.Status
	var err error
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		var v converter.EncodedValue
		v, err = fr.temporal.QueryWorkflow(ctx, fr.run.GetID(), fr.run.GetRunID(), workflows.QueryStatus)
		cancel()
		if err == nil && v.Get(&last) == nil && ok(last) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s never reached the awaited state; last status: phase %s step %d (%v)", fr.r.Name, last.Phase, last.Step, err)
}

// awaitResult waits for the release to end, reporting (not stopping on) an error, so that it can
// run in a goroutine per release.
func awaitResult(t *testing.T, fr *faultRelease) workflows.DeployResult {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var res workflows.DeployResult
	if err := fr.temporal.GetWorkflow(ctx, fr.run.GetID(), fr.run.GetRunID()).Get(ctx, &res); err != nil {
		t.Errorf("%s: the release did not end: %v", fr.r.Name, err)
	}
	return res
}
