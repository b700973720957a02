package gatewayemu

import (
	"fmt"
	"net"
	"net/http"
	"regexp"
	"strings"
)

// HTTP API parameter mapping: an integration's requestParameters change the request before it
// reaches the backend. Keys are append|overwrite|remove:header.<name>,
// append|overwrite|remove:querystring.<name> and overwrite:path; values are static text with
// $request.header.<name>, $request.querystring.<name>, $request.path.<name>, $request.path,
// $context.<variable> (the authorizer's answer as $context.authorizer.<key>, a JWT's claims as
// $context.authorizer.claims.<name>) and $stageVariables.<name> expressions, written bare or as
// ${...}.

var (
	httpMappingKey = regexp.MustCompile(`^(?:(append|overwrite|remove):(header|querystring)\.([^\s]+)|(overwrite):(path))$`)
	// httpMappingExpr finds each ${...} or bare $... expression in a value.
	httpMappingExpr = regexp.MustCompile(`\$\{([^}]+)\}|\$((?:request|context|stageVariables)\.[A-Za-z0-9_.\-]+|request\.path)`)
)

// httpContextVariables are the $context variables a mapping may read besides $context.authorizer.
var httpContextVariables = map[string]bool{
	"apiId": true, "httpMethod": true, "requestId": true, "routeKey": true, "stage": true,
	"identity.sourceIp": true, "identity.userAgent": true, "protocol": true,
}

// checkHTTPRequestParameters checks keys and the expressions of values, before any side effect.
func checkHTTPRequestParameters(params map[string]string) error {
	for _, key := range sortedKeys(params) {
		if !httpMappingKey.MatchString(key) {
			return badRequest("Invalid mapping key %s: use append|overwrite|remove:header.<name>, append|overwrite|remove:querystring.<name> or overwrite:path", key)
		}
		for _, m := range httpMappingExpr.FindAllStringSubmatch(params[key], -1) {
			if expr := m[1] + m[2]; !validHTTPMappingSource(expr) {
				return badRequest("Invalid mapping expression $%s in %s", expr, key)
			}
		}
	}
	return nil
}

func validHTTPMappingSource(expr string) bool {
	switch {
	case expr == "request.path":
		return true
	case strings.HasPrefix(expr, "request.body"):
		return false // the emulator does not read bodies
	case strings.HasPrefix(expr, "request.header."), strings.HasPrefix(expr, "request.querystring."),
		strings.HasPrefix(expr, "request.path."), strings.HasPrefix(expr, "stageVariables."),
		strings.HasPrefix(expr, "context.authorizer."):
		return true
	case strings.HasPrefix(expr, "context."):
		return httpContextVariables[strings.TrimPrefix(expr, "context.")]
	}
	return false
}

// httpCall is what the data plane knows when an HTTP API request reaches its integration.
type httpCall struct {
	api, stage string
	route      *route
	integ      *httpIntegration
	variables  map[string]string
	pathParams map[string]string
	// authorizer is the Lambda authorizer's context, or {"claims": ...} for a JWT authorizer.
	authorizer map[string]any
}

// mappingValue evaluates a value; ok is false when an expression has no value, and the mapping
// then changes nothing.
func (c httpCall) mappingValue(r *http.Request, value string) (string, bool) {
	ok := true
	out := httpMappingExpr.ReplaceAllStringFunc(value, func(m string) string {
		sub := httpMappingExpr.FindStringSubmatch(m)
		v, found := c.source(r, sub[1]+sub[2])
		ok = ok && found
		return v
	})
	return out, ok
}

func (c httpCall) source(r *http.Request, expr string) (string, bool) {
	if name, ok := strings.CutPrefix(expr, "request.header."); ok {
		v := strings.Join(r.Header.Values(name), ",")
		return v, v != ""
	}
	if name, ok := strings.CutPrefix(expr, "request.querystring."); ok {
		v := strings.Join(r.URL.Query()[name], ",")
		return v, v != ""
	}
	if name, ok := strings.CutPrefix(expr, "request.path."); ok {
		v, found := c.pathParams[name]
		return v, found
	}
	if name, ok := strings.CutPrefix(expr, "stageVariables."); ok {
		v, found := c.variables[name]
		return v, found
	}
	if key, ok := strings.CutPrefix(expr, "context.authorizer."); ok {
		return lookupPath(c.authorizer, key)
	}
	switch strings.TrimPrefix(expr, "context.") {
	case "apiId":
		return c.api, true
	case "httpMethod":
		return r.Method, true
	case "requestId":
		return newID(16), true
	case "routeKey":
		return c.route.RouteKey, true
	case "stage":
		return c.stage, true
	case "protocol":
		return r.Proto, true
	case "identity.userAgent":
		return r.UserAgent(), true
	case "identity.sourceIp":
		ip, _, err := net.SplitHostPort(r.RemoteAddr)
		if err != nil {
			ip = r.RemoteAddr
		}
		return ip, true
	}
	return "", false
}

// lookupPath reads a dotted key (claims.sub) from nested maps.
func lookupPath(m map[string]any, key string) (string, bool) {
	var v any = m
	for _, part := range strings.Split(key, ".") {
		obj, ok := v.(map[string]any)
		if !ok {
			return "", false
		}
		if v, ok = obj[part]; !ok || v == nil {
			return "", false
		}
	}
	return fmt.Sprint(v), true
}

// mapRequest applies the integration's mappings to the backend request, in key order.
func (c httpCall) mapRequest(in, out *http.Request) {
	params := c.integ.RequestParameters
	query := out.URL.Query()
	for _, key := range sortedKeys(params) {
		m := httpMappingKey.FindStringSubmatch(key)
		if m == nil {
			continue
		}
		if m[4] == "overwrite" { // overwrite:path
			if v, ok := c.mappingValue(in, params[key]); ok {
				out.URL.Path, out.URL.RawPath = v, ""
			}
			continue
		}
		op, where, name := m[1], m[2], m[3]
		v, ok := c.mappingValue(in, params[key])
		if op != "remove" && !ok {
			continue
		}
		switch {
		case where == "header" && op == "append":
			out.Header.Add(name, v)
		case where == "header" && op == "overwrite":
			out.Header.Set(name, v)
		case where == "header":
			out.Header.Del(name)
		case op == "append":
			query.Add(name, v)
		case op == "overwrite":
			query.Set(name, v)
		default:
			query.Del(name)
		}
	}
	out.URL.RawQuery = query.Encode()
}
