package gatewayemu

import (
	"net/http"
	"strings"
)

// endpointConfiguration is a REST API's endpoint type; the emulator serves every type alike on
// its one data-plane listener.
type endpointConfiguration struct {
	Types          []string `json:"types"`
	VPCEndpointIDs []string `json:"vpcEndpointIds,omitempty"`
}

// createRestAPIInput is CreateRestApi's body. Fields that do not change what the emulator does
// are kept and returned, as AWS returns them; cloneFrom, policy and apiKeySource AUTHORIZER, which
// would, are refused.
type createRestAPIInput struct {
	Name                      string                 `json:"name"`
	Description               string                 `json:"description"`
	Version                   string                 `json:"version"`
	APIKeySource              string                 `json:"apiKeySource"`
	BinaryMediaTypes          []string               `json:"binaryMediaTypes"`
	MinimumCompressionSize    *int32                 `json:"minimumCompressionSize"`
	EndpointConfiguration     *endpointConfiguration `json:"endpointConfiguration"`
	DisableExecuteAPIEndpoint bool                   `json:"disableExecuteApiEndpoint"`
	Tags                      map[string]string      `json:"tags"`
	CloneFrom                 string                 `json:"cloneFrom"`
	Policy                    string                 `json:"policy"`
}

// maxCompressionSize is AWS's upper bound on minimumCompressionSize (10 MiB).
const maxCompressionSize = 10485760

func (in *createRestAPIInput) check() error {
	switch {
	case strings.TrimSpace(in.Name) == "":
		return badRequest("Invalid REST API name specified")
	case in.CloneFrom != "":
		return badRequest("the API Gateway emulator does not support cloneFrom")
	case in.Policy != "":
		return badRequest("the API Gateway emulator does not support resource policies (policy)")
	case in.APIKeySource == "AUTHORIZER":
		// The key would come from the authorizer's usageIdentifierKey, which the emulator does not read.
		return badRequest("the API Gateway emulator does not support apiKeySource AUTHORIZER")
	case in.APIKeySource != "" && in.APIKeySource != "HEADER":
		return badRequest("Invalid API key source specified: %s. Valid values are HEADER, AUTHORIZER", in.APIKeySource)
	case in.MinimumCompressionSize != nil && (*in.MinimumCompressionSize < 0 || *in.MinimumCompressionSize > maxCompressionSize):
		return badRequest("Invalid minimum compression size %d: must be between 0 and %d", *in.MinimumCompressionSize, maxCompressionSize)
	}
	if c := in.EndpointConfiguration; c != nil {
		if len(c.Types) != 1 || (c.Types[0] != "EDGE" && c.Types[0] != "REGIONAL" && c.Types[0] != "PRIVATE") {
			return badRequest("Invalid endpoint configuration types %v: exactly one of EDGE, REGIONAL, PRIVATE", c.Types)
		}
		if len(c.VPCEndpointIDs) > 0 && c.Types[0] != "PRIVATE" {
			return badRequest("VPC endpoint IDs can only be set for PRIVATE endpoints")
		}
	}
	return nil
}

func (e *Emulator) createRestAPI(r *http.Request) (int, any, error) {
	var in createRestAPIInput
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	if err := in.check(); err != nil {
		return 0, nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	root := &resource{ID: newID(10), Path: "/", Methods: map[string]*method{}}
	api := &restAPI{
		ID: newID(10), Name: in.Name, Description: in.Description, Version: in.Version, CreatedDate: e.now(),
		RootResourceID: root.ID, APIKeySource: "HEADER", BinaryMediaTypes: in.BinaryMediaTypes,
		MinimumCompressionSize: in.MinimumCompressionSize, EndpointConfiguration: endpointConfiguration{Types: []string{"EDGE"}},
		DisableExecuteAPIEndpoint: in.DisableExecuteAPIEndpoint, Tags: copyMap(in.Tags),
		resources:   map[string]*resource{root.ID: root},
		deployments: map[string]*deployment{},
		stages:      map[string]*stage{},
		authorizers: map[string]*authorizer{},
	}
	if in.APIKeySource != "" {
		api.APIKeySource = in.APIKeySource
	}
	if in.EndpointConfiguration != nil {
		api.EndpointConfiguration = *in.EndpointConfiguration
	}
	e.restAPIs[api.ID] = api
	return http.StatusCreated, api, nil
}

func (e *Emulator) getRestAPI(r *http.Request) (int, any, error) {
	return e.onRESTAPI(r, func(api *restAPI) (int, any, error) {
		return http.StatusOK, api, nil
	})
}

func (e *Emulator) getRestAPIs(*http.Request) (int, any, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return http.StatusOK, map[string]any{"item": sortedValues(e.restAPIs, func(a *restAPI) string { return a.ID })}, nil
}
