package gatewayemu

import (
	"net/http"
	"strings"
	"time"
)

// HTTP API (apigatewayv2) state. HTTP APIs have no canary; stages point at a deployment or
// auto-deploy, and authorizer changes take effect at once (as with autoDeploy stages).

type isoTime time.Time

func (t isoTime) MarshalJSON() ([]byte, error) {
	return []byte(`"` + time.Time(t).UTC().Format(time.RFC3339) + `"`), nil
}

type httpAPI struct {
	APIID                     string  `json:"apiId"`
	Name                      string  `json:"name"`
	ProtocolType              string  `json:"protocolType"`
	APIEndpoint               string  `json:"apiEndpoint"`
	RouteSelectionExpression  string  `json:"routeSelectionExpression"`
	APIKeySelectionExpression string  `json:"apiKeySelectionExpression"`
	DisableExecuteAPIEndpoint bool    `json:"disableExecuteApiEndpoint"`
	CreatedDate               isoTime `json:"createdDate"`

	routes       map[string]*route
	integrations map[string]*httpIntegration
	authorizers  map[string]*httpAuthorizer
	stages       map[string]*httpStage
	deployments  map[string]*httpDeployment
}

type route struct {
	RouteID           string `json:"routeId"`
	RouteKey          string `json:"routeKey"`
	AuthorizationType string `json:"authorizationType"`
	AuthorizerID      string `json:"authorizerId,omitempty"`
	Target            string `json:"target,omitempty"`
}

type httpStage struct {
	StageName       string            `json:"stageName"`
	StageVariables  map[string]string `json:"stageVariables,omitempty"`
	AutoDeploy      bool              `json:"autoDeploy"`
	DeploymentID    string            `json:"deploymentId,omitempty"`
	Description     string            `json:"description,omitempty"`
	CreatedDate     isoTime           `json:"createdDate"`
	LastUpdatedDate isoTime           `json:"lastUpdatedDate"`

	cache *authorizerCache
}

func (e *Emulator) httpAPILocked(r *http.Request) (*httpAPI, error) {
	api := e.httpAPIs[r.PathValue("apiId")]
	if api == nil {
		return nil, notFound("Invalid API identifier specified %s", r.PathValue("apiId"))
	}
	return api, nil
}

func (e *Emulator) createHTTPAPI(r *http.Request) (int, any, error) {
	var in struct {
		Name         string `json:"name"`
		ProtocolType string `json:"protocolType"`
		Target       string `json:"target"`
		RouteKey     string `json:"routeKey"`
		CORS         any    `json:"corsConfiguration"`
	}
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	if in.Name == "" {
		return 0, nil, badRequest("Name must be specified")
	}
	// Settings the emulator would otherwise drop are refused by name.
	if in.Target != "" || in.RouteKey != "" {
		return 0, nil, badRequest("the API Gateway emulator does not support quick create (target, routeKey): create the integration, route and stage")
	}
	if in.CORS != nil {
		return 0, nil, badRequest("the API Gateway emulator does not support corsConfiguration")
	}
	if in.ProtocolType != "HTTP" {
		return 0, nil, badRequest("the API Gateway emulator supports protocolType HTTP only, got %q", in.ProtocolType)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	id := newID(10)
	api := &httpAPI{
		APIID: id, Name: in.Name, ProtocolType: "HTTP", APIEndpoint: e.DataURL + "/" + id,
		RouteSelectionExpression: "${request.method} ${request.path}", APIKeySelectionExpression: "$request.header.x-api-key",
		CreatedDate: isoTime(e.opts.Now()),
		routes:      map[string]*route{}, integrations: map[string]*httpIntegration{}, authorizers: map[string]*httpAuthorizer{}, stages: map[string]*httpStage{}, deployments: map[string]*httpDeployment{},
	}
	e.httpAPIs[id] = api
	return http.StatusCreated, api, nil
}

func (e *Emulator) getHTTPAPI(r *http.Request) (int, any, error) {
	return e.onHTTPAPI(r, func(api *httpAPI) (int, any, error) {
		return http.StatusOK, api, nil
	})
}

func (e *Emulator) createRoute(r *http.Request) (int, any, error) {
	var in route
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	return e.onHTTPAPI(r, func(api *httpAPI) (int, any, error) {
		if in.RouteKey != "$default" {
			verb, path, ok := strings.Cut(in.RouteKey, " ")
			if !ok || !httpMethods[verb] || !strings.HasPrefix(path, "/") {
				return 0, nil, badRequest("Invalid route key %q: use $default or \"METHOD /path\"", in.RouteKey)
			}
		}
		if in.AuthorizationType == "" {
			in.AuthorizationType = "NONE"
		}
		switch in.AuthorizationType {
		case "NONE":
		case "JWT", "CUSTOM":
			a := api.authorizers[in.AuthorizerID]
			if a == nil {
				return 0, nil, badRequest("Invalid authorizer ID specified")
			}
			if (in.AuthorizationType == "JWT") != (a.AuthorizerType == "JWT") {
				return 0, nil, badRequest("Authorization type %s does not match authorizer type %s", in.AuthorizationType, a.AuthorizerType)
			}
		default:
			return 0, nil, badRequest("Invalid authorization type %q: the emulator supports NONE, JWT, CUSTOM", in.AuthorizationType)
		}
		if err := checkRouteTarget(api, in.Target); err != nil {
			return 0, nil, err
		}
		for _, existing := range api.routes {
			if existing.RouteKey == in.RouteKey {
				return 0, nil, conflict("Route with key %s already exists for this API", in.RouteKey)
			}
		}
		in.RouteID = newID(7)
		api.routes[in.RouteID] = &in
		return http.StatusCreated, &in, nil
	})
}

func (e *Emulator) getRoutes(r *http.Request) (int, any, error) {
	return e.onHTTPAPI(r, func(api *httpAPI) (int, any, error) {
		return http.StatusOK, map[string]any{"items": sortedValues(api.routes, func(rt *route) string { return rt.RouteKey })}, nil
	})
}

func (e *Emulator) createHTTPStage(r *http.Request) (int, any, error) {
	var in struct {
		StageName      string            `json:"stageName"`
		StageVariables map[string]string `json:"stageVariables"`
		AutoDeploy     bool              `json:"autoDeploy"`
		DeploymentID   string            `json:"deploymentId"`
		Description    string            `json:"description"`
		Default        any               `json:"defaultRouteSettings"`
		Routes         any               `json:"routeSettings"`
		AccessLogs     any               `json:"accessLogSettings"`
	}
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	if in.Default != nil || in.Routes != nil || in.AccessLogs != nil {
		return 0, nil, badRequest("the API Gateway emulator does not support defaultRouteSettings, routeSettings (throttling) or accessLogSettings")
	}
	return e.onHTTPAPI(r, func(api *httpAPI) (int, any, error) {
		if in.StageName == "" || (in.StageName != "$default" && !validStageName(in.StageName)) {
			return 0, nil, badRequest("Invalid stage name %q", in.StageName)
		}
		if api.stages[in.StageName] != nil {
			return 0, nil, conflict("Stage %s already exists", in.StageName)
		}
		if in.DeploymentID != "" && api.deployments[in.DeploymentID] == nil {
			return 0, nil, badRequest("Invalid deployment identifier specified")
		}
		if err := checkVariables(in.StageVariables); err != nil {
			return 0, nil, err
		}
		now := isoTime(e.opts.Now())
		st := &httpStage{StageName: in.StageName, StageVariables: copyMap(in.StageVariables), AutoDeploy: in.AutoDeploy,
			DeploymentID: in.DeploymentID, Description: in.Description, CreatedDate: now, LastUpdatedDate: now, cache: newAuthorizerCache()}
		api.stages[st.StageName] = st
		return http.StatusCreated, st, nil
	})
}

func (e *Emulator) httpStageLocked(r *http.Request) (*httpAPI, *httpStage, error) {
	api, err := e.httpAPILocked(r)
	if err != nil {
		return nil, nil, err
	}
	st := api.stages[r.PathValue("stageName")]
	if st == nil {
		return nil, nil, notFound("Invalid stage identifier specified")
	}
	return api, st, nil
}

func (e *Emulator) getHTTPStages(r *http.Request) (int, any, error) {
	return e.onHTTPAPI(r, func(api *httpAPI) (int, any, error) {
		return http.StatusOK, map[string]any{"items": sortedValues(api.stages, func(st *httpStage) string { return st.StageName })}, nil
	})
}

func (e *Emulator) getHTTPStage(r *http.Request) (int, any, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	_, st, err := e.httpStageLocked(r)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, st, nil
}

// updateHTTPStage merges the given stage variables; an empty value removes the variable.
func (e *Emulator) updateHTTPStage(r *http.Request) (int, any, error) {
	var in struct {
		StageVariables map[string]string `json:"stageVariables"`
		AutoDeploy     *bool             `json:"autoDeploy"`
		DeploymentID   *string           `json:"deploymentId"`
		Description    *string           `json:"description"`
	}
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	api, st, err := e.httpStageLocked(r)
	if err != nil {
		return 0, nil, err
	}
	set := map[string]string{}
	for k, v := range in.StageVariables {
		if v != "" {
			set[k] = v
		}
	}
	if err := checkVariables(set); err != nil {
		return 0, nil, err
	}
	if in.DeploymentID != nil && api.deployments[*in.DeploymentID] == nil {
		return 0, nil, badRequest("Invalid deployment identifier specified")
	}
	for k, v := range in.StageVariables {
		if v == "" {
			delete(st.StageVariables, k)
			continue
		}
		if st.StageVariables == nil {
			st.StageVariables = map[string]string{}
		}
		st.StageVariables[k] = v
	}
	if in.AutoDeploy != nil {
		st.AutoDeploy = *in.AutoDeploy
	}
	if in.DeploymentID != nil {
		st.DeploymentID = *in.DeploymentID
	}
	if in.Description != nil {
		st.Description = *in.Description
	}
	st.LastUpdatedDate = isoTime(e.opts.Now())
	return http.StatusOK, st, nil
}

// onHTTPAPI answers with f's answer for the request's HTTP API, under the emulator's lock.
func (e *Emulator) onHTTPAPI(r *http.Request, f func(api *httpAPI) (int, any, error)) (int, any, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	api, err := e.httpAPILocked(r)
	if err != nil {
		return 0, nil, err
	}
	return f(api)
}
