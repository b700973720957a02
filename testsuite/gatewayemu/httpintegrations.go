package gatewayemu

import (
	"net/http"
	"strings"
	"time"
)

// httpIntegration is an HTTP API integration (apigatewayv2's Integration). The emulator runs
// HTTP_PROXY only: AWS_PROXY needs Lambda or AWS services, and HTTP, MOCK and AWS are WebSocket
// integration types.
type httpIntegration struct {
	IntegrationID        string `json:"integrationId"`
	IntegrationType      string `json:"integrationType"`
	IntegrationMethod    string `json:"integrationMethod"`
	IntegrationURI       string `json:"integrationUri"`
	PayloadFormatVersion string `json:"payloadFormatVersion"`
	ConnectionType       string `json:"connectionType"`
	TimeoutInMillis      int32  `json:"timeoutInMillis"`
	APIGatewayManaged    bool   `json:"apiGatewayManaged"`
	Description          string `json:"description,omitempty"`
	// RequestParameters are parameter mappings applied to the backend request (httpmapping.go).
	RequestParameters map[string]string `json:"requestParameters,omitempty"`
}

// AWS's bounds on an HTTP API integration's timeout, whose default is the maximum.
const maxHTTPIntegrationTimeout = 30000

// integrationTargetPrefix starts a route's target, the form AWS gives it: integrations/<id>.
const integrationTargetPrefix = "integrations/"

func (e *Emulator) createHTTPIntegration(r *http.Request) (int, any, error) {
	var in struct {
		IntegrationType      string            `json:"integrationType"`
		IntegrationMethod    string            `json:"integrationMethod"`
		IntegrationURI       string            `json:"integrationUri"`
		PayloadFormatVersion string            `json:"payloadFormatVersion"`
		ConnectionType       string            `json:"connectionType"`
		TimeoutInMillis      *int32            `json:"timeoutInMillis"`
		Description          string            `json:"description"`
		ConnectionID         string            `json:"connectionId"`
		CredentialsArn       string            `json:"credentialsArn"`
		IntegrationSubtype   string            `json:"integrationSubtype"`
		RequestParameters    map[string]string `json:"requestParameters"`
		ResponseParameters   map[string]any    `json:"responseParameters"`
		TLSConfig            any               `json:"tlsConfig"`
	}
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	switch {
	case in.IntegrationType == "AWS_PROXY":
		return 0, nil, badRequest("the API Gateway emulator does not support integration type AWS_PROXY")
	case in.IntegrationType != "HTTP_PROXY":
		return 0, nil, badRequest("Invalid integration type %q for an HTTP API: HTTP_PROXY or AWS_PROXY", in.IntegrationType)
	case in.ConnectionType != "" && in.ConnectionType != "INTERNET", in.ConnectionID != "":
		return 0, nil, badRequest("the API Gateway emulator does not support VPC links (connectionType %s)", in.ConnectionType)
	case in.CredentialsArn != "" || in.IntegrationSubtype != "" || in.TLSConfig != nil:
		return 0, nil, badRequest("the API Gateway emulator does not support credentialsArn, integrationSubtype or tlsConfig")
	case len(in.ResponseParameters) > 0:
		return 0, nil, badRequest("the API Gateway emulator does not support responseParameters (response mapping)")
	}
	if err := checkHTTPRequestParameters(in.RequestParameters); err != nil {
		return 0, nil, err
	}
	integ := &httpIntegration{
		IntegrationType: in.IntegrationType, IntegrationMethod: strings.ToUpper(in.IntegrationMethod), IntegrationURI: in.IntegrationURI,
		PayloadFormatVersion: "1.0", ConnectionType: "INTERNET", TimeoutInMillis: maxHTTPIntegrationTimeout, Description: in.Description,
		RequestParameters: copyMap(in.RequestParameters),
	}
	switch {
	case integ.IntegrationMethod == "":
		return 0, nil, badRequest("IntegrationMethod is required for HTTP_PROXY integrations")
	case !httpMethods[integ.IntegrationMethod]:
		return 0, nil, badRequest("Invalid integration method %s", in.IntegrationMethod)
	case !validHTTPEndpoint(in.IntegrationURI):
		return 0, nil, badRequest("Invalid integration URI specified: an http(s) URL is required for HTTP_PROXY")
	case in.PayloadFormatVersion != "" && in.PayloadFormatVersion != "1.0":
		return 0, nil, badRequest("Payload format version %s is not supported for HTTP_PROXY integrations: 1.0", in.PayloadFormatVersion)
	}
	if t := in.TimeoutInMillis; t != nil {
		if *t < minIntegrationTimeout || *t > maxHTTPIntegrationTimeout {
			return 0, nil, badRequest("Timeout must be between %d and %d milliseconds", minIntegrationTimeout, maxHTTPIntegrationTimeout)
		}
		integ.TimeoutInMillis = *t
	}
	return e.onHTTPAPI(r, func(api *httpAPI) (int, any, error) {
		integ.IntegrationID = newID(7)
		api.integrations[integ.IntegrationID] = integ
		return http.StatusCreated, integ, nil
	})
}

func (e *Emulator) getHTTPIntegration(r *http.Request) (int, any, error) {
	return e.onHTTPAPI(r, func(api *httpAPI) (int, any, error) {
		return found(api.integrations[r.PathValue("integrationId")], "Invalid Integration identifier specified")
	})
}

func (e *Emulator) getHTTPIntegrations(r *http.Request) (int, any, error) {
	return e.onHTTPAPI(r, func(api *httpAPI) (int, any, error) {
		return http.StatusOK, map[string]any{"items": sortedValues(api.integrations, func(i *httpIntegration) string { return i.IntegrationID })}, nil
	})
}

// checkRouteTarget accepts an empty target or integrations/<id> of an integration of the API.
func checkRouteTarget(api *httpAPI, target string) error {
	if target == "" {
		return nil
	}
	id, ok := strings.CutPrefix(target, integrationTargetPrefix)
	if !ok || api.integrations[id] == nil {
		return badRequest("Invalid target %q: integrations/<integrationId> of an integration of this API", target)
	}
	return nil
}

// routeIntegration is the integration a route's target names, or nil.
func routeIntegration(integrations map[string]*httpIntegration, rt *route) *httpIntegration {
	id, ok := strings.CutPrefix(rt.Target, integrationTargetPrefix)
	if !ok || integrations[id] == nil {
		return nil
	}
	c := *integrations[id]
	return &c
}

// integrateHTTP sends an HTTP API request through its route's HTTP_PROXY integration: the URI's
// stage variables and the route's path parameters substituted, the client's method (for ANY),
// headers, query string and body passed on, the integration's parameter mappings applied, and the
// answer passed back. A route without an integration answers 500, as AWS does.
func (e *Emulator) integrateHTTP(w http.ResponseWriter, r *http.Request, c httpCall) {
	if c.integ == nil {
		gatewayError(w, http.StatusInternalServerError, "InternalServerErrorException", "Internal Server Error")
		return
	}
	target, err := integrationURL(c.integ.IntegrationURI, c.variables, c.pathParams)
	if err != nil {
		gatewayError(w, http.StatusInternalServerError, "InternalServerErrorException", "Internal Server Error")
		return
	}
	e.send(w, r, backendCall{target: target, method: c.integ.IntegrationMethod, proxy: true, edit: c.mapRequest,
		timeout: time.Duration(c.integ.TimeoutInMillis) * time.Millisecond})
}
