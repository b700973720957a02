package gatewayemu

import (
	"net/http"
	"sort"
	"strings"
)

// REST API (apigateway) state. JSON field names are AWS's.

type restAPI struct {
	ID                        string                `json:"id"`
	Name                      string                `json:"name"`
	Description               string                `json:"description,omitempty"`
	Version                   string                `json:"version,omitempty"`
	CreatedDate               epoch                 `json:"createdDate"`
	RootResourceID            string                `json:"rootResourceId"`
	APIKeySource              string                `json:"apiKeySource"`
	BinaryMediaTypes          []string              `json:"binaryMediaTypes,omitempty"`
	MinimumCompressionSize    *int32                `json:"minimumCompressionSize,omitempty"`
	EndpointConfiguration     endpointConfiguration `json:"endpointConfiguration"`
	DisableExecuteAPIEndpoint bool                  `json:"disableExecuteApiEndpoint"`
	Tags                      map[string]string     `json:"tags,omitempty"`

	resources   map[string]*resource
	deployments map[string]*deployment
	stages      map[string]*stage
	authorizers map[string]*authorizer
}

type resource struct {
	ID       string `json:"id"`
	ParentID string `json:"parentId,omitempty"`
	PathPart string `json:"pathPart,omitempty"`
	Path     string `json:"path"`
	// Methods are keyed by HTTP method (GET, ANY, …).
	Methods map[string]*method `json:"resourceMethods,omitempty"`
}

type method struct {
	HTTPMethod        string `json:"httpMethod"`
	AuthorizationType string `json:"authorizationType"`
	AuthorizerID      string `json:"authorizerId,omitempty"`
	APIKeyRequired    bool   `json:"apiKeyRequired"`
	// RequestParameters declares the request's parameters (method.request.path.proxy: true means
	// required), which an integration's requestParameters may then map.
	RequestParameters map[string]bool `json:"requestParameters,omitempty"`
	OperationName     string          `json:"operationName,omitempty"`
	MethodIntegration *integration    `json:"methodIntegration,omitempty"`
}

func (m *method) clone() *method {
	c := *m
	if m.RequestParameters != nil {
		c.RequestParameters = make(map[string]bool, len(m.RequestParameters))
		for k, v := range m.RequestParameters {
			c.RequestParameters[k] = v
		}
	}
	if m.MethodIntegration != nil {
		c.MethodIntegration = m.MethodIntegration.clone()
	}
	return &c
}

// deployment is an immutable snapshot of the API's resources, methods and authorizers, as in AWS,
// where a REST API change (an authorizer update included) takes effect only through a deployment.
type deployment struct {
	ID          string `json:"id"`
	Description string `json:"description,omitempty"`
	CreatedDate epoch  `json:"createdDate"`

	resources   map[string]*resource
	authorizers map[string]*authorizer
}

type canarySettings struct {
	PercentTraffic         float64           `json:"percentTraffic"`
	DeploymentID           string            `json:"deploymentId,omitempty"`
	StageVariableOverrides map[string]string `json:"stageVariableOverrides,omitempty"`
	UseStageCache          bool              `json:"useStageCache"`
}

type stage struct {
	StageName       string            `json:"stageName"`
	DeploymentID    string            `json:"deploymentId"`
	Description     string            `json:"description,omitempty"`
	Variables       map[string]string `json:"variables,omitempty"`
	CanarySettings  *canarySettings   `json:"canarySettings,omitempty"`
	TracingEnabled  bool              `json:"tracingEnabled"`
	CreatedDate     epoch             `json:"createdDate"`
	LastUpdatedDate epoch             `json:"lastUpdatedDate"`
	// The emulator has no stage cache (cacheClusterEnabled true is refused) and no method
	// settings; AWS always returns these fields, so they carry its answers for that case.
	CacheClusterEnabled bool           `json:"cacheClusterEnabled"`
	CacheClusterStatus  string         `json:"cacheClusterStatus"`
	MethodSettings      map[string]any `json:"methodSettings"`

	cache *authorizerCache
}

// newStage is a stage with AWS's defaults for what the emulator does not model.
func newStage(name string, now epoch) *stage {
	return &stage{StageName: name, CreatedDate: now, LastUpdatedDate: now, CacheClusterStatus: "NOT_AVAILABLE",
		MethodSettings: map[string]any{}, cache: newAuthorizerCache()}
}

type authorizer struct {
	ID                           string   `json:"id"`
	Name                         string   `json:"name"`
	Type                         string   `json:"type"`
	AuthType                     string   `json:"authType,omitempty"`
	AuthorizerURI                string   `json:"authorizerUri,omitempty"`
	AuthorizerCredentials        string   `json:"authorizerCredentials,omitempty"`
	IdentitySource               string   `json:"identitySource,omitempty"`
	IdentityValidationExpression string   `json:"identityValidationExpression,omitempty"`
	AuthorizerResultTTLInSeconds *int32   `json:"authorizerResultTtlInSeconds,omitempty"`
	ProviderARNs                 []string `json:"providerARNs,omitempty"`
}

func (a *authorizer) clone() *authorizer {
	c := *a
	c.ProviderARNs = append([]string(nil), a.ProviderARNs...)
	if a.AuthorizerResultTTLInSeconds != nil {
		ttl := *a.AuthorizerResultTTLInSeconds
		c.AuthorizerResultTTLInSeconds = &ttl
	}
	return &c
}

func (r *resource) clone() *resource {
	c := *r
	c.Methods = make(map[string]*method, len(r.Methods))
	for k, m := range r.Methods {
		c.Methods[k] = m.clone()
	}
	return &c
}

func (e *Emulator) controlHandler() http.Handler {
	mux := http.NewServeMux()
	op := func(pattern, name string, h func(*http.Request) (int, any, error)) {
		mux.HandleFunc(pattern, e.operation(name, h))
	}
	// REST APIs.
	op("POST /restapis", "CreateRestApi", e.createRestAPI)
	op("GET /restapis", "GetRestApis", e.getRestAPIs)
	op("GET /restapis/{restApiId}", "GetRestApi", e.getRestAPI)
	op("GET /restapis/{restApiId}/resources", "GetResources", e.getResources)
	op("POST /restapis/{restApiId}/resources/{parentId}", "CreateResource", e.createResource)
	op("GET /restapis/{restApiId}/resources/{resourceId}", "GetResource", e.getResource)
	op("PUT /restapis/{restApiId}/resources/{resourceId}/methods/{httpMethod}", "PutMethod", e.putMethod)
	op("GET /restapis/{restApiId}/resources/{resourceId}/methods/{httpMethod}", "GetMethod", e.getMethod)
	op("PUT /restapis/{restApiId}/resources/{resourceId}/methods/{httpMethod}/integration", "PutIntegration", e.putIntegration)
	op("GET /restapis/{restApiId}/resources/{resourceId}/methods/{httpMethod}/integration", "GetIntegration", e.getIntegration)
	op("DELETE /restapis/{restApiId}/resources/{resourceId}/methods/{httpMethod}/integration", "DeleteIntegration", e.deleteIntegration)
	op("POST /restapis/{restApiId}/deployments", "CreateDeployment", e.createDeployment)
	op("GET /restapis/{restApiId}/deployments", "GetDeployments", e.getDeployments)
	op("GET /restapis/{restApiId}/deployments/{deploymentId}", "GetDeployment", e.getDeployment)
	op("POST /restapis/{restApiId}/stages", "CreateStage", e.createStage)
	op("GET /restapis/{restApiId}/stages", "GetStages", e.getStages)
	op("GET /restapis/{restApiId}/stages/{stageName}", "GetStage", e.getStage)
	op("PATCH /restapis/{restApiId}/stages/{stageName}", "UpdateStage", e.updateStage)
	op("DELETE /restapis/{restApiId}/stages/{stageName}/cache/authorizers", "FlushStageAuthorizersCache", e.flushStageAuthorizersCache)
	op("POST /restapis/{restApiId}/authorizers", "CreateAuthorizer", e.createAuthorizer)
	op("GET /restapis/{restApiId}/authorizers", "GetAuthorizers", e.getAuthorizers)
	op("GET /restapis/{restApiId}/authorizers/{authorizerId}", "GetAuthorizer", e.getAuthorizer)
	op("PATCH /restapis/{restApiId}/authorizers/{authorizerId}", "UpdateAuthorizer", e.updateAuthorizer)
	op("POST /apikeys", "CreateApiKey", e.createAPIKey)
	op("GET /apikeys/{apiKey}", "GetApiKey", e.getAPIKey)
	op("PATCH /apikeys/{apiKey}", "UpdateApiKey", e.updateAPIKey)
	op("POST /usageplans", "CreateUsagePlan", e.createUsagePlan)
	op("POST /usageplans/{usagePlanId}/keys", "CreateUsagePlanKey", e.createUsagePlanKey)
	// HTTP APIs.
	op("POST /v2/apis", "CreateApi", e.createHTTPAPI)
	op("GET /v2/apis/{apiId}", "GetApi", e.getHTTPAPI)
	op("POST /v2/apis/{apiId}/routes", "CreateRoute", e.createRoute)
	op("GET /v2/apis/{apiId}/routes", "GetRoutes", e.getRoutes)
	op("POST /v2/apis/{apiId}/integrations", "CreateIntegration", e.createHTTPIntegration)
	op("GET /v2/apis/{apiId}/integrations", "GetIntegrations", e.getHTTPIntegrations)
	op("GET /v2/apis/{apiId}/integrations/{integrationId}", "GetIntegrationV2", e.getHTTPIntegration)
	op("POST /v2/apis/{apiId}/authorizers", "CreateAuthorizerV2", e.createHTTPAuthorizer)
	op("GET /v2/apis/{apiId}/authorizers/{authorizerId}", "GetAuthorizerV2", e.getHTTPAuthorizer)
	op("PATCH /v2/apis/{apiId}/authorizers/{authorizerId}", "UpdateAuthorizerV2", e.updateHTTPAuthorizer)
	op("POST /v2/apis/{apiId}/stages", "CreateStageV2", e.createHTTPStage)
	op("GET /v2/apis/{apiId}/stages", "GetStagesV2", e.getHTTPStages)
	op("GET /v2/apis/{apiId}/stages/{stageName}", "GetStageV2", e.getHTTPStage)
	op("PATCH /v2/apis/{apiId}/stages/{stageName}", "UpdateStageV2", e.updateHTTPStage)
	op("DELETE /v2/apis/{apiId}/stages/{stageName}/cache/authorizers", "ResetAuthorizersCache", e.resetAuthorizersCache)
	op("POST /v2/apis/{apiId}/deployments", "CreateDeploymentV2", e.createHTTPDeployment)
	// Anything else is an operation the emulator does not implement. It answers with AWS's common
	// error for an invalid action (400 InvalidAction), never a 404 that a caller would read as a
	// missing resource.
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, &awsError{http.StatusBadRequest, "InvalidAction",
			"the API Gateway emulator does not support the operation " + r.Method + " " + r.URL.Path + " (its README lists the supported ones)"})
	})
	return mux
}

// restAPILocked returns the API named in the path; the caller holds e.mu.
func (e *Emulator) restAPILocked(r *http.Request) (*restAPI, error) {
	api := e.restAPIs[r.PathValue("restApiId")]
	if api == nil {
		return nil, notFound("Invalid API identifier specified %s:%s", emulatorAccount, r.PathValue("restApiId"))
	}
	return api, nil
}

var httpMethods = map[string]bool{"GET": true, "POST": true, "PUT": true, "PATCH": true, "DELETE": true, "HEAD": true, "OPTIONS": true, "ANY": true}

func (e *Emulator) putMethod(r *http.Request) (int, any, error) {
	var in struct {
		AuthorizationType  string          `json:"authorizationType"`
		RequestValidatorID string          `json:"requestValidatorId"`
		AuthorizerID       string          `json:"authorizerId"`
		APIKeyRequired     bool            `json:"apiKeyRequired"`
		RequestParameters  map[string]bool `json:"requestParameters"`
		OperationName      string          `json:"operationName"`
		RequestModels      map[string]any  `json:"requestModels"`
		AuthorizationScope []string        `json:"authorizationScopes"`
	}
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	if err := checkMethodRequestParameters(in.RequestParameters); err != nil {
		return 0, nil, err
	}
	return e.onRESTAPI(r, func(api *restAPI) (int, any, error) {
		res := api.resources[r.PathValue("resourceId")]
		if res == nil {
			return 0, nil, notFound("Invalid Resource identifier specified")
		}
		verb := strings.ToUpper(r.PathValue("httpMethod"))
		if !httpMethods[verb] {
			return 0, nil, badRequest("Invalid HTTP method specified: %s", r.PathValue("httpMethod"))
		}
		switch {
		case len(in.RequestModels) > 0:
			return 0, nil, badRequest("the API Gateway emulator does not support requestModels (models)")
		case len(in.AuthorizationScope) > 0:
			return 0, nil, badRequest("the API Gateway emulator does not support authorizationScopes (Cognito user pools)")
		}
		if in.RequestValidatorID != "" {
			// The emulator has no request validators, so every id is unknown.
			return 0, nil, badRequest("Invalid Request Validator identifier specified")
		}
		// AWS takes the authorization type in lower case too ("none"); the emulator keeps it in upper case.
		in.AuthorizationType = strings.ToUpper(in.AuthorizationType)
		switch in.AuthorizationType {
		case "NONE":
			if in.AuthorizerID != "" {
				return 0, nil, badRequest("Authorizer ID must not be set when authorization type is NONE")
			}
		case "CUSTOM":
			a := api.authorizers[in.AuthorizerID]
			if a == nil {
				return 0, nil, badRequest("Invalid authorizer ID specified. Setting the authorization type to CUSTOM requires a valid authorizer")
			}
		case "AWS_IAM", "COGNITO_USER_POOLS":
			return 0, nil, badRequest("the API Gateway emulator does not support authorization type %s", in.AuthorizationType)
		default:
			return 0, nil, badRequest("Invalid authorization type specified. Valid values are NONE, AWS_IAM, CUSTOM, COGNITO_USER_POOLS")
		}
		if res.Methods[verb] != nil {
			return 0, nil, conflict("Method already exists for this resource")
		}
		m := &method{HTTPMethod: verb, AuthorizationType: in.AuthorizationType, AuthorizerID: in.AuthorizerID, APIKeyRequired: in.APIKeyRequired,
			RequestParameters: in.RequestParameters, OperationName: in.OperationName}
		res.Methods[verb] = m
		return http.StatusCreated, m, nil
	})
}

func (e *Emulator) getMethod(r *http.Request) (int, any, error) {
	return e.onRESTAPI(r, func(api *restAPI) (int, any, error) {
		res := api.resources[r.PathValue("resourceId")]
		if res == nil {
			return 0, nil, notFound("Invalid Resource identifier specified")
		}
		m := res.Methods[strings.ToUpper(r.PathValue("httpMethod"))]
		if m == nil {
			return 0, nil, notFound("Invalid Method identifier specified")
		}
		return http.StatusOK, m, nil
	})
}

func (e *Emulator) createAuthorizer(r *http.Request) (int, any, error) {
	var in authorizer
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	e.mu.Lock()
	unknown := e.restAPIs[r.PathValue("restApiId")] == nil
	e.mu.Unlock()
	if unknown {
		// AWS answers CreateAuthorizer on an unknown REST API with 409 ConflictException, not
		// the 404 every other operation gives; the emulator follows it.
		return 0, nil, conflict("Unable to create authorizer: Invalid API identifier specified %s:%s", emulatorAccount, r.PathValue("restApiId"))
	}
	return e.onRESTAPI(r, func(api *restAPI) (int, any, error) {
		if in.Name == "" {
			return 0, nil, badRequest("Authorizer name must be specified")
		}
		if in.Type == "TOKEN" && in.IdentitySource == "" {
			in.IdentitySource = "method.request.header.Authorization"
		}
		if len(api.authorizers) >= maxAuthorizersPerAPI {
			return 0, nil, limitExceeded("Authorizers per API exceed the limit of %d", maxAuthorizersPerAPI)
		}
		in.ID = newID(6)
		setAuthorizerDefaults(&in)
		if err := checkAuthorizer(&in); err != nil {
			return 0, nil, err
		}
		api.authorizers[in.ID] = &in
		return http.StatusCreated, &in, nil
	})
}

func (e *Emulator) getAuthorizers(r *http.Request) (int, any, error) {
	return e.onRESTAPI(r, func(api *restAPI) (int, any, error) {
		return http.StatusOK, map[string]any{"item": sortedValues(api.authorizers, func(a *authorizer) string { return a.ID })}, nil
	})
}

func (e *Emulator) getAuthorizer(r *http.Request) (int, any, error) {
	return e.onRESTAPI(r, func(api *restAPI) (int, any, error) {
		return found(api.authorizers[r.PathValue("authorizerId")], "Invalid Authorizer identifier specified")
	})
}

// sortedValues lists a map's values in the order of key, so list operations answer in a stable
// order (AWS's is stable too).
func sortedValues[V any](m map[string]V, key func(V) string) []V {
	out := make([]V, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return key(out[i]) < key(out[j]) })
	return out
}

func validStageName(s string) bool {
	for _, c := range s {
		if !(c == '_' || c == '-' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return len(s) <= 128
}

// onRESTAPI answers with f's answer for the request's REST API, under the emulator's lock.
func (e *Emulator) onRESTAPI(r *http.Request, f func(api *restAPI) (int, any, error)) (int, any, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	api, err := e.restAPILocked(r)
	if err != nil {
		return 0, nil, err
	}
	return f(api)
}

// found answers 200 with v, or NotFound with msg when there is no v.
func found[T any](v *T, msg string) (int, any, error) {
	if v == nil {
		return 0, nil, notFound("%s", msg)
	}
	return http.StatusOK, v, nil
}
