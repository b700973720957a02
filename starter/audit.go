package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	failurepb "go.temporal.io/api/failure/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/workflowservice/v1"

	"github.com/rollgate/rollgate/internal/spec"
	"github.com/rollgate/rollgate/workflows"
)

// AuditEntry is one thing somebody (or rollgate itself) did to a stage, from workflow history.
type AuditEntry struct {
	At         time.Time `json:"at"`
	WorkflowID string    `json:"workflowId"`
	RunID      string    `json:"runId"`
	Action     string    `json:"action"` // deploy, rollback-release, rollback, promote, pause, resume, skip-step, cancel, terminate, finished
	Actor      string    `json:"actor,omitempty"`
	Reason     string    `json:"reason,omitempty"`
	Identity   string    `json:"identity,omitempty"` // the Temporal client that asked
	Result     string    `json:"result,omitempty"`
}

func auditCmd() *cobra.Command {
	var output string
	var runs int
	cmd := &cobra.Command{
		Use:   "audit <apiId>/<stage>",
		Short: "Who did what to a stage, when and why: deployments, operator requests, rollbacks, from the workflow histories",
		Example: `  starter audit a1b2c3d4e5/prod
  starter audit a1b2c3d4e5/prod --runs 20 --output json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if runs < 1 || runs > 1000 {
				return &codeError{exitInvalid, fmt.Errorf("--runs %d: allowed 1 to 1000", runs)}
			}
			ctx := cmd.Context()
			stage, err := parseStage(args[0])
			if err != nil {
				return err
			}
			c, err := dial(ctx)
			if err != nil {
				return err
			}
			defer c.Close()
			entries, err := audit(ctx, c, []string{stage.deploymentID(), stage.rollbackID()}, runs)
			if err != nil {
				return err
			}
			if output == "json" {
				return json.NewEncoder(os.Stdout).Encode(entries)
			}
			if len(entries) == 0 {
				fmt.Fprintf(os.Stdout, "no deployments or rollbacks of %s on record\n", stage)
				return nil
			}
			printAudit(os.Stdout, entries)
			return nil
		},
	}
	cmd.Flags().IntVar(&runs, "runs", 10, "how many of the newest workflow runs to read")
	outputFlag(cmd.Flags(), &output)
	return cmd
}

// audit reads the newest runs of the given workflow ids and returns their entries, oldest first.
func audit(ctx context.Context, c *temporalConn, ids []string, runs int) ([]AuditEntry, error) {
	quoted := make([]string, len(ids))
	for i, id := range ids {
		quoted[i] = fmt.Sprintf("WorkflowId = %q", id)
	}
	resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: strings.Join(quoted, " OR "), PageSize: int32(runs)})
	if err != nil {
		return nil, fmt.Errorf("list runs: %w", rootCause(err))
	}
	var out []AuditEntry
	for i, ex := range resp.GetExecutions() {
		if i == runs {
			break
		}
		e, err := auditRun(ctx, c, ex.GetExecution().GetWorkflowId(), ex.GetExecution().GetRunId())
		if err != nil {
			return nil, err
		}
		out = append(out, e...)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].At.Before(out[j].At) })
	return out, nil
}

func auditRun(ctx context.Context, c *temporalConn, id, runID string) ([]AuditEntry, error) {
	var out []AuditEntry
	updates := map[string]int{} // update id → index in out
	add := func(ev *historypb.HistoryEvent, action string) *AuditEntry {
		out = append(out, AuditEntry{At: ev.GetEventTime().AsTime(), WorkflowID: id, RunID: runID, Action: action})
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
			e := add(ev, "deploy")
			e.Identity = a.GetIdentity()
			switch a.GetWorkflowType().GetName() {
			case "Deployment":
				var s spec.DeploySpec
				if err := c.decode(a.GetInput(), &s); err != nil {
					return nil, err
				}
				e.Actor, e.Reason = s.Actor, s.Reason
				e.Result = fmt.Sprintf("release of %s", s.Service)
			case "Rollback":
				var s workflows.RollbackSpec
				if err := c.decode(a.GetInput(), &s); err != nil {
					return nil, err
				}
				e.Action, e.Actor, e.Reason = "rollback-release", s.Actor, s.Reason
				e.Result = "release latest"
				if s.Release != "" {
					e.Result = "release " + s.Release
				}
			}
		case ev.GetWorkflowExecutionUpdateAcceptedEventAttributes() != nil:
			req := ev.GetWorkflowExecutionUpdateAcceptedEventAttributes().GetAcceptedRequest()
			e := add(ev, req.GetInput().GetName())
			e.Identity = req.GetMeta().GetIdentity()
			var op workflows.OperatorRequest
			if err := c.decode(req.GetInput().GetArgs(), &op); err != nil {
				return nil, err
			}
			e.Actor, e.Reason = op.Actor, op.Reason
			updates[req.GetMeta().GetUpdateId()] = len(out) - 1
		case ev.GetWorkflowExecutionUpdateCompletedEventAttributes() != nil:
			a := ev.GetWorkflowExecutionUpdateCompletedEventAttributes()
			if i, ok := updates[a.GetMeta().GetUpdateId()]; ok {
				out[i].Result = "done"
				if f := a.GetOutcome().GetFailure(); f != nil {
					out[i].Result = "failed: " + c.failureMessage(f)
				}
			}
		case ev.GetWorkflowExecutionCancelRequestedEventAttributes() != nil:
			a := ev.GetWorkflowExecutionCancelRequestedEventAttributes()
			e := add(ev, "cancel")
			e.Identity, e.Reason = a.GetIdentity(), a.GetCause()
		case ev.GetWorkflowExecutionTerminatedEventAttributes() != nil:
			a := ev.GetWorkflowExecutionTerminatedEventAttributes()
			e := add(ev, "terminate")
			e.Identity, e.Reason = a.GetIdentity(), a.GetReason()
		case ev.GetWorkflowExecutionCompletedEventAttributes() != nil:
			e := add(ev, "finished")
			var res struct {
				Outcome  string
				Verified *bool
				Rollback *workflows.RollbackReport
			}
			if err := c.decode(ev.GetWorkflowExecutionCompletedEventAttributes().GetResult(), &res); err != nil {
				return nil, err
			}
			switch {
			case res.Outcome != "" && res.Rollback != nil:
				e.Result = fmt.Sprintf("%s (%s, by %s: %s; verified: %v)", res.Outcome, res.Rollback.Trigger, res.Rollback.Actor, res.Rollback.Reason, res.Rollback.Verified)
			case res.Outcome != "":
				e.Result = res.Outcome
			case res.Verified != nil:
				e.Result = fmt.Sprintf("rolled back; verified: %v", *res.Verified)
			}
		case ev.GetWorkflowExecutionFailedEventAttributes() != nil:
			add(ev, "finished").Result = "failed: " + c.failureMessage(ev.GetWorkflowExecutionFailedEventAttributes().GetFailure())
		case ev.GetWorkflowExecutionTimedOutEventAttributes() != nil:
			add(ev, "finished").Result = "timed out"
		case ev.GetWorkflowExecutionCanceledEventAttributes() != nil:
			add(ev, "finished").Result = "cancelled"
		}
	}
	return out, nil
}

// decode reads a history payload with the converter the workflows wrote it with.
func (c *temporalConn) decode(p *commonpb.Payloads, out any) error {
	if len(p.GetPayloads()) == 0 {
		return nil
	}
	if err := c.payloads.FromPayloads(p, out); err != nil {
		return fmt.Errorf("read history: %w", err)
	}
	return nil
}

func (c *temporalConn) failureMessage(f *failurepb.Failure) string {
	return c.failures.FailureToError(f).Error()
}

func printAudit(w io.Writer, entries []AuditEntry) {
	for _, e := range entries {
		who := e.Actor
		if who == "" {
			who = e.Identity
		}
		line := fmt.Sprintf("%s  %-16s %-18s", e.At.Local().Format("2006-01-02 15:04:05"), e.Action, who)
		if e.Reason != "" {
			line += "  " + e.Reason
		}
		if e.Result != "" {
			line += "  → " + e.Result
		}
		fmt.Fprintln(w, strings.TrimRight(line, " "))
	}
}
