package activities

import (
	"context"
	"maps"
	"slices"

	"github.com/rollgate/rollgate/internal/gateway"
)

// Target is the stage a release changes.
type Target struct {
	Kind  string // rest (also when empty) or http
	APIID string
	Stage string
}

// Gateway changes API Gateway stages and authorizers: REST APIs (canary deployments, TOKEN and
// REQUEST authorizers) and HTTP APIs (stage variables, JWT authorizers).
type Gateway struct {
	REST *gateway.REST
	HTTP *gateway.HTTP
}

// stageAPI is what a release does to a stage, whatever the kind of API.
type stageAPI interface {
	GetStage(ctx context.Context, apiID, stage string) (gateway.Stage, error)
	StartCanary(ctx context.Context, apiID, stage, releaseDeployment, marker string, weight float64, vars map[string]string) (string, error)
	SetCanaryWeight(ctx context.Context, apiID, stage string, weight float64) error
	Promote(ctx context.Context, apiID, stage, release string) error
	Restore(ctx context.Context, apiID, stage string, want gateway.Stage) error
	GetAuthorizer(ctx context.Context, apiID, id string) (gateway.Authorizer, error)
	ApplyAuthorizer(ctx context.Context, apiID, stage, id string, settings map[string]string) (bool, error)
}

func (a *Gateway) api(t Target) stageAPI {
	if t.Kind == "http" {
		return a.HTTP
	}
	return a.REST
}

// GatewaySnapshot is the live gateway state before a release: its rollback point.
type GatewaySnapshot struct {
	Stage      gateway.Stage
	Authorizer gateway.Authorizer
}

// SnapshotInput names what to read.
type SnapshotInput struct {
	Target       Target
	AuthorizerID string
}

// SnapshotGateway reads the stage and the authorizer.
func (a *Gateway) SnapshotGateway(ctx context.Context, in SnapshotInput) (GatewaySnapshot, error) {
	st, err := a.api(in.Target).GetStage(ctx, in.Target.APIID, in.Target.Stage)
	if err != nil {
		return GatewaySnapshot{}, classify(err)
	}
	auth, err := a.api(in.Target).GetAuthorizer(ctx, in.Target.APIID, in.AuthorizerID)
	if err != nil {
		return GatewaySnapshot{}, classify(err)
	}
	return GatewaySnapshot{Stage: st, Authorizer: auth}, nil
}

// AuthorizerInput is an authorizer configuration to apply.
type AuthorizerInput struct {
	Target       Target
	AuthorizerID string
	Settings     map[string]string
}

// ApplyAuthorizer sets the settings that differ and flushes the stage's authorizer cache.
func (a *Gateway) ApplyAuthorizer(ctx context.Context, in AuthorizerInput) (bool, error) {
	changed, err := a.api(in.Target).ApplyAuthorizer(ctx, in.Target.APIID, in.Target.Stage, in.AuthorizerID, in.Settings)
	return changed, classify(err)
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
	id, err := a.api(in.Target).StartCanary(ctx, in.Target.APIID, in.Target.Stage, in.DeploymentID, in.Marker, in.Weight, in.Variables)
	return id, classify(err)
}

// WeightInput is a canary weight.
type WeightInput struct {
	Target Target
	Weight float64
}

// SetCanaryWeight sets the canary's traffic share.
func (a *Gateway) SetCanaryWeight(ctx context.Context, in WeightInput) error {
	return classify(a.api(in.Target).SetCanaryWeight(ctx, in.Target.APIID, in.Target.Stage, in.Weight))
}

// PromoteInput names the canary to promote.
type PromoteInput struct {
	Target       Target
	DeploymentID string
}

// PromoteCanary makes the canary the stage's deployment.
func (a *Gateway) PromoteCanary(ctx context.Context, in PromoteInput) error {
	return classify(a.api(in.Target).Promote(ctx, in.Target.APIID, in.Target.Stage, in.DeploymentID))
}

// RestoreInput is the gateway state to put back.
type RestoreInput struct {
	Target   Target
	Snapshot GatewaySnapshot
}

// RestoreStage puts the stage back as it was.
func (a *Gateway) RestoreStage(ctx context.Context, in RestoreInput) error {
	return classify(a.api(in.Target).Restore(ctx, in.Target.APIID, in.Target.Stage, in.Snapshot.Stage))
}

// RestoreAuthorizer puts the authorizer's settings back and flushes the cache.
func (a *Gateway) RestoreAuthorizer(ctx context.Context, in RestoreInput) error {
	_, err := a.api(in.Target).ApplyAuthorizer(ctx, in.Target.APIID, in.Target.Stage, in.Snapshot.Authorizer.ID, in.Snapshot.Authorizer.Settings)
	return classify(err)
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
	changed, err := a.REST.SetAPIKeyEnabled(ctx, in.KeyID, in.Enabled)
	return changed, classify(err)
}
