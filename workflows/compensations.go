package workflows

import (
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
}

// reissuePrevious undoes a reissue: new-key tokens are revoked (if the spec says so) and the
// clients get tokens of the previous key again.
func (s *saga) reissuePrevious(u reissueUndo) {
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
		}
		return s.undo(ctx, false, tokA.ReissueTokens, activities.ReissueInput{
			Issuer: u.issuer, Version: u.previous, Clients: u.clients, TTL: u.ttl, Reason: "release rolled back",
		})
	})
}
