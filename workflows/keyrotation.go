package workflows

import (
	"fmt"
	"slices"
	"time"

	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/workflow"

	"github.com/rollgate/rollgate/activities"
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

// keyRotation is one rotation's state; every field is derived deterministically from history.
type keyRotation struct {
	progress          // status, timeline, logger
	saga     saga     // what to undo, and the rollback's report
	notes    notifier // the spec's webhook

	in       KeyRotationSpec
	key      activities.KeyState
	version  int // the key version that signs once the rotation is done
	reissued []activities.Issued
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
	r := newKeyRotation(ctx, in)
	if err := r.setStatusQuery(ctx); err != nil {
		return KeyRotationResult{}, err
	}
	err := r.run(ctx)
	res := KeyRotationResult{Previous: r.key.Labels.Current, Current: r.version, Reissued: r.reissued}
	key := in.Issuer.Key.Name
	if err != nil {
		trigger, req := failureTrigger(ctx, err)
		r.notes.send(ctx, fmt.Sprintf("rotation of %s failed, rolling back (%s): %s", key, trigger, req.Reason))
		report := r.saga.rollBack(ctx, time.Time{}, trigger, req, r.rollbackCheck())
		res.Outcome, res.Rollback, res.Current = OutcomeRolledBack, report, r.key.Labels.Current
		r.notes.send(ctx, fmt.Sprintf("rotation of %s rolled back in %s; %s signs with version %d; verified: %v", key, report.Latency.Round(time.Millisecond), key, res.Current, report.Verified))
	} else {
		r.enter(ctx, PhasePromoted, fmt.Sprintf("key version %d signs; %d retires later", r.version, r.key.Labels.Current))
		res.Outcome = OutcomePromoted
		r.notes.send(ctx, fmt.Sprintf("key %s rotated: version %d signs, version %d retires later (by %s: %s)", key, r.version, r.key.Labels.Current, in.Actor, in.Reason))
	}
	res.Timeline = r.status.Timeline
	countOutcome(ctx, MetricKeyRotations, "", res.Outcome)
	r.notes.flush(ctx)
	return res, nil
}

func newKeyRotation(ctx workflow.Context, in KeyRotationSpec) *keyRotation {
	logger := log.With(workflow.GetLogger(ctx), "key", in.Issuer.Key.Name)
	r := &keyRotation{progress: progress{logger: logger}, notes: notifier{webhook: in.Notify, logger: logger}, in: in}
	r.saga.p = &r.progress
	return r
}

// rollbackCheck is the state before the rotation; a rotation without a stage to probe has no
// target.
func (r *keyRotation) rollbackCheck() rollbackCheck {
	c := rollbackCheck{issuer: r.in.Issuer, labels: r.key.Labels, version: r.version}
	if r.in.Probe != nil {
		c.target = *r.in.Probe
	}
	return c
}

func (r *keyRotation) run(ctx workflow.Context) error {
	in := r.in
	r.enter(ctx, PhasePreflight, fmt.Sprintf("rotation of %s requested by %s: %s", in.Issuer.Key.Name, in.Actor, in.Reason))
	if err := workflow.ExecuteActivity(short(ctx), keysA.SnapshotKey, in.Issuer.Key).Get(ctx, &r.key); err != nil {
		return err
	}
	r.version = r.key.Labels.Current
	r.enter(ctx, PhasePreparingKey, "creating the pending key version")
	if err := workflow.ExecuteActivity(short(ctx), keysA.PrepareKey, activities.PrepareInput{Key: in.Issuer.Key, ExpectedLatest: r.key.Latest}).Get(ctx, &r.version); err != nil {
		return err
	}
	r.saga.restoreLabels(in.Issuer.Key.Name, r.key.Labels)
	if err := r.publish(ctx); err != nil {
		return err
	}
	if in.Probe != nil {
		if err := checkTokens(ctx, &r.progress, "current-key and pending-key tokens accepted", *in.Probe, in.Issuer, probeVersions(r.key.Labels.Current, r.version)); err != nil {
			return err
		}
	}
	r.enter(ctx, PhasePromoting, fmt.Sprintf("switching signing to version %d", r.version))
	if err := workflow.ExecuteActivity(short(ctx), keysA.PromoteLabels, activities.LabelInput{Key: in.Issuer.Key.Name, Version: r.version}).Get(ctx, nil); err != nil {
		return err
	}
	if len(in.Clients) > 0 {
		var err error
		r.reissued, err = reissueAndProve(ctx, &r.progress, &r.saga, reissueStep{
			issuer: in.Issuer, version: r.version, previous: r.key.Labels.Current, clients: in.Clients, ttl: in.TokenTTL,
			reason: "key rotation", revoke: in.OnRollback == "revoke", proof: in.Probe,
		})
		if err != nil {
			return err
		}
	}
	r.enter(ctx, PhaseFinalizing, "scheduling retirement of the previous key version")
	var flush []activities.Target
	if in.Probe != nil {
		flush = append(flush, *in.Probe) // the one stage the rotation knows accepts the tokens
	}
	return scheduleRetirement(ctx, &r.progress, in.Issuer, r.key.Labels.Current, in.TokenTTL, flush)
}

// publish publishes the pending version (once, should it already be published) before it signs.
func (r *keyRotation) publish(ctx workflow.Context) error {
	published := r.key.Labels.Published()
	if !slices.Contains(published, r.version) {
		published = append(published, r.version)
	}
	return publishAndWaitForCaches(ctx, &r.progress, &r.saga, publishStep{
		issuer: r.in.Issuer, versions: published, before: r.key.Labels.Published(), revoke: r.in.OnRollback == "revoke",
		announce: fmt.Sprintf("publishing key version %d before it signs", r.version), waiting: "waiting %s for verifier caches",
	})
}
