package spec

import (
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/rollgate/rollgate/internal/gateway"
)

// Rules is a version of the spec's validation rules. A Deployment validates its spec with the
// rules its run started under: a spec that a running deployment accepted must still be accepted
// when its history replays on newer code, or the replay takes another path.
type Rules int

const (
	// RulesOriginal are the rules of deployments started before every field was bounded.
	RulesOriginal Rules = iota
	// RulesBounded also bound free text and canary.stepTimeout, accept http issuers only on a
	// parsed loopback host, and check the shape of every id, bucket, prefix and audience.
	RulesBounded
	// RulesReleaseLabel also check a release label the spec sets itself (its value of
	// gateway.releaseVariable) against what the authorizer counts a release under.
	RulesReleaseLabel
	// RulesAnalysis also accept an analysis block, checked whole, each metric's interval within
	// the shortest bake. Earlier rules refuse it: their workers did not judge it.
	RulesAnalysis
	// LatestRules are the rules of new specs.
	LatestRules = RulesAnalysis
)

// Validate checks every field and returns a *ValidationError listing all problems, or nil.
func (s *DeploySpec) Validate() error { return s.ValidateWith(LatestRules) }

// ValidateWith checks the spec with the given version of the rules.
func (s *DeploySpec) ValidateWith(r Rules) error {
	v := validation{rules: r}
	v.header(s)
	kind := v.gateway(s.Gateway, s.Canary)
	v.release(s.Release)
	v.releaseLabel(s.Gateway, s.Release)
	v.issuer(s.Auth, kind)
	v.tokens(s.Auth, kind)
	v.canary(s.Canary)
	v.steps(s.Canary)
	v.CheckWebhook("notify.webhook", s.Notify.Webhook)
	v.analysis(s.Analysis, s.Canary)
	return v.Err("")
}

// validation is one run of the spec's checks under one version of the rules.
type validation struct {
	Problems
	rules Rules
}

func (v *validation) bounded() bool { return v.rules >= RulesBounded }

// analysis checks the block under the rules that judge it, and refuses it under the earlier ones.
func (v *validation) analysis(a *Analysis, c Canary) {
	if a == nil {
		return
	}
	if v.rules < RulesAnalysis {
		// A worker of these rules did not judge analysis; a block it would ignore must not look accepted.
		v.Add("analysis", "not supported by this version yet (remove the block; metrics are not judged)")
		return
	}
	v.CheckAnalysis("analysis", a)
	for i, m := range a.Metrics {
		for k, st := range c.Steps {
			if st.Bake.D() > 0 && m.Interval.D() > st.Bake.D() {
				v.Add(fmt.Sprintf("analysis.metrics[%d].interval", i), "%s is longer than canary.steps[%d].bake %s: the step would end before its first measurement", m.Interval.D(), k, st.Bake.D())
				break
			}
		}
	}
}

func (v *validation) header(s *DeploySpec) {
	v.CheckName("service", s.Service, "a service name")
	if v.bounded() {
		v.CheckText("actor", s.Actor, MaxActor, false)
		v.CheckText("reason", s.Reason, MaxText, false)
		return
	}
	if len(s.Actor) > MaxActor {
		v.Add("actor", "%d characters: allowed at most %d", len(s.Actor), MaxActor)
	}
	if len(s.Reason) > MaxText {
		v.Add("reason", "%d characters: allowed at most %d", len(s.Reason), MaxText)
	}
}

// gateway checks the target and returns what its kind can do. An unsupported kind is checked
// further as a REST API, so that every other problem is still reported, as it always was.
func (v *validation) gateway(g Gateway, c Canary) gateway.Description {
	kind, ok := gateway.Describe(g.Kind)
	if !ok {
		v.Add("gateway.kind", "%q: allowed %s", g.Kind, gateway.Kinds())
		kind, _ = gateway.Describe(gateway.KindREST)
		kind.Kind = g.Kind
	}
	v.CheckStage("gateway.apiId", g.APIID, "gateway.stage", g.Stage)
	if g.ReleaseVariable != "" && !varName.MatchString(g.ReleaseVariable) {
		v.Add("gateway.releaseVariable", "%q: a stage variable name must match [A-Za-z0-9_]{1,64}", g.ReleaseVariable)
	}
	if g.Region != "" && !regionPattern.MatchString(g.Region) {
		v.Add("gateway.region", "%q is not an AWS region name", g.Region)
	}
	if !kind.NativeCanary && len(c.Steps) > 0 && !(len(c.Steps) == 1 && c.Steps[0].Weight == 100) {
		v.Add("canary.steps", "%ss have no canary: use a single step of weight 100 (weighted Lambda aliases are not supported yet)", kind.Name)
	}
	return kind
}

// releaseLabel checks the value the spec gives the release variable itself: the authorizer counts
// a value outside its release ids as "invalid" (and an empty one as "unknown"), which would hide
// the canary's verifications among no release.
func (v *validation) releaseLabel(g Gateway, r Release) {
	name := g.ReleaseVariableName()
	if label, ok := r.Variables[name]; ok && v.rules >= RulesReleaseLabel && !releaseLabel.MatchString(label) {
		v.Add("release.variables."+name, "%q: the release's label (gateway.releaseVariable) must match %s, what the authorizer counts releases under",
			label, releaseLabel.String()[1:len(releaseLabel.String())-1])
	}
}

func (v *validation) release(r Release) {
	// Sorted, so that the same spec always gets the same error text (it is validated in workflows).
	for _, k := range slices.Sorted(maps.Keys(r.Variables)) {
		if !varName.MatchString(k) {
			v.Add("release.variables."+k, "name must match [A-Za-z0-9_]{1,64}")
		}
		if !varValue.MatchString(r.Variables[k]) {
			v.Add("release.variables."+k, "value has characters outside A-Za-z0-9-._~:/?#&=,")
		}
	}
	if d := r.DeploymentID; d != "" && !deploymentID.MatchString(d) {
		v.Add("release.deploymentId", "%q is not a deployment id", d)
	}
	if v.bounded() {
		v.CheckText("release.description", r.Description, MaxText, false)
	}
}

// issuer checks where tokens come from: the authorizer, the issuer and its key.
func (v *validation) issuer(a Auth, kind gateway.Description) {
	switch {
	case v.bounded():
		if !authorizerID.MatchString(a.AuthorizerID) {
			v.Add("auth.authorizerId", "%q: required, the authorizer id (1-64 letters and digits)", a.AuthorizerID)
		}
		v.CheckIssuer("auth.issuer", a.Issuer)
		v.CheckAudiences("auth.audiences", a.Audiences)
		v.CheckBucket("auth.jwksBucket", a.JWKSBucket)
		v.CheckPrefix("auth.jwksPrefix", a.JWKSPrefix)
	default:
		v.originalIssuer(a)
	}
	v.CheckName("auth.transitKey", a.TransitKey, "a Vault transit key name")
	if v.CheckKeyType("auth.keyType", a.KeyType) && !slices.Contains(a.KeyType.Algorithms(), a.Algorithm) {
		v.Add("auth.algorithm", "%q cannot be signed with a %s key: allowed %v", a.Algorithm, a.KeyType, a.KeyType.Algorithms())
	}
	if kind.RSAKeysOnly && a.KeyType != "" && !strings.HasPrefix(string(a.KeyType), "rsa-") {
		v.Add("auth.keyType", "%s JWT authorizers accept RSA keys only", kind.Name)
	}
}

// originalIssuer is what RulesOriginal checked of the issuer, kept so that running deployments
// replay as they ran.
func (v *validation) originalIssuer(a Auth) {
	if a.AuthorizerID == "" {
		v.Add("auth.authorizerId", "required")
	}
	if u, err := url.Parse(a.Issuer); err != nil || !u.IsAbs() || u.Host == "" || (u.Scheme != "https" && !originalLoopback(u.Hostname())) {
		v.Add("auth.issuer", "%q: must be an https URL (http only on loopback)", a.Issuer)
	}
	if len(a.Audiences) == 0 {
		v.Add("auth.audiences", "at least one audience is required")
	}
	if a.JWKSBucket == "" {
		v.Add("auth.jwksBucket", "required: the S3 bucket where the JWKS is published")
	}
	if a.JWKSPrefix != "" && !strings.HasSuffix(a.JWKSPrefix, "/") {
		v.Add("auth.jwksPrefix", "%q must end with '/'", a.JWKSPrefix)
	}
}

// originalLoopback is RulesOriginal's prefix match, which also let "127.attacker.example" pass.
func originalLoopback(host string) bool {
	return host == "localhost" || strings.HasPrefix(host, "127.") || host == "::1"
}

// tokens checks the tokens a release issues and what it changes at the authorizer.
func (v *validation) tokens(a Auth, kind gateway.Description) {
	if a.TokenTTL.D() < time.Minute || a.TokenTTL.D() > MaxTokenTTL {
		v.Add("auth.tokenTtl", "%s: allowed 1m to %s", a.TokenTTL.D(), MaxTokenTTL)
	}
	if a.VerifierCacheTTL.D() < 0 || a.VerifierCacheTTL.D() > MaxCacheTTL {
		v.Add("auth.verifierCacheTtl", "%s: allowed 0 to %s", a.VerifierCacheTTL.D(), MaxCacheTTL)
	}
	v.CheckClients("auth.clients", a.Clients)
	switch a.OnRollback {
	case "keep", "revoke":
	default:
		v.Add("auth.onRollback", "%q: allowed keep, revoke", a.OnRollback)
	}
	allowed := kind.AuthorizerSettings
	for _, path := range slices.Sorted(maps.Keys(a.AuthorizerPatch)) {
		if !slices.Contains(allowed, path) {
			v.Add("auth.authorizerPatch."+path, "not a %s API authorizer setting rollgate changes: allowed %v", kind.Kind, allowed)
		} else if v.bounded() {
			v.CheckText("auth.authorizerPatch."+path, a.AuthorizerPatch[path], MaxText, false)
		}
	}
}

func (v *validation) canary(c Canary) {
	if len(c.Steps) == 0 || len(c.Steps) > MaxSteps {
		v.Add("canary.steps", "%d steps: allowed 1 to %d", len(c.Steps), MaxSteps)
	}
	if c.ProbeInterval.D() < MinProbeEvery || c.ProbeInterval.D() > 10*time.Minute {
		v.Add("canary.probeInterval", "%s: allowed %s to 10m", c.ProbeInterval.D(), MinProbeEvery)
	}
	if c.MaxRejectionRatio < 0 || c.MaxRejectionRatio >= 1 {
		v.Add("canary.maxRejectionRatio", "%v: allowed 0 ≤ ratio < 1", c.MaxRejectionRatio)
	}
	if c.Max5xxRatio < 0 || c.Max5xxRatio >= 1 {
		v.Add("canary.max5xxRatio", "%v: allowed 0 ≤ ratio < 1", c.Max5xxRatio)
	}
	if c.MinProbes < 1 || c.MinProbes > 10000 {
		v.Add("canary.minProbes", "%d: allowed 1 to 10000", c.MinProbes)
	}
	v.stepTimeout(c)
}

// stepTimeout bounds every activity of a step, its bake included: a timeout no longer than the
// longest bake would roll every release back.
func (v *validation) stepTimeout(c Canary) {
	t := c.StepTimeout.D()
	if !v.bounded() {
		if t < 0 {
			v.Add("canary.stepTimeout", "must not be negative")
		}
		return
	}
	longest := time.Duration(0)
	for _, st := range c.Steps {
		longest = max(longest, st.Bake.D())
	}
	if t != 0 && (t <= longest || t > MaxStepTimeout) {
		v.Add("canary.stepTimeout", "%s: allowed 0 (each step's bake + 10m) or longer than the longest bake (%s) up to %s", t, longest, MaxStepTimeout)
	}
}

func (v *validation) steps(c Canary) {
	prev := 0.0
	for i, st := range c.Steps {
		f := fmt.Sprintf("canary.steps[%d]", i)
		if st.Weight <= 0 || st.Weight > 100 {
			v.Add(f+".weight", "%v: allowed 0 < weight ≤ 100", st.Weight)
		} else if st.Weight <= prev {
			v.Add(f+".weight", "%v: weights must increase step by step (previous %v)", st.Weight, prev)
		}
		prev = st.Weight
		if st.Bake.D() < MinBake || st.Bake.D() > MaxBake {
			v.Add(f+".bake", "%s: allowed %s to %s", st.Bake.D(), MinBake, MaxBake)
		}
		if c.ProbeInterval.D() > 0 && st.Bake.D() < c.ProbeInterval.D() {
			v.Add(f+".bake", "%s is shorter than the probe interval %s", st.Bake.D(), c.ProbeInterval.D())
		}
	}
}
