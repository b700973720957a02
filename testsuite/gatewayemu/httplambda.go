package gatewayemu

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"time"
)

// executeAPIARN is the start of every execute-api ARN the emulator makes: one region, one account.
const (
	emulatorAccount = "000000000000"
	executeAPIARN   = "arn:aws:execute-api:us-east-1:" + emulatorAccount + ":"
)

// HTTPAuthorizerRequest is what an HTTP API hands its Lambda REQUEST authorizer: the facts its
// payload format's event is made of (named as in format 2.0; format 1.0 carries the same facts in
// the REST REQUEST shape).
type HTTPAuthorizerRequest struct {
	// PayloadFormatVersion is "1.0" or "2.0"; SimpleResponses says whether the answer may be
	// {isAuthorized, context} instead of an IAM policy.
	PayloadFormatVersion string
	SimpleResponses      bool
	// RouteArn is arn:aws:execute-api:<region>:<account>:<api>/<stage>/<VERB>/<path below the stage>.
	RouteArn string
	RouteKey string
	// IdentitySource holds the values of the authorizer's identity sources, in its order.
	IdentitySource []string
	Method         string
	// RawPath is the path the client sent, the stage included unless it is $default; Path is the
	// part below the stage, which the route matched.
	RawPath, Path  string
	RawQueryString string
	Headers        http.Header
	PathParameters map[string]string
	StageVariables map[string]string
	AccountID      string
	APIID, Stage   string
	DomainName     string
	RequestID      string
	Protocol       string
	SourceIP       string
	UserAgent      string
	Time           time.Time
}

// Decision is what API Gateway makes of a Lambda authorizer's answer, and what its result cache
// keeps.
type Decision struct {
	Effect Effect
	// PrincipalID is a REST authorizer's principalId (context.authorizer.principalId in mappings).
	PrincipalID string
	// Context is the answer's context object, which API Gateway hands on to the integration.
	Context map[string]any
	// Policy judges an IAM policy answer again for another request's route ARN, as API Gateway
	// evaluates a cached policy per request. It is nil for a simple response, whose verdict
	// covers every request with the same identity.
	Policy func(routeARN string) Effect
}

// HTTPLambdaAuthorizer stands in for the Lambda function behind an HTTP API REQUEST authorizer.
// An error is a failed invocation or an answer API Gateway cannot read: a 500 to the client.
type HTTPLambdaAuthorizer func(ctx context.Context, req HTTPAuthorizerRequest) (Decision, error)

// RegisterHTTPLambda backs every HTTP API REQUEST authorizer whose authorizerUri equals uri with fn.
func (e *Emulator) RegisterHTTPLambda(uri string, fn HTTPLambdaAuthorizer) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.httpLambdas[uri] = fn
}

// httpLambdaCall is what the data plane read under the emulator's lock to run a REQUEST
// authorizer for one request.
type httpLambdaCall struct {
	api, stage string
	route      *route
	pathParams map[string]string
	auth       *httpAuthorizer
	variables  map[string]string
	lambda     HTTPLambdaAuthorizer
	cache      *authorizerCache
}

// authorizeHTTPLambda runs the route's Lambda REQUEST authorizer through the stage's result cache
// and answers as API Gateway does when it refuses: 401 without invoking the function when an
// identity source is missing, 403 when the answer denies, 500 when the function fails or its
// answer is unreadable. It reports whether the request goes on, with the decision.
func (e *Emulator) authorizeHTTPLambda(w http.ResponseWriter, r *http.Request, c httpLambdaCall, path string) (Decision, bool) {
	req := e.httpAuthorizerRequest(r, c, path)
	values, ok := identityValues(c.auth.IdentitySource, r, c.variables, contextVariables(req))
	if !ok {
		gatewayError(w, http.StatusUnauthorized, "UnauthorizedException", "Unauthorized")
		return Decision{}, false
	}
	req.IdentitySource = values
	d, err := e.decideHTTP(r.Context(), c, req)
	if err != nil {
		gatewayError(w, http.StatusInternalServerError, "AuthorizerConfigurationException", "Internal Server Error")
		return Decision{}, false
	}
	switch d.Effect {
	case Allow:
		return d, true
	case Unauthorized:
		gatewayError(w, http.StatusUnauthorized, "UnauthorizedException", "Unauthorized")
	default:
		gatewayError(w, http.StatusForbidden, "ForbiddenException", "Forbidden")
	}
	return Decision{}, false
}

// decideHTTP answers from the cache, keyed by the authorizer and its identity sources' values,
// or invokes the function and caches its decision for the authorizer's TTL. A failure is not
// cached.
func (e *Emulator) decideHTTP(ctx context.Context, c httpLambdaCall, req HTTPAuthorizerRequest) (Decision, error) {
	ttl := c.auth.ttl()
	key := c.auth.AuthorizerID + "\x00" + strings.Join(req.IdentitySource, "\x00")
	if ttl > 0 {
		if d, ok := c.cache.get(key, e.opts.Now()); ok {
			if d.Policy != nil {
				d.Effect = d.Policy(req.RouteArn)
			}
			return d, nil
		}
	}
	if c.lambda == nil {
		return Decision{}, errors.New("no Lambda registered for the authorizer URI")
	}
	d, err := c.lambda(ctx, req)
	if err != nil {
		return Decision{}, err
	}
	if ttl > 0 {
		c.cache.put(key, d, e.opts.Now().Add(time.Duration(ttl)*time.Second))
	}
	return d, nil
}

func (e *Emulator) httpAuthorizerRequest(r *http.Request, c httpLambdaCall, path string) HTTPAuthorizerRequest {
	rawPath := path
	if c.stage != "$default" {
		rawPath = "/" + c.stage + path
	}
	sourceIP, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		sourceIP = r.RemoteAddr
	}
	return HTTPAuthorizerRequest{
		PayloadFormatVersion: c.auth.AuthorizerPayloadFormatVersion, SimpleResponses: c.auth.EnableSimpleResponses,
		RouteArn: executeAPIARN + c.api + "/" + c.stage + "/" + r.Method + path, RouteKey: c.route.RouteKey,
		Method: r.Method, RawPath: rawPath, Path: path, RawQueryString: r.URL.RawQuery, Headers: r.Header.Clone(),
		PathParameters: c.pathParams, StageVariables: c.variables,
		AccountID: emulatorAccount, APIID: c.api, Stage: c.stage, DomainName: r.Host, RequestID: newID(16),
		Protocol: r.Proto, SourceIP: sourceIP, UserAgent: r.UserAgent(), Time: e.opts.Now(),
	}
}

// contextVariables are the $context variables an identity source may name (checkIdentitySource
// accepts no others).
func contextVariables(req HTTPAuthorizerRequest) map[string]string {
	return map[string]string{
		"accountId": req.AccountID, "apiId": req.APIID, "domainName": req.DomainName, "httpMethod": req.Method,
		"identity.sourceIp": req.SourceIP, "identity.userAgent": req.UserAgent, "protocol": req.Protocol,
		"routeKey": req.RouteKey, "stage": req.Stage,
	}
}

// identityValues reads the identity sources from the request. Like API Gateway it wants every
// one present and non-empty; a header's repeated values and a query parameter's are joined by
// commas. Header names are case-insensitive, query parameter names are not.
func identityValues(sources []string, r *http.Request, variables, context map[string]string) ([]string, bool) {
	query := r.URL.Query()
	values := make([]string, 0, len(sources))
	for _, s := range sources {
		var v string
		if name, ok := strings.CutPrefix(s, "$request.header."); ok {
			v = strings.Join(r.Header.Values(name), ",")
		} else if name, ok := strings.CutPrefix(s, "$request.querystring."); ok {
			v = strings.Join(query[name], ",")
		} else if name, ok := strings.CutPrefix(s, "$stageVariables."); ok {
			v = variables[name]
		} else if name, ok := strings.CutPrefix(s, "$context."); ok {
			v = context[name]
		}
		if v == "" {
			return nil, false
		}
		values = append(values, v)
	}
	return values, true
}
