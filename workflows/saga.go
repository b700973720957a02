package workflows

import (
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// changeWatchableRollback: compensations and verification run as regular activities, each in a
// workflow task of its own, so that the status query is answered while a rollback runs (a query
// waits for the workflow task in flight); the workflow retries an attempt that no worker finished
// in time and counts that time as waiting for a worker; a rolled-back deployment stays open for
// joinWindow so that rollback requests sent during the rollback join it. Recorded histories ran
// every compensation as a local activity, all in the task that accepted the request.
const changeWatchableRollback = "watchable-rollback"

// saga undoes what a workflow did: each step that succeeded pushes its compensation, and a
// rollback runs them newest first, verifies the state before the first step is back and writes
// the RollbackReport. Deployment, KeyRotation and Rollback all roll back through it.
type saga struct {
	p     *progress // the workflow's status, timeline and logger
	comps []compensation
	// watchable says the rollback runs as regular activities (changeWatchableRollback); running
	// is the status line of the compensation under way.
	watchable bool
	running   *CompensationStatus
	report    *RollbackReport
}

// compensation undoes one completed step.
type compensation struct {
	name string
	run  func(ctx workflow.Context) error
}

// add records how to undo a step that succeeded.
func (s *saga) add(name string, run func(ctx workflow.Context) error) {
	s.comps = append(s.comps, compensation{name: name, run: run})
}

// rollBack runs the compensations of the completed steps in reverse order on a disconnected
// context (so cancelling the workflow cannot skip them), each retried until it succeeds, then
// verifies the state of check is back and records the RollbackReport. requested is when an
// operator asked for it (zero: now).
func (s *saga) rollBack(ctx workflow.Context, requested time.Time, trigger string, req OperatorRequest, check rollbackCheck) *RollbackReport {
	dctx, _ := workflow.NewDisconnectedContext(ctx)
	s.watchable = workflow.GetVersion(dctx, changeWatchableRollback, workflow.DefaultVersion, 1) == 1
	started := requested
	if started.IsZero() {
		started = workflow.Now(dctx)
	}
	s.p.enter(dctx, PhaseRollingBack, fmt.Sprintf("rolling back (%s, by %s): %s", trigger, req.Actor, req.Reason))
	report := &RollbackReport{Trigger: trigger, Actor: req.Actor, Reason: req.Reason, StartedAt: started}
	s.p.status.Compensations = make([]CompensationStatus, len(s.comps))
	for i := range s.comps {
		s.p.status.Compensations[i] = CompensationStatus{Name: s.comps[len(s.comps)-1-i].name, State: CompensationPending}
	}
	cctx := s.compensating(dctx)
	for i := range s.p.status.Compensations {
		step := s.runCompensation(cctx, s.comps[len(s.comps)-1-i], &s.p.status.Compensations[i])
		report.Steps = append(report.Steps, step)
		report.WaitedForWorker += step.WaitedForWorker
	}
	report.Problems = check.verify(dctx, s.watchable)
	report.Verified = len(report.Problems) == 0
	report.FinishedAt = workflow.Now(dctx)
	report.Latency = report.FinishedAt.Sub(report.StartedAt)
	s.report, s.p.status.Rollback = report, report
	recordRollback(dctx, report)
	s.p.enter(dctx, PhaseRolledBack, fmt.Sprintf("rolled back in %s; verified: %v", report.Latency.Round(time.Millisecond), report.Verified))
	return report
}

// runCompensation runs one compensation, keeping its line of the status up to date.
func (s *saga) runCompensation(ctx workflow.Context, c compensation, st *CompensationStatus) StepReport {
	t0 := workflow.Now(ctx)
	st.State, st.Started = CompensationRunning, t0
	s.running = st
	err := c.run(ctx)
	s.running = nil
	st.Duration = workflow.Now(ctx).Sub(t0)
	step := StepReport{Name: c.name, Duration: st.Duration, Attempts: st.Attempts, WaitedForWorker: st.WaitedForWorker}
	st.State = CompensationDone
	if err != nil { // only a non-retryable error ends the retries; verification will say what is left
		step.Error, st.Error, st.State = err.Error(), err.Error(), CompensationFailed
		s.p.logger.Error("compensation failed", "step", c.name, "error", err)
	}
	s.p.event(ctx, "compensated: "+c.name)
	return step
}

// compensationAttempt bounds one attempt of a compensation's activity in a watchable rollback.
// Each is one or a few API calls; an attempt that takes longer ran on a worker that crashed or
// hung, and is retried.
const compensationAttempt = 20 * time.Second

// compensating sets the options compensations run with. Recorded histories ran them as local
// activities retried until they succeed (a compensation with bulk work as a regular, heartbeating
// activity); a watchable rollback runs regular activities, one attempt at a time (see undo).
func (s *saga) compensating(ctx workflow.Context) workflow.Context {
	if s.watchable {
		return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: compensationAttempt})
	}
	ctx = workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		StartToCloseTimeout: time.Minute,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: 200 * time.Millisecond, BackoffCoefficient: 2, MaximumInterval: 30 * time.Second}, // unlimited attempts
	})
	return bulkCompensation(ctx)
}

// bulkCompensation is for a compensation with bulk work (reissuing tokens): a regular,
// heartbeating activity.
func bulkCompensation(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 10 * time.Minute,
		HeartbeatTimeout:    30 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: 30 * time.Second},
	})
}

// undo runs one activity of a compensation until it succeeds or fails for good. In a watchable
// rollback the workflow makes each attempt itself, so that it learns which attempts timed out
// (no worker finished them) and can say how long the rollback waited for a worker; a
// non-retryable error ends the retries. Recorded histories ran it as a local activity (or, for
// bulk work, a regular activity retried by the server).
func (s *saga) undo(ctx workflow.Context, local bool, activity any, arg any) error {
	switch {
	case !s.watchable && local:
		return workflow.ExecuteLocalActivity(ctx, activity, arg).Get(ctx, nil)
	case !s.watchable:
		return workflow.ExecuteActivity(ctx, activity, arg).Get(ctx, nil)
	}
	opts := workflow.GetActivityOptions(ctx)
	opts.RetryPolicy = &temporal.RetryPolicy{MaximumAttempts: 1}
	actx := workflow.WithActivityOptions(ctx, opts)
	for backoff := 200 * time.Millisecond; ; backoff = min(2*backoff, 30*time.Second) {
		t0 := workflow.Now(ctx)
		if s.running != nil {
			s.running.Attempts++
		}
		err := workflow.ExecuteActivity(actx, activity, arg).Get(ctx, nil)
		var timeout *temporal.TimeoutError
		var app *temporal.ApplicationError
		switch {
		case err == nil:
			return nil
		case errors.As(err, &timeout) && s.running != nil:
			s.running.WaitedForWorker += workflow.Now(ctx).Sub(t0)
		case errors.As(err, &app) && app.NonRetryable():
			return err
		}
		s.p.logger.Warn("compensation attempt failed; retrying", "error", err, "backoff", backoff)
		if err := workflow.Sleep(ctx, backoff); err != nil {
			return err
		}
	}
}
