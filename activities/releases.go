package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/rollgate/rollgate/internal/keys"
	"github.com/rollgate/rollgate/internal/releases"
)

// Releases keeps each stage's release history.
type Releases struct {
	History *releases.History
}

// ReleaseRecord is a promoted release and everything needed to undo it later: the state before
// it, what it changed, and the tokens it issued (by reference).
type ReleaseRecord struct {
	ID         string
	WorkflowID string
	RunID      string
	// Label is what the gateway's authorizer counted the release's traffic under (its run id,
	// unless the spec named the label); "" in records written before it was kept: the run id.
	Label             string `json:",omitempty"`
	Service           string
	Target            Target
	DeploymentID      string
	PromotedAt        time.Time
	Snapshot          GatewaySnapshot
	Labels            keys.Labels // before the release
	Version           int         // the key version the release signed with
	Rotated           bool
	AuthorizerPatched bool
	Issuer            Issuer
	Clients           []string
	Reissued          []Issued
	TokenTTL          time.Duration
	OnRollback        string
}

func stageKey(t Target) string { return t.APIID + "/" + t.Stage }

// RecordRelease adds a promoted release to its stage's history.
func (a *Releases) RecordRelease(ctx context.Context, r ReleaseRecord) error {
	r.ID = releases.ID(r.PromotedAt, r.RunID)
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return a.History.Put(ctx, releases.Entry{Stage: stageKey(r.Target), ID: r.ID, Record: b})
}

// FindReleaseInput names a release: its id, or "" for the latest.
type FindReleaseInput struct {
	Target Target
	ID     string
}

// FindRelease reads a release from the stage's history.
func (a *Releases) FindRelease(ctx context.Context, in FindReleaseInput) (ReleaseRecord, error) {
	all, err := a.History.List(ctx, stageKey(in.Target), 0)
	if err != nil {
		return ReleaseRecord{}, err
	}
	for _, e := range all {
		if in.ID == "" || e.ID == in.ID {
			var r ReleaseRecord
			if err := json.Unmarshal(e.Record, &r); err != nil {
				return ReleaseRecord{}, fmt.Errorf("release %s of %s: %w", e.ID, e.Stage, err)
			}
			return r, nil
		}
	}
	what := "no release"
	if in.ID != "" {
		what = "no release " + in.ID
	}
	return ReleaseRecord{}, temporal.NewNonRetryableApplicationError(fmt.Sprintf("%s in the history of %s (it keeps the last %d)", what, stageKey(in.Target), releases.Keep), ErrTypeNotFound, nil)
}

// MaxIssuerStages bounds the stages IssuerStages returns: they travel in the workflow's history.
const MaxIssuerStages = 100

// IssuerStagesInput names an issuer by its URL, as its tokens' iss claim does.
type IssuerStagesInput struct {
	IssuerURL string
}

// IssuerStages are the stages whose latest release used the issuer, ordered by API and stage.
type IssuerStages struct {
	Stages []Target
	// Beyond is how many more stages matched beyond MaxIssuerStages.
	Beyond int `json:",omitempty"`
}

// IssuerStages finds the stages whose latest recorded release used the issuer: the stages that
// accept its tokens as far as rollgate knows, which a revocation must reach. A stage released
// with another issuer since is left out: it no longer accepts these tokens.
func (a *Releases) IssuerStages(ctx context.Context, in IssuerStagesInput) (IssuerStages, error) {
	latest, beyond, err := a.latestOfIssuer(ctx, in.IssuerURL)
	if err != nil {
		return IssuerStages{}, err
	}
	out := IssuerStages{Beyond: beyond}
	for _, r := range latest {
		out.Stages = append(out.Stages, r.Target)
	}
	return out, nil
}

// LatestRelease is a stage's latest release, as the token monitor links rejections to it.
type LatestRelease struct {
	Target     Target
	ID         string // the release's id in the stage's history
	Label      string // what the authorizer counts its traffic under
	PromotedAt time.Time
	Rotated    bool
	// AuthorizerPatched: the release changed the stage's authorizer (its key set's source).
	AuthorizerPatched bool `json:",omitempty"`
}

// LatestReleases are the latest releases of the stages that use an issuer.
type LatestReleases struct {
	Releases []LatestRelease
	Beyond   int `json:",omitempty"`
}

// LatestOfIssuer lists the latest release of each stage whose latest release used the issuer,
// ordered by API and stage, at most MaxIssuerStages.
func (a *Releases) LatestOfIssuer(ctx context.Context, in IssuerStagesInput) (LatestReleases, error) {
	latest, beyond, err := a.latestOfIssuer(ctx, in.IssuerURL)
	if err != nil {
		return LatestReleases{}, err
	}
	out := LatestReleases{Beyond: beyond}
	for _, r := range latest {
		label := r.Label
		if label == "" {
			label = r.RunID
		}
		out.Releases = append(out.Releases, LatestRelease{Target: r.Target, ID: r.ID, Label: label, PromotedAt: r.PromotedAt, Rotated: r.Rotated, AuthorizerPatched: r.AuthorizerPatched})
	}
	return out, nil
}

func (a *Releases) latestOfIssuer(ctx context.Context, issuerURL string) (out []ReleaseRecord, beyond int, err error) {
	latest, err := a.History.Latest(ctx)
	if errors.Is(err, releases.ErrTooManyStages) {
		return nil, 0, temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeInvalid, err)
	}
	if err != nil {
		return nil, 0, err
	}
	for _, e := range latest {
		var r ReleaseRecord
		if err := json.Unmarshal(e.Record, &r); err != nil {
			return nil, 0, temporal.NewNonRetryableApplicationError(fmt.Sprintf("release %s of %s: %v", e.ID, e.Stage, err), ErrTypeInvalid, err)
		}
		if r.Issuer.URL != issuerURL {
			continue
		}
		if len(out) == MaxIssuerStages {
			beyond++
			continue
		}
		out = append(out, r)
	}
	return out, beyond, nil
}
