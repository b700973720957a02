package workflows

import (
	"go.temporal.io/sdk/workflow"

	"github.com/rollgate/rollgate/activities"
)

// The compensations, one per kind of change; each reads the snapshot from the deployment and runs
// its activities through undo.

// compensate records how to undo a step that succeeded.
func (d *deployment) compensate(name string, run func(ctx workflow.Context) error) {
	d.comps = append(d.comps, compensation{name: name, run: run})
}

func (d *deployment) compensateLabels() {
	key, labels := d.issuer.Key.Name, d.key.Labels
	d.compensate("restore key labels", func(ctx workflow.Context) error {
		return d.undo(ctx, true, keysA.RestoreLabels, activities.RestoreLabelsInput{Key: key, Labels: labels})
	})
}

func (d *deployment) compensateJWKS(versions []int) {
	d.compensate("republish the snapshot JWKS", func(ctx workflow.Context) error {
		return d.undo(ctx, true, tokA.PublishJWKS, activities.PublishInput{Issuer: d.issuer, Versions: versions})
	})
}

func (d *deployment) compensateAuthorizer() {
	d.compensate("restore the authorizer", func(ctx workflow.Context) error {
		return d.undo(ctx, true, gw.RestoreAuthorizer, activities.RestoreInput{Target: d.target, Snapshot: d.snapshot})
	})
}

func (d *deployment) compensateStage() {
	d.compensate("restore the stage", func(ctx workflow.Context) error {
		return d.undo(ctx, true, gw.RestoreStage, activities.RestoreInput{Target: d.target, Snapshot: d.snapshot})
	})
}

// compensateReissue undoes a reissue: new-key tokens are revoked (if the spec says so) and the
// clients get tokens of the snapshot's current key again.
func (d *deployment) compensateReissue() {
	s := d.spec
	issued := d.reissued
	previous := d.key.Labels.Current
	d.compensate("reissue tokens with the previous key", func(ctx workflow.Context) error {
		if d.watchable {
			ctx = bulkCompensation(ctx)
		}
		if s.Auth.OnRollback == "revoke" {
			jtis := make([]string, len(issued))
			for i, t := range issued {
				jtis[i] = t.JTI
			}
			if err := d.undo(ctx, false, tokA.RevokeTokens, activities.RevokeInput{JTIs: jtis, Reason: "release rolled back"}); err != nil {
				return err
			}
		}
		return d.undo(ctx, false, tokA.ReissueTokens, activities.ReissueInput{
			Issuer: d.issuer, Version: previous, Clients: s.Auth.Clients, TTL: s.Auth.TokenTTL.D(), Reason: "release rolled back",
		})
	})
}
