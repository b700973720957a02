package workflows

import (
	"fmt"
	"slices"
	"time"

	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/rollgate/rollgate/activities"
	"github.com/rollgate/rollgate/internal/spec"
)

// KeyRotationSpec rotates an issuer's signing key outside a release.
type KeyRotationSpec struct {
	Issuer   activities.Issuer
	Clients  []string      // whose tokens are reissued with the new key
	TokenTTL time.Duration // of reissued tokens; the old version retires after TokenTTL + cache TTL
	// Probe, when set, is a stage where token health is proven before signing switches and after
	// the reissue.
	Probe      *activities.Target
	OnRollback string // keep | revoke new-key tokens if the rotation rolls back (default revoke)
	Actor      string
	Reason     string
	// Notify names a webhook (configured on the worker) told when the key rotated or the rotation
	// rolled back.
	Notify string `json:",omitempty"`
}

// KeyRotationResult is what a rotation did.
type KeyRotationResult struct {
	Outcome  string // promoted (the new key signs) | rolled-back
	Previous int
	Current  int
	Reissued []activities.Issued
	Rollback *RollbackReport
	Timeline []Event
}

// KeyRotation rotates in the Secrets Manager order: create the pending version, publish it, wait
// for verifier caches, prove tokens of both versions are accepted, switch signing, reissue client
// tokens and prove them, then retire the old version after token TTL + cache TTL. A failure at
// any step rolls back what was done, as a deployment does.
func KeyRotation(ctx workflow.Context, in KeyRotationSpec) (KeyRotationResult, error) {
	if err := checkInput(ctx, in.Validate, in.originalChecks); err != nil {
		return KeyRotationResult{}, err
	}
	if in.OnRollback == "" {
		in.OnRollback = "revoke"
	}
	if algs := in.Issuer.Key.Type.Algorithms(); in.Issuer.Algorithm == "" && len(algs) > 0 {
		in.Issuer.Algorithm = algs[0] // the checks above refused a key type without algorithms
	}
	d := &deployment{
		spec: spec.DeploySpec{Auth: spec.Auth{TransitKey: in.Issuer.Key.Name, OnRollback: in.OnRollback, Clients: in.Clients,
			TokenTTL: spec.Duration(in.TokenTTL), VerifierCacheTTL: spec.Duration(in.Issuer.CacheTTL), RotateKey: true},
			Notify: spec.Notify{Webhook: in.Notify}},
		issuer: in.Issuer,
		logger: log.With(workflow.GetLogger(ctx), "key", in.Issuer.Key.Name),
	}
	if in.Probe != nil {
		d.target = *in.Probe
	}
	if err := workflow.SetQueryHandler(ctx, QueryStatus, func() (Status, error) { return d.status, nil }); err != nil {
		return KeyRotationResult{}, err
	}
	err := d.rotate(ctx, in)
	res := KeyRotationResult{Previous: d.key.Labels.Current, Current: d.version, Reissued: d.reissued}
	key := in.Issuer.Key.Name
	if err != nil {
		trigger, req := d.trigger(ctx, err)
		d.notify(ctx, fmt.Sprintf("rotation of %s failed, rolling back (%s): %s", key, trigger, req.Reason))
		d.rollBack(ctx, trigger, req)
		res.Outcome, res.Rollback, res.Current = OutcomeRolledBack, d.report, d.key.Labels.Current
		d.notify(ctx, fmt.Sprintf("rotation of %s rolled back in %s; %s signs with version %d; verified: %v", key, d.report.Latency, key, res.Current, d.report.Verified))
	} else {
		d.enter(ctx, PhasePromoted, fmt.Sprintf("key version %d signs; %d retires later", d.version, d.key.Labels.Current))
		res.Outcome = OutcomePromoted
		d.notify(ctx, fmt.Sprintf("key %s rotated: version %d signs, version %d retires later (by %s: %s)", key, d.version, d.key.Labels.Current, in.Actor, in.Reason))
	}
	res.Timeline = d.status.Timeline
	countOutcome(ctx, MetricKeyRotations, "", res.Outcome)
	d.flushNotes(ctx)
	return res, nil
}

func (d *deployment) rotate(ctx workflow.Context, in KeyRotationSpec) error {
	d.enter(ctx, PhasePreflight, fmt.Sprintf("rotation of %s requested by %s: %s", in.Issuer.Key.Name, in.Actor, in.Reason))
	if err := workflow.ExecuteActivity(short(ctx), keysA.SnapshotKey, d.issuer.Key).Get(ctx, &d.key); err != nil {
		return err
	}
	d.version = d.key.Labels.Current
	d.enter(ctx, PhasePreparingKey, "creating the pending key version")
	if err := workflow.ExecuteActivity(short(ctx), keysA.PrepareKey, activities.PrepareInput{Key: d.issuer.Key, ExpectedLatest: d.key.Latest}).Get(ctx, &d.version); err != nil {
		return err
	}
	d.compensateLabels()
	d.enter(ctx, PhasePublishing, fmt.Sprintf("publishing key version %d before it signs", d.version))
	published := d.key.Labels.Published()
	if !slices.Contains(published, d.version) {
		published = append(published, d.version)
	}
	if err := workflow.ExecuteActivity(short(ctx), tokA.PublishJWKS, activities.PublishInput{Issuer: d.issuer, Versions: published}).Get(ctx, nil); err != nil {
		return err
	}
	if in.OnRollback == "revoke" {
		d.compensateJWKS(d.key.Labels.Published())
	}
	if ttl := d.issuer.CacheTTL; ttl > 0 {
		d.event(ctx, fmt.Sprintf("waiting %s for verifier caches", ttl))
		if err := workflow.Sleep(ctx, ttl); err != nil {
			return err
		}
	}
	if in.Probe != nil {
		if err := d.checkTokens(ctx, "current-key and pending-key tokens accepted", d.probeVersions()); err != nil {
			return err
		}
	}
	d.enter(ctx, PhasePromoting, fmt.Sprintf("switching signing to version %d", d.version))
	if err := workflow.ExecuteActivity(short(ctx), keysA.PromoteLabels, activities.LabelInput{Key: in.Issuer.Key.Name, Version: d.version}).Get(ctx, nil); err != nil {
		return err
	}
	if len(in.Clients) > 0 {
		d.enter(ctx, PhaseReissuing, fmt.Sprintf("reissuing tokens for %d clients", len(in.Clients)))
		if err := workflow.ExecuteActivity(short(ctx), tokA.ReissueTokens, activities.ReissueInput{
			Issuer: d.issuer, Version: d.version, Clients: in.Clients, TTL: in.TokenTTL, Reason: "key rotation",
		}).Get(ctx, &d.reissued); err != nil {
			return err
		}
		d.compensateReissue()
		if in.Probe != nil {
			var res activities.ProbeResult
			if err := workflow.ExecuteActivity(probing(ctx), health.ProbeClients, activities.ClientsInput{Target: *in.Probe, Clients: in.Clients}).Get(ctx, &res); err != nil {
				return err
			}
			if !res.Healthy() {
				return temporal.NewNonRetryableApplicationError(fmt.Sprintf("reissued tokens: %d of %d accepted at the gateway", res.Accepted, res.Probes), ErrHealthBreach, nil)
			}
			d.event(ctx, fmt.Sprintf("every reissued token accepted at the gateway (%d)", res.Accepted))
		}
	}
	d.enter(ctx, PhaseFinalizing, "scheduling retirement of the previous key version")
	return d.scheduleRetirement(ctx)
}
