package testsuite

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/aws/aws-lambda-go/events"

	"github.com/rollgate/rollgate/testsuite/gatewayemu"
)

// RESTAuthorizer is the function as the Lambda behind a REST API TOKEN or REQUEST authorizer
// (gatewayemu's RegisterLambda): the emulator's request becomes the event JSON API Gateway
// posts, and the answer is judged as API Gateway judges it. The error Unauthorized is a 401; a
// policy is evaluated against the method ARN (an explicit Deny wins, then an Allow of
// execute-api:Invoke, and no matching statement is a deny: 403); anything else is a failed
// invocation (500). An Allow keeps the answer's principalId and context, which the integration's
// requestParameters hand to the backend (context.authorizer.<key>), and its policy, evaluated
// again for each method ARN answered from the cache.
func (f *LambdaFunction) RESTAuthorizer() gatewayemu.LambdaAuthorizer {
	return func(ctx context.Context, req gatewayemu.AuthorizerRequest) (gatewayemu.Decision, error) {
		event, err := json.Marshal(restAuthorizerEvent(req))
		if err != nil {
			return gatewayemu.Decision{}, err
		}
		answer, err := f.Invoke(ctx, event)
		if err != nil {
			return gatewayemu.Decision{}, err
		}
		return judgeRESTAnswer(answer, req.MethodArn)
	}
}

// restAuthorizerEvent is what API Gateway posts to a TOKEN or a REQUEST authorizer.
func restAuthorizerEvent(req gatewayemu.AuthorizerRequest) any {
	if req.Type == "TOKEN" {
		return events.APIGatewayCustomAuthorizerRequest{Type: "TOKEN", AuthorizationToken: req.AuthorizationToken, MethodArn: req.MethodArn}
	}
	headers := map[string]string{}
	for k, vs := range req.Headers {
		if len(vs) > 0 {
			headers[k] = vs[len(vs)-1] // API Gateway keeps the last value in headers, all in multiValueHeaders
		}
	}
	stage, apiID := "", ""
	if parts := strings.Split(req.MethodArn, "/"); len(parts) > 1 {
		stage = parts[1]
		apiID = parts[0][strings.LastIndex(parts[0], ":")+1:]
	}
	return events.APIGatewayCustomAuthorizerRequestTypeRequest{
		Type: "REQUEST", MethodArn: req.MethodArn, Resource: req.Path, Path: req.Path, HTTPMethod: req.HTTPMethod,
		Headers: headers, MultiValueHeaders: req.Headers, StageVariables: req.StageVariables,
		RequestContext: events.APIGatewayCustomAuthorizerRequestTypeRequestContext{
			Path: "/" + stage + req.Path, Stage: stage, APIID: apiID, HTTPMethod: req.HTTPMethod,
			Identity: events.APIGatewayCustomAuthorizerRequestTypeRequestIdentity{SourceIP: req.SourceIP},
		},
	}
}

// policyAnswer is a REST authorizer's answer; IAM accepts a string or a list for Action and
// Resource.
type policyAnswer struct {
	ErrorMessage   *string        `json:"errorMessage"`
	PrincipalID    string         `json:"principalId"`
	Context        map[string]any `json:"context"`
	PolicyDocument struct {
		Statement []struct {
			Effect   string
			Action   stringOrList
			Resource stringOrList
		}
	} `json:"policyDocument"`
}

type stringOrList []string

func (s *stringOrList) UnmarshalJSON(b []byte) error {
	var one string
	if json.Unmarshal(b, &one) == nil {
		*s = []string{one}
		return nil
	}
	return json.Unmarshal(b, (*[]string)(s))
}

func judgeRESTAnswer(answer []byte, methodARN string) (gatewayemu.Decision, error) {
	a, err := readPolicyAnswer(answer)
	if err != nil || a.ErrorMessage != nil {
		return gatewayemu.Decision{Effect: gatewayemu.Unauthorized}, err
	}
	return gatewayemu.Decision{Effect: a.effectFor(methodARN), PrincipalID: a.PrincipalID, Context: a.Context, Policy: a.effectFor}, nil
}

// readPolicyAnswer reads an IAM policy answer. The function error Unauthorized comes back as the
// answer with its ErrorMessage set; any other error, an answer that is not JSON or one without a
// principal and a policy is a failed invocation.
func readPolicyAnswer(answer []byte) (*policyAnswer, error) {
	var a policyAnswer
	if err := json.Unmarshal(answer, &a); err != nil {
		return nil, fmt.Errorf("authorizer answer is not JSON: %w", err)
	}
	if a.ErrorMessage != nil {
		if *a.ErrorMessage == "Unauthorized" {
			return &a, nil
		}
		return nil, fmt.Errorf("authorizer failed: %.200s", *a.ErrorMessage)
	}
	if a.PrincipalID == "" || len(a.PolicyDocument.Statement) == 0 {
		return nil, errors.New("authorizer answer has no principalId or policy")
	}
	return &a, nil
}

// effectFor evaluates the policy for one ARN: an explicit Deny wins, then an Allow of
// execute-api:Invoke; no matching statement is a deny.
func (a *policyAnswer) effectFor(arn string) gatewayemu.Effect {
	allowed := false
	for _, s := range a.PolicyDocument.Statement {
		if !matchesAny(s.Action, "execute-api:Invoke", true) || !matchesAny(s.Resource, arn, false) {
			continue
		}
		switch {
		case strings.EqualFold(s.Effect, "Deny"):
			return gatewayemu.Deny
		case strings.EqualFold(s.Effect, "Allow"):
			allowed = true
		}
	}
	if allowed {
		return gatewayemu.Allow
	}
	return gatewayemu.Deny
}

// matchesAny reports whether one IAM pattern (* any run of characters, ? one) matches value.
// IAM compares actions without case and resources (ARNs) with it.
func matchesAny(patterns []string, value string, foldCase bool) bool {
	flags := `(?s)`
	if foldCase {
		flags = `(?is)`
	}
	for _, p := range patterns {
		expr := strings.NewReplacer(`\*`, `.*`, `\?`, `.`).Replace(regexp.QuoteMeta(p))
		if regexp.MustCompile(flags + `^` + expr + `$`).MatchString(value) {
			return true
		}
	}
	return false
}
