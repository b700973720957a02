package workflows

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/rollgate/rollgate/activities"
	"github.com/rollgate/rollgate/internal/keys"
	"github.com/rollgate/rollgate/internal/registry"
)

// RevocationSpec revokes tokens of one issuer by exactly one selector: a list of jtis, a
// subject, a key version (kid), or everything issued before a time.
type RevocationSpec struct {
	Issuer       activities.Issuer
	JTIs         []string
	Subject      string
	KID          string
	IssuedBefore time.Time
	Actor        string
	Reason       string
	// Proof, when set, is a stage where the revocation is proven: sample tokens covered by it are
	// minted before it and must be rejected there after it.
	Proof *activities.Target
	// Flush names stages whose authorizer caches are flushed once the revocation is written, so
	// that an Allow the gateway cached before it cannot outlive it; the Proof stage is always
	// flushed too.
	Flush []activities.Target `json:",omitempty"`
	// FlushIssuerStages adds every stage whose latest recorded release used the issuer: the stages
	// that accept its tokens, as far as the release history knows.
	FlushIssuerStages bool `json:",omitempty"`
	// FlushAfter is how long after the revocation is written the flush waits: the authorizers'
	// deny-list refresh interval plus one refresh. An authorizer asked sooner may still hold the
	// old list and answer Allow, which the gateway would cache again for the whole TTL.
	FlushAfter time.Duration `json:",omitempty"`
}

// Selectors counts the selectors the spec names; a valid spec names exactly one.
func (in RevocationSpec) Selectors() int {
	n := 0
	for _, set := range []bool{len(in.JTIs) > 0, in.Subject != "", in.KID != "", !in.IssuedBefore.IsZero()} {
		if set {
			n++
		}
	}
	return n
}

// RevocationReport says what was revoked and whether the gateway was seen rejecting it.
type RevocationReport struct {
	Selector        string
	Revoked         int // jtis written to the deny list, or 1 for a rule
	Samples         int
	SamplesRejected int
	Proven          bool
	Note            string `json:",omitempty"`
	// Flushed are the stages whose authorizer caches were flushed after the revocation; FlushSkipped
	// could not be (the stage no longer exists); FlushError says why the flush failed, if it
	// did: an Allow cached before the revocation then lasts until its TTL ends.
	Flushed      []activities.Target       `json:",omitempty"`
	FlushSkipped []activities.SkippedFlush `json:",omitempty"`
	FlushError   string                    `json:",omitempty"`
	StartedAt    time.Time
	Duration     time.Duration
}

// TokenRevocation revokes tokens (the bulk path in a heartbeating activity that resumes after a
// crash) and proves the revocation reached the gateway by presenting sample tokens it covers.
func TokenRevocation(ctx workflow.Context, in RevocationSpec) (RevocationReport, error) {
	if err := checkInput(ctx, in.Validate, in.originalChecks); err != nil {
		return RevocationReport{}, err
	}
	rep := RevocationReport{StartedAt: workflow.Now(ctx)}
	logger := workflow.GetLogger(ctx)

	// Samples are minted before the revocation, so that it covers them.
	var samples, sampleJTIs []string
	if in.Proof != nil {
		var err error
		if samples, sampleJTIs, rep.Note, err = stashSamples(ctx, in); err != nil {
			return rep, err
		}
	}

	reason := fmt.Sprintf("%s (by %s)", in.Reason, in.Actor)
	switch {
	case len(in.JTIs) > 0:
		rep.Selector = fmt.Sprintf("%d jtis", len(in.JTIs))
		bulk := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
			StartToCloseTimeout: time.Hour, HeartbeatTimeout: 30 * time.Second,
			RetryPolicy: &temporal.RetryPolicy{InitialInterval: time.Second, MaximumInterval: time.Minute},
		})
		jtis := append(append([]string(nil), in.JTIs...), sampleJTIs...)
		if err := workflow.ExecuteActivity(bulk, tokA.RevokeTokens, activities.RevokeInput{JTIs: jtis, Reason: reason}).Get(ctx, &rep.Revoked); err != nil {
			return rep, err
		}
	default:
		rule := activities.RuleInput{Reason: reason}
		switch {
		case in.Subject != "":
			rule.Scope, rule.Value, rule.Before = registry.BySubject, in.Subject, workflow.Now(ctx)
		case in.KID != "":
			rule.Scope, rule.Value, rule.Before = registry.ByKID, in.KID, registry.Forever
		default:
			rule.Scope, rule.Value, rule.Before = registry.ByIssuer, in.Issuer.URL, in.IssuedBefore
		}
		rep.Selector = fmt.Sprintf("%s %s", rule.Scope, rule.Value)
		if err := workflow.ExecuteActivity(short(ctx), tokA.RevokeByRule, rule).Get(ctx, nil); err != nil {
			return rep, err
		}
		rep.Revoked = 1
	}
	logger.Info("revoked", "selector", rep.Selector, "actor", in.Actor)
	if workflow.GetVersion(ctx, changeFlushAfterRevocation, workflow.DefaultVersion, 1) == 1 {
		flushRevoked(ctx, in, &rep)
	}

	if len(samples) > 0 {
		rep.Samples = len(samples)
		if err := workflow.ExecuteActivity(probing(ctx), health.ProbeRejected, activities.StashedInput{Target: *in.Proof, Names: samples, Wait: 30 * time.Second}).Get(ctx, &rep.SamplesRejected); err != nil {
			return rep, err
		}
		rep.Proven = rep.SamplesRejected == rep.Samples
	}
	rep.Duration = workflow.Now(ctx).Sub(rep.StartedAt)
	return rep, nil
}

// flushRevoked flushes the authorizer caches of the stages the revocation must reach. The
// revocation is written by now, so a failure here is reported, not returned: the deny list still
// reaches every authorizer, only a cached Allow lasts until its TTL ends.
func flushRevoked(ctx workflow.Context, in RevocationSpec, rep *RevocationReport) {
	revoked := workflow.Now(ctx)
	targets := slices.Clone(in.Flush)
	if in.Proof != nil {
		targets = append(targets, *in.Proof)
	}
	if in.FlushIssuerStages {
		var stages []activities.Target
		stages, rep.FlushError = issuerStages(ctx, in.Issuer.URL)
		targets = append(targets, stages...)
	}
	targets = stageSet(targets...)
	if len(targets) == 0 {
		return
	}
	res, err := flushAfter(ctx, revoked, in.FlushAfter, targets)
	rep.Flushed, rep.FlushSkipped = res.Flushed, res.Skipped
	if err != nil {
		rep.FlushError = strings.TrimPrefix(rep.FlushError+"; flush: "+err.Error(), "; ")
		workflow.GetLogger(ctx).Error("authorizer caches not flushed", "stages", stageNames(targets), "error", err)
		return
	}
	workflow.GetLogger(ctx).Info("authorizer caches flushed", "stages", stageNames(res.Flushed), "skipped", len(res.Skipped))
}

// issuerStages are the stages whose latest recorded release used the issuer, those a
// revocation of its tokens must reach, and what kept some from being found.
func issuerStages(ctx workflow.Context, issuerURL string) ([]activities.Target, string) {
	var found activities.IssuerStages
	if err := workflow.ExecuteActivity(short(ctx), rel.IssuerStages, activities.IssuerStagesInput{IssuerURL: issuerURL}).Get(ctx, &found); err != nil {
		return nil, "find the issuer's stages in the release history: " + err.Error()
	}
	if found.Beyond > 0 {
		return found.Stages, fmt.Sprintf("%d more stages of the issuer in the release history were not flushed (at most %d): name them with Flush", found.Beyond, activities.MaxIssuerStages)
	}
	return found.Stages, ""
}

// stashSamples mints the sample tokens the revocation will cover, kept in Vault KV by name, and
// returns their names and jtis.
func stashSamples(ctx workflow.Context, in RevocationSpec) ([]string, []string, string, error) {
	name := "rollgate-sample-" + workflow.GetInfo(ctx).WorkflowExecution.RunID
	sample := activities.SampleInput{Issuer: in.Issuer, Subject: "rollgate-revocation-sample", Name: name}
	switch {
	case in.KID != "":
		key, v, err := keys.ParseKID(in.KID)
		if err != nil || key != in.Issuer.Key.Name {
			return nil, nil, "", temporal.NewNonRetryableApplicationError(fmt.Sprintf("kid %q is not a version of %s", in.KID, in.Issuer.Key.Name), ErrInvalidSpec, nil)
		}
		sample.Version = v
	default:
		var labels keys.Labels
		if err := workflow.ExecuteActivity(short(ctx), keysA.ReadLabels, in.Issuer.Key.Name).Get(ctx, &labels); err != nil {
			return nil, nil, "", err
		}
		sample.Version = labels.Current
	}
	if in.Subject != "" {
		sample.Subject = in.Subject
	}
	if !in.IssuedBefore.IsZero() && !in.IssuedBefore.After(workflow.Now(ctx)) {
		return nil, nil, "no sample: a token issued now is not covered by a cut-off in the past", nil
	}
	var jti string
	if err := workflow.ExecuteActivity(short(ctx), health.StashSample, sample).Get(ctx, &jti); err != nil {
		return nil, nil, "", err
	}
	return []string{name}, []string{jti}, "", nil
}
