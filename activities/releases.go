package activities

import (
	"context"
	"encoding/json"
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
	ID                string
	WorkflowID        string
	RunID             string
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
