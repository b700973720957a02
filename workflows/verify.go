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

// changePatientVerification: a check that fails with an error (Vault, DynamoDB or the gateway
// unreachable for a while, not a state found wrong) is retried for up to verifyPatience, so that a
// dependency's short outage does not leave a rolled-back release reported unverified. Recorded
// histories gave each check three attempts within a second.
const changePatientVerification = "patient-verification"

// verifyPatience bounds the retries of one check of a rollback's verification.
const verifyPatience = 2 * time.Minute

// rollbackCheck is the state a rollback must bring back, as its verification reads it.
type rollbackCheck struct {
	target   activities.Target // zero for a key rotation without a stage to probe
	snapshot activities.GatewaySnapshot
	issuer   activities.Issuer
	labels   keys.Labels // the key labels before the first step; zero when no key was read
	version  int         // the key version whose tokens a revoke must have stopped
}

// verifyChecks are the verification's activities under way; a nil future is a check that does
// not apply.
type verifyChecks struct {
	stage, labels, probe, revoked workflow.Future
}

// verify proves the snapshot state is back: stage deployment and variables, no canary,
// authorizer settings, key labels, current-key tokens accepted and revoked tokens rejected. The
// checks are independent and run at once. It returns every problem found.
func (c rollbackCheck) verify(ctx workflow.Context, watchable bool) []string {
	retry := &temporal.RetryPolicy{InitialInterval: 200 * time.Millisecond, MaximumAttempts: 3}
	var patience time.Duration // zero: no bound but the attempts
	if workflow.GetVersion(ctx, changePatientVerification, workflow.DefaultVersion, 1) == 1 {
		retry, patience = &temporal.RetryPolicy{InitialInterval: 200 * time.Millisecond, BackoffCoefficient: 2, MaximumInterval: 10 * time.Second}, verifyPatience
	}
	vctx := workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{StartToCloseTimeout: time.Minute, ScheduleToCloseTimeout: patience, RetryPolicy: retry})
	vctx = workflow.WithActivityOptions(vctx, workflow.ActivityOptions{StartToCloseTimeout: compensationAttempt, ScheduleToCloseTimeout: patience, RetryPolicy: retry})
	exec := workflow.ExecuteLocalActivity
	if watchable { // a query is answered while the checks run
		exec = workflow.ExecuteActivity
	}
	return c.collect(ctx, c.start(vctx, exec))
}

// start launches the checks that apply, in a fixed order.
func (c rollbackCheck) start(ctx workflow.Context, exec func(workflow.Context, any, ...any) workflow.Future) verifyChecks {
	// A key rotation outside a release has no stage of its own to restore, and proves token
	// health only where it was given a stage to probe.
	staged := c.target.APIID != ""
	var f verifyChecks
	if staged && c.snapshot.Stage.DeploymentID+c.snapshot.Authorizer.ID != "" {
		f.stage = exec(rollbackControlPlane(ctx), gw.VerifyRestored, activities.RestoreInput{Target: c.target, Snapshot: c.snapshot})
	}
	keyed := c.labels.Current != 0
	if keyed {
		f.labels = exec(ctx, keysA.ReadLabels, c.issuer.Key.Name)
	}
	if keyed && staged {
		f.probe = exec(ctx, health.Probe, activities.ProbeInput{Target: c.target, Issuer: c.issuer, Versions: []int{c.labels.Current}, Rounds: 3})
		// An HTTP API's JWT authorizer cannot consult revocations: there, a revoked token stops
		// working only once its key leaves the JWKS that the authorizer caches.
		if c.target.Describe().ConsultsDenyList {
			f.revoked = exec(ctx, health.ProbeRevoked, activities.ProbeInput{Target: c.target, Issuer: c.issuer, Versions: []int{c.version}})
		}
	}
	return f
}

// collect waits for the checks in the order they started and lists what is not back.
func (c rollbackCheck) collect(ctx workflow.Context, f verifyChecks) []string {
	var problems []string
	note := func(what string, err error) { problems = append(problems, fmt.Sprintf("%s: %v", what, err)) }
	if f.stage != nil {
		var diffs []string
		if err := f.stage.Get(ctx, &diffs); err != nil {
			note("read the stage", err)
		}
		problems = append(problems, diffs...)
	}
	if f.labels == nil {
		return problems
	}
	var labels keys.Labels
	if err := f.labels.Get(ctx, &labels); err != nil {
		note("read the key labels", err)
	} else if !reflect.DeepEqual(labels, c.labels) {
		problems = append(problems, fmt.Sprintf("key labels are %+v, want %+v", labels, c.labels))
	}
	if f.probe == nil {
		return problems
	}
	var res activities.ProbeResult
	if err := f.probe.Get(ctx, &res); err != nil {
		note("probe with current-key tokens", err)
	} else if !res.Healthy() {
		problems = append(problems, fmt.Sprintf("current-key tokens: %d of %d accepted", res.Accepted, res.Probes))
	}
	if f.revoked == nil {
		return problems
	}
	var rejected bool
	if err := f.revoked.Get(ctx, &rejected); err != nil {
		note("probe with a revoked token", err)
	} else if !rejected {
		problems = append(problems, "a revoked token is still accepted")
	}
	return problems
}
