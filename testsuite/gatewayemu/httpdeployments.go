package gatewayemu

import "net/http"

// httpView is what an HTTP API stage serves: its routes, their integrations and authorizers.
type httpView struct {
	routes       map[string]*route
	integrations map[string]*httpIntegration
	authorizers  map[string]*httpAuthorizer
}

// live is the API as it stands, which an autoDeploy stage serves (AWS deploys every change).
func (api *httpAPI) live() httpView {
	return httpView{routes: api.routes, integrations: api.integrations, authorizers: api.authorizers}
}

// snapshot copies the view. Updates replace an authorizer's fields rather than change what they
// point to, so copying each value is enough to keep the snapshot still.
func (v httpView) snapshot() httpView {
	return httpView{routes: copyValues(v.routes), integrations: copyValues(v.integrations), authorizers: copyValues(v.authorizers)}
}

func copyValues[V any](m map[string]*V) map[string]*V {
	out := make(map[string]*V, len(m))
	for k, v := range m {
		c := *v
		out[k] = &c
	}
	return out
}

// httpDeployment is a deployment of an HTTP API: a snapshot of its routes, integrations and
// authorizers, which a stage without autoDeploy serves until another deployment reaches it, as on
// AWS.
type httpDeployment struct {
	DeploymentID     string  `json:"deploymentId"`
	DeploymentStatus string  `json:"deploymentStatus"`
	Description      string  `json:"description,omitempty"` // AWS omits an empty one
	CreatedDate      isoTime `json:"createdDate"`
	AutoDeployed     bool    `json:"autoDeployed"`

	view httpView
}

func (e *Emulator) createHTTPDeployment(r *http.Request) (int, any, error) {
	var in struct {
		StageName   string `json:"stageName"`
		Description string `json:"description"`
	}
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	return e.onHTTPAPI(r, func(api *httpAPI) (int, any, error) {
		if len(api.routes) == 0 {
			return 0, nil, badRequest("Unable to deploy API because no routes exist in this API")
		}
		var st *httpStage
		if in.StageName != "" {
			if st = api.stages[in.StageName]; st == nil {
				return 0, nil, notFound("Invalid stage identifier specified")
			}
		}
		now := isoTime(e.opts.Now())
		d := &httpDeployment{DeploymentID: newID(6), DeploymentStatus: "DEPLOYED", Description: in.Description, CreatedDate: now,
			view: api.live().snapshot()}
		api.deployments[d.DeploymentID] = d
		if st != nil {
			st.DeploymentID, st.LastUpdatedDate = d.DeploymentID, now
		}
		return http.StatusCreated, d, nil
	})
}

// servedView is what a stage serves: the live API with autoDeploy, else its deployment's snapshot
// (false when it has none, and serves nothing).
func (api *httpAPI) servedView(st *httpStage) (httpView, bool) {
	if st.AutoDeploy {
		return api.live(), true
	}
	d := api.deployments[st.DeploymentID]
	if d == nil {
		return httpView{}, false
	}
	return d.view, true
}
