package testsuite

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/aws/aws-lambda-go/events"

	"github.com/rollgate/rollgate/testsuite/gatewayemu"
)

// HTTPAuthorizer is the function as the Lambda behind an HTTP API REQUEST authorizer
// (gatewayemu's RegisterHTTPLambda): the emulator's request becomes the event of the
// authorizer's payload format version, and the answer is judged as API Gateway judges it. A
// simple response's isAuthorized decides alone (false: 403); an IAM policy (payload 1.0, or 2.0
// without simple responses) is evaluated against the route ARN, and again for each request
// answered from the cache; the function error Unauthorized is a 401, as for REST; any other
// error or an unreadable answer is a failed invocation (500). The answer's context is kept in the
// decision.
func (f *LambdaFunction) HTTPAuthorizer() gatewayemu.HTTPLambdaAuthorizer {
	return func(ctx context.Context, req gatewayemu.HTTPAuthorizerRequest) (gatewayemu.Decision, error) {
		var event any = httpAuthorizerEventV2(req)
		if req.PayloadFormatVersion == "1.0" {
			event = httpAuthorizerEventV1(req)
		}
		body, err := json.Marshal(event)
		if err != nil {
			return gatewayemu.Decision{}, err
		}
		answer, err := f.Invoke(ctx, body)
		if err != nil {
			return gatewayemu.Decision{}, err
		}
		return judgeHTTPAnswer(answer, req.RouteArn, req.SimpleResponses)
	}
}

// httpAuthorizerEventV2 is the payload format 2.0 event: header names in lower case with
// repeated values joined by commas, cookies apart from the headers, query parameters joined by
// commas, and the path as the client sent it, stage included.
func httpAuthorizerEventV2(req gatewayemu.HTTPAuthorizerRequest) events.APIGatewayV2CustomAuthorizerV2Request {
	headers := map[string]string{}
	var cookies []string
	for name, values := range req.Headers {
		if strings.EqualFold(name, "Cookie") {
			cookies = append(cookies, splitCookies(values)...)
			continue
		}
		headers[strings.ToLower(name)] = strings.Join(values, ",")
	}
	return events.APIGatewayV2CustomAuthorizerV2Request{
		Version: "2.0", Type: "REQUEST", RouteArn: req.RouteArn, IdentitySource: req.IdentitySource, RouteKey: req.RouteKey,
		RawPath: req.RawPath, RawQueryString: req.RawQueryString, Cookies: cookies, Headers: headers,
		QueryStringParameters: joinedQuery(req.RawQueryString), PathParameters: req.PathParameters, StageVariables: req.StageVariables,
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			AccountID: req.AccountID, APIID: req.APIID, DomainName: req.DomainName, DomainPrefix: strings.Split(req.DomainName, ".")[0],
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{
				Method: req.Method, Path: req.RawPath, Protocol: req.Protocol, SourceIP: req.SourceIP, UserAgent: req.UserAgent,
			},
			RequestID: req.RequestID, RouteKey: req.RouteKey, Stage: req.Stage,
			Time: req.Time.UTC().Format("02/Jan/2006:15:04:05 -0700"), TimeEpoch: req.Time.UnixMilli(),
		},
	}
}

// httpAuthorizerEventV1 is the payload format 1.0 event: the REST REQUEST shape with a version,
// the identity source values joined by commas and the route ARN as the method ARN.
func httpAuthorizerEventV1(req gatewayemu.HTTPAuthorizerRequest) any {
	headers := map[string]string{}
	for name, values := range req.Headers {
		headers[name] = strings.Join(values, ",")
	}
	query, _ := url.ParseQuery(req.RawQueryString)
	_, resource, _ := strings.Cut(req.RouteKey, " ")
	identity := strings.Join(req.IdentitySource, ",")
	return struct {
		Version            string `json:"version"`
		IdentitySource     string `json:"identitySource"`
		AuthorizationToken string `json:"authorizationToken"`
		events.APIGatewayCustomAuthorizerRequestTypeRequest
	}{"1.0", identity, identity, events.APIGatewayCustomAuthorizerRequestTypeRequest{
		Type: "REQUEST", MethodArn: req.RouteArn, Resource: resource, Path: req.RawPath, HTTPMethod: req.Method,
		Headers: headers, MultiValueHeaders: req.Headers, QueryStringParameters: joinedQuery(req.RawQueryString),
		MultiValueQueryStringParameters: query, PathParameters: req.PathParameters, StageVariables: req.StageVariables,
		RequestContext: events.APIGatewayCustomAuthorizerRequestTypeRequestContext{
			Path: req.RawPath, AccountID: req.AccountID, Stage: req.Stage, RequestID: req.RequestID, ResourcePath: resource,
			HTTPMethod: req.Method, APIID: req.APIID,
			Identity: events.APIGatewayCustomAuthorizerRequestTypeRequestIdentity{SourceIP: req.SourceIP},
		},
	}}
}

func splitCookies(headerValues []string) []string {
	var out []string
	for _, v := range headerValues {
		for _, c := range strings.Split(v, ";") {
			if c = strings.TrimSpace(c); c != "" {
				out = append(out, c)
			}
		}
	}
	return out
}

// joinedQuery is the query string's parameters with repeated values joined by commas; nil when
// there are none, as API Gateway leaves the field out.
func joinedQuery(raw string) map[string]string {
	q, _ := url.ParseQuery(raw)
	if len(q) == 0 {
		return nil
	}
	out := make(map[string]string, len(q))
	for k, vs := range q {
		out[k] = strings.Join(vs, ",")
	}
	return out
}

// simpleAnswer is an HTTP API authorizer's simple response.
type simpleAnswer struct {
	ErrorMessage *string        `json:"errorMessage"`
	IsAuthorized *bool          `json:"isAuthorized"`
	Context      map[string]any `json:"context"`
}

func judgeHTTPAnswer(answer []byte, routeARN string, simple bool) (gatewayemu.Decision, error) {
	if !simple {
		a, err := readPolicyAnswer(answer)
		if err != nil || a.ErrorMessage != nil {
			return gatewayemu.Decision{Effect: gatewayemu.Unauthorized}, err
		}
		return gatewayemu.Decision{Effect: a.effectFor(routeARN), Context: a.Context, Policy: a.effectFor}, nil
	}
	var a simpleAnswer
	if err := json.Unmarshal(answer, &a); err != nil {
		return gatewayemu.Decision{}, fmt.Errorf("authorizer answer is not JSON: %w", err)
	}
	switch {
	case a.ErrorMessage != nil && *a.ErrorMessage == "Unauthorized":
		return gatewayemu.Decision{Effect: gatewayemu.Unauthorized}, nil
	case a.ErrorMessage != nil:
		return gatewayemu.Decision{}, fmt.Errorf("authorizer failed: %.200s", *a.ErrorMessage)
	case a.IsAuthorized == nil:
		return gatewayemu.Decision{}, errors.New("authorizer answer has no boolean isAuthorized")
	case *a.IsAuthorized:
		return gatewayemu.Decision{Effect: gatewayemu.Allow, Context: a.Context}, nil
	}
	return gatewayemu.Decision{Effect: gatewayemu.Deny, Context: a.Context}, nil
}
