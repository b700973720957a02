package testsuite

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/rollgate/rollgate/internal/analysis"
	"github.com/rollgate/rollgate/internal/spec"
	"github.com/rollgate/rollgate/workflows"
)

// RunDemo is the README's main job: on the bed, with a real worker and the real authorizer, it
// releases four times and prints each timeline: a healthy canary promoted (stage, key labels and
// client tokens move together), a broken canary (its backend answers 500) rolled back
// automatically, a release rolled back by an operator mid-bake, with the measured rollback
// latency, and a canary that refuses one client's tokens, which no probe sees, rolled back by the
// analysis of the real traffic (tokenRejections canary against stable, through CloudWatch); then,
// between releases, the token monitor acting on a stolen token still presented at the gateway.
func RunDemo(ctx context.Context, b *Bed, out io.Writer) error {
	scenarios := []struct {
		name, version, title string
		bake                 time.Duration
		operator             bool
		want                 string
	}{
		{"demopromote", "v2", "1. a healthy release, promoted", 10 * time.Second, false, workflows.OutcomePromoted},
		{"demobroken", "v3", "2. a broken release (its backend answers 500), rolled back automatically", 10 * time.Second, false, workflows.OutcomeRolledBack},
		{"demooperator", "v2", "3. a release rolled back by an operator mid-bake", 10 * time.Minute, true, workflows.OutcomeRolledBack},
		{"demotokens", "v2", "4. a canary whose authorizer refuses one client's tokens (its issuer's clock runs 20 s ahead): every probe passes, the analysis of the real traffic rolls it back", 30 * time.Second, false, workflows.OutcomeRolledBack},
	}
	for _, sc := range scenarios {
		fmt.Fprintf(out, "\n== %s\n", sc.title)
		var res workflows.DeployResult
		var counts map[ReleaseOutcome]int
		var err error
		if sc.name == "demotokens" {
			res, counts, err = demoTokenAnalysis(ctx, b, sc.name, sc.bake, sc.title, out)
		} else {
			var r *ReleaseBed
			if r, err = ProvisionRelease(ctx, b, sc.name); err != nil {
				return err
			}
			res, err = demoRelease(ctx, r, r.Spec(sc.version, sc.bake), sc.operator, sc.title, out)
			counts = r.Verifications()
			r.Close()
		}
		if err != nil {
			return err
		}
		for _, e := range res.Timeline {
			fmt.Fprintf(out, "  %s  %-13s %s\n", e.At.Format("15:04:05.000"), e.Phase, e.Message)
		}
		if rep := res.Rollback; rep != nil {
			fmt.Fprintf(out, "  rollback: trigger %s, by %s (%s); verified %v; latency %s\n", rep.Trigger, rep.Actor, rep.Reason, rep.Verified, rep.Latency.Round(time.Millisecond))
			for _, s := range rep.Steps {
				fmt.Fprintf(out, "    - %-40s %s %s\n", s.Name, s.Duration.Round(time.Millisecond), s.Error)
			}
			if !rep.Verified {
				return fmt.Errorf("%s: rollback not verified: %v", sc.name, rep.Problems)
			}
		}
		if res.Outcome != sc.want {
			return fmt.Errorf("%s: outcome %s, want %s", sc.name, res.Outcome, sc.want)
		}
		for _, j := range res.Analysis {
			fmt.Fprintf(out, "  analysis %s (%s): %s; canary %s, stable %s\n", j.Metric, j.Rule, j.Verdict, j.Last.Canary, j.Last.Stable)
		}
		fmt.Fprintf(out, "  outcome: %s\n", res.Outcome)
		printVerifications(out, counts)
	}
	fmt.Fprintf(out, "\n== 5. between releases, the token monitor: a stolen token, revoked, still presented at the gateway\n")
	return demoMonitor(ctx, b, out)
}

// printVerifications shows what the gateway's authorizer (the real Lambda bootstrap) counted, by
// release: "unknown" is traffic the stable deployment served before any rollgate release.
func printVerifications(out io.Writer, counts map[ReleaseOutcome]int) {
	byRelease := map[string][2]int{}
	for k, n := range counts {
		c := byRelease[k.Release]
		if k.Outcome == "accepted" {
			c[0] += n
		} else {
			c[1] += n
		}
		byRelease[k.Release] = c
	}
	fmt.Fprintln(out, "  the gateway's authorizer counted, by release:")
	for _, rel := range slices.Sorted(maps.Keys(byRelease)) {
		name := rel
		if rel == "unknown" {
			name = "unknown (the stable deployment, unlabelled)"
		}
		fmt.Fprintf(out, "    %-44s %4d accepted %4d rejected\n", name, byRelease[rel][0], byRelease[rel][1])
	}
}

// demoTokenAnalysis releases a canary whose authorizer (a function with no clock-skew leeway)
// refuses the tokens of a client whose issuer's clock runs 20 s ahead, with client traffic on the
// stage and tokenRejections judged canary against stable through the bed's CloudWatch.
func demoTokenAnalysis(ctx context.Context, b *Bed, name string, bake time.Duration, why string, out io.Writer) (workflows.DeployResult, map[ReleaseOutcome]int, error) {
	cw, err := b.CloudWatchProvider(ctx)
	if err != nil {
		return workflows.DeployResult{}, nil, err
	}
	r, err := ProvisionRelease(ctx, b, name, WithAnalysisProviders(analysis.Providers{spec.ProviderCloudWatch: cw}))
	if err != nil {
		return workflows.DeployResult{}, nil, err
	}
	defer r.Close()
	strict, err := r.AuthorizerVariant(ctx, "strict", map[string]string{"ROLLGATE_LEEWAY": "0s"})
	if err != nil {
		return workflows.DeployResult{}, nil, err
	}
	traffic, err := r.StartTraffic(ctx, 20)
	if err != nil {
		return workflows.DeployResult{}, nil, err
	}
	defer traffic.Stop()
	skewed, err := r.StartSkewedClient(ctx, 20*time.Second, 10)
	if err != nil {
		return workflows.DeployResult{}, nil, err
	}
	s := r.Spec("v2", bake)
	s.Auth.AuthorizerPatch["/authorizerUri"] = strict
	maxDelta := 0.05
	s.Analysis = &spec.Analysis{Metrics: []spec.Metric{{Name: "token-rejections", Template: spec.TemplateTokenRejections, Provider: spec.ProviderCloudWatch,
		MaxDelta: &maxDelta, Interval: spec.Duration(5 * time.Second), Window: spec.Duration(10 * time.Second), MinSamples: 10}}}
	s.Normalize()
	fmt.Fprintln(out, "  traffic: the client at 20 requests/s, the skewed client at 10/s; analysis: tokenRejections through CloudWatch, canary − stable ≤ 0.05")
	res, err := demoRelease(ctx, r, s, false, why, out)
	if stopErr := skewed.Stop(); err == nil {
		err = stopErr
	}
	sent, refused := skewed.Counts()
	fmt.Fprintf(out, "  the skewed client sent %d requests, %d refused\n", sent, refused)
	return res, r.Verifications(), err
}

func demoRelease(ctx context.Context, r *ReleaseBed, s spec.DeploySpec, operator bool, why string, out io.Writer) (workflows.DeployResult, error) {
	s.Actor, s.Reason = "release-pipeline", "demo "+why
	run, err := r.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID: s.WorkflowID(), TaskQueue: workflows.TaskQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL, WorkflowExecutionErrorWhenAlreadyStarted: true,
	}, workflows.Deployment, s)
	if err != nil {
		return workflows.DeployResult{}, err
	}
	fmt.Fprintf(out, "  workflow %s (run %s)\n", run.GetID(), run.GetRunID())
	if operator {
		if err := waitPhase(ctx, r, run, workflows.PhaseBaking); err != nil {
			return workflows.DeployResult{}, err
		}
		time.Sleep(2 * time.Second) // let a few probes land
		h, err := r.Temporal.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
			WorkflowID: run.GetID(), RunID: run.GetRunID(), UpdateName: workflows.UpdateRollback, UpdateID: "demo-rollback",
			WaitForStage: client.WorkflowUpdateStageCompleted,
			Args:         []any{workflows.OperatorRequest{Actor: "oncall", Reason: "customer reports"}},
		})
		if err != nil {
			return workflows.DeployResult{}, err
		}
		var rep workflows.RollbackReport
		if err := h.Get(ctx, &rep); err != nil {
			return workflows.DeployResult{}, err
		}
	}
	var res workflows.DeployResult
	return res, run.Get(ctx, &res)
}

func waitPhase(ctx context.Context, r *ReleaseBed, run client.WorkflowRun, phase workflows.Phase) error {
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		if v, err := r.Temporal.QueryWorkflow(ctx, run.GetID(), run.GetRunID(), workflows.QueryStatus); err == nil {
			var st workflows.Status
			if v.Get(&st) == nil && st.Phase == phase {
				return nil
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("deployment %s never reached %s", run.GetID(), phase)
}

// DemoOptions configure Demo.
type DemoOptions struct {
	// LogDir, when set, keeps one log file per server there.
	LogDir string
	// Keep leaves the bed up after the demo, with the Temporal Web UI, printing its endpoints as
	// export lines, until ctx ends.
	Keep bool
}

// Demo starts a bed, runs RunDemo on it and, with Keep, stays up so the releases can be looked at
// in the Web UI and with the starter.
func Demo(ctx context.Context, opts DemoOptions, out io.Writer) error {
	start := time.Now()
	fmt.Fprintln(out, "starting the local test bed (a machine's first run builds its servers first, with progress on stderr)")
	b, err := Start(ctx, Options{LogDir: opts.LogDir, TemporalUI: opts.Keep})
	if err != nil {
		return err
	}
	defer b.Close()
	fmt.Fprintf(out, "test bed up in %s: Temporal %s, Vault %s, DynamoDB %s, S3 %s, API Gateway %s\n",
		time.Since(start).Round(time.Millisecond), b.Temporal.HostPort, b.Vault.Addr, b.DynamoDB.Endpoint, b.S3.URL, b.Gateway.ControlURL)
	if err := RunDemo(ctx, b, out); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	fmt.Fprintln(out, "\ndemo passed: one release promoted, three rolled back and verified; the stolen token's subject revoked and its client's API key disabled by the monitor")
	if !opts.Keep {
		return nil
	}
	fmt.Fprintln(out, "\n# the bed stays up; in another shell:")
	for _, kv := range b.Env() {
		fmt.Fprintf(out, "export %s=%q\n", kv[0], kv[1])
	}
	fmt.Fprintf(out, "# Web UI: %s   (then: starter list, starter audit <apiId>/prod, …)\n# Ctrl-C stops it\n", b.Temporal.UIURL)
	<-ctx.Done()
	return nil
}
