package gatewayemu

import "net/http"

func (e *Emulator) createDeployment(r *http.Request) (int, any, error) {
	var in struct {
		StageName        string            `json:"stageName"`
		StageDescription string            `json:"stageDescription"`
		Description      string            `json:"description"`
		Variables        map[string]string `json:"variables"`
		TracingEnabled   *bool             `json:"tracingEnabled"`
		CacheCluster     bool              `json:"cacheClusterEnabled"`
		CanarySettings   *struct {
			PercentTraffic         float64           `json:"percentTraffic"`
			StageVariableOverrides map[string]string `json:"stageVariableOverrides"`
			UseStageCache          bool              `json:"useStageCache"`
		} `json:"canarySettings"`
	}
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	if in.CacheCluster {
		return 0, nil, errNoStageCache
	}
	return e.onRESTAPI(r, func(api *restAPI) (int, any, error) {
		hasMethod := false
		for _, res := range api.resources {
			hasMethod = hasMethod || len(res.Methods) > 0
		}
		if !hasMethod {
			return 0, nil, badRequest("The REST API doesn't contain any methods")
		}
		if !everyMethodIntegrated(api) {
			return 0, nil, badRequest("No integration defined for method")
		}
		if in.StageName != "" && api.stages[in.StageName] == nil && len(api.stages) >= maxStagesPerAPI {
			return 0, nil, limitExceeded("Stages per API exceed the limit of %d", maxStagesPerAPI)
		}
		if in.CanarySettings != nil {
			if in.StageName == "" || api.stages[in.StageName] == nil {
				return 0, nil, badRequest("Invalid stage identifier specified: a canary deployment needs an existing stage")
			}
			if err := checkPercent(in.CanarySettings.PercentTraffic); err != nil {
				return 0, nil, err
			}
		}
		if err := checkVariables(in.Variables); err != nil {
			return 0, nil, err
		}
		d := &deployment{
			ID: newID(6), Description: in.Description, CreatedDate: e.now(),
			resources:   make(map[string]*resource, len(api.resources)),
			authorizers: make(map[string]*authorizer, len(api.authorizers)),
		}
		for id, res := range api.resources {
			d.resources[id] = res.clone()
		}
		for id, a := range api.authorizers {
			d.authorizers[id] = a.clone()
		}
		api.deployments[d.ID] = d
		if in.StageName == "" {
			return http.StatusCreated, d, nil
		}
		st := api.stages[in.StageName]
		now := e.now()
		switch {
		case in.CanarySettings != nil:
			st.CanarySettings = &canarySettings{
				PercentTraffic:         in.CanarySettings.PercentTraffic,
				DeploymentID:           d.ID,
				StageVariableOverrides: copyMap(in.CanarySettings.StageVariableOverrides),
				UseStageCache:          in.CanarySettings.UseStageCache,
			}
		case st == nil:
			st = newStage(in.StageName, now)
			st.Description = in.StageDescription
			api.stages[in.StageName] = st
			fallthrough
		default:
			st.DeploymentID = d.ID
			for k, v := range in.Variables {
				if st.Variables == nil {
					st.Variables = map[string]string{}
				}
				st.Variables[k] = v
			}
			if in.TracingEnabled != nil {
				st.TracingEnabled = *in.TracingEnabled
			}
		}
		st.LastUpdatedDate = now
		return http.StatusCreated, d, nil
	})
}

func (e *Emulator) getDeployments(r *http.Request) (int, any, error) {
	return e.onRESTAPI(r, func(api *restAPI) (int, any, error) {
		return http.StatusOK, map[string]any{"item": sortedValues(api.deployments, func(d *deployment) string { return d.ID })}, nil
	})
}

func (e *Emulator) getDeployment(r *http.Request) (int, any, error) {
	return e.onRESTAPI(r, func(api *restAPI) (int, any, error) {
		return found(api.deployments[r.PathValue("deploymentId")], "Invalid Deployment identifier specified")
	})
}

func (e *Emulator) createStage(r *http.Request) (int, any, error) {
	var in struct {
		StageName      string            `json:"stageName"`
		DeploymentID   string            `json:"deploymentId"`
		Description    string            `json:"description"`
		Variables      map[string]string `json:"variables"`
		TracingEnabled bool              `json:"tracingEnabled"`
		CanarySettings *canarySettings   `json:"canarySettings"`
		CacheCluster   bool              `json:"cacheClusterEnabled"`
	}
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	if in.CacheCluster {
		return 0, nil, errNoStageCache
	}
	return e.onRESTAPI(r, func(api *restAPI) (int, any, error) {
		if in.StageName == "" || !validStageName(in.StageName) {
			return 0, nil, badRequest("Stage name only allows a-zA-Z0-9_")
		}
		if api.deployments[in.DeploymentID] == nil {
			return 0, nil, badRequest("Invalid deployment identifier specified")
		}
		if api.stages[in.StageName] != nil {
			return 0, nil, conflict("Stage already exists")
		}
		if len(api.stages) >= maxStagesPerAPI {
			return 0, nil, limitExceeded("Stages per API exceed the limit of %d", maxStagesPerAPI)
		}
		if err := checkVariables(in.Variables); err != nil {
			return 0, nil, err
		}
		if c := in.CanarySettings; c != nil {
			if err := checkPercent(c.PercentTraffic); err != nil {
				return 0, nil, err
			}
			if c.DeploymentID == "" {
				c.DeploymentID = in.DeploymentID
			}
			if api.deployments[c.DeploymentID] == nil {
				return 0, nil, badRequest("Invalid canary deployment identifier specified")
			}
		}
		now := e.now()
		st := newStage(in.StageName, now)
		st.DeploymentID, st.Description, st.Variables = in.DeploymentID, in.Description, copyMap(in.Variables)
		st.CanarySettings, st.TracingEnabled = in.CanarySettings, in.TracingEnabled
		api.stages[st.StageName] = st
		return http.StatusCreated, st, nil
	})
}

func (e *Emulator) stageLocked(r *http.Request) (*restAPI, *stage, error) {
	api, err := e.restAPILocked(r)
	if err != nil {
		return nil, nil, err
	}
	st := api.stages[r.PathValue("stageName")]
	if st == nil {
		return nil, nil, notFound("Invalid Stage identifier specified")
	}
	return api, st, nil
}

// errNoStageCache refuses a stage cache, which the emulator does not have, naming the setting.
var errNoStageCache = badRequest("the API Gateway emulator does not support stage caches (cacheClusterEnabled)")

// getStages lists the API's stages, those of one deployment when deploymentId is given.
func (e *Emulator) getStages(r *http.Request) (int, any, error) {
	return e.onRESTAPI(r, func(api *restAPI) (int, any, error) {
		want := r.URL.Query().Get("deploymentId")
		items := []*stage{}
		for _, st := range sortedValues(api.stages, func(st *stage) string { return st.StageName }) {
			if want == "" || st.DeploymentID == want {
				items = append(items, st)
			}
		}
		return http.StatusOK, map[string]any{"item": items}, nil
	})
}

func (e *Emulator) getStage(r *http.Request) (int, any, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	_, st, err := e.stageLocked(r)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, st, nil
}

func (e *Emulator) flushStageAuthorizersCache(r *http.Request) (int, any, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	_, st, err := e.stageLocked(r)
	if err != nil {
		return 0, nil, err
	}
	st.cache.flush()
	return http.StatusAccepted, nil, nil
}

// everyMethodIntegrated reports whether each method has an integration, which AWS requires of a
// deployment.
func everyMethodIntegrated(api *restAPI) bool {
	for _, res := range api.resources {
		for _, m := range res.Methods {
			if m.MethodIntegration == nil {
				return false
			}
		}
	}
	return true
}
