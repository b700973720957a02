package gatewayemu_test

import (
	"context"
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/apigateway"
	"github.com/aws/aws-sdk-go-v2/service/apigateway/types"
	"github.com/aws/aws-sdk-go-v2/service/apigatewayv2"

	"github.com/rollgate/rollgate/testsuite/gatewayemu"
)

// rawJSON fetches a control-plane document as the wire carries it, to check fields AWS always
// sends (the SDK cannot tell an absent field from a zero one).
func rawJSON(t *testing.T, method, url, body string) map[string]any {
	t.Helper()
	status, _, text := raw(t, method, url, body)
	var doc map[string]any
	if status >= 300 || json.Unmarshal([]byte(text), &doc) != nil {
		t.Fatalf("%s %s: %d %s", method, url, status, text)
	}
	return doc
}

// Fields AWS always returns carry AWS's defaults, and fields AWS omits are absent.
func TestControlPlane_ReturnsTheFieldsAWSAlwaysReturnsWithItsDefaults(t *testing.T) {
	emu, c, _ := startEmulator(t, gatewayemu.Options{})
	f := newRESTFixture(t, emu, c, "http://127.0.0.1:1")
	base := emu.ControlURL
	key := rawJSON(t, "POST", base+"/apikeys", `{"enabled":true}`)
	plan := rawJSON(t, "POST", base+"/usageplans", `{"name":"gold"}`)
	httpAPI := rawJSON(t, "POST", base+"/v2/apis", `{"name":"h","protocolType":"HTTP"}`)
	auth := rawJSON(t, "POST", base+"/restapis/"+f.api+"/authorizers", `{"name":"a","type":"REQUEST","authorizerUri":"arn:lambda:x","identitySource":"method.request.header.Authorization"}`)
	for _, tc := range []struct {
		name   string
		doc    map[string]any
		want   map[string]any
		absent []string
	}{
		{"REST API", rawJSON(t, "GET", base+"/restapis/"+f.api, ""), map[string]any{
			"endpointConfiguration": map[string]any{"types": []any{"EDGE"}}, "disableExecuteApiEndpoint": false, "apiKeySource": "HEADER"}, nil},
		{"stage", rawJSON(t, "GET", base+"/restapis/"+f.api+"/stages/"+f.stage, ""), map[string]any{
			"cacheClusterEnabled": false, "cacheClusterStatus": "NOT_AVAILABLE", "methodSettings": map[string]any{}}, nil},
		{"API key without a name", key, map[string]any{"stageKeys": []any{}, "enabled": true}, []string{"name"}},
		{"usage plan", plan, map[string]any{"apiStages": []any{}}, nil},
		{"Lambda authorizer", auth, map[string]any{"authType": "custom", "authorizerResultTtlInSeconds": float64(300)}, nil},
		{"HTTP API", httpAPI, map[string]any{"apiKeySelectionExpression": "$request.header.x-api-key", "disableExecuteApiEndpoint": false}, nil},
	} {
		for field, want := range tc.want {
			if got, ok := tc.doc[field]; !ok || !reflect.DeepEqual(got, want) {
				t.Errorf("%s: %s = %#v (present %v), want %#v", tc.name, field, got, ok, want)
			}
		}
		for _, field := range tc.absent {
			if got, ok := tc.doc[field]; ok {
				t.Errorf("%s: %s = %#v, want it absent as on AWS", tc.name, field, got)
			}
		}
	}
}

// Error messages in AWS's words, so that a test matching on one can rely on it; and settings the
// emulator cannot honour are refused by name, never accepted and forgotten.
func TestControlPlane_ErrorMessagesInAWSWordsAndUnsupportedSettingsRefusedByName(t *testing.T) {
	emu, c, _ := startEmulator(t, gatewayemu.Options{})
	ctx := context.Background()
	f := newRESTFixture(t, emu, c, "http://127.0.0.1:1")
	patch := func(ops ...types.PatchOperation) error {
		_, err := c.UpdateStage(ctx, &apigateway.UpdateStageInput{RestApiId: &f.api, StageName: &f.stage, PatchOperations: ops})
		return err
	}
	for _, tc := range []struct {
		name string
		err  func() error
		want string
	}{
		{"unknown REST API", func() error {
			_, err := c.GetRestApi(ctx, &apigateway.GetRestApiInput{RestApiId: aws.String("nosuch")})
			return err
		}, "Invalid API identifier specified 000000000000:nosuch"},
		{"unknown stage", func() error {
			_, err := c.GetStage(ctx, &apigateway.GetStageInput{RestApiId: &f.api, StageName: aws.String("nosuch")})
			return err
		}, "Invalid Stage identifier specified"},
		{"unknown deployment", func() error {
			return patch(types.PatchOperation{Op: types.OpReplace, Path: aws.String("/deploymentId"), Value: aws.String("nosuch")})
		}, "Invalid deployment identifier specified"},
		{"promotion without a canary", func() error {
			return patch(types.PatchOperation{Op: types.OpCopy, From: aws.String("/canarySettings/deploymentId"), Path: aws.String("/deploymentId")})
		}, "Promotion not available. Canary does not exist."},
		{"add on an unknown path", func() error {
			return patch(types.PatchOperation{Op: types.OpAdd, Path: aws.String("/nonsense"), Value: aws.String("x")})
		}, "Invalid add operation with path: /nonsense"},
		{"stage cache", func() error {
			_, err := c.CreateStage(ctx, &apigateway.CreateStageInput{RestApiId: &f.api, StageName: aws.String("cached"), DeploymentId: &f.deployment, CacheClusterEnabled: true})
			return err
		}, "does not support stage caches (cacheClusterEnabled)"},
		{"usage plan quota", func() error {
			_, err := c.CreateUsagePlan(ctx, &apigateway.CreateUsagePlanInput{Name: aws.String("q"), Quota: &types.QuotaSettings{Limit: 10, Period: types.QuotaPeriodTypeDay}})
			return err
		}, "does not support usage plan throttle and quota"},
		{"endpoint type", func() error {
			_, err := c.CreateRestApi(ctx, &apigateway.CreateRestApiInput{Name: aws.String("x"), EndpointConfiguration: &types.EndpointConfiguration{Types: []types.EndpointType{"EDGE", "REGIONAL"}}})
			return err
		}, "exactly one of EDGE, REGIONAL, PRIVATE"},
		{"API key source AUTHORIZER", func() error {
			_, err := c.CreateRestApi(ctx, &apigateway.CreateRestApiInput{Name: aws.String("x"), ApiKeySource: types.ApiKeySourceTypeAuthorizer})
			return err
		}, "does not support apiKeySource AUTHORIZER"},
		{"API key source", func() error {
			_, err := c.CreateRestApi(ctx, &apigateway.CreateRestApiInput{Name: aws.String("x"), ApiKeySource: "QUERY"})
			return err
		}, "Invalid API key source specified: QUERY"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.err()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want a message with %q", err, tc.want)
			}
		})
	}
}

// The list operations rollgate and its users reach for first.
func TestControlPlane_GetStagesGetRestApisAndHTTPGetStages(t *testing.T) {
	emu, c, v2 := startEmulator(t, gatewayemu.Options{})
	ctx := context.Background()
	f := newRESTFixture(t, emu, c, "http://127.0.0.1:1")
	if _, err := c.CreateStage(ctx, &apigateway.CreateStageInput{RestApiId: &f.api, StageName: aws.String("beta"), DeploymentId: &f.deployment}); err != nil {
		t.Fatal(err)
	}
	stages, err := c.GetStages(ctx, &apigateway.GetStagesInput{RestApiId: &f.api})
	if err != nil || len(stages.Item) != 2 || *stages.Item[0].StageName != "beta" || *stages.Item[1].StageName != "prod" || stages.Item[0].CacheClusterStatus != types.CacheClusterStatusNotAvailable {
		t.Fatalf("GetStages = %+v, %v", stages, err)
	}
	apis, err := c.GetRestApis(ctx, &apigateway.GetRestApisInput{})
	if err != nil || len(apis.Items) != 1 || *apis.Items[0].Id != f.api || apis.Items[0].EndpointConfiguration.Types[0] != types.EndpointTypeEdge {
		t.Fatalf("GetRestApis = %+v, %v", apis, err)
	}
	apiID := newHTTPAPI(t, v2)
	if _, err := v2.CreateStage(ctx, &apigatewayv2.CreateStageInput{ApiId: apiID, StageName: aws.String("prod")}); err != nil {
		t.Fatal(err)
	}
	hs, err := v2.GetStages(ctx, &apigatewayv2.GetStagesInput{ApiId: apiID})
	if err != nil || len(hs.Items) != 1 || *hs.Items[0].StageName != "prod" {
		t.Fatalf("HTTP GetStages = %+v, %v", hs, err)
	}
	_, err = c.GetStages(ctx, &apigateway.GetStagesInput{RestApiId: aws.String("nosuch")})
	as[*types.NotFoundException](t, err)
	if status, _, _ := raw(t, "GET", emu.ControlURL+"/restapis/"+f.api+"/stages?deploymentId=nosuch", ""); status != http.StatusOK {
		t.Fatalf("GetStages by an unknown deployment: %d", status)
	}
}
