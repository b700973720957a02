package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"strings"
	"time"

	"github.com/spf13/cobra"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	temporalenv "go.temporal.io/sdk/contrib/envconfig"
	"go.temporal.io/sdk/converter"
	"sigs.k8s.io/yaml"

	"github.com/rollgate/rollgate/activities"
	"github.com/rollgate/rollgate/internal/keys"
	"github.com/rollgate/rollgate/internal/spec"
	"github.com/rollgate/rollgate/workflows"
)

func dial(ctx context.Context) (client.Client, error) {
	opts, err := temporalenv.LoadDefaultClientOptions()
	if err != nil {
		return nil, fmt.Errorf("temporal configuration: %w", err)
	}
	opts.Logger = quietLogger{}
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, err := client.DialContext(dctx, opts)
	if err != nil {
		addr := opts.HostPort
		if addr == "" {
			addr = client.DefaultHostPort
		}
		return nil, fmt.Errorf("cannot reach Temporal at %s (set TEMPORAL_ADDRESS): %v", addr, rootCause(err))
	}
	return c, nil
}

// readSpec reads a YAML or JSON spec, refusing unknown fields.
func readSpec(path string) (spec.DeploySpec, error) {
	var s spec.DeploySpec
	var raw []byte
	var err error
	if path == "-" {
		raw, err = io.ReadAll(os.Stdin)
	} else {
		raw, err = os.ReadFile(path)
	}
	if err != nil {
		return s, fmt.Errorf("read spec: %w", err)
	}
	js, err := yaml.YAMLToJSON(raw)
	if err != nil {
		return s, &codeError{exitInvalid, fmt.Errorf("spec %s is not YAML or JSON: %v", path, err)}
	}
	dec := json.NewDecoder(strings.NewReader(string(js)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return s, &codeError{exitInvalid, fmt.Errorf("spec %s: %v", path, err)}
	}
	s.Normalize()
	if err := s.Validate(); err != nil {
		v, _ := spec.AsValidation(err)
		var sb strings.Builder
		fmt.Fprintf(&sb, "spec %s has %d problems:", path, len(v.Problems))
		for _, p := range v.Problems {
			fmt.Fprintf(&sb, "\n  %s", p)
		}
		return s, &codeError{exitInvalid, errors.New(sb.String())}
	}
	return s, nil
}

func deployCmd() *cobra.Command {
	var file, output string
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
			ctx := cmd.Context()
			c, err := dial(ctx)
			if err != nil {
				return err
			}
			defer c.Close()
			run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
				ID: s.WorkflowID(), TaskQueue: workflows.TaskQueue,
				WorkflowIDConflictPolicy:                 enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
				WorkflowIDReusePolicy:                    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
				WorkflowExecutionErrorWhenAlreadyStarted: true,
			}, workflows.Deployment, s)
			var started *serviceerror.WorkflowExecutionAlreadyStarted
			if errors.As(err, &started) {
				return fmt.Errorf("deployment %s is in progress (run %s): wait for it, or roll it back", s.WorkflowID(), started.RunId)
			}
			if err != nil {
				return fmt.Errorf("start deployment: %w", err)
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
	cmd.Flags().StringVarP(&output, "output", "o", "text", "text or json")
	return cmd
}

// follow prints each new timeline event to stderr until the deployment ends.
func follow(ctx context.Context, c client.Client, run client.WorkflowRun) (workflows.DeployResult, error) {
	done := make(chan error, 1)
	var res workflows.DeployResult
	go func() { done <- run.Get(ctx, &res) }()
	seen := 0
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			if err != nil {
				return res, fmt.Errorf("deployment %s failed: %v", run.GetID(), rootCause(err))
			}
			for _, e := range res.Timeline[min(seen, len(res.Timeline)):] {
				fmt.Fprintf(os.Stderr, "%s  %-13s %s\n", e.At.Format(time.TimeOnly), e.Phase, e.Message)
			}
			return res, nil
		case <-tick.C:
			if st, err := query(ctx, c, run.GetID(), run.GetRunID()); err == nil {
				for _, e := range st.Timeline[min(seen, len(st.Timeline)):] {
					fmt.Fprintf(os.Stderr, "%s  %-13s %s\n", e.At.Format(time.TimeOnly), e.Phase, e.Message)
				}
				seen = max(seen, len(st.Timeline))
				if st.Phase == workflows.PhaseBaking && !st.BakeEnds.IsZero() {
					fmt.Fprintf(os.Stderr, "          baking at %v%%: %d probes, %d rejected, %d 5xx, %s left\r",
						st.Weight, st.Probes.Probes, st.Probes.Rejected, st.Probes.ServerErrors, time.Until(st.BakeEnds).Round(time.Second))
				}
			}
		}
	}
}

func query(ctx context.Context, c client.Client, id, runID string) (workflows.Status, error) {
	var st workflows.Status
	v, err := c.QueryWorkflow(ctx, id, runID, workflows.QueryStatus)
	if err != nil {
		return st, err
	}
	return st, v.Get(&st)
}

func printResult(w io.Writer, res workflows.DeployResult) {
	fmt.Fprintf(w, "outcome: %s\n", res.Outcome)
	if res.ReleaseDeploymentID != "" {
		fmt.Fprintf(w, "release deployment: %s, key version: %d\n", res.ReleaseDeploymentID, res.KeyVersion)
	}
	if res.Rollback != nil {
		printReport(w, *res.Rollback)
	}
}

func printReport(w io.Writer, r workflows.RollbackReport) {
	fmt.Fprintf(w, "rollback: trigger %s, by %s: %s\n", r.Trigger, r.Actor, r.Reason)
	for _, s := range r.Steps {
		status := "ok"
		if s.Error != "" {
			status = "FAILED: " + s.Error
		}
		fmt.Fprintf(w, "  %-40s %8s  %s\n", s.Name, s.Duration.Round(time.Millisecond), status)
	}
	fmt.Fprintf(w, "latency: %s, verified: %v\n", r.Latency.Round(time.Millisecond), r.Verified)
	for _, p := range r.Problems {
		fmt.Fprintf(w, "  problem: %s\n", p)
	}
}

// deploymentID accepts "deploy/<api>/<stage>" or "<api>/<stage>".
func deploymentID(arg string) (string, error) {
	id := strings.TrimPrefix(arg, "deploy/")
	if parts := strings.Split(id, "/"); len(parts) != 2 || parts[0] == "" || parts[1] == "" {
		return "", &codeError{exitInvalid, fmt.Errorf("deployment %q: name it <apiId>/<stage> or deploy/<apiId>/<stage>", arg)}
	}
	return "deploy/" + id, nil
}

func defaultActor() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	return os.Getenv("USER")
}

func update(ctx context.Context, id, name string, req workflows.OperatorRequest, out any) error {
	c, err := dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	h, err := c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID: id, UpdateName: name, WaitForStage: client.WorkflowUpdateStageCompleted, Args: []any{req},
	})
	if err != nil {
		return explain(id, name, err)
	}
	if err := h.Get(ctx, out); err != nil {
		return explain(id, name, err)
	}
	return nil
}

// explain turns Temporal's answers into one line an operator can act on.
func explain(id, what string, err error) error {
	var nf *serviceerror.NotFound
	switch {
	case errors.As(err, &nf):
		return fmt.Errorf("no running deployment %s: it does not exist or has finished (see: starter status %s)", id, strings.TrimPrefix(id, "deploy/"))
	case strings.Contains(err.Error(), "workflow execution already completed"):
		return fmt.Errorf("cannot %s %s: the deployment has finished (to undo a finished release: starter rollback %s --release latest)", what, id, strings.TrimPrefix(id, "deploy/"))
	}
	return fmt.Errorf("%s %s refused: %v", what, id, rootCause(err))
}

func rollbackCmd() *cobra.Command {
	var reason, actor, release string
	cmd := &cobra.Command{
		Use:   "rollback <apiId>/<stage> --reason TEXT [--release latest|ID]",
		Short: "Roll a running deployment (or, with --release, a finished one) back and wait for the verified RollbackReport",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := deploymentID(args[0])
			if err != nil {
				return err
			}
			if reason == "" {
				return &codeError{exitInvalid, errors.New("rollback needs --reason")}
			}
			var rep workflows.RollbackReport
			if release != "" {
				if err := rollbackRelease(cmd.Context(), id, release, actor, reason, &rep); err != nil {
					return err
				}
			} else if err := update(cmd.Context(), id, workflows.UpdateRollback, workflows.OperatorRequest{Actor: actor, Reason: reason}, &rep); err != nil {
				return err
			}
			printReport(os.Stdout, rep)
			if !rep.Verified {
				return errors.New("the rollback finished but could not be verified; see the problems above")
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why (required; recorded in the workflow history)")
	cmd.Flags().StringVar(&actor, "actor", defaultActor(), "who is asking")
	cmd.Flags().StringVar(&release, "release", "", `undo a finished release from the stage's history: "latest" or a release id`)
	return cmd
}

// rollbackRelease runs the Rollback workflow for a finished release and waits for its report.
func rollbackRelease(ctx context.Context, id, release, actor, reason string, rep *workflows.RollbackReport) error {
	parts := strings.Split(strings.TrimPrefix(id, "deploy/"), "/")
	if release == "latest" {
		release = ""
	}
	c, err := dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID: workflows.RollbackWorkflowID(parts[0], parts[1]), TaskQueue: workflows.TaskQueue,
		WorkflowIDConflictPolicy:                 enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		WorkflowExecutionErrorWhenAlreadyStarted: true,
	}, workflows.Rollback, workflows.RollbackSpec{APIID: parts[0], Stage: parts[1], Release: release, Actor: actor, Reason: reason})
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &started) {
		return fmt.Errorf("a rollback of %s/%s is already running (run %s)", parts[0], parts[1], started.RunId)
	}
	if err != nil {
		return fmt.Errorf("start rollback: %w", err)
	}
	fmt.Fprintf(os.Stderr, "rolling back the release of %s/%s (workflow %s)\n", parts[0], parts[1], run.GetID())
	if err := run.Get(ctx, rep); err != nil {
		return fmt.Errorf("rollback of %s/%s: %v", parts[0], parts[1], rootCause(err))
	}
	return nil
}

func operatorCmd(name, short string) *cobra.Command {
	var reason, actor string
	cmd := &cobra.Command{
		Use:   name + " <apiId>/<stage>",
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := deploymentID(args[0])
			if err != nil {
				return err
			}
			var st workflows.Status
			if err := update(cmd.Context(), id, name, workflows.OperatorRequest{Actor: actor, Reason: reason}, &st); err != nil {
				return err
			}
			printStatus(os.Stdout, id, st)
			return nil
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why (recorded in the workflow history)")
	cmd.Flags().StringVar(&actor, "actor", defaultActor(), "who is asking")
	return cmd
}

func statusCmd() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "status <apiId>/<stage>",
		Short: "Show a deployment's phase, step, weight, probes and timeline",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := deploymentID(args[0])
			if err != nil {
				return err
			}
			c, err := dial(cmd.Context())
			if err != nil {
				return err
			}
			defer c.Close()
			st, err := query(cmd.Context(), c, id, "")
			if err != nil {
				return explain(id, "status of", err)
			}
			if output == "json" {
				return json.NewEncoder(os.Stdout).Encode(st)
			}
			printStatus(os.Stdout, id, st)
			return nil
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "text", "text or json")
	return cmd
}

func printStatus(w io.Writer, id string, st workflows.Status) {
	fmt.Fprintf(w, "%s: %s", id, st.Phase)
	if st.Step > 0 {
		fmt.Fprintf(w, ", step %d of %d at %v%%", st.Step, st.Steps, st.Weight)
	}
	if st.Paused {
		fmt.Fprint(w, ", PAUSED")
	}
	fmt.Fprintf(w, "\nprobes: %d (%d accepted, %d rejected, %d 5xx)\n", st.Probes.Probes, st.Probes.Accepted, st.Probes.Rejected, st.Probes.ServerErrors)
	if !st.BakeEnds.IsZero() {
		fmt.Fprintf(w, "bake ends: %s\n", st.BakeEnds.Format(time.RFC3339))
	}
	for _, e := range st.Timeline {
		fmt.Fprintf(w, "  %s  %-13s %s\n", e.At.Format(time.TimeOnly), e.Phase, e.Message)
	}
	if st.Rollback != nil {
		printReport(w, *st.Rollback)
	}
}

// rootCause strips the wrapping layers of a Temporal error down to its message.
func rootCause(err error) string {
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err.Error()
		}
		err = next
	}
}

// quietLogger drops the SDK's own log lines; the CLI reports what matters itself.
type quietLogger struct{}

func (quietLogger) Debug(string, ...any) {}
func (quietLogger) Info(string, ...any)  {}
func (quietLogger) Warn(string, ...any)  {}
func (quietLogger) Error(string, ...any) {}

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
				return fmt.Errorf("list deployments: %v", rootCause(err))
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
			if output == "json" {
				return json.NewEncoder(os.Stdout).Encode(rows)
			}
			if len(rows) == 0 {
				fmt.Println("no deployments match")
				return nil
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
	cmd.Flags().StringVarP(&output, "output", "o", "text", "text or json")
	return cmd
}

func revokeCmd() *cobra.Command {
	var in workflows.RevocationSpec
	var issuer, key, keyType, audiences, proof, before, jtis, output string
	cmd := &cobra.Command{
		Use:   "revoke (--subject S | --kid KID | --jti J1,J2 | --before TIME) --issuer URL --transit-key KEY --reason TEXT",
		Short: "Revoke tokens and prove at a stage that the gateway rejects them",
		Example: `  starter revoke --subject billing --issuer https://issuer.example.com/orders --transit-key orders-issuer \
    --reason "laptop stolen" --proof a1b2c3d4e5/prod`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if in.Reason == "" {
				return &codeError{exitInvalid, errors.New("revoke needs --reason")}
			}
			typ, err := keys.ParseType(keyType)
			if err != nil {
				return &codeError{exitInvalid, err}
			}
			in.Issuer = activities.Issuer{URL: issuer, Key: activities.KeyRef{Name: key, Type: typ}, Audiences: strings.Split(audiences, ","), Algorithm: typ.Algorithms()[0]}
			if jtis != "" {
				in.JTIs = strings.Split(jtis, ",")
			}
			if before != "" {
				if in.IssuedBefore, err = time.Parse(time.RFC3339, before); err != nil {
					return &codeError{exitInvalid, fmt.Errorf("--before %q: use RFC 3339, such as 2026-11-24T09:00:00Z", before)}
				}
			}
			n := 0
			for _, set := range []bool{len(in.JTIs) > 0, in.Subject != "", in.KID != "", !in.IssuedBefore.IsZero()} {
				if set {
					n++
				}
			}
			if n != 1 {
				return &codeError{exitInvalid, errors.New("name exactly one of --subject, --kid, --jti, --before")}
			}
			if proof != "" {
				id, err := deploymentID(proof)
				if err != nil {
					return err
				}
				parts := strings.Split(strings.TrimPrefix(id, "deploy/"), "/")
				in.Proof = &activities.Target{APIID: parts[0], Stage: parts[1]}
			}
			c, err := dial(cmd.Context())
			if err != nil {
				return err
			}
			defer c.Close()
			run, err := c.ExecuteWorkflow(cmd.Context(), client.StartWorkflowOptions{
				ID: "revoke/" + key + "/" + time.Now().UTC().Format("20060102T150405.000"), TaskQueue: workflows.TaskQueue,
			}, workflows.TokenRevocation, in)
			if err != nil {
				return fmt.Errorf("start revocation: %w", err)
			}
			var rep workflows.RevocationReport
			if err := run.Get(cmd.Context(), &rep); err != nil {
				return fmt.Errorf("revocation %s: %v", run.GetID(), rootCause(err))
			}
			if output == "json" {
				return json.NewEncoder(os.Stdout).Encode(rep)
			}
			fmt.Printf("revoked %s (%d written) in %s\n", rep.Selector, rep.Revoked, rep.Duration.Round(time.Millisecond))
			switch {
			case rep.Samples > 0:
				fmt.Printf("proof: %d of %d sample tokens rejected at the gateway\n", rep.SamplesRejected, rep.Samples)
			case rep.Note != "":
				fmt.Println("proof: " + rep.Note)
			}
			if in.Proof != nil && rep.Samples > 0 && !rep.Proven {
				return errors.New("the gateway still accepts revoked tokens: see the verifier's deny-list refresh")
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&in.Subject, "subject", "", "revoke every token of this subject issued until now")
	f.StringVar(&in.KID, "kid", "", "revoke every token signed by this key version (<key>-v<N>), for good")
	f.StringVar(&jtis, "jti", "", "revoke these token ids (comma-separated)")
	f.StringVar(&before, "before", "", "revoke every token of the issuer issued before this RFC 3339 time")
	f.StringVar(&issuer, "issuer", "", "the issuer URL (required)")
	f.StringVar(&key, "transit-key", "", "the issuer's Vault transit key (required)")
	f.StringVar(&keyType, "key-type", "rsa-2048", "the transit key's type")
	f.StringVar(&audiences, "audience", "orders", "audiences of sample tokens (comma-separated)")
	f.StringVar(&proof, "proof", "", "a stage <apiId>/<stage> where sample tokens prove the revocation")
	f.StringVar(&in.Reason, "reason", "", "why (required)")
	f.StringVar(&in.Actor, "actor", defaultActor(), "who is asking")
	f.StringVarP(&output, "output", "o", "text", "text or json")
	_ = cmd.MarkFlagRequired("issuer")
	_ = cmd.MarkFlagRequired("transit-key")
	return cmd
}

func watchCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "watch <apiId>/<stage>",
		Short: "Follow a running deployment until it ends; exit 0 promoted, 2 rolled back",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := deploymentID(args[0])
			if err != nil {
				return err
			}
			c, err := dial(cmd.Context())
			if err != nil {
				return err
			}
			defer c.Close()
			if _, err := query(cmd.Context(), c, id, ""); err != nil {
				return explain(id, "watch", err)
			}
			res, err := follow(cmd.Context(), c, c.GetWorkflow(cmd.Context(), id, ""))
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
