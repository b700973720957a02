// Package gateway reads and changes API Gateway stages and authorizers for a release: every
// change reads the current state first and writes only what differs, so it can be retried.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/apigateway"
	"github.com/aws/aws-sdk-go-v2/service/apigateway/types"
)

// Error kinds, mapped once from the SDK's typed errors. NotFound and Invalid cannot succeed on
// retry; Conflict and Throttled can.
var (
	ErrNotFound  = errors.New("not found")
	ErrInvalid   = errors.New("invalid request")
	ErrConflict  = errors.New("conflict")
	ErrThrottled = errors.New("throttled")
)

// MapError classifies an API Gateway error.
func MapError(err error) error {
	if err == nil {
		return nil
	}
	var (
		nf *types.NotFoundException
		br *types.BadRequestException
		cf *types.ConflictException
		tm *types.TooManyRequestsException
		le *types.LimitExceededException
		ua *types.UnauthorizedException
	)
	switch {
	case errors.As(err, &nf):
		return errors.Join(ErrNotFound, err)
	case errors.As(err, &br), errors.As(err, &ua):
		return errors.Join(ErrInvalid, err)
	case errors.As(err, &cf):
		return errors.Join(ErrConflict, err)
	case errors.As(err, &tm), errors.As(err, &le):
		return errors.Join(ErrThrottled, err)
	}
	return err
}

// RESTAPI is the part of the apigateway client a release uses.
type RESTAPI interface {
	GetStage(context.Context, *apigateway.GetStageInput, ...func(*apigateway.Options)) (*apigateway.GetStageOutput, error)
	UpdateStage(context.Context, *apigateway.UpdateStageInput, ...func(*apigateway.Options)) (*apigateway.UpdateStageOutput, error)
	CreateDeployment(context.Context, *apigateway.CreateDeploymentInput, ...func(*apigateway.Options)) (*apigateway.CreateDeploymentOutput, error)
	GetDeployment(context.Context, *apigateway.GetDeploymentInput, ...func(*apigateway.Options)) (*apigateway.GetDeploymentOutput, error)
	GetAuthorizer(context.Context, *apigateway.GetAuthorizerInput, ...func(*apigateway.Options)) (*apigateway.GetAuthorizerOutput, error)
	UpdateAuthorizer(context.Context, *apigateway.UpdateAuthorizerInput, ...func(*apigateway.Options)) (*apigateway.UpdateAuthorizerOutput, error)
	FlushStageAuthorizersCache(context.Context, *apigateway.FlushStageAuthorizersCacheInput, ...func(*apigateway.Options)) (*apigateway.FlushStageAuthorizersCacheOutput, error)
	GetApiKey(context.Context, *apigateway.GetApiKeyInput, ...func(*apigateway.Options)) (*apigateway.GetApiKeyOutput, error)
	UpdateApiKey(context.Context, *apigateway.UpdateApiKeyInput, ...func(*apigateway.Options)) (*apigateway.UpdateApiKeyOutput, error)
}

// Stage is what a release reads of a REST stage, and what a rollback restores.
type Stage struct {
	DeploymentID       string            `json:"deploymentId"`
	Variables          map[string]string `json:"variables,omitempty"`
	CanaryDeploymentID string            `json:"canaryDeploymentId,omitempty"`
	CanaryWeight       float64           `json:"canaryWeight,omitempty"`
	CanaryOverrides    map[string]string `json:"canaryOverrides,omitempty"`
}

// HasCanary tells whether the stage runs a canary.
func (s Stage) HasCanary() bool { return s.CanaryDeploymentID != "" }

// Authorizer is the part of an authorizer's configuration a release may change, by patch path.
type Authorizer struct {
	ID       string            `json:"id"`
	Settings map[string]string `json:"settings"`
}

// REST is a REST API (apigateway) stage and its authorizers.
type REST struct{ API RESTAPI }

var _ Gateway = (*REST)(nil)

// restDescription: REST APIs split traffic to a canary deployment and run Lambda authorizers,
// which can be rollgate's verifier with the deny list.
var restDescription = Description{
	Kind: KindREST, Name: "REST API", NativeCanary: true, ConsultsDenyList: true,
	AuthorizerSettings: []string{"/authorizerUri", "/identityValidationExpression", "/authorizerResultTtlInSeconds", "/identitySource"},
}

// Describe tells what a REST API can do.
func (g *REST) Describe() Description { return restDescription }

// Snapshot reads the stage and the authorizer.
func (g *REST) Snapshot(ctx context.Context, apiID, stage, authorizerID string) (Snapshot, error) {
	return snapshot(ctx, g, apiID, stage, authorizerID)
}

// GetStage reads a stage.
func (g *REST) GetStage(ctx context.Context, apiID, stage string) (Stage, error) {
	out, err := g.API.GetStage(ctx, &apigateway.GetStageInput{RestApiId: &apiID, StageName: &stage})
	if err != nil {
		return Stage{}, fmt.Errorf("get stage %s/%s: %w", apiID, stage, MapError(err))
	}
	s := Stage{DeploymentID: aws.ToString(out.DeploymentId), Variables: out.Variables}
	if c := out.CanarySettings; c != nil {
		s.CanaryDeploymentID, s.CanaryWeight, s.CanaryOverrides = aws.ToString(c.DeploymentId), c.PercentTraffic, c.StageVariableOverrides
	}
	return s, nil
}

func (g *REST) patch(ctx context.Context, apiID, stage string, ops []types.PatchOperation) error {
	if len(ops) == 0 {
		return nil
	}
	if _, err := g.API.UpdateStage(ctx, &apigateway.UpdateStageInput{RestApiId: &apiID, StageName: &stage, PatchOperations: ops}); err != nil {
		return fmt.Errorf("update stage %s/%s: %w", apiID, stage, MapError(err))
	}
	return nil
}

// StartCanary makes the release the stage's canary at its weight, with the release's stage
// variables as canary overrides. With no deployment id a new deployment is created from the
// API's current definition, described with the marker; a retry finds the canary it already made
// by that marker and creates no second one.
func (g *REST) StartCanary(ctx context.Context, apiID, stage string, c Canary) (string, error) {
	releaseDeployment, marker, weight, vars := c.DeploymentID, c.Marker, c.Weight, c.Variables
	cur, err := g.GetStage(ctx, apiID, stage)
	if err != nil {
		return "", err
	}
	if cur.HasCanary() {
		if cur.CanaryDeploymentID == releaseDeployment {
			return cur.CanaryDeploymentID, g.SetWeight(ctx, apiID, stage, weight)
		}
		d, err := g.API.GetDeployment(ctx, &apigateway.GetDeploymentInput{RestApiId: &apiID, DeploymentId: &cur.CanaryDeploymentID})
		if err != nil {
			return "", fmt.Errorf("read canary deployment: %w", MapError(err))
		}
		if aws.ToString(d.Description) == marker {
			return cur.CanaryDeploymentID, g.SetWeight(ctx, apiID, stage, weight)
		}
		return "", fmt.Errorf("stage %s/%s already runs canary %s that this release did not start: %w", apiID, stage, cur.CanaryDeploymentID, ErrConflict)
	}
	if releaseDeployment != "" {
		ops := []types.PatchOperation{
			{Op: types.OpReplace, Path: aws.String("/canarySettings/deploymentId"), Value: &releaseDeployment},
			{Op: types.OpReplace, Path: aws.String("/canarySettings/percentTraffic"), Value: aws.String(formatWeight(weight))},
		}
		for _, k := range slices.Sorted(maps.Keys(vars)) {
			ops = append(ops, types.PatchOperation{Op: types.OpReplace, Path: aws.String("/canarySettings/stageVariableOverrides/" + k), Value: aws.String(vars[k])})
		}
		return releaseDeployment, g.patch(ctx, apiID, stage, ops)
	}
	out, err := g.API.CreateDeployment(ctx, &apigateway.CreateDeploymentInput{
		RestApiId: &apiID, StageName: &stage, Description: &marker,
		CanarySettings: &types.DeploymentCanarySettings{PercentTraffic: weight, StageVariableOverrides: vars},
	})
	if err != nil {
		return "", fmt.Errorf("create canary deployment on %s/%s: %w", apiID, stage, MapError(err))
	}
	return aws.ToString(out.Id), nil
}

// SetWeight sets the canary's share of traffic if it differs.
func (g *REST) SetWeight(ctx context.Context, apiID, stage string, weight float64) error {
	cur, err := g.GetStage(ctx, apiID, stage)
	if err != nil {
		return err
	}
	if !cur.HasCanary() {
		return fmt.Errorf("stage %s/%s has no canary to weigh: %w", apiID, stage, ErrConflict)
	}
	if cur.CanaryWeight == weight {
		return nil
	}
	return g.patch(ctx, apiID, stage, []types.PatchOperation{{Op: types.OpReplace, Path: aws.String("/canarySettings/percentTraffic"), Value: aws.String(formatWeight(weight))}})
}

// Promote makes the canary the stage's deployment, its overrides the stage's variables, and
// removes the canary. A stage already serving the release with no canary is left alone.
func (g *REST) Promote(ctx context.Context, apiID, stage, release string) error {
	cur, err := g.GetStage(ctx, apiID, stage)
	if err != nil {
		return err
	}
	if cur.DeploymentID == release && !cur.HasCanary() {
		return nil
	}
	if cur.CanaryDeploymentID != release {
		return fmt.Errorf("stage %s/%s canary is %q, not the release %s: %w", apiID, stage, cur.CanaryDeploymentID, release, ErrConflict)
	}
	return g.patch(ctx, apiID, stage, []types.PatchOperation{
		{Op: types.OpCopy, From: aws.String("/canarySettings/deploymentId"), Path: aws.String("/deploymentId")},
		{Op: types.OpCopy, From: aws.String("/canarySettings/stageVariableOverrides"), Path: aws.String("/variables")},
		{Op: types.OpRemove, Path: aws.String("/canarySettings")},
	})
}

// Restore puts a stage back to a snapshot: deployment, variables, canary or none. Only the
// differences are written.
func (g *REST) Restore(ctx context.Context, apiID, stage string, want Stage) error {
	cur, err := g.GetStage(ctx, apiID, stage)
	if err != nil {
		return err
	}
	var ops []types.PatchOperation
	if cur.DeploymentID != want.DeploymentID {
		ops = append(ops, types.PatchOperation{Op: types.OpReplace, Path: aws.String("/deploymentId"), Value: aws.String(want.DeploymentID)})
	}
	for _, k := range slices.Sorted(maps.Keys(cur.Variables)) {
		if _, keep := want.Variables[k]; !keep {
			ops = append(ops, types.PatchOperation{Op: types.OpRemove, Path: aws.String("/variables/" + k)})
		}
	}
	for _, k := range slices.Sorted(maps.Keys(want.Variables)) {
		if cur.Variables[k] != want.Variables[k] {
			ops = append(ops, types.PatchOperation{Op: types.OpReplace, Path: aws.String("/variables/" + k), Value: aws.String(want.Variables[k])})
		}
	}
	switch {
	case cur.HasCanary() && !want.HasCanary():
		ops = append(ops, types.PatchOperation{Op: types.OpRemove, Path: aws.String("/canarySettings")})
	case want.HasCanary() && (cur.CanaryDeploymentID != want.CanaryDeploymentID || cur.CanaryWeight != want.CanaryWeight):
		ops = append(ops,
			types.PatchOperation{Op: types.OpReplace, Path: aws.String("/canarySettings/deploymentId"), Value: aws.String(want.CanaryDeploymentID)},
			types.PatchOperation{Op: types.OpReplace, Path: aws.String("/canarySettings/percentTraffic"), Value: aws.String(formatWeight(want.CanaryWeight))})
	}
	return g.patch(ctx, apiID, stage, ops)
}

// GetAuthorizer reads the settings a release may change.
func (g *REST) GetAuthorizer(ctx context.Context, apiID, id string) (Authorizer, error) {
	out, err := g.API.GetAuthorizer(ctx, &apigateway.GetAuthorizerInput{RestApiId: &apiID, AuthorizerId: &id})
	if err != nil {
		return Authorizer{}, fmt.Errorf("get authorizer %s/%s: %w", apiID, id, MapError(err))
	}
	s := map[string]string{
		"/authorizerUri":                aws.ToString(out.AuthorizerUri),
		"/identitySource":               aws.ToString(out.IdentitySource),
		"/identityValidationExpression": aws.ToString(out.IdentityValidationExpression),
	}
	if out.AuthorizerResultTtlInSeconds != nil {
		s["/authorizerResultTtlInSeconds"] = strconv.Itoa(int(*out.AuthorizerResultTtlInSeconds))
	}
	return Authorizer{ID: id, Settings: s}, nil
}

// ApplyAuthorizerSettings sets the given settings where they differ and returns whether
// anything changed.
func (g *REST) ApplyAuthorizerSettings(ctx context.Context, apiID, id string, settings map[string]string) (bool, error) {
	cur, err := g.GetAuthorizer(ctx, apiID, id)
	if err != nil {
		return false, err
	}
	var ops []types.PatchOperation
	for _, path := range slices.Sorted(maps.Keys(settings)) {
		if cur.Settings[path] != settings[path] {
			ops = append(ops, types.PatchOperation{Op: types.OpReplace, Path: aws.String(path), Value: aws.String(settings[path])})
		}
	}
	if len(ops) == 0 {
		return false, nil
	}
	if _, err := g.API.UpdateAuthorizer(ctx, &apigateway.UpdateAuthorizerInput{RestApiId: &apiID, AuthorizerId: &id, PatchOperations: ops}); err != nil {
		return false, fmt.Errorf("update authorizer %s/%s: %w", apiID, id, MapError(err))
	}
	return true, nil
}

// FlushAuthorizerCache drops the stage's cached authorizer answers, so that the next request
// runs the authorizer's current configuration.
func (g *REST) FlushAuthorizerCache(ctx context.Context, apiID, stage string) error {
	if _, err := g.API.FlushStageAuthorizersCache(ctx, &apigateway.FlushStageAuthorizersCacheInput{RestApiId: &apiID, StageName: &stage}); err != nil {
		return fmt.Errorf("flush authorizer cache of %s/%s: %w", apiID, stage, MapError(err))
	}
	return nil
}

// SetAPIKeyEnabled enables or disables an API key (a client cut off, or let back in, together
// with its tokens), writing only if it is not so already. It returns whether it changed.
func (g *REST) SetAPIKeyEnabled(ctx context.Context, keyID string, enabled bool) (bool, error) {
	cur, err := g.API.GetApiKey(ctx, &apigateway.GetApiKeyInput{ApiKey: &keyID})
	if err != nil {
		return false, fmt.Errorf("get api key %s: %w", keyID, MapError(err))
	}
	if cur.Enabled == enabled {
		return false, nil
	}
	if _, err := g.API.UpdateApiKey(ctx, &apigateway.UpdateApiKeyInput{ApiKey: &keyID, PatchOperations: []types.PatchOperation{
		{Op: types.OpReplace, Path: aws.String("/enabled"), Value: aws.String(strconv.FormatBool(enabled))},
	}}); err != nil {
		return false, fmt.Errorf("update api key %s: %w", keyID, MapError(err))
	}
	return true, nil
}

// stageReader is what a snapshot reads, whatever the kind.
type stageReader interface {
	GetStage(ctx context.Context, apiID, stage string) (Stage, error)
	GetAuthorizer(ctx context.Context, apiID, id string) (Authorizer, error)
}

func snapshot(ctx context.Context, r stageReader, apiID, stage, authorizerID string) (Snapshot, error) {
	st, err := r.GetStage(ctx, apiID, stage)
	if err != nil {
		return Snapshot{}, err
	}
	auth, err := r.GetAuthorizer(ctx, apiID, authorizerID)
	if err != nil {
		return Snapshot{}, err
	}
	return Snapshot{Stage: st, Authorizer: auth}, nil
}

func formatWeight(w float64) string { return strconv.FormatFloat(w, 'f', -1, 64) }
