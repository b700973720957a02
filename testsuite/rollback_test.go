package testsuite_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/rollgate/rollgate/testsuite"
	"github.com/rollgate/rollgate/testsuite/gatewayemu"
	"github.com/rollgate/rollgate/workflows"
)

// uniqueName is a release name of its own for each run of a test (lower-case letters and digits),
// so that -count=N runs never meet each other's buckets, keys or workflows.
func uniqueName(prefix string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// starterCLI is the real starter program, built once per test binary and wired to the bed.
var (
	starterOnce sync.Once
	starterBin  string
	starterErr  error
)

func runStarter(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	starterOnce.Do(func() {
		dir, err := os.MkdirTemp("", "rollgate-starter-")
		if err != nil {
			starterErr = err
			return
		}
		starterBin = filepath.Join(dir, "starter")
		if out, err := exec.Command("go", "build", "-o", starterBin, "../starter").CombinedOutput(); err != nil {
			starterErr = fmt.Errorf("build starter: %v\n%s", err, out)
		}
	})
	if starterErr != nil {
		t.Fatal(starterErr)
	}
	cmd := exec.Command(starterBin, args...)
	cmd.Env = os.Environ()
	for _, kv := range shared.Bed(t).Env() {
		cmd.Env = append(cmd.Env, kv[0]+"="+kv[1])
	}
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if exit, ok := err.(*exec.ExitError); ok {
		return exit.ExitCode(), o.String(), e.String()
	} else if err != nil {
		t.Fatal(err)
	}
	return 0, o.String(), e.String()
}

// Two (or five) operators pressing rollback during an incident: every request, sent at once or
// 50 ms apart, exits 0 with the same report, and the stage is restored once.
func TestRollback_ConcurrentAndStaggeredRequestsAllGetTheSameReport(t *testing.T) {
	for _, gap := range []time.Duration{0, 50 * time.Millisecond} {
		t.Run(fmt.Sprintf("gap-%s", gap), func(t *testing.T) {
			r := provision(t, uniqueName("join"))
			run := startDeployment(t, r, "v2", 10*time.Minute)
			waitForPhase(t, r, run, workflows.PhaseBaking)

			type answer struct {
				code           int
				stdout, stderr string
			}
			answers := make([]answer, 5)
			var wg sync.WaitGroup
			for i := range answers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					a := &answers[i]
					a.code, a.stdout, a.stderr = runStarter(t, "rollback", r.APIID+"/"+r.Stage, "--actor", fmt.Sprintf("operator%d", i), "--reason", "incident")
				}()
				time.Sleep(gap)
			}
			wg.Wait()
			for i, a := range answers {
				if a.code != 0 || a.stdout != answers[0].stdout || !strings.Contains(a.stdout, "verified: true") {
					t.Fatalf("request %d: exit %d\nstdout:\n%s\nstderr:\n%s\nfirst answer:\n%s", i, a.code, a.stdout, a.stderr, answers[0].stdout)
				}
			}
			res := deployResult(t, run)
			if res.Outcome != workflows.OutcomeRolledBack || res.Rollback.Trigger != "operator" {
				t.Fatalf("outcome %s, %+v", res.Outcome, res.Rollback)
			}
			if gap > 0 {
				replay(t, r, run, "deployment-rollback-joined.json")
			}
			t.Logf("5 requests %s apart, one report:\n%s", gap, answers[0].stdout)
		})
	}
}

// sendRollback asks for a rollback and returns at once; the report (or the error) arrives on the
// channel.
func sendRollback(r *testsuite.ReleaseBed, run client.WorkflowRun, actor string) <-chan rollbackAnswer {
	done := make(chan rollbackAnswer, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		var a rollbackAnswer
		h, err := r.Temporal.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
			WorkflowID: run.GetID(), RunID: run.GetRunID(), UpdateName: workflows.UpdateRollback,
			WaitForStage: client.WorkflowUpdateStageCompleted, Args: []any{workflows.OperatorRequest{Actor: actor, Reason: "slow gateway"}},
		})
		if err == nil {
			err = h.Get(ctx, &a.report)
		}
		a.err = err
		done <- a
	}()
	return done
}

type rollbackAnswer struct {
	report workflows.RollbackReport
	err    error
}

func compensation(st workflows.Status, name string) (workflows.CompensationStatus, bool) {
	for _, c := range st.Compensations {
		if c.Name == name {
			return c, true
		}
	}
	return workflows.CompensationStatus{}, false
}

// slowUpdateStage makes every UpdateStage call (a rollback's "restore the stage") take d.
func slowUpdateStage(t *testing.T, d time.Duration) {
	shared.Bed(t).Gateway.InjectFault("UpdateStage", gatewayemu.Fault{Latency: d})
	t.Cleanup(shared.Bed(t).Gateway.ClearFaults)
}

// While slow compensations run (the gateway takes 4 s to restore the stage, and 4 s to flush the
// authorizer cache), status answers within a second and shows the rollback step by step: which
// compensation runs (and since when), which are done and how long they took.
func TestRollback_StatusAnswersWithinASecondDuringASlowCompensation(t *testing.T) {
	const slow = 4 * time.Second
	r := provision(t, uniqueName("watch"))
	run := startDeployment(t, r, "v2", 10*time.Minute)
	waitForPhase(t, r, run, workflows.PhaseBaking)
	slowUpdateStage(t, slow)
	shared.Bed(t).Gateway.InjectFault("FlushStageAuthorizersCache", gatewayemu.Fault{Latency: slow})
	done := sendRollback(r, run, "alice")

	var slowest time.Duration
	var sawRunning, sawDoneThenNext bool
	var captured string
	var rep workflows.RollbackReport
	for answered := false; !answered; {
		select {
		case a := <-done:
			if a.err != nil || !a.report.Verified {
				t.Fatalf("rollback: %+v, %v", a.report, a.err)
			}
			rep, answered = a.report, true
			continue
		default:
		}
		t0 := time.Now()
		v, err := r.Temporal.QueryWorkflow(context.Background(), run.GetID(), run.GetRunID(), workflows.QueryStatus)
		slowest = max(slowest, time.Since(t0))
		var st workflows.Status
		if err != nil || v.Get(&st) != nil {
			t.Fatalf("status query: %v", err)
		}
		stage, _ := compensation(st, "restore the stage")
		next, _ := compensation(st, "restore the authorizer")
		sawRunning = sawRunning || st.Phase == workflows.PhaseRollingBack && stage.State == workflows.CompensationRunning && !stage.Started.IsZero() && next.State == workflows.CompensationPending
		if stage.State == workflows.CompensationDone && stage.Duration >= slow && next.State == workflows.CompensationRunning && !sawDoneThenNext {
			sawDoneThenNext = true
			_, captured, _ = runStarter(t, "status", r.APIID+"/"+r.Stage)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if slowest > time.Second {
		t.Errorf("a status query took %s during the rollback, want under a second", slowest)
	}
	if !sawRunning || !sawDoneThenNext {
		t.Errorf("status never showed the slow compensation running (%v), then done and the next one started (%v)", sawRunning, sawDoneThenNext)
	}
	if rep.Steps[0].Name != "restore the stage" || rep.Steps[0].Duration < slow {
		t.Errorf("report steps %+v, want the stage restored in at least %s", rep.Steps, slow)
	}
	if !strings.Contains(captured, "done     restore the stage") || !strings.Contains(captured, "running  restore the authorizer") {
		t.Errorf("starter status during the rollback:\n%s", captured)
	}
	t.Logf("starter status while the authorizer was being restored (slowest query %s):\n%s", slowest, captured)
}

// A worker killed while a compensation runs: the report's latency runs from the request to the
// verified state, the crash included, says how much of it was spent waiting for a worker, and the
// latency metric agrees with it.
func TestRollback_WorkerCrashDuringACompensation_LatencyCountsTheWait(t *testing.T) {
	bin := buildWorker(t)
	r := provision(t, uniqueName("crashrb"))
	r.StopWorker()
	w := newWorkerProcess(t, bin)
	w.start(t)
	run := startDeployment(t, r, "v2", 10*time.Minute)
	waitForPhase(t, r, run, workflows.PhaseBaking)
	slowUpdateStage(t, 2*time.Second)

	calls := shared.Bed(t).Gateway.Calls("UpdateStage")
	sent := time.Now()
	done := sendRollback(r, run, "alice")
	// Kill the worker while "restore the stage" waits for the gateway's answer.
	for deadline := time.Now().Add(time.Minute); shared.Bed(t).Gateway.Calls("UpdateStage") == calls; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the rollback never called UpdateStage")
		}
	}
	w.kill()
	w.start(t)
	defer w.kill()
	a := <-done
	waited := time.Since(sent)
	rep := a.report
	if a.err != nil || !rep.Verified {
		t.Fatalf("rollback after a crash: %+v, %v", rep, a.err)
	}
	if rep.Latency < waited-time.Second || rep.Latency > waited {
		t.Errorf("report latency %s, but the operator waited %s", rep.Latency, waited)
	}
	if rep.WaitedForWorker < 10*time.Second || rep.Steps[0].Attempts < 2 || rep.Steps[0].WaitedForWorker != rep.WaitedForWorker {
		t.Errorf("the report does not say the rollback waited for a worker: %+v", rep)
	}
	// The restarted worker finished the rollback and recorded its latency (tally reports every
	// second).
	var sum float64
	var count uint64
	for deadline := time.Now().Add(15 * time.Second); count == 0 && time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
		if f := scrape(t, w.metrics)["rollgate_rollback_latency_seconds"]; f != nil {
			for _, m := range f.Metric {
				sum, count = m.Histogram.GetSampleSum(), m.Histogram.GetSampleCount()
			}
		}
	}
	if count != 1 || sum < rep.Latency.Seconds()-0.001 || sum > rep.Latency.Seconds()+0.001 {
		t.Errorf("rollgate_rollback_latency_seconds: %d samples, sum %.3fs; the report says %s", count, sum, rep.Latency)
	}
	t.Logf("request to report %s; report latency %s, of which %s waiting for a worker", waited, rep.Latency, rep.WaitedForWorker)
}
