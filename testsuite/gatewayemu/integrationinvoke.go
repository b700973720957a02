package gatewayemu

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"time"
)

// integrationCall is what the data plane knows when a REST request reaches its integration: the
// integration of the deployment that serves it, the variables of that deployment (a canary's
// overrides applied), the path parameters and the authorizer's decision.
type integrationCall struct {
	apiID, stage string
	match        restMatch
	variables    map[string]string
	decision     Decision
}

// integrate sends the request through its method's integration and writes the answer.
func (e *Emulator) integrate(w http.ResponseWriter, r *http.Request, c integrationCall) {
	integ := c.match.method.MethodIntegration
	switch {
	case integ == nil:
		// CreateDeployment refuses a method without an integration, so no deployment has one.
		gatewayError(w, http.StatusInternalServerError, "InternalServerErrorException", "Internal server error")
	case integ.Type == "MOCK":
		// The emulator's MOCK answers as one whose only integration response is 200 with no
		// mapping template: an empty body (integration responses are not supported).
		w.WriteHeader(http.StatusOK)
	default:
		e.forward(w, r, c, integ)
	}
}

// forward calls an HTTP or HTTP_PROXY integration. HTTP_PROXY passes the client's headers, query
// string and body on and its answer back as is; HTTP passes the body and only the mapped headers
// and query parameters, and, without integration responses, passes the backend's status and body
// back (a simplification: AWS would apply the integration responses' mappings).
func (e *Emulator) forward(w http.ResponseWriter, r *http.Request, c integrationCall, integ *integration) {
	mapped := e.mapParameters(r, c, integ.RequestParameters)
	target, err := integrationURL(integ.URI, c.variables, mapped.path)
	if err != nil {
		// AWS answers a URI it cannot build ("Illegal character in path") with a 500.
		gatewayError(w, http.StatusInternalServerError, "InternalServerErrorException", "Internal server error")
		return
	}
	e.send(w, r, backendCall{target: target, method: integ.HTTPMethod, proxy: integ.Type == "HTTP_PROXY",
		header: mapped.header, query: mapped.query, timeout: time.Duration(integ.TimeoutInMillis) * time.Millisecond})
}

// backendCall is one request to an HTTP backend.
type backendCall struct {
	target *url.URL
	// method is the backend request's; ANY keeps the client's.
	method string
	// proxy passes the client's headers and query string on; otherwise only the mapped ones go.
	proxy         bool
	header, query map[string]string
	// edit, if set, changes the backend request last (an HTTP API's parameter mappings).
	edit    func(in, out *http.Request)
	timeout time.Duration
}

// send calls the backend with the client's body and writes its answer; a backend slower than the
// timeout is a 504 as on AWS, an unreachable one a 502.
func (e *Emulator) send(w http.ResponseWriter, r *http.Request, c backendCall) {
	ctx, cancel := context.WithTimeout(r.Context(), c.timeout)
	defer cancel()
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL = c.target
			pr.Out.Host = c.target.Host
			if c.method != "ANY" {
				pr.Out.Method = c.method
			}
			query := c.target.Query()
			if c.proxy {
				query = mergeQuery(pr.In.URL.Query(), query)
			} else {
				pr.Out.Header = http.Header{"Content-Type": pr.In.Header.Values("Content-Type")}
			}
			for k, v := range c.query {
				query.Set(k, v)
			}
			for k, v := range c.header {
				pr.Out.Header.Set(k, v)
			}
			pr.Out.URL.RawQuery = query.Encode()
			if c.edit != nil {
				c.edit(pr.In, pr.Out)
			}
		},
		Transport: e.opts.HTTPClient.Transport,
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			if errors.Is(err, context.DeadlineExceeded) {
				gatewayError(w, http.StatusGatewayTimeout, "IntegrationTimeout", "Endpoint request timed out")
				return
			}
			gatewayError(w, http.StatusBadGateway, "InternalServerErrorException", "Internal server error")
		},
	}
	defer timeIntegration(w)() // IntegrationLatency, for the bed's CloudWatch
	proxy.ServeHTTP(w, r.WithContext(ctx))
}

// integrationURL substitutes a URI's ${stageVariables.x} references and {name} path parameters.
// A placeholder without a mapped value stays, and makes the URI unusable as on AWS.
func integrationURL(uri string, variables, path map[string]string) (*url.URL, error) {
	s := stageVariableRef.ReplaceAllStringFunc(uri, func(ref string) string {
		return variables[stageVariableRef.FindStringSubmatch(ref)[1]]
	})
	var missing error
	s = pathPlaceholder.ReplaceAllStringFunc(s, func(ph string) string {
		v, ok := path[pathPlaceholder.FindStringSubmatch(ph)[1]]
		if !ok {
			missing = fmt.Errorf("no value for %s", ph)
			return ph
		}
		return escapeSegments(v)
	})
	if missing != nil {
		return nil, missing
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("integration URI %q is not an http(s) URL", s)
	}
	return u, nil
}

// escapeSegments escapes each segment of a path parameter's value, keeping a greedy value's slashes.
func escapeSegments(v string) string {
	segs := strings.Split(v, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/")
}

func mergeQuery(client, uri url.Values) url.Values {
	out := url.Values{}
	for k, vs := range client {
		out[k] = append([]string(nil), vs...)
	}
	for k, vs := range uri {
		out[k] = append(out[k], vs...)
	}
	return out
}

// mappedParameters are an integration's requestParameters evaluated for one request.
type mappedParameters struct {
	header, query, path map[string]string
}

// mapParameters evaluates each mapping; a source without a value (an absent header, a context
// key the authorizer did not return) maps nothing, as on AWS.
func (e *Emulator) mapParameters(r *http.Request, c integrationCall, params map[string]string) mappedParameters {
	out := mappedParameters{header: map[string]string{}, query: map[string]string{}, path: map[string]string{}}
	for target, source := range params {
		sub := integrationTarget.FindStringSubmatch(target)
		if sub == nil {
			continue
		}
		v, ok := e.mappingValue(r, c, source)
		if !ok {
			continue
		}
		switch sub[1] {
		case "header":
			out.header[sub[2]] = v
		case "querystring":
			out.query[sub[2]] = v
		case "path":
			out.path[sub[2]] = v
		}
	}
	return out
}

func (e *Emulator) mappingValue(r *http.Request, c integrationCall, source string) (string, bool) {
	if sub := methodSource.FindStringSubmatch(source); sub != nil {
		var v string
		switch sub[1] {
		case "header":
			v = r.Header.Get(sub[2])
		case "querystring":
			v = r.URL.Query().Get(sub[2])
		case "path":
			v = c.match.pathParams[sub[2]]
		}
		return v, v != ""
	}
	if key, ok := strings.CutPrefix(source, "context.authorizer."); ok {
		if key == "principalId" && c.decision.PrincipalID != "" {
			return c.decision.PrincipalID, true
		}
		v, ok := c.decision.Context[key]
		if !ok || v == nil {
			return "", false
		}
		return fmt.Sprint(v), true
	}
	if name, ok := strings.CutPrefix(source, "stageVariables."); ok {
		v, ok := c.variables[name]
		return v, ok
	}
	if len(source) >= 2 && strings.HasPrefix(source, "'") && strings.HasSuffix(source, "'") {
		return source[1 : len(source)-1], true
	}
	v := contextValue(r, c, strings.TrimPrefix(source, "context."))
	return v, v != ""
}

func contextValue(r *http.Request, c integrationCall, name string) string {
	switch name {
	case "apiId":
		return c.apiID
	case "httpMethod":
		return r.Method
	case "requestId":
		return newID(16)
	case "resourceId":
		return c.match.resource.ID
	case "resourcePath":
		return c.match.resource.Path
	case "stage":
		return c.stage
	case "identity.sourceIp":
		ip, _, err := net.SplitHostPort(r.RemoteAddr)
		if err != nil {
			return r.RemoteAddr
		}
		return ip
	case "identity.userAgent":
		return r.UserAgent()
	}
	return ""
}
