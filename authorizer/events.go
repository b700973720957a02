package main

import (
	"context"
	"errors"
	"strings"

	"github.com/aws/aws-lambda-go/events"
	json "github.com/goccy/go-json" // the event decoding is half the cost of an invocation with encoding/json
)

// errUnauthorized is the one Lambda error API Gateway turns into a 401 for REST TOKEN and
// REQUEST authorizers (and HTTP API payload 1.0); any other error is a 500.
var errUnauthorized = errors.New("Unauthorized")

// errUnrecognizedEvent is an event no API Gateway authorizer sends: the function is attached
// wrongly, which API Gateway reports as a 500, not as a client's fault.
var errUnrecognizedEvent = errors.New("unrecognized event: want a REST TOKEN or REQUEST authorizer event, or an HTTP API REQUEST event (payload 1.0 or 2.0)")

// eventShape is what tells the kinds of event apart: REST sends type TOKEN or REQUEST, HTTP
// APIs add version "1.0" (the REST REQUEST shape) or "2.0".
type eventShape struct {
	Type    string `json:"type"`
	Version string `json:"version"`
}

// handleEvent is the Lambda handler: it reads the event's shape, decodes the event once into
// its own type and answers in the format that kind of authorizer expects.
func (a *Authorizer) handleEvent(ctx context.Context, raw json.RawMessage) (any, error) {
	var shape eventShape
	if err := json.Unmarshal(raw, &shape); err != nil {
		return nil, errUnrecognizedEvent
	}
	switch {
	case shape.Type == "REQUEST" && shape.Version == "2.0":
		return a.httpSimple(ctx, raw), nil
	case shape.Type == "TOKEN" && shape.Version == "":
		return a.restToken(ctx, raw)
	case shape.Type == "REQUEST" && (shape.Version == "" || shape.Version == "1.0"):
		return a.restRequest(ctx, raw)
	}
	return nil, errUnrecognizedEvent
}

// restToken answers a TOKEN authorizer. It sees no stage variables, so the release is unknown.
func (a *Authorizer) restToken(ctx context.Context, raw json.RawMessage) (any, error) {
	var ev events.APIGatewayCustomAuthorizerRequest
	err := json.Unmarshal(raw, &ev)
	stage, ok := stageWideARN(ev.MethodArn)
	if err != nil || !ok {
		a.reject(request{Token: ev.AuthorizationToken}, labelUnknown, reasonBadEvent, nil)
		return nil, errUnauthorized
	}
	id := a.check(ctx, request{Token: bearer(ev.AuthorizationToken)})
	if id == nil {
		return nil, errUnauthorized
	}
	return allow(stage, id), nil
}

// restRequest answers a REQUEST authorizer (REST, or HTTP API payload 1.0), which sees the
// stage variables of the deployment serving the request: canary or stable.
func (a *Authorizer) restRequest(ctx context.Context, raw json.RawMessage) (any, error) {
	var ev events.APIGatewayCustomAuthorizerRequestTypeRequest
	err := json.Unmarshal(raw, &ev)
	r := request{Token: bearer(header(ev.Headers, "Authorization")), Release: ev.StageVariables[a.cfg.ReleaseVariable],
		SourceIP: ev.RequestContext.Identity.SourceIP}
	if len(headerValues(ev.MultiValueHeaders, "Authorization")) > 1 {
		// headers holds the last; the backend also gets every one, and could read another.
		r.Token = ""
	}
	stage, ok := stageWideARN(ev.MethodArn)
	if err != nil || !ok {
		a.reject(r, a.releases.label(r.Release), reasonBadEvent, nil)
		return nil, errUnauthorized
	}
	id := a.check(ctx, r)
	if id == nil {
		return nil, errUnauthorized
	}
	return allow(stage, id), nil
}

// httpSimple answers an HTTP API authorizer with payload 2.0 and simple responses enabled;
// API Gateway answers 403 to isAuthorized false.
func (a *Authorizer) httpSimple(ctx context.Context, raw json.RawMessage) events.APIGatewayV2CustomAuthorizerSimpleResponse {
	var ev events.APIGatewayV2CustomAuthorizerV2Request
	err := json.Unmarshal(raw, &ev)
	r := request{Token: bearer(header(ev.Headers, "Authorization")), Release: ev.StageVariables[a.cfg.ReleaseVariable],
		SourceIP: ev.RequestContext.HTTP.SourceIP}
	if err != nil {
		a.reject(r, a.releases.label(r.Release), reasonBadEvent, nil)
		return events.APIGatewayV2CustomAuthorizerSimpleResponse{}
	}
	id := a.check(ctx, r)
	if id == nil {
		return events.APIGatewayV2CustomAuthorizerSimpleResponse{}
	}
	return events.APIGatewayV2CustomAuthorizerSimpleResponse{IsAuthorized: true, Context: id.context()}
}

// allow is an IAM policy for the whole stage, so that API Gateway's cached answer (keyed by the
// token) serves every method and path of the stage, not only the one first called.
func allow(stageARN string, id *identity) events.APIGatewayCustomAuthorizerResponse {
	return events.APIGatewayCustomAuthorizerResponse{
		PrincipalID: id.Subject,
		PolicyDocument: events.APIGatewayCustomAuthorizerPolicy{Version: "2012-10-17", Statement: []events.IAMPolicyStatement{{
			Action: []string{"execute-api:Invoke"}, Effect: "Allow", Resource: []string{stageARN},
		}}},
		Context: id.context(),
	}
}

// context is what the backend receives about the caller: $context.authorizer.<key> in mappings,
// requestContext.authorizer (REST) or requestContext.authorizer.lambda (HTTP API) in proxy events.
func (id *identity) context() map[string]any {
	return map[string]any{"sub": id.Subject, "client_id": id.ClientID, "kid": id.KID, "jti": id.JTI, "scope": id.Scope}
}

// stageWideARN turns arn:<partition>:execute-api:<region>:<account>:<api>/<stage>/<verb>/<path>
// into the ARN of every method of that stage.
func stageWideARN(methodARN string) (string, bool) {
	if len(methodARN) > 2048 {
		return "", false
	}
	parts := strings.SplitN(methodARN, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || parts[2] != "execute-api" {
		return "", false
	}
	segs := strings.SplitN(parts[5], "/", 3)
	if len(segs) < 3 {
		return "", false
	}
	for _, s := range []string{parts[1], parts[3], parts[4], segs[0], segs[1]} {
		if s == "" || strings.ContainsAny(s, "*?/ ") {
			return "", false
		}
	}
	return strings.Join(parts[:5], ":") + ":" + segs[0] + "/" + segs[1] + "/*/*", true
}

// header finds a header whatever its case: REST events keep the client's case, HTTP APIs lower it.
func header(h map[string]string, name string) string {
	if v, ok := h[name]; ok {
		return v
	}
	for k, v := range h {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return ""
}

// bearer takes the token out of an Authorization value; a TOKEN authorizer's token source may
// also hold the bare token.
func bearer(v string) string {
	v = strings.TrimSpace(v)
	if len(v) > 7 && strings.EqualFold(v[:7], "Bearer ") {
		return strings.TrimSpace(v[7:])
	}
	return v
}

// headerValues is every value of a header in multiValueHeaders, under whatever case of its name.
func headerValues(h map[string][]string, name string) []string {
	var out []string
	for k, v := range h {
		if strings.EqualFold(k, name) {
			out = append(out, v...)
		}
	}
	return out
}
