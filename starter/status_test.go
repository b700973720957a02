package main_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/rollgate/rollgate/internal/spec"
	startercmd "github.com/rollgate/rollgate/starter"
	"github.com/rollgate/rollgate/testsuite"
	"github.com/rollgate/rollgate/workflows"
)

// statusBound is how long one status call may take. The issue asks for a second, and on this bed
// nearly every call takes a few hundred milliseconds; but a status query routed to the worker's
// sticky queue can wait out Temporal's 5 s sticky schedule-to-start timeout before the server
// tries the normal queue (seen once in a few hundred calls on a loaded machine). The bound leaves
// room for that and is still far below the hang it guards against: attaching to a newer run
// waited for that whole release, at least its bake of releaseBake.
const statusBound = 8 * time.Second

// releaseBake is the bake of the tests' releases here, so that a status call that waited for a
// release would take well over statusBound.
const releaseBake = 20 * time.Second

var releaseNames atomic.Int32

// provisionUnique provisions a release bed whose name no other test of this process uses.
func provisionUnique(t *testing.T, b *testsuite.Bed, prefix string, opts ...testsuite.ReleaseOption) *testsuite.ReleaseBed {
	t.Helper()
	r, err := testsuite.ProvisionRelease(context.Background(), b, fmt.Sprintf("%s%d%d", prefix, os.Getpid()%1000, releaseNames.Add(1)), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return r
}

// oneStep is a release of version with a single canary step.
func oneStep(r *testsuite.ReleaseBed, version string, bake time.Duration) spec.DeploySpec {
	s := r.Spec(version, bake)
	s.Canary.Steps = s.Canary.Steps[:1]
	return s
}

// startRelease starts a deployment as a pipeline outside the starter would.
func startRelease(t *testing.T, r *testsuite.ReleaseBed, s spec.DeploySpec) client.WorkflowRun {
	t.Helper()
	run, err := r.Temporal.ExecuteWorkflow(context.Background(), client.StartWorkflowOptions{
		ID: s.WorkflowID(), TaskQueue: workflows.TaskQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
	}, workflows.Deployment, s)
	if err != nil {
		t.Fatal(err)
	}
	return run
}

// nextReleaseOnDescribe is the bed's Temporal client; right after its first description of a
// deployment it starts the stage's next release: the moment in which status used to attach to
// the new run and wait for it to finish.
type nextReleaseOnDescribe struct {
	client.Client
	once  sync.Once
	start func()
}

func (c *nextReleaseOnDescribe) DescribeWorkflowExecution(ctx context.Context, id, runID string) (*workflowservice.DescribeWorkflowExecutionResponse, error) {
	d, err := c.Client.DescribeWorkflowExecution(ctx, id, runID)
	c.once.Do(c.start)
	return d, err
}

func TestStatus_ReleaseStartedRightAfterTheDescription_AnswersForTheDescribedRun(t *testing.T) {
	b := shared.Bed(t)
	r := provisionUnique(t, b, "clirace")
	ctx := context.Background()
	first := startRelease(t, r, oneStep(r, "v2", 10*time.Second))
	if err := first.Get(ctx, nil); err != nil {
		t.Fatal(err)
	}
	var next client.WorkflowRun
	racing := &nextReleaseOnDescribe{Client: r.Temporal, start: func() { next = startRelease(t, r, oneStep(r, "v1", releaseBake)) }}

	sctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	began := time.Now()
	st, runID, err := startercmd.StatusOf(sctx, racing, first.GetID())
	took := time.Since(began)
	if next == nil {
		t.Fatal("status never described the deployment")
	}
	defer func() { _ = next.Get(ctx, nil) }() // leave no release running behind the test
	if err != nil || took > statusBound || runID != first.GetRunID() || st.Phase != workflows.Phase(workflows.OutcomePromoted) {
		t.Fatalf("status took %s: run %s (described %s), phase %q, err %v", took, runID, first.GetRunID(), st.Phase, err)
	}
}

func TestStatus_InALoopAcrossConsecutiveReleases_NeverWaitsForOne(t *testing.T) {
	b := shared.Bed(t)
	c := bedCLI(t, b)
	r := provisionUnique(t, b, "cliloop")
	target := r.APIID + "/" + r.Stage
	if code, _, stderr := c.run(t, "deploy", "-f", writeSpec(t, oneStep(r, "v2", 10*time.Second)), "--wait"); code != 0 {
		t.Fatalf("first release: exit %d\n%s", code, stderr)
	}

	// A pipeline releases three times in a row while an operator asks for the status.
	specs := []string{writeSpec(t, oneStep(r, "v1", releaseBake)), writeSpec(t, oneStep(r, "v2", releaseBake)), writeSpec(t, oneStep(r, "v1", releaseBake))}
	pipeline := make(chan error, 1)
	go func() {
		for i, s := range specs {
			cmd := exec.Command(c.bin, "deploy", "-f", s, "--wait")
			cmd.Env = append(os.Environ(), c.env...)
			if out, err := cmd.CombinedOutput(); err != nil {
				pipeline <- fmt.Errorf("release %d: %v\n%s", i+2, err, out)
				return
			}
		}
		pipeline <- nil
	}()

	var calls, running, overASecond int
	var slowest time.Duration
	for done := false; !done; {
		select {
		case err := <-pipeline:
			if err != nil {
				t.Fatal(err)
			}
			done = true
		default:
		}
		began := time.Now()
		code, stdout, stderr := c.run(t, "status", target)
		took := time.Since(began)
		if code != 0 || took > statusBound {
			t.Fatalf("status call %d took %s: exit %d\n%s%s", calls+1, took, code, stdout, stderr)
		}
		calls++
		slowest = max(slowest, took)
		if took > time.Second {
			overASecond++
		}
		if !strings.HasPrefix(stdout, "deploy/"+target+": promoted") {
			running++
		}
	}
	t.Logf("%d status calls across 3 releases, %d while one ran, %d over a second, slowest %s", calls, running, overASecond, slowest)
	if running == 0 {
		t.Fatal("no status call saw a release running: the loop did not span the releases")
	}
}

func TestOperatorRequests_OnAFinishedDeployment_HintAtRollingBackTheRelease(t *testing.T) {
	b := shared.Bed(t)
	c := bedCLI(t, b)
	r := provisionUnique(t, b, "clihint")
	target := r.APIID + "/" + r.Stage
	if err := startRelease(t, r, oneStep(r, "v2", 10*time.Second)).Get(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	for _, req := range [][]string{{"rollback", target, "--reason", "too late"}, {"resume", target}} {
		code, _, stderr := c.run(t, req...)
		if code != 1 || !strings.Contains(stderr, "has finished") || !strings.Contains(stderr, "starter rollback "+target+" --release latest") {
			t.Errorf("%s of a finished deployment: exit %d\n%s", req[0], code, stderr)
		}
	}
}

// The runbook's warning, checked: `temporal workflow start` of a running deployment's id starts no
// second run (the id conflict policy still fails the start) but answers with the running run;
// with --fail-existing it says so.
func TestTemporalCLIStart_OfARunningDeploymentsID_StartsNoSecondRun(t *testing.T) {
	b := shared.Bed(t)
	c := bedCLI(t, b)
	r := provisionUnique(t, b, "clidup")
	target := r.APIID + "/" + r.Stage
	s := r.Spec("v2", time.Minute)
	run := startRelease(t, r, s)
	defer func() { _ = run.Get(context.Background(), nil) }()
	input, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	start := func(extra ...string) (string, error) {
		args := append([]string{"workflow", "start", "--workflow-id", run.GetID(), "--type", "Deployment",
			"--task-queue", workflows.TaskQueue, "--input", string(input), "--output", "json"}, extra...)
		cmd := exec.Command(b.Temporal.CLI, args...)
		cmd.Env = append(os.Environ(), c.env...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}

	out, err := start()
	var started struct{ RunID string }
	if err != nil || json.Unmarshal([]byte(out), &started) != nil || started.RunID != run.GetRunID() {
		t.Fatalf("temporal workflow start of a running deployment's id: %v\n%s\n(running run %s)", err, out, run.GetRunID())
	}
	if out, err := start("--fail-existing"); err == nil || !strings.Contains(out, "already") {
		t.Fatalf("temporal workflow start --fail-existing: %v\n%s", err, out)
	}
	desc, err := r.Temporal.DescribeWorkflowExecution(context.Background(), run.GetID(), "")
	if err != nil || desc.GetWorkflowExecutionInfo().GetExecution().GetRunId() != run.GetRunID() {
		t.Fatalf("the deployment's current run is not the one started first: %v", err)
	}
	if code, _, stderr := c.run(t, "promote", target, "--reason", "end the test's release"); code != 0 {
		t.Fatalf("promote: exit %d\n%s", code, stderr)
	}
}
