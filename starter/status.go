package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/rollgate/rollgate/activities"
	"github.com/rollgate/rollgate/workflows"
)

func query(ctx context.Context, c client.Client, id, runID string) (workflows.Status, error) {
	var st workflows.Status
	v, err := c.QueryWorkflow(ctx, id, runID, workflows.QueryStatus)
	if err != nil {
		return st, err
	}
	return st, v.Get(&st)
}

func printReport(w io.Writer, r workflows.RollbackReport) {
	fmt.Fprintf(w, "rollback: trigger %s, by %s: %s\n", r.Trigger, r.Actor, r.Reason)
	for _, s := range r.Steps {
		status := "ok"
		if s.Error != "" {
			status = "FAILED: " + s.Error
		}
		if s.WaitedForWorker > 0 {
			status += fmt.Sprintf(" (%d attempts, %s waiting for a worker)", s.Attempts, s.WaitedForWorker.Round(time.Millisecond))
		}
		fmt.Fprintf(w, "  %-40s %8s  %s\n", s.Name, s.Duration.Round(time.Millisecond), status)
	}
	waited := ""
	if r.WaitedForWorker > 0 {
		waited = fmt.Sprintf(" (%s of it waiting for a worker)", r.WaitedForWorker.Round(time.Millisecond))
	}
	fmt.Fprintf(w, "latency: %s%s, verified: %v\n", r.Latency.Round(time.Millisecond), waited, r.Verified)
	for _, p := range r.Problems {
		fmt.Fprintf(w, "  problem: %s\n", p)
	}
}

func statusCmd() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "status [<apiId>/<stage>]",
		Short: "Show a deployment's phase, step, weight, probes and timeline; without a deployment, one line per running deployment",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return statusOfRunning(cmd.Context(), output)
			}
			c, id, err := dialDeployment(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			defer c.Close()
			st, _, err := statusOf(cmd.Context(), c, id)
			if err != nil {
				return err
			}
			if output == "json" {
				return json.NewEncoder(os.Stdout).Encode(st)
			}
			printStatus(os.Stdout, id, st)
			return nil
		},
	}
	outputFlag(cmd.Flags(), &output)
	return cmd
}

// statusOf describes the deployment once and answers for the run it saw: a running one from its
// status query, a finished one from its result in history (its worker may be gone, and a query
// needs one). It returns that run's id, and every later call names it, because without a run id
// Temporal picks the newest run: a release started meanwhile would be waited for to its end.
func statusOf(ctx context.Context, c *temporalConn, id string) (workflows.Status, string, error) {
	desc, err := c.DescribeWorkflowExecution(ctx, id, "")
	var nf *serviceerror.NotFound
	switch {
	case errors.As(err, &nf):
		return workflows.Status{}, "", fmt.Errorf("no deployment %s: none was ever started, or its history has passed the namespace's retention (see: starter list)", id)
	case err != nil:
		return workflows.Status{}, "", explain(id, "status of", err)
	}
	runID := desc.GetWorkflowExecutionInfo().GetExecution().GetRunId()
	if desc.GetWorkflowExecutionInfo().GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		st, err := query(ctx, c, id, runID)
		if err != nil {
			return st, runID, explain(id, "status of", err)
		}
		withLiveBake(&st, desc, c.payloads)
		return st, runID, nil
	}
	var res workflows.DeployResult
	if err := c.GetWorkflow(ctx, id, runID).Get(ctx, &res); err != nil {
		return workflows.Status{}, runID, fmt.Errorf("deployment %s ended without a result: %w", id, rootCause(err))
	}
	return workflows.Status{Phase: workflows.Phase(res.Outcome), Timeline: res.Timeline, Rollback: res.Rollback, Analysis: res.Analysis}, runID, nil
}

// liveStatus is a running deployment's status with the running bake's own counters.
func liveStatus(ctx context.Context, c *temporalConn, id, runID string) (workflows.Status, error) {
	desc, err := c.DescribeWorkflowExecution(ctx, id, runID)
	if err != nil {
		return workflows.Status{}, err
	}
	st, err := query(ctx, c, id, runID)
	if err != nil {
		return st, err
	}
	withLiveBake(&st, desc, c.payloads)
	return st, nil
}

// withLiveBake shows a baking deployment's probe counters and metric judgements as its bake's
// last heartbeat has them:
// the workflow's own counters are the previous check's until the bake ends. A bake whose
// heartbeat has not arrived (or cannot be read) shows none rather than the previous check's.
func withLiveBake(st *workflows.Status, desc *workflowservice.DescribeWorkflowExecutionResponse, payloads converter.DataConverter) {
	if st.Phase != workflows.PhaseBaking && st.Phase != workflows.PhaseWatching {
		return
	}
	for _, pa := range desc.GetPendingActivities() {
		if pa.GetActivityType().GetName() != activities.BakeActivity {
			continue
		}
		var p activities.BakeProgress
		if pa.GetHeartbeatDetails() == nil || payloads.FromPayloads(pa.GetHeartbeatDetails(), &p) != nil {
			p = activities.BakeProgress{}
		}
		st.Probes = p.Result
		if len(p.Analysis) > 0 {
			st.Analysis = p.Analysis
		}
		return
	}
}

// jsonOrNone prints v as JSON for --output json, or the line for an empty result; done says
// whether anything is left to print.
func jsonOrNone(output string, v any, n int, none string) (done bool, err error) {
	switch {
	case output == "json":
		return true, json.NewEncoder(os.Stdout).Encode(v)
	case n == 0:
		fmt.Println(none)
		return true, nil
	}
	return false, nil
}

// statusOfRunning prints one line per running deployment, from its status query.
func statusOfRunning(ctx context.Context, output string) error {
	c, err := dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
		Query: "WorkflowType = 'Deployment' AND ExecutionStatus = 'Running'", PageSize: 100,
	})
	if err != nil {
		return fmt.Errorf("list running deployments: %w", rootCause(err))
	}
	type row struct {
		Deployment string
		workflows.Status
	}
	var rows []row
	for _, e := range resp.GetExecutions() {
		st, err := liveStatus(ctx, c, e.GetExecution().GetWorkflowId(), e.GetExecution().GetRunId())
		if err != nil {
			continue // it finished between the list and the query
		}
		st.Timeline = nil
		rows = append(rows, row{stageOf(e.GetExecution().GetWorkflowId()), st})
	}
	if done, err := jsonOrNone(output, rows, len(rows), "no deployment is running"); done {
		return err
	}
	fmt.Printf("%-28s %-14s %-10s %-7s %s\n", "DEPLOYMENT", "PHASE", "STEP", "WEIGHT", "PROBES (accepted/rejected/5xx)")
	for _, r := range rows {
		step, phase := "-", string(r.Phase)
		if r.Step > 0 {
			step = fmt.Sprintf("%d of %d", r.Step, r.Steps)
		}
		if r.Paused {
			phase += " PAUSED"
		}
		fmt.Printf("%-28s %-14s %-10s %-7s %d/%d/%d\n", r.Deployment, phase, step, fmt.Sprintf("%v%%", r.Weight), r.Probes.Accepted, r.Probes.Rejected, r.Probes.ServerErrors)
	}
	return nil
}

func printStatus(w io.Writer, id string, st workflows.Status) {
	fmt.Fprintf(w, "%s: %s", id, st.Phase)
	if st.Step > 0 {
		fmt.Fprintf(w, ", step %d of %d at %v%%", st.Step, st.Steps, st.Weight)
	}
	if st.Paused {
		fmt.Fprint(w, ", PAUSED")
	}
	fmt.Fprintln(w)
	if st.Probes.Probes > 0 {
		fmt.Fprintf(w, "probes: %d (%d accepted, %d rejected, %d 5xx)\n", st.Probes.Probes, st.Probes.Accepted, st.Probes.Rejected, st.Probes.ServerErrors)
	}
	if !st.BakeEnds.IsZero() {
		fmt.Fprintf(w, "bake ends: %s\n", st.BakeEnds.Format(time.RFC3339))
	}
	printAnalysis(w, st.Analysis)
	printTimeline(w, "  ", st.Timeline)
	if st.Rollback != nil {
		printReport(w, *st.Rollback)
	} else {
		printCompensations(w, st.Compensations)
	}
}

// printTimeline prints one line per event, each after indent: when, in which phase, what.
func printTimeline(w io.Writer, indent string, events []workflows.Event) {
	for _, e := range events {
		fmt.Fprintf(w, "%s%s  %-13s %s\n", indent, e.At.Format(time.TimeOnly), e.Phase, e.Message)
	}
}

// printCompensations shows a rollback under way: each compensation's state, and how long it took
// or has been running.
func printCompensations(w io.Writer, cs []workflows.CompensationStatus) {
	for _, c := range cs {
		took := ""
		switch {
		case c.State == workflows.CompensationRunning:
			took = "for " + time.Since(c.Started).Round(time.Millisecond).String()
		case c.State != workflows.CompensationPending:
			took = c.Duration.Round(time.Millisecond).String()
		}
		if c.Attempts > 1 {
			took += fmt.Sprintf(" (attempt %d)", c.Attempts)
		}
		fmt.Fprintln(w, strings.TrimRight(fmt.Sprintf("  %-8s %-40s %s", c.State, c.Name, took), " "))
	}
}

func watchCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "watch <apiId>/<stage>",
		Short: "Follow a running deployment until it ends; exit 0 promoted, 2 rolled back",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, id, err := dialDeployment(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			defer c.Close()
			_, runID, err := statusOf(cmd.Context(), c, id)
			if err != nil {
				return err
			}
			res, err := follow(cmd.Context(), c, c.GetWorkflow(cmd.Context(), id, runID))
			if err != nil {
				return err
			}
			printResult(os.Stdout, res)
			if res.Outcome == workflows.OutcomeRolledBack {
				return &codeError{exitRolledBack, fmt.Errorf("deployment %s rolled back", id)}
			}
			return nil
		},
	}
}
