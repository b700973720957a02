package workflows

import (
	"time"

	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/rollgate/rollgate/activities"
)

// progress is what a workflow says about itself: the status its query answers, the timeline in
// it, and the logger that carries the workflow's context.
type progress struct {
	status Status
	logger log.Logger
}

// enter moves to a phase: timeline, status and the RollgatePhase search attribute.
func (p *progress) enter(ctx workflow.Context, phase Phase, msg string) {
	p.status.Phase = phase
	p.event(ctx, msg)
	if err := workflow.UpsertTypedSearchAttributes(ctx, PhaseAttr.ValueSet(string(phase))); err != nil {
		p.logger.Warn("search attribute not updated", "error", err)
	}
}

func (p *progress) event(ctx workflow.Context, msg string) {
	p.status.Timeline = append(p.status.Timeline, Event{At: workflow.Now(ctx), Phase: p.status.Phase, Message: msg})
	p.logger.Info(msg, "phase", p.status.Phase)
}

// setStatusQuery answers the status query from this progress.
func (p *progress) setStatusQuery(ctx workflow.Context) error {
	return workflow.SetQueryHandler(ctx, QueryStatus, func() (Status, error) { return p.status, nil })
}

// notifier tells a webhook (named in the workflow's input, configured on the worker) what
// happened, without ever holding the workflow up for long.
type notifier struct {
	webhook string
	logger  log.Logger
	// pending counts notifications not yet delivered or given up on.
	pending int
}

// send sends a notification if there is a webhook, without waiting for it: a failing webhook must
// never slow a rollback down.
func (n *notifier) send(ctx workflow.Context, text string) {
	if n.webhook == "" {
		return
	}
	nctx, _ := workflow.NewDisconnectedContext(ctx)
	nctx = workflow.WithActivityOptions(nctx, workflow.ActivityOptions{
		StartToCloseTimeout: 10 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumAttempts: 5},
	})
	n.pending++
	f := workflow.ExecuteActivity(nctx, notify.Send, activities.NotifyInput{Webhook: n.webhook, Text: text})
	workflow.Go(nctx, func(gctx workflow.Context) {
		if err := f.Get(gctx, nil); err != nil {
			n.logger.Warn("notification not delivered", "error", err)
		}
		n.pending--
	})
}

// flush gives notifications still being sent up to a minute before the workflow closes.
func (n *notifier) flush(ctx workflow.Context) {
	if n.pending == 0 { // no timer when there is nothing to wait for
		return
	}
	dctx, _ := workflow.NewDisconnectedContext(ctx)
	_, _ = workflow.AwaitWithTimeout(dctx, time.Minute, func() bool { return n.pending == 0 })
}
