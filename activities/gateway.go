package activities

import (
	"context"
	"errors"
	"maps"
	"slices"

	"github.com/rollgate/rollgate/internal/gateway"
)

// Target is the stage a release changes.
type Target = gateway.Target

// Gateway changes API Gateway stages and authorizers through the implementation of each
// target's kind: REST APIs (canary deployments, TOKEN and REQUEST authorizers) and HTTP APIs
// (stage variables, JWT authorizers).
type Gateway struct {
	Gateways gateway.Set
	// APIKeys enables and disables REST API keys, which belong to the account, not to a stage.
	APIKeys *gateway.REST
}

func (a *Gateway) api(t Target) (gateway.Gateway, error) {
	g, err := a.Gateways.For(t)
	return g, classify(err)
}

// GatewaySnapshot is the live gateway state before a release: its rollback point.
type GatewaySnapshot = gateway.Snapshot

// SnapshotInput names what to read.
type SnapshotInput struct {
	Target       Target
	AuthorizerID string
}

// SnapshotGateway reads the stage and the authorizer.
func (a *Gateway) SnapshotGateway(ctx context.Context, in SnapshotInput) (GatewaySnapshot, error) {
	g, err := a.api(in.Target)
	if err != nil {
		return GatewaySnapshot{}, err
	}
	snap, err := g.Snapshot(ctx, in.Target.APIID, in.Target.Stage, in.AuthorizerID)
	return snap, classify(err)
}

// AuthorizerInput is an authorizer configuration to apply.
type AuthorizerInput struct {
	Target       Target
	AuthorizerID string
	Settings     map[string]string
}

// ApplyAuthorizer sets the settings that differ and flushes the stage's authorizer cache.
func (a *Gateway) ApplyAuthorizer(ctx context.Context, in AuthorizerInput) (bool, error) {
	return a.applyAuthorizer(ctx, in.Target, in.AuthorizerID, in.Settings)
}

// applyAuthorizer flushes even when nothing changed: a retry after a flush that failed must
// still flush what the first attempt changed.
func (a *Gateway) applyAuthorizer(ctx context.Context, t Target, id string, settings map[string]string) (bool, error) {
	g, err := a.api(t)
	if err != nil {
		return false, err
	}
	changed, err := g.ApplyAuthorizerSettings(ctx, t.APIID, id, settings)
	if err != nil {
		return false, classify(err)
	}
	return changed, classify(g.FlushAuthorizerCache(ctx, t.APIID, t.Stage))
}

// CanaryInput starts the release as the stage's canary.
type CanaryInput struct {
	Target       Target
	DeploymentID string // existing release deployment, or "" to create one
	Marker       string // describes a created deployment, so a retry finds it
	Weight       float64
	Variables    map[string]string
}

// StartCanary creates (or finds) the canary deployment and returns its id.
func (a *Gateway) StartCanary(ctx context.Context, in CanaryInput) (string, error) {
	g, err := a.api(in.Target)
	if err != nil {
		return "", err
	}
	id, err := g.StartCanary(ctx, in.Target.APIID, in.Target.Stage, gateway.Canary{DeploymentID: in.DeploymentID, Marker: in.Marker, Weight: in.Weight, Variables: in.Variables})
	return id, classify(err)
}

// WeightInput is a canary weight.
type WeightInput struct {
	Target Target
	Weight float64
}

// SetCanaryWeight sets the canary's traffic share.
func (a *Gateway) SetCanaryWeight(ctx context.Context, in WeightInput) error {
	g, err := a.api(in.Target)
	if err != nil {
		return err
	}
	return classify(g.SetWeight(ctx, in.Target.APIID, in.Target.Stage, in.Weight))
}

// PromoteInput names the canary to promote.
type PromoteInput struct {
	Target       Target
	DeploymentID string
}

// PromoteCanary makes the canary the stage's deployment.
func (a *Gateway) PromoteCanary(ctx context.Context, in PromoteInput) error {
	g, err := a.api(in.Target)
	if err != nil {
		return err
	}
	return classify(g.Promote(ctx, in.Target.APIID, in.Target.Stage, in.DeploymentID))
}

// RestoreInput is the gateway state to put back.
type RestoreInput struct {
	Target   Target
	Snapshot GatewaySnapshot
}

// RestoreStage puts the stage back as it was.
func (a *Gateway) RestoreStage(ctx context.Context, in RestoreInput) error {
	g, err := a.api(in.Target)
	if err != nil {
		return err
	}
	return classify(g.Restore(ctx, in.Target.APIID, in.Target.Stage, in.Snapshot.Stage))
}

// RestoreAuthorizer puts the authorizer's settings back and flushes the cache.
func (a *Gateway) RestoreAuthorizer(ctx context.Context, in RestoreInput) error {
	_, err := a.applyAuthorizer(ctx, in.Target, in.Snapshot.Authorizer.ID, in.Snapshot.Authorizer.Settings)
	return err
}

// VerifyRestored compares the live stage and authorizer with the snapshot and lists every
// difference; an empty list is a verified rollback.
func (a *Gateway) VerifyRestored(ctx context.Context, in RestoreInput) ([]string, error) {
	now, err := a.SnapshotGateway(ctx, SnapshotInput{Target: in.Target, AuthorizerID: in.Snapshot.Authorizer.ID})
	if err != nil {
		return nil, err
	}
	var problems []string
	want, got := in.Snapshot.Stage, now.Stage
	if got.DeploymentID != want.DeploymentID {
		problems = append(problems, "stage serves deployment "+got.DeploymentID+", not "+want.DeploymentID)
	}
	if got.HasCanary() != want.HasCanary() || got.CanaryDeploymentID != want.CanaryDeploymentID {
		problems = append(problems, "canary is "+orNone(got.CanaryDeploymentID)+", want "+orNone(want.CanaryDeploymentID))
	}
	if !maps.Equal(got.Variables, want.Variables) {
		problems = append(problems, "stage variables differ from the snapshot")
	}
	for path, v := range in.Snapshot.Authorizer.Settings {
		if now.Authorizer.Settings[path] != v {
			problems = append(problems, "authorizer "+path+" is "+now.Authorizer.Settings[path]+", want "+v)
		}
	}
	slices.Sort(problems)
	return problems, nil
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// APIKeyInput enables or disables a REST API key.
type APIKeyInput struct {
	KeyID   string
	Enabled bool
}

// SetAPIKeyEnabled enables or disables an API key if it is not so already.
func (a *Gateway) SetAPIKeyEnabled(ctx context.Context, in APIKeyInput) (bool, error) {
	changed, err := a.APIKeys.SetAPIKeyEnabled(ctx, in.KeyID, in.Enabled)
	return changed, classify(err)
}

// FlushInput names the stages whose authorizer caches a revocation must clear.
type FlushInput struct {
	Targets []Target
}

// FlushResult says what became of each stage: flushed, or skipped for good (it no longer exists,
// or its kind cannot be flushed), with why.
type FlushResult struct {
	Flushed []Target
	Skipped []SkippedFlush `json:",omitempty"`
}

// SkippedFlush is a stage whose cache was not flushed and never will be by retrying.
type SkippedFlush struct {
	Target Target
	Reason string
}

// FlushAuthorizerCaches flushes the authorizer cache of every stage, so that an Allow cached
// before a revocation cannot outlive it. A flush is idempotent, so a retry flushes every stage
// again. A stage that no longer exists (or is of a kind that cannot be flushed) is skipped and
// reported rather than failing the rest: retrying cannot bring it back, and its cache went with
// it. Any other failure is retried, after every other stage had its flush.
func (a *Gateway) FlushAuthorizerCaches(ctx context.Context, in FlushInput) (FlushResult, error) {
	var res FlushResult
	var retry []error
	for _, t := range in.Targets {
		err := a.flush(ctx, t)
		switch {
		case err == nil:
			res.Flushed = append(res.Flushed, t)
		case errors.Is(err, gateway.ErrNotFound), errors.Is(err, gateway.ErrInvalid):
			res.Skipped = append(res.Skipped, SkippedFlush{Target: t, Reason: err.Error()})
		default:
			retry = append(retry, err)
		}
	}
	return res, errors.Join(retry...)
}

func (a *Gateway) flush(ctx context.Context, t Target) error {
	g, err := a.Gateways.For(t)
	if err != nil {
		return err
	}
	return g.FlushAuthorizerCache(ctx, t.APIID, t.Stage)
}
