package testsuite

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/apigateway"

	"github.com/rollgate/rollgate/internal/gateway"
	"github.com/rollgate/rollgate/internal/spec"
)

// StagesPerAPI is how many stages ExtraStages gives each REST API: AWS's default quota.
const StagesPerAPI = 10

// ExtraStage is a stage ExtraStages provisioned: its API, stage, authorizer, and the deployment
// a release of it ships (a deployment of the API, made beforehand as a pipeline makes it).
type ExtraStage struct {
	APIID, Stage, AuthorizerID, ReleaseDeploymentID string
}

// ExtraStages provisions n more stages serving backend v1 behind the bed's authorizer function,
// StagesPerAPI to a REST API, for releasing many stages at once. Each API also gets a deployment
// for its releases, so that a release needs no CreateDeployment (AWS allows an account one every
// 5 s).
func (r *ReleaseBed) ExtraStages(ctx context.Context, n int) ([]ExtraStage, error) {
	if r.Kind != gateway.KindREST {
		return nil, fmt.Errorf("extra stages are REST stages; the bed is %s", r.Kind)
	}
	cfg, err := r.Bed.AWSConfig(ctx)
	if err != nil {
		return nil, err
	}
	c := r.Bed.APIGateway(cfg)
	var out []ExtraStage
	for i := 0; len(out) < n; i++ {
		api := &ReleaseBed{Name: fmt.Sprintf("%s-x%d", r.Name, i), Stage: "s0", Backends: r.Backends}
		if err := api.createAPI(ctx, c, r.authorizerURI); err != nil {
			return nil, err
		}
		st, err := c.GetStage(ctx, &apigateway.GetStageInput{RestApiId: &api.APIID, StageName: &api.Stage})
		if err != nil {
			return nil, err
		}
		release, err := c.CreateDeployment(ctx, &apigateway.CreateDeploymentInput{RestApiId: &api.APIID, Description: aws.String("release")})
		if err != nil {
			return nil, err
		}
		for k := 0; k < StagesPerAPI && len(out) < n; k++ {
			name := fmt.Sprintf("s%d", k)
			if k > 0 {
				if _, err := c.CreateStage(ctx, &apigateway.CreateStageInput{RestApiId: &api.APIID, StageName: &name, DeploymentId: st.DeploymentId,
					Variables: map[string]string{"backendUrl": r.Backends["v1"]}}); err != nil {
					return nil, err
				}
			}
			out = append(out, ExtraStage{APIID: api.APIID, Stage: name, AuthorizerID: api.AuthorizerID, ReleaseDeploymentID: *release.Id})
		}
	}
	return out, nil
}

// StageSpec is a release of backend version to an extra stage: two canary steps of bake each,
// probed with the issuer's current tokens; no key rotation (every stage shares the bed's issuer)
// and no client reissue.
func (r *ReleaseBed) StageSpec(st ExtraStage, version string, bake time.Duration) spec.DeploySpec {
	s := r.Spec(version, bake)
	s.Service = r.Name + "-" + st.APIID + "-" + st.Stage
	s.Gateway.APIID, s.Gateway.Stage = st.APIID, st.Stage
	s.Release.DeploymentID = st.ReleaseDeploymentID
	s.Auth.AuthorizerID, s.Auth.RotateKey, s.Auth.Clients, s.Auth.AuthorizerPatch = st.AuthorizerID, false, nil, nil
	s.Normalize()
	return s
}
