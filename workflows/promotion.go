package workflows

import (
	"fmt"
	"time"

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
	if err := workflow.ExecuteActivity(controlPlane(short(ctx)), gw.PromoteCanary, activities.PromoteInput{Target: d.target, DeploymentID: d.canaryID}).Get(ctx, nil); err != nil {
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
		var err error
		d.reissued, err = reissueAndProve(ctx, &d.progress, &d.saga, reissueStep{
			issuer: d.issuer, version: d.version, previous: d.key.Labels.Current, clients: s.Auth.Clients, ttl: s.Auth.TokenTTL.D(),
			reason: "release " + d.canaryID, revoke: s.Auth.OnRollback == "revoke", proof: &d.target,
		})
		if err != nil {
			return err
		}
	}

	if err := d.watch(ctx); err != nil {
		return err
	}
	if err := workflow.ExecuteActivity(short(ctx), rel.RecordRelease, d.record(ctx)).Get(ctx, nil); err != nil {
		return err
	}
	if s.Auth.RotateKey {
		d.enter(ctx, PhaseFinalizing, "scheduling retirement of the previous key version")
		return scheduleRetirement(ctx, &d.progress, d.issuer, d.key.Labels.Current, s.Auth.TokenTTL.D(), []activities.Target{d.target})
	}
	return nil
}

// record is the release as the stage's history keeps it, for a later Rollback.
func (d *deployment) record(ctx workflow.Context) activities.ReleaseRecord {
	info := workflow.GetInfo(ctx).WorkflowExecution
	return activities.ReleaseRecord{
		WorkflowID: info.ID, RunID: info.RunID, Label: d.status.Release, Service: d.spec.Service, Target: d.target, DeploymentID: d.canaryID,
		PromotedAt: workflow.Now(ctx), Snapshot: d.snapshot, Labels: d.key.Labels, Version: d.version,
		Rotated: d.spec.Auth.RotateKey, AuthorizerPatched: len(d.spec.Auth.AuthorizerPatch) > 0, Issuer: d.issuer,
		Clients: d.spec.Auth.Clients, Reissued: d.reissued, TokenTTL: d.spec.Auth.TokenTTL.D(), OnRollback: d.spec.Auth.OnRollback,
	}
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
	if err := workflow.ExecuteActivity(short(ctx), tokA.PublishJWKS, activities.PublishInput{Issuer: in.Issuer, Versions: retired.Published()}).Get(ctx, nil); err != nil {
		return err
	}
	if len(in.Flush) == 0 || workflow.GetVersion(ctx, changeFlushAfterRevocation, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		return nil
	}
	return flushRetired(ctx, in, kid)
}

// flushRetired flushes the stages' authorizer caches once verifiers have dropped the retired
// key (the verifier cache TTL after the JWKS without it was published): an authorizer asked
// sooner may still verify a token of the version with its cached key set.
func flushRetired(ctx workflow.Context, in KeyRetirementInput, kid string) error {
	res, err := flushAfter(ctx, workflow.Now(ctx), in.Issuer.CacheTTL, stageSet(in.Flush...))
	if err != nil {
		return fmt.Errorf("%s retired, but the authorizer caches of %v were not flushed: %w", kid, stageNames(in.Flush), err)
	}
	workflow.GetLogger(ctx).Info("authorizer caches flushed after the retirement", "kid", kid, "stages", stageNames(res.Flushed), "skipped", res.Skipped)
	return nil
}
