package workflows

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/rollgate/rollgate/activities"
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

// rollback is the undoing of one finished release; every field is derived deterministically
// from history.
type rollback struct {
	progress          // status, timeline, logger
	saga     saga     // what to undo, and the rollback's report
	notes    notifier // the spec's webhook

	in  RollbackSpec
	rec activities.ReleaseRecord
}

// Rollback undoes a promoted release from the stage's history: the stage, the authorizer, the
// key labels and JWKS go back to the snapshot taken before it, its clients get tokens of the
// previous key again (its own tokens revoked if its spec said so), and the result is verified as a
// deployment's rollback is.
func Rollback(ctx workflow.Context, in RollbackSpec) (RollbackReport, error) {
	if err := checkInput(ctx, in.Validate, in.originalChecks); err != nil {
		return RollbackReport{}, err
	}
	var rec activities.ReleaseRecord
	find := activities.FindReleaseInput{Target: activities.Target{APIID: in.APIID, Stage: in.Stage}, ID: in.Release}
	if err := workflow.ExecuteActivity(short(ctx), rel.FindRelease, find).Get(ctx, &rec); err != nil {
		return RollbackReport{}, err
	}
	r := newRollback(ctx, in, rec)
	if err := r.setup(ctx); err != nil {
		return RollbackReport{}, err
	}
	report := r.run(ctx)
	if !report.Verified {
		return *report, temporal.NewNonRetryableApplicationError("rollback finished but is not verified: "+fmt.Sprint(report.Problems), "NotVerified", errors.New("not verified"))
	}
	return *report, nil
}

func newRollback(ctx workflow.Context, in RollbackSpec, rec activities.ReleaseRecord) *rollback {
	logger := log.With(workflow.GetLogger(ctx), "service", rec.Service, "api", in.APIID, "stage", in.Stage, "release", rec.ID)
	r := &rollback{progress: progress{logger: logger}, notes: notifier{webhook: in.Notify, logger: logger}, in: in, rec: rec}
	r.saga.p = &r.progress
	return r
}

// setup sets the service and stage search attributes and registers the status query.
func (r *rollback) setup(ctx workflow.Context) error {
	if err := workflow.UpsertTypedSearchAttributes(ctx, ServiceAttr.ValueSet(r.rec.Service), StageAttr.ValueSet(r.in.APIID+"/"+r.in.Stage)); err != nil {
		return err
	}
	return r.setStatusQuery(ctx)
}

func (r *rollback) run(ctx workflow.Context) *RollbackReport {
	in, rec := r.in, r.rec
	r.event(ctx, fmt.Sprintf("rolling back release %s (deployment %s, key v%d) to deployment %s", rec.ID, rec.DeploymentID, rec.Version, rec.Snapshot.Stage.DeploymentID))
	r.pushCompensations(ctx)
	r.notes.send(ctx, fmt.Sprintf("%s: rolling back release %s of %s/%s (by %s): %s", rec.Service, rec.ID, in.APIID, in.Stage, in.Actor, in.Reason))
	check := rollbackCheck{target: rec.Target, snapshot: rec.Snapshot, issuer: rec.Issuer, labels: rec.Labels, version: rec.Version}
	report := r.saga.rollBack(ctx, time.Time{}, TriggerOperator, OperatorRequest{Actor: in.Actor, Reason: in.Reason}, check)
	r.notes.send(ctx, fmt.Sprintf("%s: release %s of %s/%s rolled back in %s; verified: %v", rec.Service, rec.ID, in.APIID, in.Stage, report.Latency.Round(time.Millisecond), report.Verified))
	r.notes.flush(ctx)
	return report
}

// pushCompensations pushes the compensations in the order the release made its changes; they run
// newest first.
func (r *rollback) pushCompensations(ctx workflow.Context) {
	rec := r.rec
	if rec.Rotated {
		r.saga.restoreLabels(rec.Issuer.Key.Name, rec.Labels)
		versions := rec.Labels.Published()
		if rec.OnRollback != "revoke" && !slices.Contains(versions, rec.Version) {
			versions = append(versions, rec.Version) // its tokens stay valid, so its key stays published
		}
		r.saga.republishJWKS(rec.Issuer, versions)
	}
	if rec.AuthorizerPatched {
		r.saga.restoreAuthorizer(rec.Target, rec.Snapshot)
	}
	r.saga.restoreStage(rec.Target, rec.Snapshot)
	if len(rec.Reissued) > 0 {
		r.saga.reissuePrevious(ctx, reissueUndo{issuer: rec.Issuer, issued: rec.Reissued, previous: rec.Labels.Current,
			clients: rec.Clients, ttl: rec.TokenTTL, revoke: rec.OnRollback == "revoke", stage: &rec.Target})
	}
}
