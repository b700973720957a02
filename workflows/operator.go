package workflows

import (
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/rollgate/rollgate/internal/spec"
)

// setup registers the status query and the operator updates, and sets the service and stage
// search attributes.
func (d *deployment) setup(ctx workflow.Context) error {
	if err := workflow.UpsertTypedSearchAttributes(ctx,
		ServiceAttr.ValueSet(d.spec.Service), StageAttr.ValueSet(d.spec.Gateway.APIID+"/"+d.spec.Gateway.Stage)); err != nil {
		return err
	}
	if err := d.setStatusQuery(ctx); err != nil {
		return err
	}
	handlers := []struct {
		name     string
		validate func(OperatorRequest) error
		handle   func(workflow.Context, OperatorRequest) (Status, error)
	}{
		{UpdatePromote, d.validatePromote, d.onPromote},
		{UpdatePause, d.validatePause, d.onPause},
		{UpdateResume, d.validateResume, d.onResume},
		{UpdateSkipStep, d.validateSkip, d.onSkip},
	}
	for _, h := range handlers {
		if err := workflow.SetUpdateHandlerWithOptions(ctx, h.name, h.handle, workflow.UpdateHandlerOptions{Validator: h.validate}); err != nil {
			return err
		}
	}
	return workflow.SetUpdateHandlerWithOptions(ctx, UpdateRollback, d.onRollback, workflow.UpdateHandlerOptions{Validator: d.validateRollback})
}

// needActor refuses a request without an actor, and an actor or reason over its bounds: both
// are recorded in history and printed to operators.
func needActor(req OperatorRequest) error {
	if req.Actor == "" {
		return errors.New("actor is required: who is asking")
	}
	var p spec.Problems
	p.CheckText("actor", req.Actor, spec.MaxActor, false)
	p.CheckText("reason", req.Reason, spec.MaxText, false)
	return p.Err("operator request")
}

// active refuses requests once the deployment can no longer change course.
func (d *deployment) active(what string) error {
	switch {
	case d.status.Phase.Terminal():
		return fmt.Errorf("cannot %s: the deployment is already %s", what, d.status.Phase)
	case d.status.Phase == PhaseRollingBack:
		return fmt.Errorf("cannot %s: the deployment is rolling back", what)
	}
	return nil
}

func (d *deployment) validateRollback(req OperatorRequest) error {
	if err := needActor(req); err != nil {
		return err
	}
	if req.Reason == "" {
		return errors.New("reason is required for a rollback")
	}
	// A request that arrives after the report, while the deployment is still open, joins the
	// rollback that just finished and gets its report.
	if d.status.Phase.Terminal() && d.saga.report == nil {
		return fmt.Errorf("nothing to roll back: the deployment is already %s", d.status.Phase)
	}
	return nil
}

// onRollback starts the rollback (or joins the one under way, or just finished) and returns its
// report.
func (d *deployment) onRollback(ctx workflow.Context, req OperatorRequest) (RollbackReport, error) {
	if d.rollback == nil && d.saga.report == nil && d.status.Phase != PhaseRollingBack {
		d.rollback = &req
		d.requested = workflow.Now(ctx)
		d.event(ctx, fmt.Sprintf("rollback requested by %s: %s", req.Actor, req.Reason))
		d.cancelRun()
	}
	if err := workflow.Await(ctx, func() bool { return d.saga.report != nil }); err != nil {
		return RollbackReport{}, err
	}
	return *d.saga.report, nil
}

// joinWindow is how long a rolled-back deployment stays open after its report. The Temporal
// server does not deliver an update that arrives while the workflow task that closes the run is in
// flight: it aborts it ("workflow update was aborted by closing workflow"). Closing in a task of
// its own, after a quiet moment, lets every rollback request sent during the rollback join it.
const joinWindow = 2 * time.Second

// letLateRollbacksJoin keeps a rolled-back deployment open for joinWindow; rollback requests that
// arrive meanwhile get the report at once.
func (d *deployment) letLateRollbacksJoin(ctx workflow.Context) {
	if d.saga.report == nil || !d.saga.watchable {
		return
	}
	dctx, _ := workflow.NewDisconnectedContext(ctx)
	_ = workflow.Sleep(dctx, joinWindow)
}

func (d *deployment) validatePromote(req OperatorRequest) error {
	if err := needActor(req); err != nil {
		return err
	}
	if err := d.active("promote"); err != nil {
		return err
	}
	if d.promoteNow || d.status.Phase == PhasePromoting || d.status.Phase == PhaseReissuing || d.status.Phase == PhaseFinalizing {
		return errors.New("already promoting")
	}
	if d.status.Phase == PhaseWatching {
		return errors.New("already promoted: the stage is watched after promotion (a rollback still rolls it back)")
	}
	return nil
}

func (d *deployment) onPromote(ctx workflow.Context, req OperatorRequest) (Status, error) {
	d.promoteNow = true
	d.status.Paused = false
	d.event(ctx, fmt.Sprintf("promote requested by %s: %s", req.Actor, req.Reason))
	if d.cancelBake != nil {
		d.cancelBake()
	}
	return d.status, nil
}

func (d *deployment) validatePause(req OperatorRequest) error {
	if err := needActor(req); err != nil {
		return err
	}
	if err := d.active("pause"); err != nil {
		return err
	}
	if d.status.Paused {
		return errors.New("already paused")
	}
	return nil
}

func (d *deployment) onPause(ctx workflow.Context, req OperatorRequest) (Status, error) {
	d.status.Paused = true
	d.event(ctx, fmt.Sprintf("paused by %s: %s (the current bake finishes, the next step waits)", req.Actor, req.Reason))
	return d.status, nil
}

func (d *deployment) validateResume(req OperatorRequest) error {
	if err := needActor(req); err != nil {
		return err
	}
	if !d.status.Paused {
		return errors.New("not paused")
	}
	return d.active("resume")
}

func (d *deployment) onResume(ctx workflow.Context, req OperatorRequest) (Status, error) {
	d.status.Paused = false
	d.event(ctx, fmt.Sprintf("resumed by %s: %s", req.Actor, req.Reason))
	return d.status, nil
}

func (d *deployment) validateSkip(req OperatorRequest) error {
	if err := needActor(req); err != nil {
		return err
	}
	if d.status.Phase != PhaseBaking || d.cancelBake == nil {
		return fmt.Errorf("nothing to skip: the deployment is %s, not baking", d.status.Phase)
	}
	return nil
}

func (d *deployment) onSkip(ctx workflow.Context, req OperatorRequest) (Status, error) {
	d.skipStep = true
	d.event(ctx, fmt.Sprintf("skip-step requested by %s: %s", req.Actor, req.Reason))
	d.cancelBake()
	return d.status, nil
}
