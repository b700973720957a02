package workflows

import (
	"errors"
	"fmt"
	"reflect"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/rollgate/rollgate/activities"
	"github.com/rollgate/rollgate/internal/keys"
)

// changeWatchableRollback: compensations and verification run as regular activities, each in a
// workflow task of its own, so that the status query is answered while a rollback runs (a query
// waits for the workflow task in flight); the workflow retries an attempt that no worker finished
// in time and counts that time as waiting for a worker; a rolled-back deployment stays open for
// joinWindow so that rollback requests sent during the rollback join it. Recorded histories ran
// every compensation as a local activity, all in the task that accepted the request.
const changeWatchableRollback = "watchable-rollback"

// rollBack runs the compensations of the completed steps in reverse order on a disconnected
// context (so cancelling the workflow cannot skip them), each retried until it succeeds, then
// verifies the snapshot state is back and records the RollbackReport.
func (d *deployment) rollBack(ctx workflow.Context, trigger string, req OperatorRequest) {
	dctx, _ := workflow.NewDisconnectedContext(ctx)
	d.watchable = workflow.GetVersion(dctx, changeWatchableRollback, workflow.DefaultVersion, 1) == 1
	started := d.requested
	if started.IsZero() {
		started = workflow.Now(dctx)
	}
	d.enter(dctx, PhaseRollingBack, fmt.Sprintf("rolling back (%s, by %s): %s", trigger, req.Actor, req.Reason))
	report := &RollbackReport{Trigger: trigger, Actor: req.Actor, Reason: req.Reason, StartedAt: started}
	d.status.Compensations = make([]CompensationStatus, len(d.comps))
	for i := range d.comps {
		d.status.Compensations[i] = CompensationStatus{Name: d.comps[len(d.comps)-1-i].name, State: CompensationPending}
	}
	cctx := d.compensating(dctx)
	for i := range d.status.Compensations {
		step := d.runCompensation(cctx, d.comps[len(d.comps)-1-i], &d.status.Compensations[i])
		report.Steps = append(report.Steps, step)
		report.WaitedForWorker += step.WaitedForWorker
	}
	report.Problems = d.verifyRollback(dctx)
	report.Verified = len(report.Problems) == 0
	report.FinishedAt = workflow.Now(dctx)
	report.Latency = report.FinishedAt.Sub(report.StartedAt)
	d.report, d.status.Rollback = report, report
	recordRollback(dctx, report)
	d.enter(dctx, PhaseRolledBack, fmt.Sprintf("rolled back in %s; verified: %v", report.Latency, report.Verified))
}

// runCompensation runs one compensation, keeping its line of the status up to date.
func (d *deployment) runCompensation(ctx workflow.Context, c compensation, st *CompensationStatus) StepReport {
	t0 := workflow.Now(ctx)
	st.State, st.Started = CompensationRunning, t0
	d.running = st
	err := c.run(ctx)
	d.running = nil
	st.Duration = workflow.Now(ctx).Sub(t0)
	step := StepReport{Name: c.name, Duration: st.Duration, Attempts: st.Attempts, WaitedForWorker: st.WaitedForWorker}
	st.State = CompensationDone
	if err != nil { // only a non-retryable error ends the retries; verification will say what is left
		step.Error, st.Error, st.State = err.Error(), err.Error(), CompensationFailed
		d.logger.Error("compensation failed", "step", c.name, "error", err)
	}
	d.event(ctx, "compensated: "+c.name)
	return step
}

// compensationAttempt bounds one attempt of a compensation's activity in a watchable rollback.
// Each is one or a few API calls; an attempt that takes longer ran on a worker that crashed or
// hung, and is retried.
const compensationAttempt = 20 * time.Second

// compensating sets the options compensations run with. Recorded histories ran them as local
// activities retried until they succeed (a compensation with bulk work as a regular, heartbeating
// activity); a watchable rollback runs regular activities, one attempt at a time (see undo).
func (d *deployment) compensating(ctx workflow.Context) workflow.Context {
	if d.watchable {
		return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: compensationAttempt})
	}
	ctx = workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		StartToCloseTimeout: time.Minute,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: 200 * time.Millisecond, BackoffCoefficient: 2, MaximumInterval: 30 * time.Second}, // unlimited attempts
	})
	return bulkCompensation(ctx)
}

// bulkCompensation is for a compensation with bulk work (reissuing tokens): a regular,
// heartbeating activity.
func bulkCompensation(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 10 * time.Minute,
		HeartbeatTimeout:    30 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: 30 * time.Second},
	})
}

// undo runs one activity of a compensation until it succeeds or fails for good. In a watchable
// rollback the workflow makes each attempt itself, so that it learns which attempts timed out
// (no worker finished them) and can say how long the rollback waited for a worker; a
// non-retryable error ends the retries. Recorded histories ran it as a local activity (or, for
// bulk work, a regular activity retried by the server).
func (d *deployment) undo(ctx workflow.Context, local bool, activity any, arg any) error {
	switch {
	case !d.watchable && local:
		return workflow.ExecuteLocalActivity(ctx, activity, arg).Get(ctx, nil)
	case !d.watchable:
		return workflow.ExecuteActivity(ctx, activity, arg).Get(ctx, nil)
	}
	opts := workflow.GetActivityOptions(ctx)
	opts.RetryPolicy = &temporal.RetryPolicy{MaximumAttempts: 1}
	actx := workflow.WithActivityOptions(ctx, opts)
	for backoff := 200 * time.Millisecond; ; backoff = min(2*backoff, 30*time.Second) {
		t0 := workflow.Now(ctx)
		if d.running != nil {
			d.running.Attempts++
		}
		err := workflow.ExecuteActivity(actx, activity, arg).Get(ctx, nil)
		var timeout *temporal.TimeoutError
		var app *temporal.ApplicationError
		switch {
		case err == nil:
			return nil
		case errors.As(err, &timeout) && d.running != nil:
			d.running.WaitedForWorker += workflow.Now(ctx).Sub(t0)
		case errors.As(err, &app) && app.NonRetryable():
			return err
		}
		d.logger.Warn("compensation attempt failed; retrying", "error", err, "backoff", backoff)
		if err := workflow.Sleep(ctx, backoff); err != nil {
			return err
		}
	}
}

// verifyRollback proves the snapshot state is back: stage deployment and variables, no canary,
// authorizer settings, key labels, current-key tokens accepted and revoked tokens rejected. The
// checks are independent and run at once. It returns every problem found.
func (d *deployment) verifyRollback(ctx workflow.Context) []string {
	retry := &temporal.RetryPolicy{InitialInterval: 200 * time.Millisecond, MaximumAttempts: 3}
	vctx := workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{StartToCloseTimeout: time.Minute, RetryPolicy: retry})
	vctx = workflow.WithActivityOptions(vctx, workflow.ActivityOptions{StartToCloseTimeout: compensationAttempt, RetryPolicy: retry})
	exec := workflow.ExecuteLocalActivity
	if d.watchable { // a query is answered while the checks run
		exec = workflow.ExecuteActivity
	}
	// A key rotation outside a release has no stage of its own to restore, and proves token
	// health only where it was given a stage to probe.
	staged := d.target.APIID != ""
	var stage, labelsF, probeF, revokedF workflow.Future
	if staged && d.snapshot.Stage.DeploymentID+d.snapshot.Authorizer.ID != "" {
		stage = exec(vctx, gw.VerifyRestored, activities.RestoreInput{Target: d.target, Snapshot: d.snapshot})
	}
	keyed := d.key.Labels.Current != 0
	if keyed {
		labelsF = exec(vctx, keysA.ReadLabels, d.issuer.Key.Name)
	}
	if keyed && staged {
		probeF = exec(vctx, health.Probe, activities.ProbeInput{Target: d.target, Issuer: d.issuer, Versions: []int{d.key.Labels.Current}, Rounds: 3})
		// An HTTP API's JWT authorizer cannot consult revocations: there, a revoked token stops
		// working only once its key leaves the JWKS that the authorizer caches.
		if d.target.Describe().ConsultsDenyList {
			revokedF = exec(vctx, health.ProbeRevoked, activities.ProbeInput{Target: d.target, Issuer: d.issuer, Versions: []int{d.version}})
		}
	}

	var problems []string
	note := func(what string, err error) { problems = append(problems, fmt.Sprintf("%s: %v", what, err)) }
	if stage != nil {
		var diffs []string
		if err := stage.Get(ctx, &diffs); err != nil {
			note("read the stage", err)
		}
		problems = append(problems, diffs...)
	}
	if !keyed {
		return problems
	}
	var labels keys.Labels
	if err := labelsF.Get(ctx, &labels); err != nil {
		note("read the key labels", err)
	} else if !reflect.DeepEqual(labels, d.key.Labels) {
		problems = append(problems, fmt.Sprintf("key labels are %+v, want %+v", labels, d.key.Labels))
	}
	if probeF == nil {
		return problems
	}
	var res activities.ProbeResult
	if err := probeF.Get(ctx, &res); err != nil {
		note("probe with current-key tokens", err)
	} else if !res.Healthy() {
		problems = append(problems, fmt.Sprintf("current-key tokens: %d of %d accepted", res.Accepted, res.Probes))
	}
	if revokedF == nil {
		return problems
	}
	var rejected bool
	if err := revokedF.Get(ctx, &rejected); err != nil {
		note("probe with a revoked token", err)
	} else if !rejected {
		problems = append(problems, "a revoked token is still accepted")
	}
	return problems
}
