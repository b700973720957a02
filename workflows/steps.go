package workflows

import (
	"errors"
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/rollgate/rollgate/activities"
)

// Steps that more than one workflow takes; each takes what it needs, tells the workflow's
// progress, and pushes its compensation on the workflow's saga once it succeeded.

// Activity options per kind.
func short(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: 20 * time.Second,
			MaximumAttempts: 8, NonRetryableErrorTypes: []string{activities.ErrTypeInvalid, activities.ErrTypeNotFound}},
	})
}

// controlPlane puts an activity that calls the gateway's control plane on the gateway task queue,
// where the worker paces such activities for every release at once under API Gateway's
// account-wide control-plane quota. Probes and bakes stay off it: they reach the data plane.
func controlPlane(ctx workflow.Context) workflow.Context {
	return onControlQueue(ctx, GatewayTaskQueue)
}

// rollbackControlPlane is controlPlane for what cannot wait: a rollback's compensations and
// verification, and the cache flushes that make a revocation or a key retirement take effect. A
// queue paced on its own, so that they never wait behind the control-plane calls of releases going
// forward, while a mass rollback still cannot storm the control plane.
func rollbackControlPlane(ctx workflow.Context) workflow.Context {
	return onControlQueue(ctx, RollbackGatewayTaskQueue)
}

func onControlQueue(ctx workflow.Context, queue func(string) string) workflow.Context {
	if workflow.GetVersion(ctx, changeGatewayTaskQueue, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		return ctx
	}
	opts := workflow.GetActivityOptions(ctx)
	opts.TaskQueue = queue(workflow.GetInfo(ctx).TaskQueueName)
	return workflow.WithActivityOptions(ctx, opts)
}

// changeGatewayTaskQueue: control-plane activities moved from the workflow's task queue to the
// gateway task queues.
const changeGatewayTaskQueue = "gateway-task-queue"

func probing(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 2 * time.Minute,
		RetryPolicy:         probeRetry(ctx, &temporal.RetryPolicy{InitialInterval: time.Second, MaximumAttempts: 3}),
	})
}

// changePatientProbes: a probe or a bake that fails with an error, rather than with what the
// stage answered, is retried for about a minute before the release rolls back. Such an error
// (Vault sealed, so no probe token can be signed; the registry or the stage unreachable) says
// nothing about the release, and a rollback needs the same Vault. Recorded histories gave a token
// check 3 attempts within about 3 s and a bake 5 within about 15 s.
const changePatientProbes = "patient-probes"

// probeRetry is the retry policy of a probe or bake: 1, 2, 4, 8 s apart, then every 10 s, 10
// attempts (a minute of waiting, plus the attempts); legacy for runs recorded before.
func probeRetry(ctx workflow.Context, legacy *temporal.RetryPolicy) *temporal.RetryPolicy {
	if workflow.GetVersion(ctx, changePatientProbes, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		return legacy
	}
	return &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: 10 * time.Second, MaximumAttempts: 10}
}

// failureTrigger decides what made a workflow fail, for its rollback.
func failureTrigger(ctx workflow.Context, err error) (string, OperatorRequest) {
	var timeout *temporal.TimeoutError
	var app *temporal.ApplicationError
	switch {
	case errors.Is(ctx.Err(), workflow.ErrCanceled):
		return TriggerCancelled, OperatorRequest{Actor: "temporal", Reason: "workflow cancelled"}
	case errors.As(err, &timeout):
		return TriggerStepTimeout, OperatorRequest{Actor: "rollgate", Reason: err.Error()}
	case errors.As(err, &app) && app.Type() == ErrHealthBreach:
		return TriggerHealth, OperatorRequest{Actor: "rollgate", Reason: app.Message()}
	case errors.As(err, &app) && app.Type() == ErrAnalysisFailed:
		return TriggerAnalysis, OperatorRequest{Actor: "rollgate", Reason: app.Message()}
	case errors.As(err, &app) && app.Type() == ErrPostPromotionBreach:
		return TriggerPostPromotion, OperatorRequest{Actor: "rollgate", Reason: app.Message()}
	default:
		return TriggerActivityFailure, OperatorRequest{Actor: "rollgate", Reason: fmt.Sprint(err)}
	}
}

// probeVersions are the key versions whose tokens must keep working: current, and the new one.
func probeVersions(current, version int) []int {
	if version != current {
		return []int{current, version}
	}
	return []int{version}
}

// checkTokens probes the target with tokens of the versions and fails the step unless every probe
// is accepted.
func checkTokens(ctx workflow.Context, p *progress, what string, target activities.Target, issuer activities.Issuer, versions []int) error {
	var res activities.ProbeResult
	if err := workflow.ExecuteActivity(probing(ctx), health.Probe, activities.ProbeInput{Target: target, Issuer: issuer, Versions: versions, Rounds: 3}).Get(ctx, &res); err != nil {
		return err
	}
	p.status.Probes = res
	if !res.Healthy() {
		msg := fmt.Sprintf("token health check failed (%s): %d of %d accepted, %d rejected, %d 5xx", what, res.Accepted, res.Probes, res.Rejected, res.ServerErrors)
		return temporal.NewNonRetryableApplicationError(msg, ErrHealthBreach, nil)
	}
	p.event(ctx, fmt.Sprintf("%s: %d of %d probes", what, res.Accepted, res.Probes))
	return nil
}

// publishStep publishes a pending key version before it signs.
type publishStep struct {
	issuer   activities.Issuer
	versions []int // published from now on
	before   []int // published before; a rollback publishes them again
	revoke   bool  // tokens of the pending version stop working if the workflow rolls back
	announce string
	waiting  string // timeline text while verifier caches refresh; %s is their TTL
}

// publishAndWaitForCaches publishes the JWKS with the pending version, then waits the verifier
// cache TTL, so that no verifier rejects a token of the version once it signs.
func publishAndWaitForCaches(ctx workflow.Context, p *progress, sg *saga, in publishStep) error {
	p.enter(ctx, PhasePublishing, in.announce)
	if err := workflow.ExecuteActivity(short(ctx), tokA.PublishJWKS, activities.PublishInput{Issuer: in.issuer, Versions: in.versions}).Get(ctx, nil); err != nil {
		return err
	}
	if in.revoke {
		sg.republishJWKS(in.issuer, in.before)
	}
	if ttl := in.issuer.CacheTTL; ttl > 0 {
		p.event(ctx, fmt.Sprintf(in.waiting, ttl))
		if err := workflow.Sleep(ctx, ttl); err != nil {
			return err
		}
	}
	return nil
}

// reissueStep gives clients tokens of the new signing version.
type reissueStep struct {
	issuer   activities.Issuer
	version  int // signs the new tokens
	previous int // a rollback gives the clients tokens of this version again
	clients  []string
	ttl      time.Duration
	reason   string
	revoke   bool               // a rollback revokes the new tokens
	proof    *activities.Target // where every new token must be accepted; nil: not proven
}

// reissueAndProve reissues the clients' tokens and proves the gateway accepts every one. It
// returns the reissued tokens, also when the proof fails.
func reissueAndProve(ctx workflow.Context, p *progress, sg *saga, in reissueStep) ([]activities.Issued, error) {
	p.enter(ctx, PhaseReissuing, fmt.Sprintf("reissuing tokens for %d clients", len(in.clients)))
	var issued []activities.Issued
	if err := workflow.ExecuteActivity(short(ctx), tokA.ReissueTokens, activities.ReissueInput{
		Issuer: in.issuer, Version: in.version, Clients: in.clients, TTL: in.ttl, Reason: in.reason,
	}).Get(ctx, &issued); err != nil {
		return issued, err
	}
	sg.reissuePrevious(ctx, reissueUndo{issuer: in.issuer, issued: issued, previous: in.previous, clients: in.clients, ttl: in.ttl, revoke: in.revoke, stage: in.proof})
	if in.proof == nil {
		return issued, nil
	}
	var res activities.ProbeResult
	if err := workflow.ExecuteActivity(probing(ctx), health.ProbeClients, activities.ClientsInput{Target: *in.proof, Clients: in.clients}).Get(ctx, &res); err != nil {
		return issued, err
	}
	if !res.Healthy() {
		return issued, temporal.NewNonRetryableApplicationError(fmt.Sprintf("reissued tokens: %d of %d accepted at the gateway", res.Accepted, res.Probes), ErrHealthBreach, nil)
	}
	p.event(ctx, fmt.Sprintf("every reissued token accepted at the gateway (%d)", res.Accepted))
	return issued, nil
}

// scheduleRetirement starts a KeyRetirement workflow that outlives this one: the previous version
// retires after the token TTL plus the verifier cache TTL, and the stages in flush have their
// authorizer caches flushed then.
func scheduleRetirement(ctx workflow.Context, p *progress, issuer activities.Issuer, prev int, tokenTTL time.Duration, flush []activities.Target) error {
	after := tokenTTL + issuer.CacheTTL
	cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		// One retirement per schedule: a version can be scheduled again (rotated away, rolled back
		// to, rotated away again), and each retirement checks the tokens before it acts.
		WorkflowID:        fmt.Sprintf("retire/%s/v%d/%s", issuer.Key.Name, prev, workflow.GetInfo(ctx).WorkflowExecution.RunID),
		ParentClosePolicy: enumspb.PARENT_CLOSE_POLICY_ABANDON,
	})
	child := workflow.ExecuteChildWorkflow(cctx, KeyRetirement, KeyRetirementInput{Issuer: issuer, Version: prev, After: after, Flush: flush})
	if err := child.GetChildWorkflowExecution().Get(ctx, nil); err != nil {
		return err
	}
	p.event(ctx, fmt.Sprintf("key version %d retires in %s (token TTL + verifier cache TTL)", prev, after))
	return nil
}
