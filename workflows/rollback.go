package workflows

import (
	"errors"
	"fmt"
	"slices"

	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/rollgate/rollgate/activities"
	"github.com/rollgate/rollgate/internal/gateway"
	"github.com/rollgate/rollgate/internal/spec"
)

// RollbackSpec asks to undo a finished release of a stage.
type RollbackSpec struct {
	APIID   string
	Stage   string
	Release string // an id from the stage's release history; "" for the latest
	Actor   string
	Reason  string
	// Notify names a webhook (configured on the worker) told when the rollback starts and ends.
	Notify string `json:",omitempty"`
}

// RollbackWorkflowID is the one rollback a stage may run at a time.
func RollbackWorkflowID(apiID, stage string) string { return "rollback/" + apiID + "/" + stage }

// Rollback undoes a promoted release from the stage's history: the stage, the authorizer, the
// key labels and JWKS go back to the snapshot taken before it, its clients get tokens of the
// previous key again (its own tokens revoked if its spec said so), and the result is verified as a
// deployment's rollback is.
func Rollback(ctx workflow.Context, in RollbackSpec) (RollbackReport, error) {
	if err := checkInput(ctx, in.Validate, in.originalChecks); err != nil {
		return RollbackReport{}, err
	}
	target := activities.Target{APIID: in.APIID, Stage: in.Stage}
	var rec activities.ReleaseRecord
	if err := workflow.ExecuteActivity(short(ctx), rel.FindRelease, activities.FindReleaseInput{Target: target, ID: in.Release}).Get(ctx, &rec); err != nil {
		return RollbackReport{}, err
	}
	target = rec.Target // the release knows the kind of API
	d := &deployment{
		spec: spec.DeploySpec{
			Service: rec.Service, Gateway: spec.Gateway{Kind: gateway.KindREST, APIID: in.APIID, Stage: in.Stage},
			Auth:   spec.Auth{TransitKey: rec.Issuer.Key.Name, OnRollback: rec.OnRollback, Clients: rec.Clients, TokenTTL: spec.Duration(rec.TokenTTL)},
			Notify: spec.Notify{Webhook: in.Notify},
		},
		target: target, issuer: rec.Issuer, snapshot: rec.Snapshot, version: rec.Version, reissued: rec.Reissued, canaryID: rec.DeploymentID,
		logger: log.With(workflow.GetLogger(ctx), "service", rec.Service, "api", in.APIID, "stage", in.Stage, "release", rec.ID),
	}
	d.key.Labels = rec.Labels
	if err := workflow.UpsertTypedSearchAttributes(ctx, ServiceAttr.ValueSet(rec.Service), StageAttr.ValueSet(in.APIID+"/"+in.Stage)); err != nil {
		return RollbackReport{}, err
	}
	if err := workflow.SetQueryHandler(ctx, QueryStatus, func() (Status, error) { return d.status, nil }); err != nil {
		return RollbackReport{}, err
	}
	d.event(ctx, fmt.Sprintf("rolling back release %s (deployment %s, key v%d) to deployment %s", rec.ID, rec.DeploymentID, rec.Version, rec.Snapshot.Stage.DeploymentID))

	// Compensations in the order the release made its changes; they run newest first.
	if rec.Rotated {
		d.compensateLabels()
		versions := rec.Labels.Published()
		if rec.OnRollback != "revoke" && !slices.Contains(versions, rec.Version) {
			versions = append(versions, rec.Version) // its tokens stay valid, so its key stays published
		}
		d.compensateJWKS(versions)
	}
	if rec.AuthorizerPatched {
		d.compensateAuthorizer()
	}
	d.compensateStage()
	if len(rec.Reissued) > 0 {
		d.compensateReissue()
	}
	d.notify(ctx, fmt.Sprintf("%s: rolling back release %s of %s/%s (by %s): %s", rec.Service, rec.ID, in.APIID, in.Stage, in.Actor, in.Reason))
	d.rollBack(ctx, TriggerOperator, OperatorRequest{Actor: in.Actor, Reason: in.Reason})
	d.notify(ctx, fmt.Sprintf("%s: release %s of %s/%s rolled back in %s; verified: %v", rec.Service, rec.ID, in.APIID, in.Stage, d.report.Latency, d.report.Verified))
	d.flushNotes(ctx)
	if !d.report.Verified {
		return *d.report, temporal.NewNonRetryableApplicationError("rollback finished but is not verified: "+fmt.Sprint(d.report.Problems), "NotVerified", errors.New("not verified"))
	}
	return *d.report, nil
}
