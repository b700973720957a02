package gateway

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// Kind is a kind of API behind API Gateway. It is a JSON string in specs and in recorded
// workflow histories ("rest", "http"), so its values never change.
type Kind string

// The kinds rollgate releases.
const (
	KindREST Kind = "rest"
	KindHTTP Kind = "http"
)

// Description says what a kind of API can do; specs are validated against it and workflows
// decide by it, so a new kind is a new implementation and a new description, not new cases.
type Description struct {
	Kind Kind
	Name string // how errors name the kind: "REST API"
	// NativeCanary: the stage can split traffic between its deployment and a canary by weight.
	// Without it a release can only take the whole stage at once (a single step of weight 100).
	NativeCanary bool
	// AuthorizerSettings are the authorizer settings a release may change, by patch path.
	AuthorizerSettings []string
	// RSAKeysOnly: the kind's authorizer verifies RSA signatures only (HTTP API JWT authorizers).
	RSAKeysOnly bool
	// ConsultsDenyList: the kind's authorizer can run rollgate's verifier with the deny list, so
	// a revoked token is refused at once rather than when its key leaves the JWKS.
	ConsultsDenyList bool
}

// descriptions is every kind rollgate supports, one entry per implementation, in the order
// error messages list them.
var descriptions = []Description{restDescription, httpDescription}

// Describe tells what a kind can do; ok is false for a kind rollgate does not support.
func Describe(k Kind) (Description, bool) {
	i := slices.IndexFunc(descriptions, func(d Description) bool { return d.Kind == k })
	if i < 0 {
		return Description{}, false
	}
	return descriptions[i], true
}

// Kinds lists the supported kinds, as error messages name them: "rest, http".
func Kinds() string {
	names := make([]string, len(descriptions))
	for i, d := range descriptions {
		names[i] = string(d.Kind)
	}
	return strings.Join(names, ", ")
}

// Target is the stage a release changes.
type Target struct {
	Kind  Kind // rest (also when empty: recorded histories name REST stages so) or http
	APIID string
	Stage string
}

// Describe tells what the target's kind can do; an unsupported kind can do nothing.
func (t Target) Describe() Description {
	k := t.Kind
	if k == "" {
		k = KindREST
	}
	d, _ := Describe(k)
	return d
}

// Snapshot is the live gateway state before a release: its rollback point.
type Snapshot struct {
	Stage      Stage
	Authorizer Authorizer
}

// Canary is a release to start as a stage's canary.
type Canary struct {
	DeploymentID string  // an existing deployment, or "" to create one from the API's definition
	Marker       string  // describes a created deployment, so a retry finds it
	Weight       float64 // percent of traffic
	Variables    map[string]string
}

// Gateway is what a release does to a stage and its authorizer, whatever the kind of API. Every
// change reads the current state first and writes only what differs, so it can be retried.
type Gateway interface {
	Describe() Description
	// Snapshot reads the stage and the authorizer's settings.
	Snapshot(ctx context.Context, apiID, stage, authorizerID string) (Snapshot, error)
	// StartCanary makes the release the stage's canary (or finds it) and returns its deployment.
	StartCanary(ctx context.Context, apiID, stage string, c Canary) (string, error)
	// SetWeight sets the canary's share of traffic.
	SetWeight(ctx context.Context, apiID, stage string, weight float64) error
	// Promote makes the canary release the whole stage.
	Promote(ctx context.Context, apiID, stage, release string) error
	// Restore puts the stage back to a snapshot's.
	Restore(ctx context.Context, apiID, stage string, want Stage) error
	// ApplyAuthorizerSettings sets the settings that differ and says whether any did.
	ApplyAuthorizerSettings(ctx context.Context, apiID, authorizerID string, settings map[string]string) (bool, error)
	// FlushAuthorizerCache makes the stage's next request run the authorizer's current settings.
	FlushAuthorizerCache(ctx context.Context, apiID, stage string) error
}

// Set is one implementation per kind, wired to a worker's clients.
type Set map[Kind]Gateway

// NewSet wires the implementations of every kind.
func NewSet(rest RESTAPI, http HTTPAPI) Set {
	return Set{KindREST: &REST{API: rest}, KindHTTP: &HTTP{API: http}}
}

// For is the implementation for the target's kind.
func (s Set) For(t Target) (Gateway, error) {
	k := t.Describe().Kind
	g, ok := s[k]
	if !ok || k == "" {
		return nil, fmt.Errorf("gateway kind %q: allowed %s: %w", t.Kind, Kinds(), ErrInvalid)
	}
	return g, nil
}
