package gatewayemu

import (
	"net/http"
	"strconv"
)

type apiKey struct {
	ID              string `json:"id"`
	Name            string `json:"name,omitempty"` // AWS omits a nameless key's name
	Description     string `json:"description,omitempty"`
	Enabled         bool   `json:"enabled"`
	Value           string `json:"value,omitempty"`
	CustomerID      string `json:"customerId,omitempty"`
	CreatedDate     epoch  `json:"createdDate"`
	LastUpdatedDate epoch  `json:"lastUpdatedDate"`
	// StageKeys is always [] here: the emulator does not take stageKeys (a legacy form of usage
	// plans) and refuses them.
	StageKeys []string          `json:"stageKeys"`
	Tags      map[string]string `json:"tags,omitempty"`
}

type apiStage struct {
	APIID string `json:"apiId"`
	Stage string `json:"stage"`
}

type usagePlan struct {
	ID          string     `json:"id"`
	Name        string     `json:"name"`
	Description string     `json:"description,omitempty"`
	APIStages   []apiStage `json:"apiStages"`

	keys map[string]bool
}

func (e *Emulator) createAPIKey(r *http.Request) (int, any, error) {
	var in struct {
		Name        string            `json:"name"`
		Description string            `json:"description"`
		Enabled     bool              `json:"enabled"`
		Value       string            `json:"value"`
		CustomerID  string            `json:"customerId"`
		Tags        map[string]string `json:"tags"`
		StageKeys   []any             `json:"stageKeys"`
	}
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	if len(in.StageKeys) > 0 {
		return 0, nil, badRequest("the API Gateway emulator does not support stageKeys: add the key to a usage plan")
	}
	if in.Value != "" && (len(in.Value) < 20 || len(in.Value) > 128) {
		return 0, nil, badRequest("API Key value should be at least 20 characters and at most 128")
	}
	if in.Value == "" {
		in.Value = newID(40)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.apiKeys) >= maxAPIKeys {
		return 0, nil, limitExceeded("API keys exceed the limit of %d", maxAPIKeys)
	}
	for _, k := range e.apiKeys {
		if k.Value == in.Value {
			return 0, nil, conflict("API Key already exists")
		}
	}
	now := e.now()
	k := &apiKey{ID: newID(10), Name: in.Name, Description: in.Description, Enabled: in.Enabled, Value: in.Value,
		CustomerID: in.CustomerID, CreatedDate: now, LastUpdatedDate: now, StageKeys: []string{}, Tags: copyMap(in.Tags)}
	e.apiKeys[k.ID] = k
	return http.StatusCreated, k, nil
}

func (e *Emulator) getAPIKey(r *http.Request) (int, any, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	k := e.apiKeys[r.PathValue("apiKey")]
	if k == nil {
		return 0, nil, notFound("Invalid API Key identifier specified")
	}
	out := *k
	if include, _ := strconv.ParseBool(r.URL.Query().Get("includeValue")); !include {
		out.Value = ""
	}
	return http.StatusOK, &out, nil
}

func (e *Emulator) updateAPIKey(r *http.Request) (int, any, error) {
	ops, err := decodePatch(r)
	if err != nil {
		return 0, nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	k := e.apiKeys[r.PathValue("apiKey")]
	if k == nil {
		return 0, nil, notFound("Invalid API Key identifier specified")
	}
	next := *k
	for _, p := range ops {
		switch {
		case p.Op == "replace" && p.Path == "/enabled":
			// AWS reads any value other than a true boolean as false rather than refusing it.
			b, _ := strconv.ParseBool(p.Value)
			next.Enabled = b
		case p.Op == "replace" && p.Path == "/name":
			next.Name = p.Value
		case p.Op == "replace" && p.Path == "/description":
			next.Description = p.Value
		case p.Op == "replace" && p.Path == "/customerId":
			next.CustomerID = p.Value
		default:
			return 0, nil, badRequest("Invalid patch path '%s' specified for op '%s'. Must be one of: [/enabled, /name, /description, /customerId]", p.Path, p.Op)
		}
	}
	next.LastUpdatedDate = e.now()
	*k = next
	out := next
	out.Value = ""
	return http.StatusOK, &out, nil
}

func (e *Emulator) createUsagePlan(r *http.Request) (int, any, error) {
	var in struct {
		Name        string     `json:"name"`
		Description string     `json:"description"`
		APIStages   []apiStage `json:"apiStages"`
		Throttle    any        `json:"throttle"`
		Quota       any        `json:"quota"`
	}
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	if in.Throttle != nil || in.Quota != nil {
		return 0, nil, badRequest("the API Gateway emulator does not support usage plan throttle and quota")
	}
	if in.Name == "" {
		return 0, nil, badRequest("Usage plan name must be specified")
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, s := range in.APIStages {
		api := e.restAPIs[s.APIID]
		if api == nil || api.stages[s.Stage] == nil {
			return 0, nil, notFound("Invalid stage identifier specified: %s/%s", s.APIID, s.Stage)
		}
	}
	p := &usagePlan{ID: newID(6), Name: in.Name, Description: in.Description, APIStages: append([]apiStage{}, in.APIStages...), keys: map[string]bool{}}
	e.usagePlans[p.ID] = p
	return http.StatusCreated, p, nil
}

func (e *Emulator) createUsagePlanKey(r *http.Request) (int, any, error) {
	var in struct {
		KeyID   string `json:"keyId"`
		KeyType string `json:"keyType"`
	}
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	if in.KeyType != "API_KEY" {
		return 0, nil, badRequest("Invalid key type specified: %q; the only valid value is API_KEY", in.KeyType)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	p := e.usagePlans[r.PathValue("usagePlanId")]
	if p == nil {
		return 0, nil, notFound("Invalid Usage Plan ID specified")
	}
	k := e.apiKeys[in.KeyID]
	if k == nil {
		return 0, nil, notFound("Invalid API Key identifier specified")
	}
	if p.keys[k.ID] {
		return 0, nil, conflict("Usage Plan %s cannot be added because API Key %s cannot reference multiple Usage Plans with the same API Stage", p.ID, k.ID)
	}
	p.keys[k.ID] = true
	return http.StatusCreated, map[string]string{"id": k.ID, "type": "API_KEY", "name": k.Name, "value": k.Value}, nil
}

// apiKeyAllowedLocked tells whether value is an enabled key in a usage plan of the API stage.
func (e *Emulator) apiKeyAllowedLocked(apiID, stageName, value string) bool {
	if value == "" {
		return false
	}
	for _, p := range e.usagePlans {
		inPlan := false
		for _, s := range p.APIStages {
			inPlan = inPlan || (s.APIID == apiID && s.Stage == stageName)
		}
		if !inPlan {
			continue
		}
		for id := range p.keys {
			if k := e.apiKeys[id]; k != nil && k.Enabled && k.Value == value {
				return true
			}
		}
	}
	return false
}
