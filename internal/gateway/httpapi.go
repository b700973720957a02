package gateway

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/apigatewayv2"
	v2types "github.com/aws/aws-sdk-go-v2/service/apigatewayv2/types"
)

// HTTPAPI is the part of the apigatewayv2 client a release uses.
type HTTPAPI interface {
	GetStage(context.Context, *apigatewayv2.GetStageInput, ...func(*apigatewayv2.Options)) (*apigatewayv2.GetStageOutput, error)
	UpdateStage(context.Context, *apigatewayv2.UpdateStageInput, ...func(*apigatewayv2.Options)) (*apigatewayv2.UpdateStageOutput, error)
	GetAuthorizer(context.Context, *apigatewayv2.GetAuthorizerInput, ...func(*apigatewayv2.Options)) (*apigatewayv2.GetAuthorizerOutput, error)
	UpdateAuthorizer(context.Context, *apigatewayv2.UpdateAuthorizerInput, ...func(*apigatewayv2.Options)) (*apigatewayv2.UpdateAuthorizerOutput, error)
	ResetAuthorizersCache(context.Context, *apigatewayv2.ResetAuthorizersCacheInput, ...func(*apigatewayv2.Options)) (*apigatewayv2.ResetAuthorizersCacheOutput, error)
}

// Authorizer settings of an HTTP API JWT authorizer, by the paths specs use.
const (
	JWTIssuerPath   = "/jwtConfiguration/issuer"
	JWTAudiencePath = "/jwtConfiguration/audience" // comma-separated
)

// HTTP is an HTTP API (apigatewayv2) stage and its JWT authorizer. HTTP APIs have no canary: a
// release applies its stage variables to the whole stage at once (weight 100), and undoing it
// puts the snapshot's variables back.
type HTTP struct{ API HTTPAPI }

var _ Gateway = (*HTTP)(nil)

// httpDescription: HTTP APIs have no canary, and their JWT authorizers verify RSA signatures
// against the issuer's JWKS only, without the deny list.
var httpDescription = Description{
	Kind: KindHTTP, Name: "HTTP API", RSAKeysOnly: true,
	AuthorizerSettings: []string{JWTIssuerPath, JWTAudiencePath},
}

// Describe tells what an HTTP API can do.
func (g *HTTP) Describe() Description { return httpDescription }

// Snapshot reads the stage and the JWT authorizer.
func (g *HTTP) Snapshot(ctx context.Context, apiID, stage, authorizerID string) (Snapshot, error) {
	return snapshot(ctx, g, apiID, stage, authorizerID)
}

// MapV2Error classifies an apigatewayv2 error like MapError does for REST APIs.
func MapV2Error(err error) error {
	if err == nil {
		return nil
	}
	var (
		nf *v2types.NotFoundException
		br *v2types.BadRequestException
		cf *v2types.ConflictException
		tm *v2types.TooManyRequestsException
	)
	switch {
	case errors.As(err, &nf):
		return errors.Join(ErrNotFound, err)
	case errors.As(err, &br):
		return errors.Join(ErrInvalid, err)
	case errors.As(err, &cf):
		return errors.Join(ErrConflict, err)
	case errors.As(err, &tm):
		return errors.Join(ErrThrottled, err)
	}
	return err
}

// GetStage reads a stage's deployment and variables.
func (g *HTTP) GetStage(ctx context.Context, apiID, stage string) (Stage, error) {
	out, err := g.API.GetStage(ctx, &apigatewayv2.GetStageInput{ApiId: &apiID, StageName: &stage})
	if err != nil {
		return Stage{}, fmt.Errorf("get stage %s/%s: %w", apiID, stage, MapV2Error(err))
	}
	return Stage{DeploymentID: aws.ToString(out.DeploymentId), Variables: out.StageVariables}, nil
}

// setVariables writes the variables that differ and removes those not wanted (an empty value
// removes a stage variable).
func (g *HTTP) setVariables(ctx context.Context, apiID, stage string, cur, want map[string]string, removeOthers bool) error {
	update := map[string]string{}
	for k, v := range want {
		if cur[k] != v {
			update[k] = v
		}
	}
	if removeOthers {
		for k := range cur {
			if _, ok := want[k]; !ok {
				update[k] = ""
			}
		}
	}
	if len(update) == 0 {
		return nil
	}
	if _, err := g.API.UpdateStage(ctx, &apigatewayv2.UpdateStageInput{ApiId: &apiID, StageName: &stage, StageVariables: update}); err != nil {
		return fmt.Errorf("update stage %s/%s: %w", apiID, stage, MapV2Error(err))
	}
	return nil
}

// StartCanary applies the release's variables to the whole stage: an HTTP API has no canary, so
// only weight 100 is possible. It returns the stage's deployment id.
func (g *HTTP) StartCanary(ctx context.Context, apiID, stage string, c Canary) (string, error) {
	if c.Weight != 100 {
		return "", fmt.Errorf("HTTP API %s has no canary: weight %v is not possible, only 100: %w", apiID, c.Weight, ErrInvalid)
	}
	cur, err := g.GetStage(ctx, apiID, stage)
	if err != nil {
		return "", err
	}
	return cur.DeploymentID, g.setVariables(ctx, apiID, stage, cur.Variables, c.Variables, false)
}

// SetWeight is not possible on an HTTP API.
func (g *HTTP) SetWeight(_ context.Context, apiID, _ string, weight float64) error {
	return fmt.Errorf("HTTP API %s has no canary to set to %v%%: %w", apiID, weight, ErrInvalid)
}

// Promote has nothing to do: the release already serves the whole stage.
func (g *HTTP) Promote(context.Context, string, string, string) error { return nil }

// Restore puts the snapshot's stage variables back.
func (g *HTTP) Restore(ctx context.Context, apiID, stage string, want Stage) error {
	cur, err := g.GetStage(ctx, apiID, stage)
	if err != nil {
		return err
	}
	return g.setVariables(ctx, apiID, stage, cur.Variables, want.Variables, true)
}

// GetAuthorizer reads a JWT authorizer's issuer and audiences.
func (g *HTTP) GetAuthorizer(ctx context.Context, apiID, id string) (Authorizer, error) {
	out, err := g.API.GetAuthorizer(ctx, &apigatewayv2.GetAuthorizerInput{ApiId: &apiID, AuthorizerId: &id})
	if err != nil {
		return Authorizer{}, fmt.Errorf("get authorizer %s/%s: %w", apiID, id, MapV2Error(err))
	}
	s := map[string]string{}
	if c := out.JwtConfiguration; c != nil {
		s[JWTIssuerPath] = aws.ToString(c.Issuer)
		s[JWTAudiencePath] = strings.Join(c.Audience, ",")
	}
	return Authorizer{ID: id, Settings: s}, nil
}

// ApplyAuthorizerSettings sets the JWT authorizer's issuer and audiences where they differ.
func (g *HTTP) ApplyAuthorizerSettings(ctx context.Context, apiID, id string, settings map[string]string) (bool, error) {
	cur, err := g.GetAuthorizer(ctx, apiID, id)
	if err != nil {
		return false, err
	}
	cfg := &v2types.JWTConfiguration{}
	changed := false
	for _, path := range slices.Sorted(maps.Keys(settings)) {
		v := settings[path]
		if cur.Settings[path] == v {
			continue
		}
		changed = true
		switch path {
		case JWTIssuerPath:
			cfg.Issuer = aws.String(v)
		case JWTAudiencePath:
			cfg.Audience = strings.Split(v, ",")
		default:
			return false, fmt.Errorf("HTTP API authorizer setting %s: allowed %s, %s: %w", path, JWTIssuerPath, JWTAudiencePath, ErrInvalid)
		}
	}
	if !changed {
		return false, nil
	}
	if _, err := g.API.UpdateAuthorizer(ctx, &apigatewayv2.UpdateAuthorizerInput{ApiId: &apiID, AuthorizerId: &id, JwtConfiguration: cfg}); err != nil {
		return false, fmt.Errorf("update authorizer %s/%s: %w", apiID, id, MapV2Error(err))
	}
	return true, nil
}

// FlushAuthorizerCache resets the stage's Lambda authorizer result cache (ResetAuthorizersCache),
// so that a cached Allow does not outlive a revocation. It is called whatever the stage's
// authorizers are: AWS documents no refusal for it (204, or 404 for an unknown stage), and a
// stage whose API has only JWT authorizers, which keep no result cache, has an empty one to reset.
func (g *HTTP) FlushAuthorizerCache(ctx context.Context, apiID, stage string) error {
	if _, err := g.API.ResetAuthorizersCache(ctx, &apigatewayv2.ResetAuthorizersCacheInput{ApiId: &apiID, StageName: &stage}); err != nil {
		return fmt.Errorf("reset authorizer cache of %s/%s: %w", apiID, stage, MapV2Error(err))
	}
	return nil
}
