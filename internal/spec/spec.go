// Package spec defines a release: the DeploySpec a pipeline submits and its validation. Every
// field is checked before any side effect, and every problem is reported at once, naming the
// field and what is allowed.
package spec

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/rollgate/rollgate/internal/gateway"
	"github.com/rollgate/rollgate/internal/keys"
)

// Duration is a time.Duration written as "90s", "5m" or "1h30m" in specs.
type Duration time.Duration

func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return errors.New(`not a duration: write it as a string such as "90s", "5m" or "1h30m"`)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf(`%q is not a duration such as "90s", "5m" or "1h30m"`, clip(s))
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
	// Analysis judges the release by its real traffic (rules RulesAnalysis and later; earlier
	// rules refuse it).
	Analysis *Analysis `json:"analysis,omitempty"`
	// Actor and Reason say who started the release and why; the starter fills them from
	// --actor (default: the OS user) and --reason. They are recorded in the workflow history.
	Actor  string `json:"actor,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// Gateway names the stage being released.
type Gateway struct {
	Kind   gateway.Kind `json:"kind"` // rest | http
	APIID  string       `json:"apiId"`
	Stage  string       `json:"stage"`
	Region string       `json:"region,omitempty"`
	// ReleaseVariable is the stage variable that carries the release's label (the deployment
	// workflow's run id) in the canary's overrides and, after promotion, on the stage, where a
	// REQUEST authorizer reads it (the authorizer's ROLLGATE_RELEASE_VARIABLE). Default
	// DefaultReleaseVariable.
	ReleaseVariable string `json:"releaseVariable,omitempty"`
}

// DefaultReleaseVariable is the stage variable the authorizer reads a release's label from
// unless configured otherwise.
const DefaultReleaseVariable = "rollgateRelease"

// ReleaseVariableName is the release variable, or its default.
func (g Gateway) ReleaseVariableName() string {
	if g.ReleaseVariable == "" {
		return DefaultReleaseVariable
	}
	return g.ReleaseVariable
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
	// MaxStepTimeout bounds canary.stepTimeout: the longest bake plus an hour for its activities.
	MaxStepTimeout = MaxBake + time.Hour
	// MaxText bounds free text (release.description, reason): it is recorded in workflow history
	// and printed to operators.
	MaxText = 1024
	// MaxActor bounds who started something.
	MaxActor = 256
	// MaxAudiences bounds auth.audiences.
	MaxAudiences = 32
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
	if s.Analysis != nil {
		s.Analysis.Normalize()
	}
}

// WorkflowID is the one deployment workflow a stage may run at a time.
func (s *DeploySpec) WorkflowID() string { return "deploy/" + s.Gateway.APIID + "/" + s.Gateway.Stage }
