package workflows

import (
	"errors"
	"fmt"
	"maps"
	"time"

	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/rollgate/rollgate/activities"
	"github.com/rollgate/rollgate/internal/analysis"
	"github.com/rollgate/rollgate/internal/gateway"
	"github.com/rollgate/rollgate/internal/spec"
)

// Typed nil pointers: workflows name activities through their methods, so a rename is a compile
// error.
var (
	gw     *activities.Gateway
	keysA  *activities.Keys
	tokA   *activities.Tokens
	health *activities.Health
	notify *activities.Notify
	rel    *activities.Releases
)

// deployment is one release's state; every field is derived deterministically from history.
type deployment struct {
	progress          // status, timeline, logger
	saga     saga     // what to undo, and the rollback's report
	notes    notifier // the spec's webhook

	spec     spec.DeploySpec
	target   activities.Target
	issuer   activities.Issuer
	snapshot activities.GatewaySnapshot
	key      activities.KeyState
	version  int // the key version the release signs with
	canaryID string
	reissued []activities.Issued
	// baseline is each analysis metric over the whole stage before the release, for the watch.
	baseline []analysis.Measurement

	cancelRun  workflow.CancelFunc
	cancelBake workflow.CancelFunc
	rollback   *OperatorRequest
	requested  time.Time
	promoteNow bool
	skipStep   bool
}

// Deployment releases spec.Release to the stage in canary steps, each proven by token health
// before the next begins, and rolls everything back when a step fails, the health breaks, or an
// operator asks.
func Deployment(ctx workflow.Context, s spec.DeploySpec) (DeployResult, error) {
	s.Normalize()
	rules := spec.RulesBounded
	if workflow.GetVersion(ctx, changeReleaseLabelRule, workflow.DefaultVersion, 1) == 1 {
		rules = spec.RulesReleaseLabel
	}
	if analysisRules(ctx, s) == spec.RulesAnalysis {
		rules = spec.RulesAnalysis // which include the release label's rule
	}
	current := func() error { return s.ValidateWith(rules) }
	if err := checkInput(ctx, current, func() error { return s.ValidateWith(spec.RulesOriginal) }); err != nil {
		return DeployResult{}, err
	}
	d := newDeployment(ctx, s)
	if err := d.setup(ctx); err != nil {
		return DeployResult{}, err
	}
	runCtx, cancel := workflow.WithCancel(ctx)
	d.cancelRun = cancel
	err := d.run(runCtx)

	result := DeployResult{ReleaseDeploymentID: d.canaryID, KeyVersion: d.version, Reissued: d.reissued, Analysis: d.status.Analysis}
	if err == nil && d.rollback == nil {
		d.enter(ctx, PhasePromoted, "release promoted")
		result.Outcome = OutcomePromoted
		d.notes.send(ctx, fmt.Sprintf("%s: release %s promoted on %s/%s (key version %d)", s.Service, d.canaryID, s.Gateway.APIID, s.Gateway.Stage, d.version))
	} else {
		trigger, req := d.trigger(ctx, err)
		d.notes.send(ctx, fmt.Sprintf("%s: rolling back %s/%s (%s, by %s): %s", s.Service, s.Gateway.APIID, s.Gateway.Stage, trigger, req.Actor, req.Reason))
		report := d.saga.rollBack(ctx, d.requested, trigger, req, d.rollbackCheck())
		result.Outcome, result.Rollback = OutcomeRolledBack, report
		d.notes.send(ctx, fmt.Sprintf("%s: rolled back %s/%s in %s; verified: %v", s.Service, s.Gateway.APIID, s.Gateway.Stage, report.Latency, report.Verified))
	}
	result.Timeline = d.status.Timeline
	countOutcome(ctx, MetricDeployments, s.Service, result.Outcome)
	// Let notifications go out (a failing webhook never holds anything up for long) and the
	// rollback update handlers return their report before the workflow closes.
	d.notes.flush(ctx)
	d.letLateRollbacksJoin(ctx)
	dctx, _ := workflow.NewDisconnectedContext(ctx)
	_ = workflow.Await(dctx, func() bool { return workflow.AllHandlersFinished(dctx) })
	if errors.Is(ctx.Err(), workflow.ErrCanceled) {
		return result, temporal.NewCanceledError(result)
	}
	return result, nil
}

func newDeployment(ctx workflow.Context, s spec.DeploySpec) *deployment {
	logger := log.With(workflow.GetLogger(ctx), "service", s.Service, "api", s.Gateway.APIID, "stage", s.Gateway.Stage)
	d := &deployment{
		progress: progress{status: Status{Steps: len(s.Canary.Steps)}, logger: logger},
		notes:    notifier{webhook: s.Notify.Webhook, logger: logger},
		spec:     s,
		target:   targetOf(s),
		issuer: activities.Issuer{
			URL: s.Auth.Issuer, Audiences: s.Auth.Audiences, Key: activities.KeyRef{Name: s.Auth.TransitKey, Type: s.Auth.KeyType},
			Algorithm: s.Auth.Algorithm, Bucket: s.Auth.JWKSBucket, Prefix: s.Auth.JWKSPrefix, CacheTTL: s.Auth.VerifierCacheTTL.D(),
		},
	}
	d.saga.p = &d.progress
	return d
}

// rollbackCheck is the state before the release, for the rollback's verification.
func (d *deployment) rollbackCheck() rollbackCheck {
	return rollbackCheck{target: d.target, snapshot: d.snapshot, issuer: d.issuer, labels: d.key.Labels, version: d.version}
}

// targetOf names the stage; REST stays the zero kind so recorded histories keep their payloads.
func targetOf(s spec.DeploySpec) activities.Target {
	t := activities.Target{APIID: s.Gateway.APIID, Stage: s.Gateway.Stage}
	if s.Gateway.Kind != gateway.KindREST {
		t.Kind = s.Gateway.Kind
	}
	return t
}

// trigger decides what started a rollback.
func (d *deployment) trigger(ctx workflow.Context, err error) (string, OperatorRequest) {
	if d.rollback != nil {
		return TriggerOperator, *d.rollback
	}
	return failureTrigger(ctx, err)
}

func (d *deployment) run(ctx workflow.Context) error {
	s := d.spec
	preflight := "preflight: reading the stage, authorizer and key"
	if d.spec.Actor != "" || d.spec.Reason != "" {
		preflight = fmt.Sprintf("release requested by %s: %s; %s", or(d.spec.Actor, "unknown"), or(d.spec.Reason, "no reason given"), preflight)
	}
	d.enter(ctx, PhasePreflight, preflight)
	if err := d.checkAnalysis(ctx); err != nil {
		return err
	}
	if err := workflow.ExecuteActivity(controlPlane(short(ctx)), gw.SnapshotGateway, activities.SnapshotInput{Target: d.target, AuthorizerID: s.Auth.AuthorizerID}).Get(ctx, &d.snapshot); err != nil {
		return err
	}
	if workflow.GetVersion(ctx, changeReleaseVariableInUse, workflow.DefaultVersion, 1) == 1 {
		if err := checkReleaseVariable(s, d.snapshot.Stage); err != nil {
			return err
		}
	}
	if err := workflow.ExecuteActivity(short(ctx), keysA.SnapshotKey, d.issuer.Key).Get(ctx, &d.key); err != nil {
		return err
	}
	d.version = d.key.Labels.Current
	d.status.KeyLatest = d.version
	if err := d.checkTokens(ctx, "preflight: current-key tokens accepted", []int{d.key.Labels.Current}); err != nil {
		return err
	}
	d.event(ctx, fmt.Sprintf("snapshot: deployment %s, key %s labels %+v", d.snapshot.Stage.DeploymentID, s.Auth.TransitKey, d.key.Labels))
	if err := d.measureBaseline(ctx); err != nil {
		return err
	}

	if s.Auth.RotateKey {
		d.enter(ctx, PhasePreparingKey, "rotating the signing key in Vault")
		if err := workflow.ExecuteActivity(short(ctx), keysA.PrepareKey, activities.PrepareInput{Key: d.issuer.Key, ExpectedLatest: d.key.Latest}).Get(ctx, &d.version); err != nil {
			return err
		}
		snapshotLabels := d.key.Labels
		d.saga.restoreLabels(d.issuer.Key.Name, snapshotLabels)
		d.status.KeyLatest = d.version
		d.event(ctx, fmt.Sprintf("key version %d labelled pending", d.version))

		if err := publishAndWaitForCaches(ctx, &d.progress, &d.saga, publishStep{
			issuer: d.issuer, versions: append(snapshotLabels.Published(), d.version), before: snapshotLabels.Published(),
			revoke: s.Auth.OnRollback == "revoke", announce: "publishing the JWKS with the pending key",
			waiting: "waiting %s for verifier caches to fetch the new JWKS",
		}); err != nil {
			return err
		}
	}

	if len(s.Auth.AuthorizerPatch) > 0 {
		d.enter(ctx, PhaseAuthorizer, "applying the new authorizer configuration")
		if err := workflow.ExecuteActivity(controlPlane(short(ctx)), gw.ApplyAuthorizer, activities.AuthorizerInput{Target: d.target, AuthorizerID: s.Auth.AuthorizerID, Settings: s.Auth.AuthorizerPatch}).Get(ctx, nil); err != nil {
			return err
		}
		d.saga.restoreAuthorizer(d.target, d.snapshot)
	}
	if err := d.checkTokens(ctx, "pending-key and current-key tokens accepted", d.probeVersions()); err != nil {
		return err
	}

	if err := d.canarySteps(ctx); err != nil {
		return err
	}
	return d.promote(ctx)
}

// probeVersions are the key versions whose tokens must keep working: current, and the release's.
func (d *deployment) probeVersions() []int { return probeVersions(d.key.Labels.Current, d.version) }

// checkTokens probes the stage with tokens of the versions and fails the step unless every probe
// is accepted.
func (d *deployment) checkTokens(ctx workflow.Context, what string, versions []int) error {
	return checkTokens(ctx, &d.progress, what, d.target, d.issuer, versions)
}

func (d *deployment) canarySteps(ctx workflow.Context) error {
	s := d.spec
	for i, step := range s.Canary.Steps {
		// An early promote skips the remaining steps once the canary exists; asked for before
		// that, the release still goes through its first step's canary and token check.
		if d.promoteNow && (d.canaryID != "" || workflow.GetVersion(ctx, changePromoteBeforeCanary, workflow.DefaultVersion, 1) == workflow.DefaultVersion) {
			d.event(ctx, "operator promoted early: skipping the remaining steps")
			break
		}
		if err := d.waitWhilePaused(ctx); err != nil {
			return err
		}
		d.status.Step, d.status.Weight = i+1, step.Weight
		d.enter(ctx, PhaseCanary, fmt.Sprintf("canary step %d of %d: %v%% of traffic", i+1, len(s.Canary.Steps), step.Weight))
		stepCtx := d.stepDeadline(ctx, step)
		if i == 0 {
			run := workflow.GetInfo(ctx).WorkflowExecution
			in := activities.CanaryInput{Target: d.target, DeploymentID: s.Release.DeploymentID, Weight: step.Weight, Variables: s.Release.Variables,
				Marker: "rollgate " + run.ID + " " + run.RunID}
			label := ""
			if workflow.GetVersion(ctx, changeReleaseVariable, workflow.DefaultVersion, 1) == 1 {
				in.Variables, label = withReleaseVariable(s.Release.Variables, s.Gateway.ReleaseVariableName(), run.RunID)
			}
			if err := workflow.ExecuteActivity(controlPlane(short(stepCtx)), gw.StartCanary, in).Get(ctx, &d.canaryID); err != nil {
				return err
			}
			d.saga.restoreStage(d.target, d.snapshot)
			if label != "" {
				d.status.Release = label
				d.event(ctx, fmt.Sprintf("canary deployment %s started; its traffic is counted as release %s (stage variable %s)", d.canaryID, label, s.Gateway.ReleaseVariableName()))
			} else {
				d.event(ctx, "canary deployment "+d.canaryID+" started")
			}
		} else if err := workflow.ExecuteActivity(controlPlane(short(stepCtx)), gw.SetCanaryWeight, activities.WeightInput{Target: d.target, Weight: step.Weight}).Get(ctx, nil); err != nil {
			return err
		}
		if err := d.checkTokens(stepCtx, fmt.Sprintf("step %d: release tokens accepted through the canary", i+1), d.probeVersions()); err != nil {
			return err
		}
		if err := d.bake(stepCtx, step); err != nil {
			return err
		}
	}
	return nil
}

// changeReleaseLabelRule: a release label the spec sets itself must be one the authorizer counts
// (spec.RulesReleaseLabel); runs started before validate with the rules they ran under.
const changeReleaseLabelRule = "release-label-rule"

// changeReleaseVariableInUse: a release variable naming a stage variable that holds something
// else than a release label is refused once the stage is read (checkReleaseVariable).
const changeReleaseVariableInUse = "release-variable-in-use"

// checkReleaseVariable refuses a release variable the stage already uses for something else (a
// backend URL, a flag): the release would overwrite it with its run id, in the canary and, once
// promoted, on the stage. A value the spec sets itself is the operator's choice and spec-checked.
// The error leaves the value out: stage variables may hold what the timeline should not.
func checkReleaseVariable(s spec.DeploySpec, stage gateway.Stage) error {
	name := s.Gateway.ReleaseVariableName()
	if _, set := s.Release.Variables[name]; set {
		return nil
	}
	if v := stage.Variables[name]; v != "" && !spec.IsReleaseLabel(v) {
		msg := fmt.Sprintf("gateway.releaseVariable %q: the stage's variable of that name holds something else than a release label (%s); name another variable", name, spec.ReleaseLabelPattern)
		return temporal.NewNonRetryableApplicationError(msg, ErrInvalidSpec, nil)
	}
	return nil
}

// changeReleaseVariable: the canary's stage variable overrides (and so the stage's variables
// after promotion) carry the release's label, the variable a REQUEST authorizer counts each
// verification under, so that canary traffic can be told from stable traffic.
const changeReleaseVariable = "release-variable"

// withReleaseVariable is the release's variables with name set to the run's id, the release's
// label. A value the spec sets itself is kept: the operator chose the label.
func withReleaseVariable(vars map[string]string, name, runID string) (map[string]string, string) {
	if v, ok := vars[name]; ok {
		return vars, v
	}
	out := make(map[string]string, len(vars)+1)
	maps.Copy(out, vars)
	out[name] = runID
	return out, runID
}

// changePromoteBeforeCanary: a promote asked for before the canary exists creates it first
// (before, it tried to promote a canary that did not exist), and a promote asked for before a
// step's bake starts skips that bake (before, the bake ran its full length).
const changePromoteBeforeCanary = "promote-before-canary"

// stepDeadline bounds every activity of a canary step by the step's timeout.
func (d *deployment) stepDeadline(ctx workflow.Context, step spec.Step) workflow.Context {
	timeout := d.spec.Canary.StepTimeout.D()
	if timeout == 0 {
		timeout = step.Bake.D() + 10*time.Minute
	}
	return workflow.WithScheduleToCloseTimeout(ctx, timeout)
}

// bake runs the step's probes, and measures its analysis metrics, in one heartbeating activity;
// an operator's promote or skip-step cancels it early. A step whose analysis is inconclusive
// bakes again once an operator resumes it.
func (d *deployment) bake(ctx workflow.Context, step spec.Step) error {
	if d.promoteNow && workflow.GetVersion(ctx, changePromoteBeforeCanary, workflow.DefaultVersion, 1) == 1 {
		d.event(ctx, "operator promoted early: bake skipped")
		return nil
	}
	for {
		js, err := d.bakeOnce(ctx, step)
		if err != nil {
			return err
		}
		again, err := d.judgeBake(ctx, js)
		if err != nil || !again {
			return err
		}
	}
}

// bakeOnce runs the bake activity once and acts on its probes; it returns the analysis
// judgements for judgeBake.
func (d *deployment) bakeOnce(ctx workflow.Context, step spec.Step) ([]analysis.Judgement, error) {
	c := d.spec.Canary
	d.enter(ctx, PhaseBaking, fmt.Sprintf("baking %s with probes every %s", step.Bake.D(), c.ProbeInterval.D()))
	d.status.BakeEnds = workflow.Now(ctx).Add(step.Bake.D())
	defer func() { d.status.BakeEnds = time.Time{} }()
	bakeCtx, cancel := workflow.WithCancel(ctx)
	d.cancelBake = cancel
	defer func() { d.cancelBake = nil }()
	bakeCtx = workflow.WithActivityOptions(bakeCtx, workflow.ActivityOptions{
		StartToCloseTimeout: step.Bake.D() + 5*time.Minute,
		// The SDK sends heartbeats at most every 80% of this timeout, and an activity learns of its
		// cancellation from a heartbeat, so keep it short. The workflow does not wait for the bake
		// to acknowledge a cancellation: a rollback starts at once.
		HeartbeatTimeout: bakeHeartbeat(c.ProbeInterval.D()),
		RetryPolicy:      probeRetry(ctx, &temporal.RetryPolicy{InitialInterval: time.Second, MaximumAttempts: 5}),
	})
	var res activities.BakeResult
	err := workflow.ExecuteActivity(bakeCtx, health.Bake, activities.BakeInput{
		Probe:    activities.ProbeInput{Target: d.target, Issuer: d.issuer, Versions: d.probeVersions()},
		Duration: step.Bake.D(), Interval: c.ProbeInterval.D(),
		MaxRejectionRatio: c.MaxRejectionRatio, Max5xxRatio: c.Max5xxRatio, MinProbes: c.MinProbes,
		Analysis: d.analysisInput(),
	}).Get(ctx, &res)
	d.status.Probes = res.ProbeResult
	switch {
	case err != nil && (d.promoteNow || d.skipStep) && temporal.IsCanceledError(err):
	case err != nil:
		return nil, err
	}
	if d.skipStep {
		d.skipStep = false
		d.event(ctx, "operator skipped the rest of this step's bake")
	}
	if res.Breach != "" {
		d.status.Breach = res.Breach
		if c.AutoRollback {
			return nil, temporal.NewNonRetryableApplicationError("health breach during bake: "+res.Breach, ErrHealthBreach, nil)
		}
		d.status.Paused = true
		d.event(ctx, "health breach during bake ("+res.Breach+"); automatic rollback is off: paused for an operator")
		return nil, d.waitWhilePaused(ctx)
	}
	d.event(ctx, fmt.Sprintf("bake done: %d probes, %d rejected, %d 5xx", res.Probes, res.Rejected, res.ServerErrors))
	return res.Analysis, nil
}

func (d *deployment) waitWhilePaused(ctx workflow.Context) error {
	if !d.status.Paused {
		return nil
	}
	return workflow.Await(ctx, func() bool { return !d.status.Paused || d.promoteNow })
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
