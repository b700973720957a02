package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"

	"github.com/rollgate/rollgate/workflows"
)

// parseEvery reads an interval such as "30d", "90d", "36h".
func parseEvery(s string) (time.Duration, error) {
	var d time.Duration
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil {
			return 0, fmt.Errorf("--every %q: write days as e.g. 30d, or a duration such as 36h", s)
		}
		d = time.Duration(n) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return 0, fmt.Errorf("--every %q: write days as e.g. 30d, or a duration such as 36h", s)
		}
	}
	if d < time.Hour || d > 366*24*time.Hour {
		return 0, fmt.Errorf("--every %s: allowed 1h to 366d", s)
	}
	return d, nil
}

func scheduleRotationCmd() *cobra.Command {
	var r rotationFlags
	var every, output string
	var jitter time.Duration
	var remove bool
	cmd := &cobra.Command{
		Use:   "schedule-rotation --every 30d --issuer URL --transit-key KEY --jwks-bucket BUCKET --reason TEXT",
		Short: "Create or update (idempotently) a Temporal Schedule that rotates an issuer's key every N days",
		Long: `Create a Temporal Schedule (id rotate/<transit-key>) that starts the KeyRotation workflow every
--every, with the same rotation flags as rotate-key. Running it again with the same flags changes
nothing; with other flags it updates the schedule in place. A rotation still running when the
next one is due is not overlapped: the due one is skipped. --delete removes the schedule (a
rotation already running finishes).`,
		Example: `  starter schedule-rotation --every 30d --issuer https://issuer.example.com/orders \
    --transit-key rollgate-orders --jwks-bucket example-issuer --clients billing,shipping \
    --proof a1b2c3d4e5/prod --reason "monthly rotation (SEC-12)"
  starter schedule-rotation --delete --transit-key rollgate-orders`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			id := rotationID(r.key)
			if r.key == "" {
				return &codeError{exitInvalid, errors.New("schedule-rotation needs --transit-key")}
			}
			if remove {
				c, err := dial(ctx)
				if err != nil {
					return err
				}
				defer c.Close()
				if err := c.ScheduleClient().GetHandle(ctx, id).Delete(ctx); err != nil {
					var nf *serviceerror.NotFound
					if errors.As(err, &nf) {
						return fmt.Errorf("no rotation schedule %s", id)
					}
					return fmt.Errorf("delete schedule %s: %w", id, rootCause(err))
				}
				return report(output, map[string]string{"schedule": id, "result": "deleted"}, "schedule %s deleted\n", id)
			}
			interval, err := parseEvery(every)
			if err != nil {
				return &codeError{exitInvalid, err}
			}
			if jitter < 0 || jitter > interval/2 {
				return &codeError{exitInvalid, fmt.Errorf("--jitter %s: allowed 0 to half of --every", jitter)}
			}
			in, err := r.spec()
			if err != nil {
				return err
			}
			c, err := dial(ctx)
			if err != nil {
				return err
			}
			defer c.Close()
			spec := client.ScheduleSpec{Intervals: []client.ScheduleIntervalSpec{{Every: interval}}, Jitter: jitter}
			action := &client.ScheduleWorkflowAction{ID: id, Workflow: workflows.KeyRotation, Args: []any{in}, TaskQueue: workflows.TaskQueue}
			sc := c.ScheduleClient()
			result := "created"
			h, err := sc.Create(ctx, client.ScheduleOptions{
				ID: id, Spec: spec, Action: action, Overlap: enumspb.SCHEDULE_OVERLAP_POLICY_SKIP,
				CatchupWindow: 24 * time.Hour, Note: fmt.Sprintf("by %s: %s", in.Actor, in.Reason),
			})
			if errors.Is(err, temporal.ErrScheduleAlreadyRunning) {
				h = sc.GetHandle(ctx, id)
				result = "unchanged"
				err = h.Update(ctx, client.ScheduleUpdateOptions{DoUpdate: func(u client.ScheduleUpdateInput) (*client.ScheduleUpdate, error) {
					s := u.Description.Schedule
					if sameRotation(s, spec, in, c.payloads) {
						return nil, temporal.ErrSkipScheduleUpdate // nothing to change: no update is written
					}
					result = "updated"
					s.Spec, s.Action = &spec, action
					s.Policy.Overlap = enumspb.SCHEDULE_OVERLAP_POLICY_SKIP
					return &client.ScheduleUpdate{Schedule: &s}, nil
				}})
			}
			if err != nil {
				return fmt.Errorf("schedule %s: %w", id, rootCause(err))
			}
			desc, err := h.Describe(ctx)
			if err != nil {
				return fmt.Errorf("describe schedule %s: %w", id, rootCause(err))
			}
			var next time.Time
			if n := desc.Info.NextActionTimes; len(n) > 0 {
				next = n[0]
			}
			return report(output, map[string]any{"schedule": id, "result": result, "every": interval.String(), "next": next},
				"schedule %s %s: rotates %s every %s; next run %s\n", id, result, r.key, every, next.Local().Format(time.RFC3339))
		},
	}
	r.register(cmd)
	cmd.Flags().StringVar(&every, "every", "30d", "how often to rotate: days (30d) or a duration (36h); 1h to 366d")
	cmd.Flags().DurationVar(&jitter, "jitter", 0, "start each rotation up to this much later, at random")
	cmd.Flags().BoolVar(&remove, "delete", false, "delete the schedule instead")
	outputFlag(cmd.Flags(), &output)
	return cmd
}

// sameRotation says whether a schedule already rotates with this interval and this spec.
func sameRotation(s client.Schedule, spec client.ScheduleSpec, in workflows.KeyRotationSpec, payloads converter.DataConverter) bool {
	if s.Spec == nil || len(s.Spec.Intervals) != 1 || s.Spec.Intervals[0].Every != spec.Intervals[0].Every || s.Spec.Jitter != spec.Jitter {
		return false
	}
	a, ok := s.Action.(*client.ScheduleWorkflowAction)
	if !ok || len(a.Args) != 1 {
		return false
	}
	p, ok := a.Args[0].(*commonpb.Payload)
	if !ok {
		return false
	}
	var have workflows.KeyRotationSpec
	if err := payloads.FromPayload(p, &have); err != nil {
		return false
	}
	a1, _ := json.Marshal(have)
	a2, _ := json.Marshal(in)
	return string(a1) == string(a2)
}

// report prints v as JSON, or the formatted line.
func report(output string, v any, format string, a ...any) error {
	if output == "json" {
		return json.NewEncoder(os.Stdout).Encode(v)
	}
	fmt.Printf(format, a...)
	return nil
}
