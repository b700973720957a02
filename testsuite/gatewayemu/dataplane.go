package gatewayemu

import (
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// invoke serves /{apiId}/{stage}/{path...}: it picks the stable or canary deployment, runs the
// method's authorizer and proxies to the deployment's backend, answering as API Gateway does.
func (e *Emulator) invoke(w http.ResponseWriter, r *http.Request) {
	w, metered := e.meter(w)
	var apiID, stageName string
	defer func() { metered(apiID, stageName) }()
	latency, status := e.fault("Invoke")
	if latency > 0 {
		time.Sleep(latency)
	}
	if status != 0 {
		gatewayError(w, status, "InternalServerErrorException", "Internal server error")
		return
	}
	parts := strings.SplitN(strings.TrimPrefix(r.URL.Path, "/"), "/", 3)
	if len(parts) < 2 {
		gatewayError(w, http.StatusForbidden, "MissingAuthenticationTokenException", "Missing Authentication Token")
		return
	}
	apiID, stageName = parts[0], parts[1]
	path := "/"
	if len(parts) == 3 {
		path += parts[2]
	}
	e.mu.Lock()
	rest, httpAPI := e.restAPIs[apiID], e.httpAPIs[apiID]
	e.mu.Unlock()
	switch {
	case rest != nil:
		e.invokeREST(w, r, rest, stageName, path)
	case httpAPI != nil:
		e.invokeHTTP(w, r, httpAPI, stageName, path)
	default:
		gatewayError(w, http.StatusNotFound, "NotFoundException", "Not Found")
	}
}

// gatewayError writes a data-plane error the way API Gateway's default gateway responses do.
func gatewayError(w http.ResponseWriter, status int, errorType, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Amzn-ErrorType", errorType)
	w.WriteHeader(status)
	key := "message"
	if errorType == "AccessDeniedException" {
		key = "Message" // API Gateway really capitalizes this one
	}
	_ = json.NewEncoder(w).Encode(map[string]string{key: message})
}

type stableOrCanary struct {
	deploymentID string
	canary       bool
	variables    map[string]string
}

func (e *Emulator) invokeREST(w http.ResponseWriter, r *http.Request, api *restAPI, stageName, path string) {
	e.mu.Lock()
	st := api.stages[stageName]
	if st == nil {
		e.mu.Unlock()
		gatewayError(w, http.StatusForbidden, "MissingAuthenticationTokenException", "Missing Authentication Token")
		return
	}
	rt := stableOrCanary{deploymentID: st.DeploymentID, variables: copyMap(st.Variables)}
	if c := st.CanarySettings; c != nil && c.PercentTraffic > 0 && e.rand.Float64()*100 < c.PercentTraffic {
		rt.deploymentID, rt.canary = c.DeploymentID, true
		for k, v := range c.StageVariableOverrides {
			if rt.variables == nil {
				rt.variables = map[string]string{}
			}
			rt.variables[k] = v
		}
	}
	d := api.deployments[rt.deploymentID]
	var match restMatch
	var auth *authorizer
	if d != nil {
		match = matchMethod(d, r.Method, path)
		if m := match.method; m != nil && m.AuthorizationType == "CUSTOM" {
			auth = d.authorizers[m.AuthorizerID]
		}
	}
	m := match.method
	keyOK := m != nil && (!m.APIKeyRequired || e.apiKeyAllowedLocked(api.ID, stageName, r.Header.Get("X-Api-Key")))
	var lambda LambdaAuthorizer
	if auth != nil {
		lambda = e.lambdas[auth.AuthorizerURI]
	}
	cache := st.cache
	e.mu.Unlock()

	w.Header().Set(DeploymentHeader, rt.deploymentID)
	w.Header().Set(CanaryHeader, strconv.FormatBool(rt.canary))
	if m == nil {
		gatewayError(w, http.StatusForbidden, "MissingAuthenticationTokenException", "Missing Authentication Token")
		return
	}
	if !keyOK {
		gatewayError(w, http.StatusForbidden, "ForbiddenException", "Forbidden")
		return
	}
	call := integrationCall{apiID: api.ID, stage: stageName, match: match, variables: rt.variables}
	if auth != nil {
		req := AuthorizerRequest{
			Type: auth.Type, HTTPMethod: r.Method, Path: path, Headers: r.Header.Clone(), StageVariables: rt.variables,
			MethodArn: executeAPIARN + api.ID + "/" + stageName + "/" + r.Method + path, SourceIP: peerAddress(r),
		}
		identity := r.Header.Get(strings.TrimPrefix(auth.IdentitySource, "method.request.header."))
		if auth.Type == "REQUEST" {
			var ok bool
			if identity, ok = requestIdentity(auth.IdentitySource, r, rt.variables); !ok {
				// AWS checks every identity source is present and non-empty before it calls the
				// Lambda, and answers 401 without calling it otherwise.
				gatewayError(w, http.StatusUnauthorized, "UnauthorizedException", "Unauthorized")
				return
			}
		}
		if auth.Type == "TOKEN" {
			if identity == "" {
				gatewayError(w, http.StatusUnauthorized, "UnauthorizedException", "Unauthorized")
				return
			}
			if auth.IdentityValidationExpression != "" && !regexp.MustCompile(auth.IdentityValidationExpression).MatchString(identity) {
				gatewayError(w, http.StatusUnauthorized, "UnauthorizedException", "Unauthorized")
				return
			}
			req.AuthorizationToken = identity
		}
		ttl := int32(300) // AWS's default authorizer result TTL
		if auth.AuthorizerResultTTLInSeconds != nil {
			ttl = *auth.AuthorizerResultTTLInSeconds
		}
		decision, err := e.authorize(r, cache, auth.ID+"\x00"+auth.AuthorizerURI+"\x00"+identity, ttl, lambda, req)
		if err != nil {
			gatewayError(w, http.StatusInternalServerError, "AuthorizerConfigurationException", "Internal Server Error")
			return
		}
		call.decision = decision
		switch decision.Effect {
		case Deny:
			gatewayError(w, http.StatusForbidden, "AccessDeniedException", "User is not authorized to access this resource with an explicit deny")
			return
		case Unauthorized:
			gatewayError(w, http.StatusUnauthorized, "UnauthorizedException", "Unauthorized")
			return
		}
	}
	e.integrate(w, r, call)
}

// requestIdentity reads a REQUEST authorizer's identity sources (a comma-separated list of
// method.request.header.X, method.request.querystring.X, stageVariables.X and context.X
// expressions) into the cache key, and reports whether every one is present and non-empty.
func requestIdentity(sources string, r *http.Request, variables map[string]string) (string, bool) {
	if strings.TrimSpace(sources) == "" {
		return "", true
	}
	var values []string
	for _, src := range strings.Split(sources, ",") {
		src = strings.TrimSpace(src)
		var v string
		switch {
		case strings.HasPrefix(src, "method.request.header."):
			v = r.Header.Get(strings.TrimPrefix(src, "method.request.header."))
		case strings.HasPrefix(src, "method.request.querystring."):
			v = r.URL.Query().Get(strings.TrimPrefix(src, "method.request.querystring."))
		case strings.HasPrefix(src, "stageVariables."):
			v = variables[strings.TrimPrefix(src, "stageVariables.")]
		case src == "context.httpMethod":
			v = r.Method
		}
		if v == "" {
			return "", false
		}
		values = append(values, v)
	}
	return strings.Join(values, "\x00"), true
}

// authorize runs the Lambda through the stage's decision cache; a cached policy is evaluated
// again for this request's method ARN. An error is a missing or failing Lambda, which API
// Gateway reports as a 500 AuthorizerConfigurationException.
func (e *Emulator) authorize(r *http.Request, cache *authorizerCache, key string, ttl int32, lambda LambdaAuthorizer, req AuthorizerRequest) (Decision, error) {
	if ttl > 0 {
		if d, ok := cache.get(key, e.opts.Now()); ok {
			if d.Policy != nil {
				d.Effect = d.Policy(req.MethodArn)
			}
			return d, nil
		}
	}
	if lambda == nil {
		return Decision{}, errors.New("no Lambda registered for the authorizer URI")
	}
	d, err := lambda(r.Context(), req)
	if err != nil {
		return Decision{}, err
	}
	if ttl > 0 {
		cache.put(key, d, e.opts.Now().Add(time.Duration(ttl)*time.Second))
	}
	return d, nil
}

func (e *Emulator) invokeHTTP(w http.ResponseWriter, r *http.Request, api *httpAPI, stageName, path string) {
	e.mu.Lock()
	st := api.stages[stageName]
	var view httpView
	ok := st != nil
	if ok {
		// As on AWS, a stage serves its deployment, or the live API with autoDeploy, and nothing
		// before a deployment reaches it.
		view, ok = api.servedView(st)
	}
	if !ok {
		e.mu.Unlock()
		gatewayError(w, http.StatusNotFound, "NotFoundException", "Not Found")
		return
	}
	rt, params := matchRoute(view.routes, r.Method, path)
	var auth *httpAuthorizer
	if rt != nil && rt.AuthorizationType != "NONE" {
		if a := view.authorizers[rt.AuthorizerID]; a != nil {
			c := *a
			auth = &c
		}
	}
	vars := copyMap(st.StageVariables)
	deploymentID := st.DeploymentID
	var integ *httpIntegration
	if rt != nil {
		integ = routeIntegration(view.integrations, rt)
	}
	var lambda HTTPLambdaAuthorizer
	if auth != nil && auth.AuthorizerType == "REQUEST" {
		lambda = e.httpLambdas[auth.AuthorizerURI]
	}
	cache := st.cache
	e.mu.Unlock()

	w.Header().Set(DeploymentHeader, deploymentID)
	w.Header().Set(CanaryHeader, "false")
	if rt == nil {
		gatewayError(w, http.StatusNotFound, "NotFoundException", "Not Found")
		return
	}
	var authorizerContext map[string]any
	if auth != nil {
		switch auth.AuthorizerType {
		case "JWT":
			source := "Authorization"
			if len(auth.IdentitySource) > 0 {
				source = strings.TrimPrefix(auth.IdentitySource[0], "$request.header.")
			}
			claims, err := e.verifyJWT(r.Context(), r.Header.Get(source), *auth.JWTConfiguration)
			if err != nil {
				w.Header().Set("Www-Authenticate", `Bearer scope="" error="invalid_token" error_description="`+err.Error()+`"`)
				gatewayError(w, http.StatusUnauthorized, "UnauthorizedException", "Unauthorized")
				return
			}
			authorizerContext = map[string]any{"claims": claims}
		case "REQUEST":
			call := httpLambdaCall{api: api.APIID, stage: stageName, route: rt, pathParams: params, auth: auth, variables: vars, lambda: lambda, cache: cache}
			d, ok := e.authorizeHTTPLambda(w, r, call, path)
			if !ok {
				return
			}
			authorizerContext = d.Context
		}
	}
	e.integrateHTTP(w, r, httpCall{api: api.APIID, stage: stageName, route: rt, integ: integ, variables: vars, pathParams: params, authorizer: authorizerContext})
}

// peerAddress is the request's TCP peer address without its port.
func peerAddress(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
