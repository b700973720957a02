package gatewayemu_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/apigateway"
	"github.com/aws/aws-sdk-go-v2/service/apigatewayv2"
	"github.com/aws/smithy-go"

	"github.com/rollgate/rollgate/testsuite/gatewayemu"
)

// An operation the emulator does not implement answers 400 InvalidAction naming the operation:
// never a 404 NotFoundException that code checking the status would read as a missing resource.
func TestUnsupportedOperations_AnswerInvalidActionNotNotFound(t *testing.T) {
	_, c, v2 := startEmulator(t, gatewayemu.Options{})
	ctx := context.Background()
	api, err := c.CreateRestApi(ctx, &apigateway.CreateRestApiInput{Name: aws.String("unsupported")})
	if err != nil {
		t.Fatal(err)
	}
	httpAPI := newHTTPAPI(t, v2)
	for _, tc := range []struct {
		name, path string
		call       func() error
	}{
		{"DeleteRestApi", "/restapis/" + *api.Id, func() error {
			_, err := c.DeleteRestApi(ctx, &apigateway.DeleteRestApiInput{RestApiId: api.Id})
			return err
		}},
		{"UpdateMethod", "/methods/GET", func() error {
			_, err := c.UpdateMethod(ctx, &apigateway.UpdateMethodInput{RestApiId: api.Id, ResourceId: api.RootResourceId, HttpMethod: aws.String("GET")})
			return err
		}},
		{"GetModels", "/models", func() error {
			_, err := c.GetModels(ctx, &apigateway.GetModelsInput{RestApiId: api.Id})
			return err
		}},
		{"DeleteApi", "/v2/apis/" + *httpAPI, func() error {
			_, err := v2.DeleteApi(ctx, &apigatewayv2.DeleteApiInput{ApiId: httpAPI})
			return err
		}},
		{"GetDomainNames", "/v2/domainnames", func() error {
			_, err := v2.GetDomainNames(ctx, &apigatewayv2.GetDomainNamesInput{})
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			var ae smithy.APIError
			var re *awshttp.ResponseError
			if !errors.As(err, &ae) || !errors.As(err, &re) || ae.ErrorCode() != "InvalidAction" || re.HTTPStatusCode() != http.StatusBadRequest ||
				!strings.Contains(ae.ErrorMessage(), "does not support the operation") || !strings.Contains(ae.ErrorMessage(), tc.path) {
				t.Fatalf("%s: %v; want 400 InvalidAction naming %s", tc.name, err, tc.path)
			}
		})
	}
}
