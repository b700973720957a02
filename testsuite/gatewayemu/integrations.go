package gatewayemu

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strings"
)

// integration is a REST method's integration (apigateway's Integration). The emulator runs
// HTTP_PROXY, HTTP and MOCK; AWS and AWS_PROXY need AWS services behind them and are refused.
type integration struct {
	Type                string            `json:"type"`
	HTTPMethod          string            `json:"httpMethod,omitempty"`
	URI                 string            `json:"uri,omitempty"`
	ConnectionType      string            `json:"connectionType,omitempty"`
	RequestParameters   map[string]string `json:"requestParameters,omitempty"`
	RequestTemplates    map[string]string `json:"requestTemplates,omitempty"`
	PassthroughBehavior string            `json:"passthroughBehavior"`
	TimeoutInMillis     int32             `json:"timeoutInMillis"`
	CacheNamespace      string            `json:"cacheNamespace"`
	CacheKeyParameters  []string          `json:"cacheKeyParameters"`
}

func (in *integration) clone() *integration {
	c := *in
	c.RequestParameters = copyMap(in.RequestParameters)
	c.RequestTemplates = copyMap(in.RequestTemplates)
	c.CacheKeyParameters = append([]string{}, in.CacheKeyParameters...)
	return &c
}

// AWS's bounds on an integration's timeout.
const (
	minIntegrationTimeout     = 50
	defaultIntegrationTimeout = 29000
)

var (
	// integrationTarget is a requestParameters key: what the backend request receives.
	integrationTarget = regexp.MustCompile(`^integration\.request\.(header|querystring|path)\.([^.\s]+)$`)
	// methodSource is a requestParameters value read from the client's request; the method must
	// declare it in its own requestParameters first, as on AWS.
	methodSource = regexp.MustCompile(`^method\.request\.(header|querystring|path)\.([^.\s]+)$`)
	// stageVariableRef is a ${stageVariables.name} reference in an integration URI.
	stageVariableRef = regexp.MustCompile(`\$\{stageVariables\.([A-Za-z0-9_]+)\}`)
	// pathPlaceholder is a {name} path parameter in an integration URI.
	pathPlaceholder = regexp.MustCompile(`\{([A-Za-z0-9._-]+)\}`)
)

// contextSources are the $context variables a mapping may read besides context.authorizer.<key>.
var contextSources = map[string]bool{
	"context.apiId": true, "context.httpMethod": true, "context.requestId": true, "context.resourceId": true,
	"context.resourcePath": true, "context.stage": true, "context.identity.sourceIp": true, "context.identity.userAgent": true,
}

// putIntegrationInput is PutIntegration's body.
type putIntegrationInput struct {
	Type                  string            `json:"type"`
	IntegrationHTTPMethod string            `json:"httpMethod"`
	URI                   string            `json:"uri"`
	ConnectionType        string            `json:"connectionType"`
	RequestParameters     map[string]string `json:"requestParameters"`
	RequestTemplates      map[string]string `json:"requestTemplates"`
	PassthroughBehavior   string            `json:"passthroughBehavior"`
	TimeoutInMillis       *int32            `json:"timeoutInMillis"`
	CacheNamespace        string            `json:"cacheNamespace"`
	CacheKeyParameters    []string          `json:"cacheKeyParameters"`
	Credentials           string            `json:"credentials"`
	ContentHandling       string            `json:"contentHandling"`
	ConnectionID          string            `json:"connectionId"`
	TLSConfig             any               `json:"tlsConfig"`
}

func (e *Emulator) putIntegration(r *http.Request) (int, any, error) {
	var in putIntegrationInput
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	return e.onMethod(r, func(res *resource, m *method) (int, any, error) {
		integ, err := newIntegration(in, res, m)
		if err != nil {
			return 0, nil, err
		}
		m.MethodIntegration = integ
		return http.StatusCreated, integ, nil
	})
}

func (e *Emulator) getIntegration(r *http.Request) (int, any, error) {
	return e.onMethod(r, func(_ *resource, m *method) (int, any, error) {
		return found(m.MethodIntegration, "Invalid Integration identifier specified")
	})
}

func (e *Emulator) deleteIntegration(r *http.Request) (int, any, error) {
	return e.onMethod(r, func(_ *resource, m *method) (int, any, error) {
		if m.MethodIntegration == nil {
			return 0, nil, notFound("Invalid Integration identifier specified")
		}
		m.MethodIntegration = nil
		return http.StatusNoContent, nil, nil
	})
}

// onMethod answers with f's answer for the request's resource and method, under the lock.
func (e *Emulator) onMethod(r *http.Request, f func(*resource, *method) (int, any, error)) (int, any, error) {
	return e.onRESTAPI(r, func(api *restAPI) (int, any, error) {
		res := api.resources[r.PathValue("resourceId")]
		if res == nil {
			return 0, nil, notFound("Invalid Resource identifier specified")
		}
		m := res.Methods[strings.ToUpper(r.PathValue("httpMethod"))]
		if m == nil {
			return 0, nil, notFound("Invalid Method identifier specified")
		}
		return f(res, m)
	})
}

// newIntegration checks a PutIntegration body as AWS does and fills in AWS's defaults.
func newIntegration(in putIntegrationInput, res *resource, m *method) (*integration, error) {
	if err := refuseUnsupportedIntegration(in); err != nil {
		return nil, err
	}
	integ := &integration{
		Type: in.Type, RequestParameters: copyMap(in.RequestParameters), RequestTemplates: copyMap(in.RequestTemplates),
		PassthroughBehavior: "WHEN_NO_MATCH", TimeoutInMillis: defaultIntegrationTimeout,
		CacheNamespace: res.ID, CacheKeyParameters: append([]string{}, in.CacheKeyParameters...),
	}
	if in.CacheNamespace != "" {
		integ.CacheNamespace = in.CacheNamespace
	}
	switch in.PassthroughBehavior {
	case "":
	case "WHEN_NO_MATCH", "WHEN_NO_TEMPLATES", "NEVER":
		integ.PassthroughBehavior = in.PassthroughBehavior
	default:
		return nil, badRequest("Invalid passthrough behavior specified: %s. Valid values are WHEN_NO_MATCH, WHEN_NO_TEMPLATES, NEVER", in.PassthroughBehavior)
	}
	if t := in.TimeoutInMillis; t != nil {
		if *t < minIntegrationTimeout || *t > defaultIntegrationTimeout {
			return nil, badRequest("Timeout should be between %d ms and %d ms", minIntegrationTimeout, defaultIntegrationTimeout)
		}
		integ.TimeoutInMillis = *t
	}
	if in.Type == "HTTP" || in.Type == "HTTP_PROXY" {
		verb := strings.ToUpper(in.IntegrationHTTPMethod)
		if verb == "" {
			return nil, badRequest("Enumeration value for HttpMethod must be non-empty")
		}
		if !httpMethods[verb] {
			return nil, badRequest("Invalid HTTP method specified: %s", in.IntegrationHTTPMethod)
		}
		if !validHTTPEndpoint(in.URI) {
			return nil, badRequest("Invalid HTTP endpoint specified for URI")
		}
		integ.HTTPMethod, integ.URI, integ.ConnectionType = verb, in.URI, "INTERNET"
	}
	if err := checkRequestParameters(integ.RequestParameters, m); err != nil {
		return nil, err
	}
	return integ, nil
}

// refuseUnsupportedIntegration refuses, naming the setting, what the emulator cannot run, so that
// nothing is accepted and then ignored.
func refuseUnsupportedIntegration(in putIntegrationInput) error {
	switch in.Type {
	case "HTTP", "HTTP_PROXY", "MOCK":
	case "AWS", "AWS_PROXY":
		return badRequest("the API Gateway emulator does not support integration type %s", in.Type)
	default:
		return badRequest("Invalid integration type specified: %q. Valid values are HTTP, HTTP_PROXY, MOCK, AWS, AWS_PROXY", in.Type)
	}
	switch {
	case in.ConnectionType != "" && in.ConnectionType != "INTERNET":
		return badRequest("the API Gateway emulator does not support connectionType %s", in.ConnectionType)
	case in.ConnectionID != "":
		return badRequest("the API Gateway emulator does not support connectionId")
	case in.Credentials != "":
		return badRequest("the API Gateway emulator does not support integration credentials")
	case in.ContentHandling != "":
		return badRequest("the API Gateway emulator does not support contentHandling")
	case in.TLSConfig != nil:
		return badRequest("the API Gateway emulator does not support tlsConfig")
	case len(in.RequestTemplates) > 0 && !(in.Type == "MOCK" && mockStatus200(in.RequestTemplates)):
		return badRequest("the API Gateway emulator supports requestTemplates only as a MOCK's {\"statusCode\": 200}")
	case len(in.CacheKeyParameters) > 0:
		return badRequest("the API Gateway emulator does not support cacheKeyParameters (stage caches)")
	}
	return nil
}

// mockStatus200 reports whether a MOCK's templates are the usual {"statusCode": 200}, the one
// answer the emulator's MOCK gives.
func mockStatus200(templates map[string]string) bool {
	for _, t := range templates {
		var doc struct {
			StatusCode *int `json:"statusCode"`
		}
		if json.Unmarshal([]byte(t), &doc) != nil || doc.StatusCode == nil || *doc.StatusCode != http.StatusOK {
			return false
		}
	}
	return true
}

// validHTTPEndpoint accepts an absolute http(s) URL once its ${stageVariables.x} references and
// {param} placeholders stand for plain values, as AWS accepts http://${stageVariables.host}/{proxy}.
func validHTTPEndpoint(uri string) bool {
	probe := stageVariableRef.ReplaceAllString(uri, "stagevariable")
	probe = pathPlaceholder.ReplaceAllString(probe, "param")
	u, err := url.Parse(probe)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// checkRequestParameters checks each mapping's target and source. A method.request source must be
// declared by the method, which is why AWS refuses integration.request.path.proxy mapped from an
// undeclared method.request.path.proxy.
func checkRequestParameters(params map[string]string, m *method) error {
	for _, target := range sortedKeys(params) {
		source := params[target]
		if !integrationTarget.MatchString(target) {
			return invalidMapping("Invalid mapping expression specified: %s", target)
		}
		switch {
		case methodSource.MatchString(source):
			if _, ok := m.RequestParameters[source]; !ok {
				return invalidMapping("Invalid mapping expression parameter specified: %s", source)
			}
		case strings.HasPrefix(source, "context.authorizer.") && len(source) > len("context.authorizer."):
		case contextSources[source]:
		case strings.HasPrefix(source, "stageVariables.") && len(source) > len("stageVariables."):
		case len(source) >= 2 && strings.HasPrefix(source, "'") && strings.HasSuffix(source, "'"):
		default:
			return invalidMapping("Invalid mapping expression specified: %s", source)
		}
	}
	return nil
}

// invalidMapping is AWS's BadRequestException for a requestParameters mapping, whose message wraps
// the one error in a validation result.
func invalidMapping(format string, a ...any) error {
	return badRequest("Invalid mapping expression specified: Validation Result: warnings : [], errors : [%s]", fmt.Sprintf(format, a...))
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// checkMethodRequestParameters checks PutMethod's requestParameters: each a
// method.request.{header,querystring,path}.<name>, each name once whatever its case for headers.
func checkMethodRequestParameters(params map[string]bool) error {
	headers := map[string]bool{}
	for _, p := range sortedKeys(params) {
		sub := methodSource.FindStringSubmatch(p)
		if sub == nil {
			return badRequest("Invalid method request parameter specified: %s", p)
		}
		if sub[1] == "header" {
			name := strings.ToLower(sub[2])
			if headers[name] {
				return badRequest("Parameter names must be unique: duplicate %s", p)
			}
			headers[name] = true
		}
	}
	return nil
}
