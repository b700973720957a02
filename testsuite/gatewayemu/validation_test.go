package gatewayemu_test

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/apigateway"
	"github.com/aws/aws-sdk-go-v2/service/apigateway/types"
	"github.com/aws/aws-sdk-go-v2/service/apigatewayv2"
	v2types "github.com/aws/aws-sdk-go-v2/service/apigatewayv2/types"

	"github.com/rollgate/rollgate/testsuite/gatewayemu"
)

// The checks AWS applies to resources and methods, and the leniency AWS shows where the emulator
// used to be stricter.
func TestREST_ValidationAsAWSAppliesIt(t *testing.T) {
	_, c, _ := startEmulator(t, gatewayemu.Options{})
	ctx := context.Background()
	api, err := c.CreateRestApi(ctx, &apigateway.CreateRestApiInput{Name: aws.String("validation")})
	if err != nil {
		t.Fatal(err)
	}
	newResource := func(parent, part string) (string, error) {
		res, err := c.CreateResource(ctx, &apigateway.CreateResourceInput{RestApiId: api.Id, ParentId: &parent, PathPart: &part})
		if err != nil {
			return "", err
		}
		return *res.Id, nil
	}
	proxy, err := newResource(*api.RootResourceId, "{proxy+}")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		err  func() error
		code string
		want string
	}{
		{"child of a greedy resource", func() error { _, err := newResource(proxy, "x"); return err }, "BadRequestException", "Cannot create a child of a resource with a greedy path variable"},
		{"second variable sibling", func() error { _, err := newResource(*api.RootResourceId, "{id}"); return err }, "BadRequestException", "A sibling ({proxy+}) of this resource already has a variable path part"},
		{"malformed variable", func() error { _, err := newResource(*api.RootResourceId, "{a b}"); return err }, "BadRequestException", "curly braces"},
		{"duplicate header parameter", func() error {
			_, err := c.PutMethod(ctx, &apigateway.PutMethodInput{RestApiId: api.Id, ResourceId: api.RootResourceId, HttpMethod: aws.String("GET"), AuthorizationType: aws.String("NONE"),
				RequestParameters: map[string]bool{"method.request.header.X-A": true, "method.request.header.x-a": false}})
			return err
		}, "BadRequestException", "Parameter names must be unique"},
		{"unknown request validator", func() error {
			_, err := c.PutMethod(ctx, &apigateway.PutMethodInput{RestApiId: api.Id, ResourceId: api.RootResourceId, HttpMethod: aws.String("GET"), AuthorizationType: aws.String("NONE"),
				RequestValidatorId: aws.String("nosuch")})
			return err
		}, "BadRequestException", "Invalid Request Validator identifier specified"},
		{"request models refused by name", func() error {
			_, err := c.PutMethod(ctx, &apigateway.PutMethodInput{RestApiId: api.Id, ResourceId: api.RootResourceId, HttpMethod: aws.String("GET"), AuthorizationType: aws.String("NONE"),
				RequestModels: map[string]string{"application/json": "Empty"}})
			return err
		}, "BadRequestException", "does not support requestModels"},
		{"authorizer on an unknown API is a conflict, as on AWS", func() error {
			_, err := c.CreateAuthorizer(ctx, &apigateway.CreateAuthorizerInput{RestApiId: aws.String("nosuch"), Name: aws.String("a"), Type: types.AuthorizerTypeToken,
				AuthorizerUri: aws.String("arn:lambda:x")})
			return err
		}, "ConflictException", "Invalid API identifier specified"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.err()
			if err == nil || !strings.Contains(err.Error(), tc.code) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %s with %q", err, tc.code, tc.want)
			}
		})
	}

	// AWS takes authorizationType in lower case, and a non-boolean /enabled as false.
	m, err := c.PutMethod(ctx, &apigateway.PutMethodInput{RestApiId: api.Id, ResourceId: api.RootResourceId, HttpMethod: aws.String("GET"), AuthorizationType: aws.String("none"),
		OperationName: aws.String("ListOrders")})
	if err != nil || *m.AuthorizationType != "NONE" || *m.OperationName != "ListOrders" {
		t.Fatalf("PutMethod with authorizationType none = %+v, %v", m, err)
	}
	key, err := c.CreateApiKey(ctx, &apigateway.CreateApiKeyInput{Name: aws.String("k"), Enabled: true})
	if err != nil {
		t.Fatal(err)
	}
	upd, err := c.UpdateApiKey(ctx, &apigateway.UpdateApiKeyInput{ApiKey: key.Id, PatchOperations: []types.PatchOperation{
		{Op: types.OpReplace, Path: aws.String("/enabled"), Value: aws.String("yes please")}}})
	if err != nil || upd.Enabled {
		t.Fatalf("UpdateApiKey /enabled non-boolean = %+v, %v; want enabled false", upd, err)
	}
}

// HTTP API settings the emulator cannot honour are refused by name, never accepted and dropped.
func TestHTTPAPI_UnsupportedSettingsRefusedByName(t *testing.T) {
	_, _, v2 := startEmulator(t, gatewayemu.Options{})
	ctx := context.Background()
	_, err := v2.CreateApi(ctx, &apigatewayv2.CreateApiInput{Name: aws.String("quick"), ProtocolType: v2types.ProtocolTypeHttp, Target: aws.String("http://example.com")})
	if !strings.Contains(as[*v2types.BadRequestException](t, err).ErrorMessage(), "quick create (target, routeKey)") {
		t.Fatalf("quick create: %v", err)
	}
	apiID := newHTTPAPI(t, v2)
	_, err = v2.CreateStage(ctx, &apigatewayv2.CreateStageInput{ApiId: apiID, StageName: aws.String("prod"),
		DefaultRouteSettings: &v2types.RouteSettings{ThrottlingRateLimit: aws.Float64(10)}})
	if !strings.Contains(as[*v2types.BadRequestException](t, err).ErrorMessage(), "defaultRouteSettings") {
		t.Fatalf("throttled stage: %v", err)
	}
}
