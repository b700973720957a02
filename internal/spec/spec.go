// Package spec defines a release: the DeploySpec a pipeline submits and its validation. Every
// field is checked before any side effect, and every problem is reported at once, naming the
// field and what is allowed.
package spec

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/rollgate/rollgate/internal/keys"
)

// Duration is a time.Duration written as "90s", "5m" or "1h30m" in specs.
type Duration time.Duration

func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration must be a string such as \"5m\": %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// D is the duration as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// DeploySpec is one release of a service behind an API Gateway stage.
type DeploySpec struct {
	Service string  `json:"service"`
	Gateway Gateway `json:"gateway"`
	Release Release `json:"release"`
	Auth    Auth    `json:"auth"`
	Canary  Canary  `json:"canary"`
	Notify  Notify  `json:"notify,omitzero"`
	// Actor and Reason say who started the release and why; the starter fills them from
	// --actor (default: the OS user) and --reason. They are recorded in the workflow history.
	Actor  string `json:"actor,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// Gateway names the stage being released.
type Gateway struct {
	Kind   string `json:"kind"` // rest | http
	APIID  string `json:"apiId"`
	Stage  string `json:"stage"`
	Region string `json:"region,omitempty"`
}

// Release is the code being shipped: an existing deployment, or a new one created from the API's
// current definition; Variables are the stage variables it runs with (a backend URL, a Lambda
// alias), applied as canary overrides and made the stage's own at promotion.
type Release struct {
	DeploymentID string            `json:"deploymentId,omitempty"`
	Description  string            `json:"description,omitempty"`
	Variables    map[string]string `json:"variables,omitempty"`
}

// Auth describes the release's token side.
type Auth struct {
	AuthorizerID string   `json:"authorizerId"`
	Issuer       string   `json:"issuer"` // https URL whose .well-known holds the JWKS
	Audiences    []string `json:"audiences"`
	// Where the JWKS and discovery document are published.
	JWKSBucket string `json:"jwksBucket"`
	JWKSPrefix string `json:"jwksPrefix,omitempty"`
	// The Vault transit key of the issuer.
	TransitKey string    `json:"transitKey"`
	KeyType    keys.Type `json:"keyType,omitempty"`   // default rsa-2048
	Algorithm  string    `json:"algorithm,omitempty"` // default: the key type's first
	RotateKey  bool      `json:"rotateKey"`
	TokenTTL   Duration  `json:"tokenTtl"`
	// VerifierCacheTTL is how long verifiers may cache the JWKS: new keys are published that long
	// before they sign, old ones stay that long after their last token expires.
	VerifierCacheTTL Duration `json:"verifierCacheTtl"`
	// Clients whose tokens are reissued with the new key.
	Clients []string `json:"clients,omitempty"`
	// OnRollback says what happens to tokens signed by the new key when the release rolls back.
	OnRollback string `json:"onRollback,omitempty"` // keep | revoke (default revoke)
	// AuthorizerPatch is the new authorizer configuration: path → value, as in UpdateAuthorizer.
	AuthorizerPatch map[string]string `json:"authorizerPatch,omitempty"`
}

// Canary is how traffic moves to the release.
type Canary struct {
	Steps         []Step   `json:"steps"`
	ProbeInterval Duration `json:"probeInterval"`
	// A step fails its health check when more than MaxRejectionRatio of at least MinProbes probes
	// were rejected, or when the canary answered 5xx more than Max5xxRatio of the time.
	MaxRejectionRatio float64  `json:"maxRejectionRatio"`
	Max5xxRatio       float64  `json:"max5xxRatio"`
	MinProbes         int      `json:"minProbes"`
	AutoRollback      bool     `json:"autoRollback"`
	StepTimeout       Duration `json:"stepTimeout,omitempty"` // default: bake + 10m
}

// Step is one canary weight and how long it bakes.
type Step struct {
	Weight float64  `json:"weight"`
	Bake   Duration `json:"bake"`
}

// Notify says where notifications go. Webhook names a webhook the worker knows
// (ROLLGATE_WEBHOOKS): webhook URLs are often secrets, so specs and workflow history carry only
// the name.
type Notify struct {
	Webhook string `json:"webhook,omitempty"`
}

// FieldError is one problem with one field.
type FieldError struct {
	Field   string
	Problem string
}

func (e FieldError) Error() string { return e.Field + ": " + e.Problem }

// ValidationError lists every problem of a spec.
type ValidationError struct{ Problems []FieldError }

func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		parts[i] = p.Error()
	}
	return "invalid deploy spec: " + strings.Join(parts, "; ")
}

var (
	apiIDPattern  = regexp.MustCompile(`^[a-z0-9]{10}$`)
	stagePattern  = regexp.MustCompile(`^[A-Za-z0-9_-]{1,128}$`)
	namePattern   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)
	regionPattern = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-\d$`)
	varName       = regexp.MustCompile(`^[A-Za-z0-9_]{1,64}$`)
	varValue      = regexp.MustCompile(`^[A-Za-z0-9\-._~:/?#&=,]{0,512}$`)
	deploymentID  = regexp.MustCompile(`^[a-z0-9]{6,10}$`)
)

// Limits of a spec.
const (
	MaxSteps       = 10
	MinBake        = 10 * time.Second
	MaxBake        = 24 * time.Hour
	MinProbeEvery  = time.Second
	MaxTokenTTL    = 24 * time.Hour
	MaxCacheTTL    = 24 * time.Hour
	MaxClients     = 1000
	DefaultKeyType = keys.RSA2048
)

// Normalize fills defaults. It changes nothing Validate would refuse.
func (s *DeploySpec) Normalize() {
	if s.Auth.KeyType == "" {
		s.Auth.KeyType = DefaultKeyType
	}
	if s.Auth.Algorithm == "" && s.Auth.KeyType.Algorithms() != nil {
		s.Auth.Algorithm = s.Auth.KeyType.Algorithms()[0]
	}
	if s.Auth.OnRollback == "" {
		s.Auth.OnRollback = "revoke"
	}
	if s.Gateway.Region == "" {
		s.Gateway.Region = "us-east-1"
	}
}

// Validate checks every field and returns a *ValidationError listing all problems, or nil.
func (s *DeploySpec) Validate() error {
	var p []FieldError
	bad := func(field, format string, a ...any) { p = append(p, FieldError{field, fmt.Sprintf(format, a...)}) }

	if !namePattern.MatchString(s.Service) {
		bad("service", "must be 1-128 letters, digits, '_', '.', '-', starting with a letter or digit")
	}
	if len(s.Actor) > 256 {
		bad("actor", "%d characters: allowed at most 256", len(s.Actor))
	}
	if len(s.Reason) > 1024 {
		bad("reason", "%d characters: allowed at most 1024", len(s.Reason))
	}
	g := s.Gateway
	switch g.Kind {
	case "rest", "http":
	default:
		bad("gateway.kind", "%q: allowed rest, http", g.Kind)
	}
	if !apiIDPattern.MatchString(g.APIID) {
		bad("gateway.apiId", "%q: must be the 10-character API id", g.APIID)
	}
	if !stagePattern.MatchString(g.Stage) {
		bad("gateway.stage", "%q: allowed 1-128 of A-Za-z0-9_-", g.Stage)
	}
	if g.Region != "" && !regionPattern.MatchString(g.Region) {
		bad("gateway.region", "%q is not an AWS region name", g.Region)
	}
	if g.Kind == "http" && len(s.Canary.Steps) > 0 && !(len(s.Canary.Steps) == 1 && s.Canary.Steps[0].Weight == 100) {
		bad("canary.steps", "HTTP APIs have no canary: use a single step of weight 100 (weighted Lambda aliases are not supported yet)")
	}
	for k, v := range s.Release.Variables {
		if !varName.MatchString(k) {
			bad("release.variables."+k, "name must match [A-Za-z0-9_]{1,64}")
		}
		if !varValue.MatchString(v) {
			bad("release.variables."+k, "value has characters outside A-Za-z0-9-._~:/?#&=,")
		}
	}
	if d := s.Release.DeploymentID; d != "" && !deploymentID.MatchString(d) {
		bad("release.deploymentId", "%q is not a deployment id", d)
	}

	a := s.Auth
	if a.AuthorizerID == "" {
		bad("auth.authorizerId", "required")
	}
	if u, err := url.Parse(a.Issuer); err != nil || !u.IsAbs() || u.Host == "" || (u.Scheme != "https" && !isLoopback(u.Hostname())) {
		bad("auth.issuer", "%q: must be an https URL (http only on loopback)", a.Issuer)
	}
	if len(a.Audiences) == 0 {
		bad("auth.audiences", "at least one audience is required")
	}
	if a.JWKSBucket == "" {
		bad("auth.jwksBucket", "required: the S3 bucket where the JWKS is published")
	}
	if a.JWKSPrefix != "" && !strings.HasSuffix(a.JWKSPrefix, "/") {
		bad("auth.jwksPrefix", "%q must end with '/'", a.JWKSPrefix)
	}
	if !namePattern.MatchString(a.TransitKey) {
		bad("auth.transitKey", "%q: must be a Vault transit key name", a.TransitKey)
	}
	if a.KeyType.Algorithms() == nil {
		bad("auth.keyType", "%q: allowed rsa-2048, rsa-3072, rsa-4096, ecdsa-p256, ed25519", a.KeyType)
	} else if !slices.Contains(a.KeyType.Algorithms(), a.Algorithm) {
		bad("auth.algorithm", "%q cannot be signed with a %s key: allowed %v", a.Algorithm, a.KeyType, a.KeyType.Algorithms())
	}
	if g.Kind == "http" && a.KeyType != "" && !strings.HasPrefix(string(a.KeyType), "rsa-") {
		bad("auth.keyType", "HTTP API JWT authorizers accept RSA keys only")
	}
	if a.TokenTTL.D() < time.Minute || a.TokenTTL.D() > MaxTokenTTL {
		bad("auth.tokenTtl", "%s: allowed 1m to %s", a.TokenTTL.D(), MaxTokenTTL)
	}
	if a.VerifierCacheTTL.D() < 0 || a.VerifierCacheTTL.D() > MaxCacheTTL {
		bad("auth.verifierCacheTtl", "%s: allowed 0 to %s", a.VerifierCacheTTL.D(), MaxCacheTTL)
	}
	if len(a.Clients) > MaxClients {
		bad("auth.clients", "%d clients: at most %d", len(a.Clients), MaxClients)
	}
	seen := map[string]bool{}
	for i, c := range a.Clients {
		if !namePattern.MatchString(c) || seen[c] {
			bad(fmt.Sprintf("auth.clients[%d]", i), "%q: must be a unique client name", c)
		}
		seen[c] = true
	}
	switch a.OnRollback {
	case "keep", "revoke":
	default:
		bad("auth.onRollback", "%q: allowed keep, revoke", a.OnRollback)
	}
	allowedPaths := AuthorizerPaths
	if g.Kind == "http" {
		allowedPaths = HTTPAuthorizerPaths
	}
	for path := range a.AuthorizerPatch {
		if !slices.Contains(allowedPaths, path) {
			bad("auth.authorizerPatch."+path, "not a %s API authorizer setting rollgate changes: allowed %v", g.Kind, allowedPaths)
		}
	}

	c := s.Canary
	if len(c.Steps) == 0 || len(c.Steps) > MaxSteps {
		bad("canary.steps", "%d steps: allowed 1 to %d", len(c.Steps), MaxSteps)
	}
	prev := 0.0
	for i, st := range c.Steps {
		f := fmt.Sprintf("canary.steps[%d]", i)
		if st.Weight <= 0 || st.Weight > 100 {
			bad(f+".weight", "%v: allowed 0 < weight ≤ 100", st.Weight)
		} else if st.Weight <= prev {
			bad(f+".weight", "%v: weights must increase step by step (previous %v)", st.Weight, prev)
		}
		prev = st.Weight
		if st.Bake.D() < MinBake || st.Bake.D() > MaxBake {
			bad(f+".bake", "%s: allowed %s to %s", st.Bake.D(), MinBake, MaxBake)
		}
		if c.ProbeInterval.D() > 0 && st.Bake.D() < c.ProbeInterval.D() {
			bad(f+".bake", "%s is shorter than the probe interval %s", st.Bake.D(), c.ProbeInterval.D())
		}
	}
	if c.ProbeInterval.D() < MinProbeEvery || c.ProbeInterval.D() > 10*time.Minute {
		bad("canary.probeInterval", "%s: allowed %s to 10m", c.ProbeInterval.D(), MinProbeEvery)
	}
	if c.MaxRejectionRatio < 0 || c.MaxRejectionRatio >= 1 {
		bad("canary.maxRejectionRatio", "%v: allowed 0 ≤ ratio < 1", c.MaxRejectionRatio)
	}
	if c.Max5xxRatio < 0 || c.Max5xxRatio >= 1 {
		bad("canary.max5xxRatio", "%v: allowed 0 ≤ ratio < 1", c.Max5xxRatio)
	}
	if c.MinProbes < 1 || c.MinProbes > 10000 {
		bad("canary.minProbes", "%d: allowed 1 to 10000", c.MinProbes)
	}
	if c.StepTimeout.D() < 0 {
		bad("canary.stepTimeout", "must not be negative")
	}
	if w := s.Notify.Webhook; w != "" && !namePattern.MatchString(w) {
		bad("notify.webhook", "%q: the name of a webhook configured on the worker (ROLLGATE_WEBHOOKS), not a URL", w)
	}
	if len(p) > 0 {
		return &ValidationError{Problems: p}
	}
	return nil
}

// AuthorizerPaths are the REST authorizer settings a release may change.
var AuthorizerPaths = []string{"/authorizerUri", "/identityValidationExpression", "/authorizerResultTtlInSeconds", "/identitySource"}

// HTTPAuthorizerPaths are the HTTP API JWT authorizer settings a release may change (audiences
// comma-separated).
var HTTPAuthorizerPaths = []string{"/jwtConfiguration/issuer", "/jwtConfiguration/audience"}

// WorkflowID is the one deployment workflow a stage may run at a time.
func (s *DeploySpec) WorkflowID() string { return "deploy/" + s.Gateway.APIID + "/" + s.Gateway.Stage }

// AsValidation returns the validation error inside err, if any.
func AsValidation(err error) (*ValidationError, bool) {
	var v *ValidationError
	ok := errors.As(err, &v)
	return v, ok
}

func isLoopback(host string) bool {
	return host == "localhost" || strings.HasPrefix(host, "127.") || host == "::1"
}
