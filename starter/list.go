package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/converter"
)

func listCmd() *cobra.Command {
	var service, stage, phase, output string
	var limit int
	cmd := &cobra.Command{
		Use:   "list [--service S] [--stage API/STAGE] [--phase P]",
		Short: "List deployments by service, stage and phase, newest first (Temporal visibility)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			query := "WorkflowType = 'Deployment'"
			for attr, v := range map[string]string{"RollgateService": service, "RollgateStage": stage, "RollgatePhase": phase} {
				if v == "" {
					continue
				}
				if strings.ContainsAny(v, `'"\\`) {
					return &codeError{exitInvalid, fmt.Errorf("%s %q: quotes and backslashes are not allowed", attr, v)}
				}
				query += " AND " + attr + " = '" + v + "'"
			}
			c, err := dial(cmd.Context())
			if err != nil {
				return err
			}
			defer c.Close()
			resp, err := c.ListWorkflow(cmd.Context(), &workflowservice.ListWorkflowExecutionsRequest{Query: query, PageSize: int32(limit)})
			if err != nil {
				return fmt.Errorf("list deployments: %w", rootCause(err))
			}
			type row struct {
				WorkflowID, RunID, Service, Stage, Phase, Status string
				Started                                          time.Time
			}
			var rows []row
			for _, e := range resp.Executions {
				r := row{WorkflowID: e.Execution.WorkflowId, RunID: e.Execution.RunId, Status: e.Status.String(), Started: e.StartTime.AsTime()}
				fields := e.GetSearchAttributes().GetIndexedFields()
				for name, dst := range map[string]*string{"RollgateService": &r.Service, "RollgateStage": &r.Stage, "RollgatePhase": &r.Phase} {
					if p, ok := fields[name]; ok {
						_ = converter.GetDefaultDataConverter().FromPayload(p, dst)
					}
				}
				rows = append(rows, r)
			}
			if done, err := jsonOrNone(output, rows, len(rows), "no deployments match"); done {
				return err
			}
			fmt.Printf("%-32s %-16s %-14s %-28s %s\n", "DEPLOYMENT", "SERVICE", "PHASE", "STARTED", "STATUS")
			for _, r := range rows {
				fmt.Printf("%-32s %-16s %-14s %-28s %s\n", r.WorkflowID, r.Service, r.Phase, r.Started.Format(time.RFC3339), strings.TrimPrefix(r.Status, "WORKFLOW_EXECUTION_STATUS_"))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&service, "service", "", "only this service")
	cmd.Flags().StringVar(&stage, "stage", "", "only this stage, as <apiId>/<stage>")
	cmd.Flags().StringVar(&phase, "phase", "", "only deployments in this phase (baking, promoted, rolled-back, …)")
	cmd.Flags().IntVar(&limit, "limit", 20, "how many at most")
	outputFlag(cmd.Flags(), &output)
	return cmd
}
