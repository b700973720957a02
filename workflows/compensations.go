package workflows

import (
	"slices"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/rollgate/rollgate/activities"
	"github.com/rollgate/rollgate/internal/keys"
)

// The compensations, one per kind of change; each takes the state to bring back and runs its
// activities through undo.

func (s *saga) restoreLabels(key string, labels keys.Labels) {
	s.add("restore key labels", func(ctx workflow.Context) error {
		return s.undo(ctx, true, keysA.RestoreLabels, activities.RestoreLabelsInput{Key: key, Labels: labels})
	})
}

func (s *saga) republishJWKS(issuer activities.Issuer, versions []int) {
	s.add("republish the snapshot JWKS", func(ctx workflow.Context) error {
		return s.undo(ctx, true, tokA.PublishJWKS, activities.PublishInput{Issuer: issuer, Versions: versions})
	})
}

func (s *saga) restoreAuthorizer(target activities.Target, snapshot activities.GatewaySnapshot) {
	s.add("restore the authorizer", func(ctx workflow.Context) error {
		return s.undo(rollbackControlPlane(ctx), true, gw.RestoreAuthorizer, activities.RestoreInput{Target: target, Snapshot: snapshot})
	})
}

func (s *saga) restoreStage(target activities.Target, snapshot activities.GatewaySnapshot) {
	s.add("restore the stage", func(ctx workflow.Context) error {
		return s.undo(rollbackControlPlane(ctx), true, gw.RestoreStage, activities.RestoreInput{Target: target, Snapshot: snapshot})
	})
}

// reissueUndo is what undoing a reissue needs.
type reissueUndo struct {
	issuer   activities.Issuer
	issued   []activities.Issued // the reissued tokens, revoked if revoke is set
	previous int                 // the key version the clients get tokens of again
	clients  []string
	ttl      time.Duration
	revoke   bool
	// stage accepts the revoked tokens: its authorizer cache is flushed after the revocation, so
	// that an Allow cached for one of them cannot outlive it. nil: no stage is known.
	stage *activities.Target
}

// reissuePrevious undoes a reissue: new-key tokens are revoked (if the spec says so) and the
// clients get tokens of the previous key again. When tokens are revoked and a stage accepts them,
// the stage's authorizer cache is flushed as the rollback's last compensation (see
// flushAfterRevoke).
func (s *saga) reissuePrevious(ctx workflow.Context, u reissueUndo) {
	var revoked time.Time // when the revocation was written; zero until then
	if u.revoke && u.stage != nil && workflow.GetVersion(ctx, changeFlushAfterRevocation, workflow.DefaultVersion, 1) == 1 {
		s.flushAfterRevoke(*u.stage, &revoked)
	}
	s.add("reissue tokens with the previous key", func(ctx workflow.Context) error {
		if s.watchable {
			ctx = bulkCompensation(ctx)
		}
		if u.revoke {
			jtis := make([]string, len(u.issued))
			for i, t := range u.issued {
				jtis[i] = t.JTI
			}
			if err := s.undo(ctx, false, tokA.RevokeTokens, activities.RevokeInput{JTIs: jtis, Reason: "release rolled back"}); err != nil {
				return err
			}
			revoked = workflow.Now(ctx)
		}
		return s.undo(ctx, false, tokA.ReissueTokens, activities.ReissueInput{
			Issuer: u.issuer, Version: u.previous, Clients: u.clients, TTL: u.ttl, Reason: "release rolled back",
		})
	})
}

// flushAfterRevoke flushes the stage's authorizer cache after the rollback's other compensations:
// an Allow cached for a revoked token must not outlive the revocation, whether or not the release
// patched the authorizer (whose restore flushes too) and whatever the kind of API. It runs last,
// so that the stage, authorizer and JWKS are back when it flushes and the authorizer's deny list
// has had the other compensations' time to refresh; it waits only what is left of
// denyListSettle. Recorded before the reissue, it runs after its undo, newest first.
func (s *saga) flushAfterRevoke(stage activities.Target, revoked *time.Time) {
	s.comps = slices.Insert(s.comps, 0, compensation{name: "flush the authorizer cache", run: func(ctx workflow.Context) error {
		if revoked.IsZero() {
			return nil // the revocation failed for good; its error is in its own step
		}
		if wait := revoked.Add(denyListSettle).Sub(workflow.Now(ctx)); wait > 0 {
			if err := workflow.Sleep(ctx, wait); err != nil {
				return err
			}
		}
		return s.undo(rollbackControlPlane(ctx), false, gw.FlushAuthorizerCaches, activities.FlushInput{Targets: []activities.Target{stage}})
	}})
}
