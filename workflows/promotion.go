package workflows

import (
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/rollgate/rollgate/activities"
	"github.com/rollgate/rollgate/internal/keys"
)

func (d *deployment) promote(ctx workflow.Context) error {
	s := d.spec
	if err := d.waitWhilePaused(ctx); err != nil {
		return err
	}
	d.enter(ctx, PhasePromoting, "promoting the canary to the whole stage")
	if err := workflow.ExecuteActivity(short(ctx), gw.PromoteCanary, activities.PromoteInput{Target: d.target, DeploymentID: d.canaryID}).Get(ctx, nil); err != nil {
		return err
	}
	d.status.Weight = 100
	if s.Auth.RotateKey {
		if err := workflow.ExecuteActivity(short(ctx), keysA.PromoteLabels, activities.LabelInput{Key: s.Auth.TransitKey, Version: d.version}).Get(ctx, nil); err != nil {
			return err
		}
		d.event(ctx, fmt.Sprintf("key version %d is current; %d is previous", d.version, d.key.Labels.Current))
	}
	if err := d.checkTokens(ctx, "release tokens accepted on the stable path", []int{d.version}); err != nil {
		return err
	}

	if len(s.Auth.Clients) > 0 {
		d.enter(ctx, PhaseReissuing, fmt.Sprintf("reissuing tokens for %d clients", len(s.Auth.Clients)))
		if err := workflow.ExecuteActivity(short(ctx), tokA.ReissueTokens, activities.ReissueInput{
			Issuer: d.issuer, Version: d.version, Clients: s.Auth.Clients, TTL: s.Auth.TokenTTL.D(), Reason: "release " + d.canaryID,
		}).Get(ctx, &d.reissued); err != nil {
			return err
		}
		d.compensateReissue()
		var res activities.ProbeResult
		if err := workflow.ExecuteActivity(probing(ctx), health.ProbeClients, activities.ClientsInput{Target: d.target, Clients: s.Auth.Clients}).Get(ctx, &res); err != nil {
			return err
		}
		if !res.Healthy() {
			return temporal.NewNonRetryableApplicationError(fmt.Sprintf("reissued tokens: %d of %d accepted at the gateway", res.Accepted, res.Probes), ErrHealthBreach, nil)
		}
		d.event(ctx, fmt.Sprintf("every reissued token accepted at the gateway (%d)", res.Accepted))
	}

	if err := workflow.ExecuteActivity(short(ctx), rel.RecordRelease, d.record(ctx)).Get(ctx, nil); err != nil {
		return err
	}
	if s.Auth.RotateKey {
		d.enter(ctx, PhaseFinalizing, "scheduling retirement of the previous key version")
		return d.scheduleRetirement(ctx)
	}
	return nil
}

// record is the release as the stage's history keeps it, for a later Rollback.
func (d *deployment) record(ctx workflow.Context) activities.ReleaseRecord {
	info := workflow.GetInfo(ctx).WorkflowExecution
	return activities.ReleaseRecord{
		WorkflowID: info.ID, RunID: info.RunID, Service: d.spec.Service, Target: d.target, DeploymentID: d.canaryID,
		PromotedAt: workflow.Now(ctx), Snapshot: d.snapshot, Labels: d.key.Labels, Version: d.version,
		Rotated: d.spec.Auth.RotateKey, AuthorizerPatched: len(d.spec.Auth.AuthorizerPatch) > 0, Issuer: d.issuer,
		Clients: d.spec.Auth.Clients, Reissued: d.reissued, TokenTTL: d.spec.Auth.TokenTTL.D(), OnRollback: d.spec.Auth.OnRollback,
	}
}

// scheduleRetirement starts a KeyRetirement workflow that outlives this one.
func (d *deployment) scheduleRetirement(ctx workflow.Context) error {
	s := d.spec
	prev := d.key.Labels.Current
	after := s.Auth.TokenTTL.D() + s.Auth.VerifierCacheTTL.D()
	cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		// One retirement per schedule: a version can be scheduled again (rotated away, rolled back
		// to, rotated away again), and each retirement checks the tokens before it acts.
		WorkflowID:        fmt.Sprintf("retire/%s/v%d/%s", s.Auth.TransitKey, prev, workflow.GetInfo(ctx).WorkflowExecution.RunID),
		ParentClosePolicy: enumspb.PARENT_CLOSE_POLICY_ABANDON,
	})
	child := workflow.ExecuteChildWorkflow(cctx, KeyRetirement, KeyRetirementInput{Issuer: d.issuer, Version: prev, After: after})
	if err := child.GetChildWorkflowExecution().Get(ctx, nil); err != nil {
		return err
	}
	d.event(ctx, fmt.Sprintf("key version %d retires in %s (token TTL + verifier cache TTL)", prev, after))
	return nil
}

// KeyRetirement waits until no token of the version can still be valid, then drops its label
// and republishes the JWKS without it. The version itself stays in Vault. Tokens of the version
// issued after the retirement was scheduled (a rollback reissues with the previous key) push the
// retirement back: it acts only once the last active one has expired plus the verifier cache TTL.
func KeyRetirement(ctx workflow.Context, in KeyRetirementInput) error {
	if err := workflow.Sleep(ctx, in.After); err != nil {
		return err
	}
	kid := keys.KID(in.Issuer.Key.Name, in.Version)
	for {
		var labels keys.Labels
		if err := workflow.ExecuteActivity(short(ctx), keysA.ReadLabels, in.Issuer.Key.Name).Get(ctx, &labels); err != nil {
			return err
		}
		if labels.Previous != in.Version {
			workflow.GetLogger(ctx).Info("nothing to retire: the version is no longer previous", "version", in.Version, "labels", labels)
			return nil
		}
		var latest time.Time
		if err := workflow.ExecuteActivity(short(ctx), tokA.LatestActiveExpiry, kid).Get(ctx, &latest); err != nil {
			return err
		}
		wait := latest.Add(in.Issuer.CacheTTL).Sub(workflow.Now(ctx))
		if wait <= 0 {
			break
		}
		workflow.GetLogger(ctx).Info("tokens of the version are still valid: retirement postponed", "kid", kid, "until", latest.Add(in.Issuer.CacheTTL))
		if err := workflow.Sleep(ctx, wait); err != nil {
			return err
		}
	}
	var retired keys.Labels
	if workflow.GetVersion(ctx, "retire-label-cas", workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		// Histories recorded before: read, then write the labels without the previous one.
		var labels keys.Labels
		if err := workflow.ExecuteActivity(short(ctx), keysA.ReadLabels, in.Issuer.Key.Name).Get(ctx, &labels); err != nil {
			return err
		}
		retired = keys.Labels{Current: labels.Current, Pending: labels.Pending}
		if err := workflow.ExecuteActivity(short(ctx), keysA.RestoreLabels, activities.RestoreLabelsInput{Key: in.Issuer.Key.Name, Labels: retired}).Get(ctx, nil); err != nil {
			return err
		}
	} else if err := workflow.ExecuteActivity(short(ctx), keysA.RetireLabel, activities.RetireInput{Key: in.Issuer.Key.Name, Version: in.Version}).Get(ctx, &retired); err != nil {
		return err // one check-and-set write: a rotation that moved the labels meanwhile is kept
	}
	return workflow.ExecuteActivity(short(ctx), tokA.PublishJWKS, activities.PublishInput{Issuer: in.Issuer, Versions: retired.Published()}).Get(ctx, nil)
}
