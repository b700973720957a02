package testsuite_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/rollgate/rollgate/internal/keys"
	"github.com/rollgate/rollgate/internal/spec"
	"github.com/rollgate/rollgate/testsuite"
	"github.com/rollgate/rollgate/workflows"
)

// The fault tests: releases that meet a crashed or drained worker, a restarted Temporal server,
// or a dependency that fails for a while, and must still converge.

// faultBake is the bake of each canary step in the fault tests: long enough to be cut in the
// middle, short enough for `make test`: the shortest a spec allows.
const faultBake = spec.MinBake

// workerBinary builds the worker program once per test binary.
var (
	workerOnce sync.Once
	workerBin  string
	workerErr  error
)

func workerBinary(t *testing.T) string {
	t.Helper()
	testsuite.SkipIfShort(t)
	workerOnce.Do(func() {
		dir, err := os.MkdirTemp("", "rollgate-worker-")
		if err != nil {
			workerErr = err
			return
		}
		workerBin = filepath.Join(dir, "worker")
		if out, err := exec.Command("go", "build", "-o", workerBin, "../worker").CombinedOutput(); err != nil {
			workerErr = errors.New("build worker: " + err.Error() + "\n" + string(out))
		}
	})
	if workerErr != nil {
		t.Fatal(workerErr)
	}
	return workerBin
}

// faultWorker starts the worker program with the bed's environment, each of override applied
// after it ("NAME=value"), and ends it when the test does.
func faultWorker(t *testing.T, override ...string) *workerProcess {
	t.Helper()
	w := newWorkerProcess(t, workerBinary(t))
	w.env = append(w.env, override...)
	w.start(t)
	t.Cleanup(func() {
		w.kill()
		if t.Failed() {
			t.Logf("worker log (%s):\n%s", w.metrics, w.logs())
		}
	})
	return w
}

// drain stops the worker as an orchestrator does (SIGTERM) and waits for it to exit by itself:
// it stops polling, lets its running activities finish and exits 0.
func (w *workerProcess) drain(t *testing.T) {
	t.Helper()
	_ = w.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- w.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			log, _ := os.ReadFile(w.log.Name())
			t.Fatalf("the drained worker exited with %v; its log:\n%s", err, log)
		}
	case <-time.After(2 * time.Minute):
		_ = w.cmd.Process.Kill()
		t.Fatal("the worker did not stop within 2 minutes of SIGTERM")
	}
}

// logs is what the worker wrote so far, for a failure message.
func (w *workerProcess) logs() string {
	b, _ := os.ReadFile(w.log.Name())
	return string(b)
}

// faultRelease is one release run through a fault, with what was true before it.
type faultRelease struct {
	r       *testsuite.ReleaseBed
	version string // the backend released: v2 is healthy, v3 answers 500
	before  state
	latest  int // the transit key's latest_version before the release
	// temporal is the client the release is run and watched with: the ReleaseBed's, unless the
	// test runs a Temporal server of its own.
	temporal client.Client
	// queue is the task queue the release runs on: the worker programs' (workflows.TaskQueue,
	// unless the test gives them one of its own).
	queue string
	run   client.WorkflowRun
}

// newFaultRelease provisions a stage whose releases only the worker programs of the test run.
func newFaultRelease(t *testing.T, name, version string, options ...testsuite.ReleaseOption) *faultRelease {
	t.Helper()
	r, err := testsuite.ProvisionRelease(context.Background(), shared.Bed(t), uniqueName(name), options...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	r.StopWorker()
	k, err := r.Activity.Keys.Transit.ReadKey(context.Background(), r.Key)
	if err != nil {
		t.Fatal(err)
	}
	return &faultRelease{r: r, version: version, before: observe(t, r), latest: k.LatestVersion, temporal: r.Temporal, queue: workflows.TaskQueue}
}

func (fr *faultRelease) start(t *testing.T, bake time.Duration) {
	t.Helper()
	s := fr.r.Spec(fr.version, bake)
	run, err := fr.temporal.ExecuteWorkflow(context.Background(), client.StartWorkflowOptions{
		ID: s.WorkflowID(), TaskQueue: fr.queue, WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
	}, workflows.Deployment, s)
	if err != nil {
		t.Fatal(err)
	}
	fr.run = run
}

// converged checks a finished release as a user would: promoted, with stage, key and client token
// moved together; or rolled back, with every compensation done, the rollback verified, the stable
// deployment serving and no canary left. Either way the release rotated the key exactly once,
// unless it was rolled back before its rotation.
func (fr *faultRelease) converged(t *testing.T, res workflows.DeployResult, want ...string) {
	t.Helper()
	r, before := fr.r, fr.before
	if !slices.Contains(want, res.Outcome) {
		t.Fatalf("%s (%s): outcome %s, want %v; rollback %+v\ntimeline:\n%s", r.Name, fr.version, res.Outcome, want, res.Rollback, timeline(res.Timeline))
	}
	switch res.Outcome {
	case workflows.OutcomePromoted:
		after := observe(t, r)
		if after.stage.DeploymentID != res.ReleaseDeploymentID || after.stage.HasCanary() || after.stage.Variables["backendUrl"] != r.Backends[fr.version] {
			t.Fatalf("%s: stage after promotion %+v (release %s)", r.Name, after.stage, res.ReleaseDeploymentID)
		}
		if after.labels != (keys.Labels{Current: before.labels.Current + 1, Previous: before.labels.Current}) {
			t.Fatalf("%s: labels %+v after promotion, before %+v", r.Name, after.labels, before.labels)
		}
		if after.clientKID != keys.KID(r.Key, after.labels.Current) || after.clientCalls != 1 {
			t.Fatalf("%s: client token %s accepted %d times after promotion", r.Name, after.clientKID, after.clientCalls)
		}
	default:
		fr.restored(t, res.Rollback)
	}
	// A release rolled back before its rotation (its first probes failed) rotated nothing.
	rotations := 0
	if res.KeyVersion > fr.latest {
		rotations = 1
	}
	fr.rotated(t, rotations)
}

// restored checks a rollback of the release: every compensation done, the rollback verified, the
// stable deployment serving with no canary left, the key labels back and the client holding an
// accepted token of the key version current before the release.
func (fr *faultRelease) restored(t *testing.T, rep *workflows.RollbackReport) {
	t.Helper()
	r, before := fr.r, fr.before
	if rep == nil || !rep.Verified || len(rep.Problems) > 0 {
		t.Fatalf("%s: rollback not verified: %+v", r.Name, rep)
	}
	for _, s := range rep.Steps {
		if s.Error != "" || s.Attempts < 1 {
			t.Fatalf("%s: compensation %q abandoned after %d attempts: %s", r.Name, s.Name, s.Attempts, s.Error)
		}
	}
	after := observe(t, r)
	if after.stage.DeploymentID != before.stage.DeploymentID || after.stage.HasCanary() || after.stage.CanaryWeight != 0 {
		t.Fatalf("%s: stage after the rollback %+v, want %s serving alone", r.Name, after.stage, before.stage.DeploymentID)
	}
	if after.labels != before.labels || after.clientKID != keys.KID(r.Key, before.labels.Current) || after.clientCalls != 1 {
		t.Fatalf("%s: labels %+v, client holds %s accepted %d times after the rollback (before %+v)", r.Name, after.labels, after.clientKID, after.clientCalls, before.labels)
	}
}

// rotated checks that the release created exactly n new versions of its key.
func (fr *faultRelease) rotated(t *testing.T, n int) {
	t.Helper()
	k, err := fr.r.Activity.Keys.Transit.ReadKey(context.Background(), fr.r.Key)
	if err != nil || k.LatestVersion != fr.latest+n {
		t.Fatalf("%s: latest_version %d → %d, want %d rotation(s) (%v)", fr.r.Name, fr.latest, k.LatestVersion, n, err)
	}
}

// retried lists each compensation of a rollback with the attempts it took, for the test log.
func retried(rep *workflows.RollbackReport) map[string]int {
	attempts := map[string]int{}
	if rep == nil {
		return attempts
	}
	for _, s := range rep.Steps {
		attempts[s.Name] = s.Attempts
	}
	return attempts
}
