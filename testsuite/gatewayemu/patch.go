package gatewayemu

import (
	"net/http"
	"regexp"
	"strconv"
	"strings"
)

// patchOp is one of AWS's JSON-patch-like operations; every value travels as a string.
type patchOp struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value string `json:"value"`
	From  string `json:"from"`
}

func decodePatch(r *http.Request) ([]patchOp, error) {
	var in struct {
		PatchOperations []patchOp `json:"patchOperations"`
	}
	if err := decode(r, &in); err != nil {
		return nil, err
	}
	for _, p := range in.PatchOperations {
		switch p.Op {
		case "add", "remove", "replace", "move", "copy", "test":
		default:
			return nil, badRequest("Invalid patch operation specified. Must be one of: [add, remove, move, test, replace, copy]")
		}
	}
	return in.PatchOperations, nil
}

// errNoCanaryToPromote is AWS's answer to a promotion (a copy from /canarySettings) on a stage
// without a canary.
var errNoCanaryToPromote = badRequest("Promotion not available. Canary does not exist.")

func invalidPatch(p patchOp) error {
	if p.Op == "add" {
		return badRequest("Invalid add operation with path: %s", p.Path)
	}
	return badRequest("Invalid patch path '%s' specified for op '%s'. Must be one of: %s", p.Path, p.Op, "[/deploymentId, /description, /tracingEnabled, /variables/*, /canarySettings/*]")
}

// updateStage applies the operations to a copy of the stage and keeps it only if all succeed,
// as AWS applies a patch document atomically.
func (e *Emulator) updateStage(r *http.Request) (int, any, error) {
	ops, err := decodePatch(r)
	if err != nil {
		return 0, nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	api, st, err := e.stageLocked(r)
	if err != nil {
		return 0, nil, err
	}
	next := *st
	next.Variables = copyMap(st.Variables)
	if st.CanarySettings != nil {
		c := *st.CanarySettings
		c.StageVariableOverrides = copyMap(st.CanarySettings.StageVariableOverrides)
		next.CanarySettings = &c
	}
	for _, p := range ops {
		if err := applyStagePatch(api, &next, p); err != nil {
			return 0, nil, err
		}
	}
	next.LastUpdatedDate = e.now()
	*st = next
	return http.StatusOK, st, nil
}

func applyStagePatch(api *restAPI, st *stage, p patchOp) error {
	canary := func() error {
		if st.CanarySettings == nil {
			// Enabling a canary through UpdateStage starts it on the stage's own deployment.
			st.CanarySettings = &canarySettings{DeploymentID: st.DeploymentID}
		}
		return nil
	}
	switch {
	case p.Op == "replace" && p.Path == "/deploymentId":
		if api.deployments[p.Value] == nil {
			return badRequest("Invalid deployment identifier specified")
		}
		st.DeploymentID = p.Value
	case p.Op == "replace" && p.Path == "/description":
		st.Description = p.Value
	case p.Op == "replace" && p.Path == "/tracingEnabled":
		b, err := strconv.ParseBool(p.Value)
		if err != nil {
			return badRequest("Invalid value for tracingEnabled: %q", p.Value)
		}
		st.TracingEnabled = b
	case strings.HasPrefix(p.Path, "/variables/"):
		name := strings.TrimPrefix(p.Path, "/variables/")
		return patchVariable(&st.Variables, name, p)
	case p.Op == "remove" && p.Path == "/canarySettings":
		if st.CanarySettings == nil {
			return badRequest("Canary settings are not enabled for stage %s", st.StageName)
		}
		st.CanarySettings = nil
	case p.Op == "replace" && p.Path == "/canarySettings/percentTraffic":
		f, err := strconv.ParseFloat(p.Value, 64)
		if err != nil {
			return badRequest("Invalid value for percentTraffic: %q", p.Value)
		}
		if err := checkPercent(f); err != nil {
			return err
		}
		_ = canary()
		st.CanarySettings.PercentTraffic = f
	case p.Op == "replace" && p.Path == "/canarySettings/deploymentId":
		if api.deployments[p.Value] == nil {
			return badRequest("Invalid deployment identifier specified")
		}
		_ = canary()
		st.CanarySettings.DeploymentID = p.Value
	case p.Op == "replace" && p.Path == "/canarySettings/useStageCache":
		b, err := strconv.ParseBool(p.Value)
		if err != nil {
			return badRequest("Invalid value for useStageCache: %q", p.Value)
		}
		_ = canary()
		st.CanarySettings.UseStageCache = b
	case strings.HasPrefix(p.Path, "/canarySettings/stageVariableOverrides/"):
		if st.CanarySettings == nil {
			return badRequest("Canary settings are not enabled for stage %s", st.StageName)
		}
		name := strings.TrimPrefix(p.Path, "/canarySettings/stageVariableOverrides/")
		return patchVariable(&st.CanarySettings.StageVariableOverrides, name, p)
	case p.Op == "copy" && p.From == "/canarySettings/deploymentId" && p.Path == "/deploymentId":
		if st.CanarySettings == nil {
			return errNoCanaryToPromote
		}
		st.DeploymentID = st.CanarySettings.DeploymentID
	case p.Op == "copy" && p.From == "/canarySettings/stageVariableOverrides" && p.Path == "/variables":
		if st.CanarySettings == nil {
			return errNoCanaryToPromote
		}
		for k, v := range st.CanarySettings.StageVariableOverrides {
			if st.Variables == nil {
				st.Variables = map[string]string{}
			}
			st.Variables[k] = v
		}
	default:
		return invalidPatch(p)
	}
	return nil
}

var variableName = regexp.MustCompile(`^[A-Za-z0-9_]{1,64}$`)

// variableValue is AWS's allowed character set for stage variable values.
var variableValue = regexp.MustCompile(`^[A-Za-z0-9\-._~:/?#&=,]{0,512}$`)

func patchVariable(vars *map[string]string, name string, p patchOp) error {
	if !variableName.MatchString(name) {
		return badRequest("Stage variable name must match [A-Za-z0-9_]{1,64}: %q", name)
	}
	switch p.Op {
	case "add", "replace":
		if !variableValue.MatchString(p.Value) {
			return badRequest("Stage variable value for %s contains characters outside [A-Za-z0-9-._~:/?#&=,]", name)
		}
		if *vars == nil {
			*vars = map[string]string{}
		}
		(*vars)[name] = p.Value
	case "remove":
		if _, ok := (*vars)[name]; !ok {
			return badRequest("Cannot remove stage variable %s: it does not exist", name)
		}
		delete(*vars, name)
	default:
		return badRequest("Invalid patch operation %s for a stage variable", p.Op)
	}
	return nil
}

func checkVariables(vars map[string]string) error {
	for k, v := range vars {
		if !variableName.MatchString(k) {
			return badRequest("Stage variable name must match [A-Za-z0-9_]{1,64}: %q", k)
		}
		if !variableValue.MatchString(v) {
			return badRequest("Stage variable value for %s contains characters outside [A-Za-z0-9-._~:/?#&=,]", k)
		}
	}
	return nil
}

func checkPercent(f float64) error {
	if f < 0 || f > 100 {
		return badRequest("Canary traffic percentage must be between 0.0 and 100.0, got %v", f)
	}
	return nil
}

func (e *Emulator) updateAuthorizer(r *http.Request) (int, any, error) {
	ops, err := decodePatch(r)
	if err != nil {
		return 0, nil, err
	}
	return e.onRESTAPI(r, func(api *restAPI) (int, any, error) {
		a := api.authorizers[r.PathValue("authorizerId")]
		if a == nil {
			return 0, nil, notFound("Invalid Authorizer identifier specified")
		}
		next := a.clone()
		for _, p := range ops {
			if err := applyAuthorizerPatch(next, p); err != nil {
				return 0, nil, err
			}
		}
		if err := checkAuthorizer(next); err != nil {
			return 0, nil, err
		}
		api.authorizers[a.ID] = next
		return http.StatusOK, next, nil
	})
}

func applyAuthorizerPatch(a *authorizer, p patchOp) error {
	if p.Op == "replace" {
		switch p.Path {
		case "/name":
			a.Name = p.Value
			return nil
		case "/authorizerUri":
			a.AuthorizerURI = p.Value
			return nil
		case "/identitySource":
			a.IdentitySource = p.Value
			return nil
		case "/identityValidationExpression":
			a.IdentityValidationExpression = p.Value
			return nil
		case "/authorizerCredentials":
			a.AuthorizerCredentials = p.Value
			return nil
		case "/authType":
			a.AuthType = p.Value
			return nil
		case "/type":
			a.Type = p.Value
			return nil
		case "/authorizerResultTtlInSeconds":
			n, err := strconv.ParseInt(p.Value, 10, 32)
			if err != nil {
				return badRequest("Invalid value for authorizerResultTtlInSeconds: %q", p.Value)
			}
			ttl := int32(n)
			a.AuthorizerResultTTLInSeconds = &ttl
			return nil
		}
	}
	if strings.HasPrefix(p.Path, "/providerARNs/") && (p.Op == "add" || p.Op == "remove") {
		arn := strings.TrimPrefix(p.Path, "/providerARNs/")
		out := a.ProviderARNs[:0:0]
		for _, x := range a.ProviderARNs {
			if x != arn {
				out = append(out, x)
			}
		}
		if p.Op == "add" {
			out = append(out, arn)
		}
		a.ProviderARNs = out
		return nil
	}
	return badRequest("Invalid patch path '%s' specified for op '%s'. Must be one of: %s", p.Path, p.Op,
		"[/name, /type, /authorizerUri, /identitySource, /identityValidationExpression, /authorizerResultTtlInSeconds, /authorizerCredentials, /authType, /providerARNs/*]")
}

// defaultAuthorizerTTL is AWS's authorizerResultTtlInSeconds when none is given.
const defaultAuthorizerTTL = 300

// setAuthorizerDefaults fills in what AWS returns for a new authorizer that did not set it:
// authType "custom" for a Lambda authorizer, "cognito_user_pools" for a user pool one, and the
// default result TTL.
func setAuthorizerDefaults(a *authorizer) {
	if a.AuthType == "" {
		a.AuthType = "custom"
		if a.Type == "COGNITO_USER_POOLS" {
			a.AuthType = "cognito_user_pools"
		}
	}
	if a.AuthorizerResultTTLInSeconds == nil {
		ttl := int32(defaultAuthorizerTTL)
		a.AuthorizerResultTTLInSeconds = &ttl
	}
}

// checkAuthorizer enforces what AWS enforces on a REST API authorizer.
func checkAuthorizer(a *authorizer) error {
	switch a.Type {
	case "TOKEN", "REQUEST":
		if a.AuthorizerURI == "" {
			return badRequest("Authorizer URI must be specified for authorizer type %s", a.Type)
		}
	case "COGNITO_USER_POOLS":
		if len(a.ProviderARNs) == 0 {
			return badRequest("Provider ARNs must be specified for authorizer type COGNITO_USER_POOLS")
		}
	default:
		return badRequest("Invalid authorizer type specified. Valid values are TOKEN, REQUEST, COGNITO_USER_POOLS")
	}
	if a.Type == "TOKEN" && !strings.HasPrefix(a.IdentitySource, "method.request.header.") {
		return badRequest("Invalid identity source %q: a TOKEN authorizer reads one header, method.request.header.<name>", a.IdentitySource)
	}
	if a.Type == "REQUEST" {
		if err := checkRequestIdentitySources(a.IdentitySource); err != nil {
			return err
		}
	}
	if ttl := a.AuthorizerResultTTLInSeconds; ttl != nil && (*ttl < 0 || *ttl > 3600) {
		return badRequest("Authorizer result TTL must be between 0 and 3600 seconds, got %d", *ttl)
	}
	// Cached under no identity source, one decision would answer every request until it expires.
	if cached := a.AuthorizerResultTTLInSeconds == nil || *a.AuthorizerResultTTLInSeconds > 0; a.Type == "REQUEST" && cached && strings.TrimSpace(a.IdentitySource) == "" {
		return badRequest("Identity source must be set if authorizer caching is enabled (authorizerResultTtlInSeconds is greater than 0; default 300)")
	}
	if a.IdentityValidationExpression != "" {
		if _, err := regexp.Compile(a.IdentityValidationExpression); err != nil {
			return badRequest("Invalid identity validation expression: %v", err)
		}
	}
	return nil
}

// requestSourcePrefixes are the REST REQUEST identity sources requestIdentity reads, with a name
// after the prefix; context.httpMethod is the one context variable it reads.
var requestSourcePrefixes = []string{"method.request.header.", "method.request.querystring.", "stageVariables."}

// checkRequestIdentitySources refuses an identity source the data plane could not read: AWS
// refuses one that is not a mapping expression, and one the emulator cannot read would refuse
// every request with 401 where AWS would call the Lambda.
func checkRequestIdentitySources(sources string) error {
	if strings.TrimSpace(sources) == "" {
		return nil
	}
	for _, src := range strings.Split(sources, ",") {
		src = strings.TrimSpace(src)
		known := src == "context.httpMethod"
		for _, p := range requestSourcePrefixes {
			known = known || (strings.HasPrefix(src, p) && len(src) > len(p))
		}
		if !known {
			return badRequest("Invalid identity source %q: the emulator reads method.request.header.<name>, method.request.querystring.<name>, stageVariables.<name> and context.httpMethod", src)
		}
	}
	return nil
}
