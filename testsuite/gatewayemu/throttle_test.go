package gatewayemu_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/apigateway"
	"github.com/aws/aws-sdk-go-v2/service/apigateway/types"

	"github.com/rollgate/rollgate/testsuite/gatewayemu"
)

// With AWS's quotas on, a burst of control-plane calls beyond the account's bucket, and a second
// CreateDeployment within 5 s, are answered 429 TooManyRequestsException, as AWS answers them; the
// data plane is not counted against them.
func TestThrottle_ControlPlaneQuotasAnswer429AsAWSDoes(t *testing.T) {
	emu, c, _ := startEmulator(t, gatewayemu.Options{Throttle: gatewayemu.AWSThrottle()})
	ctx := context.Background()
	noRetry := func(o *apigateway.Options) { o.RetryMaxAttempts = 1 }

	api, err := c.CreateRestApi(ctx, &apigateway.CreateRestApiInput{Name: aws.String("orders")}, noRetry)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutMethod(ctx, &apigateway.PutMethodInput{RestApiId: api.Id, ResourceId: api.RootResourceId, HttpMethod: aws.String("GET"), AuthorizationType: aws.String("NONE")}, noRetry); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutIntegration(ctx, &apigateway.PutIntegrationInput{RestApiId: api.Id, ResourceId: api.RootResourceId, HttpMethod: aws.String("GET"),
		Type: types.IntegrationTypeMock}, noRetry); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateDeployment(ctx, &apigateway.CreateDeploymentInput{RestApiId: api.Id, StageName: aws.String("prod")}, noRetry); err != nil {
		t.Fatal(err)
	}
	_, err = c.CreateDeployment(ctx, &apigateway.CreateDeploymentInput{RestApiId: api.Id, StageName: aws.String("prod")}, noRetry)
	var tooMany *types.TooManyRequestsException
	if !errors.As(err, &tooMany) {
		t.Fatalf("a second CreateDeployment within 5 s: %v; want TooManyRequestsException", err)
	}

	refused := 0
	for range 60 {
		_, err := c.GetStage(ctx, &apigateway.GetStageInput{RestApiId: api.Id, StageName: aws.String("prod")}, noRetry)
		switch {
		case errors.As(err, &tooMany):
			refused++
		case err != nil:
			t.Fatal(err)
		}
	}
	// 40 in the bucket at most (minus the calls above), refilled at 10/s while the loop runs.
	if refused == 0 || refused > 30 || emu.Throttled("GetStage") != refused || emu.Throttled("CreateDeployment") != 1 {
		t.Fatalf("%d of 60 GetStage calls refused (emulator: %d GetStage, %d CreateDeployment)", refused, emu.Throttled("GetStage"), emu.Throttled("CreateDeployment"))
	}

	// The SDK's standard retryer backs off on 429 and gets through, as it does on AWS.
	if _, err := c.GetStage(ctx, &apigateway.GetStageInput{RestApiId: api.Id, StageName: aws.String("prod")}); err != nil {
		t.Fatalf("with retries: %v", err)
	}
}

// A call the account's bucket refuses takes nothing from its operation's own quota either: a
// CreateDeployment retried while the shared bucket refills gets through once it has.
func TestThrottle_ACallRefusedByTheSharedBucketKeepsItsOperationsQuota(t *testing.T) {
	emu, c, _ := startEmulator(t, gatewayemu.Options{})
	ctx := context.Background()
	noRetry := func(o *apigateway.Options) { o.RetryMaxAttempts = 1 }
	api, err := c.CreateRestApi(ctx, &apigateway.CreateRestApiInput{Name: aws.String("orders")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutMethod(ctx, &apigateway.PutMethodInput{RestApiId: api.Id, ResourceId: api.RootResourceId, HttpMethod: aws.String("GET"), AuthorizationType: aws.String("NONE")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutIntegration(ctx, &apigateway.PutIntegrationInput{RestApiId: api.Id, ResourceId: api.RootResourceId, HttpMethod: aws.String("GET"),
		Type: types.IntegrationTypeMock}); err != nil {
		t.Fatal(err)
	}
	// One call every 5 s for the account; CreateDeployment's own quota never refills in this test.
	emu.SetThrottle(&gatewayemu.Throttle{Rate: 0.2, Burst: 1, PerOperation: map[string]float64{"CreateDeployment": 0.0001}})
	if _, err := c.GetRestApi(ctx, &apigateway.GetRestApiInput{RestApiId: api.Id}, noRetry); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := c.CreateDeployment(ctx, &apigateway.CreateDeploymentInput{RestApiId: api.Id, StageName: aws.String("prod")}, noRetry)
		var tooMany *types.TooManyRequestsException
		if err == nil {
			return
		}
		if !errors.As(err, &tooMany) {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("CreateDeployment still refused 30 s after the account's bucket refilled (%d refused): a refusal by the shared bucket spent its own quota", emu.Throttled("CreateDeployment"))
		}
		time.Sleep(100 * time.Millisecond) // pacing the poll, not waiting for a fixed time
	}
}
