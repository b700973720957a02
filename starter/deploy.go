package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"
	"go.temporal.io/sdk/client"

	"github.com/rollgate/rollgate/internal/await"
	"github.com/rollgate/rollgate/internal/keys"
	"github.com/rollgate/rollgate/workflows"
)

func deployCmd() *cobra.Command {
	var file, output, actor, reason string
	var wait bool
	cmd := &cobra.Command{
		Use:   "deploy -f spec.yaml [--wait]",
		Short: "Validate a spec locally, then start its deployment",
		Example: `  starter deploy -f release.yaml --wait
  starter deploy -f release.yaml --wait --output json > result.json`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return &codeError{exitInvalid, errors.New("deploy needs -f spec.yaml")}
			}
			s, err := readSpec(file)
			if err != nil {
				return err
			}
			if cmd.Flags().Changed("actor") || s.Actor == "" {
				s.Actor = actor
			}
			if cmd.Flags().Changed("reason") {
				s.Reason = reason
			}
			if err := s.Validate(); err != nil {
				return &codeError{exitInvalid, err}
			}
			if err := keys.CheckName(s.Auth.TransitKey); err != nil {
				return &codeError{exitInvalid, fmt.Errorf("auth.transitKey: %w", err)}
			}
			ctx := cmd.Context()
			c, err := dial(ctx)
			if err != nil {
				return err
			}
			defer c.Close()
			run, err := startExclusive(ctx, c, s.WorkflowID(), "deployment", func(runID string) error {
				return fmt.Errorf("deployment %s is in progress (run %s): wait for it, or roll it back", s.WorkflowID(), runID)
			}, workflows.Deployment, s)
			if err != nil {
				return err
			}
			fmt.Fprintf(os.Stderr, "started deployment %s (run %s)\n", run.GetID(), run.GetRunID())
			if !wait {
				if output == "json" {
					return json.NewEncoder(os.Stdout).Encode(map[string]string{"workflowId": run.GetID(), "runId": run.GetRunID()})
				}
				return nil
			}
			res, err := follow(ctx, c, run)
			if err != nil {
				return err
			}
			if output == "json" {
				_ = json.NewEncoder(os.Stdout).Encode(res)
			} else {
				printResult(os.Stdout, res)
			}
			if res.Outcome == workflows.OutcomeRolledBack {
				return &codeError{exitRolledBack, fmt.Errorf("deployment %s rolled back (%s)", run.GetID(), res.Rollback.Reason)}
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "the deploy spec (YAML or JSON; - for stdin)")
	cmd.Flags().BoolVar(&wait, "wait", false, "stream progress to stderr and wait for the outcome")
	outputFlag(cmd.Flags(), &output)
	cmd.Flags().StringVar(&actor, "actor", defaultActor(), "who is releasing (recorded in the workflow history)")
	cmd.Flags().StringVar(&reason, "reason", "", "why, e.g. a change ticket (recorded in the workflow history)")
	return cmd
}

// follow prints each new timeline event to stderr until the deployment ends.
func follow(ctx context.Context, c *temporalConn, run client.WorkflowRun) (workflows.DeployResult, error) {
	done := make(chan error, 1)
	var res workflows.DeployResult
	go func() {
		defer recoverInto(done)
		done <- await.Result(ctx, run, &res)
	}()
	seen := 0
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			if err != nil {
				return res, fmt.Errorf("deployment %s failed: %w", run.GetID(), rootCause(err))
			}
			printTimeline(os.Stderr, "", res.Timeline[min(seen, len(res.Timeline)):])
			return res, nil
		case <-tick.C:
			if st, err := liveStatus(ctx, c, run.GetID(), run.GetRunID()); err == nil {
				printTimeline(os.Stderr, "", st.Timeline[min(seen, len(st.Timeline)):])
				seen = max(seen, len(st.Timeline))
				if (st.Phase == workflows.PhaseBaking || st.Phase == workflows.PhaseWatching) && !st.BakeEnds.IsZero() {
					line := fmt.Sprintf("          %s at %v%%: %d probes, %d rejected, %d 5xx, %s left",
						st.Phase, st.Weight, st.Probes.Probes, st.Probes.Rejected, st.Probes.ServerErrors, time.Until(st.BakeEnds).Round(time.Second))
					if len(st.Analysis) > 0 {
						line += "; " + analysisLine(st.Analysis)
					}
					fmt.Fprint(os.Stderr, line+"\r")
				}
			}
		}
	}
}

func printResult(w io.Writer, res workflows.DeployResult) {
	fmt.Fprintf(w, "outcome: %s\n", res.Outcome)
	if res.ReleaseDeploymentID != "" {
		fmt.Fprintf(w, "release deployment: %s, key version: %d\n", res.ReleaseDeploymentID, res.KeyVersion)
	}
	printAnalysis(w, res.Analysis)
	if res.Rollback != nil {
		printReport(w, *res.Rollback)
	}
}
