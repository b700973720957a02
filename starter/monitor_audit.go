package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sort"

	"github.com/spf13/cobra"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/workflowservice/v1"

	"github.com/rollgate/rollgate/activities"
	"github.com/rollgate/rollgate/workflows"
)

func monitorAuditCmd() *cobra.Command {
	var output string
	var runs int
	cmd := &cobra.Command{
		Use:   "audit <transit-key>",
		Short: "What the issuer's token monitor did, when and why: starts, stops, and each action on an incident, from its histories",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if runs < 1 || runs > 1000 {
				return &codeError{exitInvalid, fmt.Errorf("--runs %d: allowed 1 to 1000", runs)}
			}
			c, err := dial(cmd.Context())
			if err != nil {
				return err
			}
			defer c.Close()
			id := workflows.MonitorID(args[0])
			entries, err := monitorAudit(cmd.Context(), c, id, runs)
			if err != nil {
				return err
			}
			if output == "json" {
				return json.NewEncoder(os.Stdout).Encode(entries)
			}
			if len(entries) == 0 {
				fmt.Printf("no monitor %s on record\n", id)
				return nil
			}
			printAudit(os.Stdout, entries)
			return nil
		},
	}
	cmd.Flags().IntVar(&runs, "runs", 50, "how many of the newest runs to read (a monitor continues as new every 15 judgements)")
	outputFlag(cmd.Flags(), &output)
	return cmd
}

// monitorAudit reads the newest runs of a monitor and returns their entries, oldest first.
func monitorAudit(ctx context.Context, c *temporalConn, id string, runs int) ([]AuditEntry, error) {
	resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: fmt.Sprintf("WorkflowId = %q", id), PageSize: int32(runs)})
	if err != nil {
		return nil, fmt.Errorf("list runs: %w", rootCause(err))
	}
	var out []AuditEntry
	for i, ex := range resp.GetExecutions() {
		if i == runs {
			break
		}
		e, err := monitorAuditRun(ctx, c, id, ex.GetExecution().GetRunId())
		if err != nil {
			return nil, err
		}
		out = append(out, e...)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].At.Before(out[j].At) })
	return out, nil
}

// monitorAction is the audit action of a monitor's activity that changes something, if it is one.
var monitorAction = map[string]string{"RevokeByRule": workflows.ActionRevoke, "RenewToken": workflows.ActionReissue, "Send": workflows.ActionNotify}

func monitorAuditRun(ctx context.Context, c *temporalConn, id, runID string) ([]AuditEntry, error) {
	var out []AuditEntry
	pending := map[int64]int{} // scheduled event id or update id → index in out
	updates := map[string]int{}
	add := func(ev *historypb.HistoryEvent, action string) *AuditEntry {
		out = append(out, AuditEntry{At: ev.GetEventTime().AsTime(), WorkflowID: id, RunID: runID, Action: action, Actor: "token monitor"})
		return &out[len(out)-1]
	}
	it := c.GetWorkflowHistory(ctx, id, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			return nil, fmt.Errorf("history of %s: %w", id, rootCause(err))
		}
		switch {
		case ev.GetWorkflowExecutionStartedEventAttributes() != nil:
			a := ev.GetWorkflowExecutionStartedEventAttributes()
			var s workflows.MonitorSpec
			if err := c.decode(a.GetInput(), &s); err != nil {
				return nil, err
			}
			if s.Carry == nil { // a run continued as new is no new start
				e := add(ev, "monitor-start")
				e.Actor, e.Reason, e.Identity, e.Result = s.Actor, s.Reason, a.GetIdentity(), "monitoring "+s.Issuer.URL
			}
		case ev.GetActivityTaskScheduledEventAttributes() != nil:
			a := ev.GetActivityTaskScheduledEventAttributes()
			action, ok := monitorAction[a.GetActivityType().GetName()]
			if !ok {
				continue
			}
			e := add(ev, action)
			if err := describeMonitorAction(c, action, a, e); err != nil {
				return nil, err
			}
			pending[ev.GetEventId()] = len(out) - 1
		case ev.GetActivityTaskCompletedEventAttributes() != nil:
			if i, ok := pending[ev.GetActivityTaskCompletedEventAttributes().GetScheduledEventId()]; ok {
				out[i].Result = "done"
			}
		case ev.GetActivityTaskFailedEventAttributes() != nil:
			a := ev.GetActivityTaskFailedEventAttributes()
			if i, ok := pending[a.GetScheduledEventId()]; ok {
				out[i].Result = "failed: " + c.failureMessage(a.GetFailure())
			}
		case ev.GetActivityTaskTimedOutEventAttributes() != nil:
			if i, ok := pending[ev.GetActivityTaskTimedOutEventAttributes().GetScheduledEventId()]; ok {
				out[i].Result = "timed out"
			}
		case ev.GetWorkflowExecutionUpdateAcceptedEventAttributes() != nil:
			req := ev.GetWorkflowExecutionUpdateAcceptedEventAttributes().GetAcceptedRequest()
			var stop workflows.StopRequest
			if err := c.decode(req.GetInput().GetArgs(), &stop); err != nil {
				return nil, err
			}
			e := add(ev, "monitor-stop")
			e.Actor, e.Reason, e.Identity = stop.Actor, stop.Reason, req.GetMeta().GetIdentity()
			updates[req.GetMeta().GetUpdateId()] = len(out) - 1
		case ev.GetWorkflowExecutionUpdateCompletedEventAttributes() != nil:
			if i, ok := updates[ev.GetWorkflowExecutionUpdateCompletedEventAttributes().GetMeta().GetUpdateId()]; ok {
				out[i].Result = "done"
			}
		case ev.GetWorkflowExecutionTerminatedEventAttributes() != nil:
			a := ev.GetWorkflowExecutionTerminatedEventAttributes()
			e := add(ev, "terminate")
			e.Actor, e.Identity, e.Reason = "", a.GetIdentity(), a.GetReason()
		case ev.GetWorkflowExecutionFailedEventAttributes() != nil:
			add(ev, "finished").Result = "failed: " + c.failureMessage(ev.GetWorkflowExecutionFailedEventAttributes().GetFailure())
		}
	}
	return out, nil
}

// describeMonitorAction fills in why and on what the monitor acted, from the activity's input.
func describeMonitorAction(c *temporalConn, action string, a *historypb.ActivityTaskScheduledEventAttributes, e *AuditEntry) error {
	switch action {
	case workflows.ActionRevoke:
		var in activities.RuleInput
		if err := c.decode(a.GetInput(), &in); err != nil {
			return err
		}
		e.Reason = fmt.Sprintf("%s (every token of %s %s issued before %s)", in.Reason, in.Scope, in.Value, in.Before.UTC().Format("2006-01-02T15:04:05Z"))
	case workflows.ActionReissue:
		var in activities.RenewInput
		if err := c.decode(a.GetInput(), &in); err != nil {
			return err
		}
		e.Reason = fmt.Sprintf("%s (client %s, token %s expiring %s)", in.Reason, in.Token.Client, in.Token.JTI, in.Token.ExpiresAt.UTC().Format("2006-01-02T15:04:05Z"))
	case workflows.ActionNotify:
		var in activities.NotifyInput
		if err := c.decode(a.GetInput(), &in); err != nil {
			return err
		}
		e.Reason = in.Text
	}
	return nil
}
