package workflows

import (
	"fmt"
	"reflect"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/rollgate/rollgate/activities"
	"github.com/rollgate/rollgate/internal/keys"
)

// rollBack runs the compensations of the completed steps in reverse order on a disconnected
// context (so cancelling the workflow cannot skip them), each retried until it succeeds, then
// verifies the snapshot state is back and records the RollbackReport.
func (d *deployment) rollBack(ctx workflow.Context, trigger string, req OperatorRequest) {
	dctx, _ := workflow.NewDisconnectedContext(ctx)
	started := d.requested
	if started.IsZero() {
		started = workflow.Now(dctx)
	}
	d.enter(dctx, PhaseRollingBack, fmt.Sprintf("rolling back (%s, by %s): %s", trigger, req.Actor, req.Reason))
	report := &RollbackReport{Trigger: trigger, Actor: req.Actor, Reason: req.Reason, StartedAt: started}
	cctx := compensating(dctx)
	for i := len(d.comps) - 1; i >= 0; i-- {
		c := d.comps[i]
		t0 := workflow.Now(dctx)
		err := c.run(cctx)
		step := StepReport{Name: c.name, Duration: workflow.Now(dctx).Sub(t0)}
		if err != nil { // only a non-retryable error ends the retries; verification will say what is left
			step.Error = err.Error()
			d.logger.Error("compensation failed", "step", c.name, "error", err)
		}
		report.Steps = append(report.Steps, step)
		d.event(dctx, "compensated: "+c.name)
	}
	report.Problems = d.verifyRollback(dctx)
	report.Verified = len(report.Problems) == 0
	report.FinishedAt = workflow.Now(dctx)
	report.Latency = report.FinishedAt.Sub(report.StartedAt)
	d.report, d.status.Rollback = report, report
	recordRollback(dctx, report)
	d.enter(dctx, PhaseRolledBack, fmt.Sprintf("rolled back in %s; verified: %v", report.Latency, report.Verified))
}

// compensating runs compensations as local activities, retried until they succeed: each is a
// few milliseconds of work, and a local activity saves the round trips through the Temporal
// service that would otherwise dominate the rollback latency. A compensation with bulk work sets
// its own (regular, heartbeating) activity options.
func compensating(ctx workflow.Context) workflow.Context {
	ctx = workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		StartToCloseTimeout: time.Minute,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: 200 * time.Millisecond, BackoffCoefficient: 2, MaximumInterval: 30 * time.Second}, // unlimited attempts
	})
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 10 * time.Minute,
		HeartbeatTimeout:    30 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: 30 * time.Second},
	})
}

// verifyRollback proves the snapshot state is back: stage deployment and variables, no canary,
// authorizer settings, key labels, current-key tokens accepted and revoked tokens rejected. The
// checks are independent and run at once. It returns every problem found.
func (d *deployment) verifyRollback(ctx workflow.Context) []string {
	vctx := workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		StartToCloseTimeout: time.Minute,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: 200 * time.Millisecond, MaximumAttempts: 3},
	})
	// A key rotation outside a release has no stage of its own to restore, and proves token
	// health only where it was given a stage to probe.
	staged := d.target.APIID != ""
	var stage, labelsF, probeF, revokedF workflow.Future
	if staged && d.snapshot.Stage.DeploymentID+d.snapshot.Authorizer.ID != "" {
		stage = workflow.ExecuteLocalActivity(vctx, gw.VerifyRestored, activities.RestoreInput{Target: d.target, Snapshot: d.snapshot})
	}
	keyed := d.key.Labels.Current != 0
	if keyed {
		labelsF = workflow.ExecuteLocalActivity(vctx, keysA.ReadLabels, d.issuer.Key.Name)
	}
	if keyed && staged {
		probeF = workflow.ExecuteLocalActivity(vctx, health.Probe, activities.ProbeInput{Target: d.target, Issuer: d.issuer, Versions: []int{d.key.Labels.Current}, Rounds: 3})
		// An HTTP API's JWT authorizer cannot consult revocations: there, a revoked token stops
		// working only once its key leaves the JWKS that the authorizer caches.
		if d.target.Kind != "http" {
			revokedF = workflow.ExecuteLocalActivity(vctx, health.ProbeRevoked, activities.ProbeInput{Target: d.target, Issuer: d.issuer, Versions: []int{d.version}})
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
