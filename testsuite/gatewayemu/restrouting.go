package gatewayemu

import "strings"

// restMatch is the resource and method a REST request reached, with the values of the resource's
// {name} and {name+} path parameters.
type restMatch struct {
	resource   *resource
	method     *method
	pathParams map[string]string
}

// matchMethod finds the method for a request in a deployment as API Gateway does: a literal path
// segment wins over a {name} parameter, which wins over a greedy {name+} one (the greedy match
// with the longest prefix first); the verb's method, else ANY, else the next resource in that order.
// The match has no method when nothing matches.
func matchMethod(d *deployment, verb, path string) restMatch {
	var best restMatch
	bestRank := ""
	for _, res := range d.resources {
		params, rank, ok := matchResourcePath(res.Path, path)
		if !ok || rank <= bestRank {
			continue
		}
		m := res.Methods[verb]
		if m == nil {
			m = res.Methods["ANY"]
		}
		if m != nil {
			best, bestRank = restMatch{resource: res, method: m, pathParams: params}, rank
		}
	}
	return best
}

// matchResourcePath matches a request path against a resource path. Its rank orders the matches:
// one digit per segment (2 literal, 1 parameter, 0 greedy) after a leading 1 for a path without
// a greedy segment and 0 for one with it, so that strings compare as API Gateway's precedence.
func matchResourcePath(template, path string) (map[string]string, string, bool) {
	tsegs, psegs := segments(template), segments(path)
	var params map[string]string
	var rank strings.Builder
	rank.WriteByte('1')
	for i, t := range tsegs {
		name, isParam := strings.CutPrefix(t, "{")
		name, _ = strings.CutSuffix(name, "}")
		if greedy, ok := strings.CutSuffix(name, "+"); ok && isParam && i == len(tsegs)-1 {
			if len(psegs) <= i {
				return nil, "", false // a greedy parameter matches one segment at least
			}
			params = setParam(params, greedy, strings.Join(psegs[i:], "/"))
			out := rank.String()
			return params, "0" + out[1:] + "0", true
		}
		if i >= len(psegs) {
			return nil, "", false
		}
		switch {
		case isParam:
			params = setParam(params, name, psegs[i])
			rank.WriteByte('1')
		case t == psegs[i]:
			rank.WriteByte('2')
		default:
			return nil, "", false
		}
	}
	if len(tsegs) != len(psegs) {
		return nil, "", false
	}
	return params, rank.String(), true
}

func segments(path string) []string {
	path = strings.Trim(path, "/")
	if path == "" {
		return nil
	}
	return strings.Split(path, "/")
}

func setParam(params map[string]string, name, value string) map[string]string {
	if params == nil {
		params = map[string]string{}
	}
	params[name] = value
	return params
}

// matchRoute picks an HTTP API's route for a request as API Gateway does: the most specific path
// (by matchResourcePath's rank), for the same path the verb's route before ANY, and $default when
// nothing else matches. It returns the route's path parameters.
func matchRoute(routes map[string]*route, verb, path string) (*route, map[string]string) {
	var best, fallback *route
	var bestParams map[string]string
	bestRank := ""
	for _, rt := range routes {
		if rt.RouteKey == "$default" {
			fallback = rt
			continue
		}
		v, p, _ := strings.Cut(rt.RouteKey, " ")
		if v != verb && v != "ANY" {
			continue
		}
		params, rank, ok := matchResourcePath(p, path)
		if !ok {
			continue
		}
		if v == verb {
			rank += "1"
		} else {
			rank += "0"
		}
		if rank > bestRank {
			best, bestParams, bestRank = rt, params, rank
		}
	}
	if best == nil {
		return fallback, nil
	}
	return best, bestParams
}
