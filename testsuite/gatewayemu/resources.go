package gatewayemu

import (
	"net/http"
	"regexp"
	"strings"
)

// variablePart is a path part that is a path parameter: {name} or the greedy {name+}.
var variablePart = regexp.MustCompile(`^\{[A-Za-z0-9._-]+\+?\}$`)

// resourceView is a resource as GetResource(s) answers it: its methods only when the request
// asks for them with embed=methods, as on AWS.
func resourceView(res *resource, r *http.Request) *resource {
	c := *res
	if !embedsMethods(r) {
		c.Methods = nil
	}
	return &c
}

func embedsMethods(r *http.Request) bool {
	for _, v := range r.URL.Query()["embed"] {
		for _, part := range strings.Split(v, ",") {
			if strings.TrimSpace(part) == "methods" {
				return true
			}
		}
	}
	return false
}

func (e *Emulator) getResources(r *http.Request) (int, any, error) {
	return e.onRESTAPI(r, func(api *restAPI) (int, any, error) {
		items := []*resource{}
		for _, res := range sortedValues(api.resources, func(res *resource) string { return res.Path }) {
			items = append(items, resourceView(res, r))
		}
		return http.StatusOK, map[string]any{"item": items}, nil
	})
}

func (e *Emulator) getResource(r *http.Request) (int, any, error) {
	return e.onRESTAPI(r, func(api *restAPI) (int, any, error) {
		res := api.resources[r.PathValue("resourceId")]
		if res == nil {
			return 0, nil, notFound("Invalid Resource identifier specified")
		}
		return http.StatusOK, resourceView(res, r), nil
	})
}

func (e *Emulator) createResource(r *http.Request) (int, any, error) {
	var in struct {
		PathPart string `json:"pathPart"`
	}
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	return e.onRESTAPI(r, func(api *restAPI) (int, any, error) {
		parent := api.resources[r.PathValue("parentId")]
		if parent == nil {
			return 0, nil, notFound("Invalid Resource identifier specified")
		}
		if err := checkPathPart(api, parent, in.PathPart); err != nil {
			return 0, nil, err
		}
		if len(api.resources) >= maxResourcesPerAPI {
			return 0, nil, limitExceeded("Resources per API exceed the limit of %d", maxResourcesPerAPI)
		}
		path := strings.TrimSuffix(parent.Path, "/") + "/" + in.PathPart
		res := &resource{ID: newID(6), ParentID: parent.ID, PathPart: in.PathPart, Path: path, Methods: map[string]*method{}}
		api.resources[res.ID] = res
		return http.StatusCreated, resourceView(res, r), nil
	})
}

// checkPathPart applies AWS's rules to a new resource: a path part without '/', no child under a
// greedy {name+} resource, and at most one path-parameter child per parent, since two would make
// routing ambiguous.
func checkPathPart(api *restAPI, parent *resource, part string) error {
	if part == "" || strings.Contains(part, "/") {
		return badRequest("Resource's path part must be specified and contain no '/'")
	}
	if strings.HasPrefix(part, "{") && !variablePart.MatchString(part) {
		return badRequest("Resource's path part only allow a-zA-Z0-9._- and curly braces at the beginning and the end and an optional plus sign before the closing brace: %s", part)
	}
	if strings.HasSuffix(parent.PathPart, "+}") {
		return badRequest("Cannot create a child of a resource with a greedy path variable: %s", parent.PathPart)
	}
	for _, sibling := range api.resources {
		if sibling.ParentID != parent.ID {
			continue
		}
		if sibling.PathPart == part {
			return conflict("Another resource with the same parent already has this name: %s", part)
		}
		if variablePart.MatchString(part) && variablePart.MatchString(sibling.PathPart) {
			return badRequest("A sibling (%s) of this resource already has a variable path part -- only one is allowed", sibling.PathPart)
		}
	}
	return nil
}
