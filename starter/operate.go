package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/user"
	"time"

	vault "github.com/hashicorp/vault/api"
	"github.com/sethvargo/go-envconfig"
	"github.com/spf13/cobra"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	temporalenv "go.temporal.io/sdk/contrib/envconfig"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"

	"github.com/rollgate/rollgate/internal/await"
	"github.com/rollgate/rollgate/internal/codec"
	"github.com/rollgate/rollgate/internal/keys"
	"github.com/rollgate/rollgate/internal/telemetry"
	"github.com/rollgate/rollgate/workflows"
)

// temporalConn is a Temporal client with the converters it was dialled with: the starter decodes
// history, heartbeats and schedule arguments itself, as the worker encoded them.
type temporalConn struct {
	client.Client
	payloads    converter.DataConverter
	failures    converter.FailureConverter
	flushTraces func(context.Context) error
}

// Close closes the client, then sends the spans its calls recorded before the starter exits.
func (c *temporalConn) Close() {
	c.Client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = c.flushTraces(ctx)
}

// plainConn reads what an unencrypted worker wrote, with Temporal's default converters.
func plainConn(c client.Client) *temporalConn {
	return &temporalConn{Client: c, payloads: converter.GetDefaultDataConverter(), failures: temporal.GetDefaultFailureConverter(),
		flushTraces: func(context.Context) error { return nil }}
}

func dial(ctx context.Context) (*temporalConn, error) {
	opts, err := temporalenv.LoadDefaultClientOptions()
	if err != nil {
		return nil, fmt.Errorf("temporal configuration: %w", err)
	}
	opts.Logger = quietLogger{}
	cdc, err := loadCodec(ctx)
	if err != nil {
		return nil, err
	}
	codec.Apply(&opts, cdc)
	if opts.Identity == "" {
		host, _ := os.Hostname()
		opts.Identity = fmt.Sprintf("rollgate-starter %s@%s", defaultActor(), host)
	}
	tracer, flush, err := telemetry.Tracing(ctx, "rollgate-starter")
	if err != nil {
		return nil, err
	}
	if tracer != nil {
		opts.Interceptors = append(opts.Interceptors, tracer)
	}
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, err := client.DialContext(dctx, opts)
	if err != nil {
		addr := opts.HostPort
		if addr == "" {
			addr = client.DefaultHostPort
		}
		return nil, fmt.Errorf("cannot reach Temporal at %s (set TEMPORAL_ADDRESS): %w", addr, rootCause(err))
	}
	conn := plainConn(c)
	if cdc != nil {
		conn.payloads, conn.failures = opts.DataConverter, opts.FailureConverter
	}
	if flush != nil {
		conn.flushTraces = flush
	}
	return conn, nil
}

// loadCodec reads the payload codec's keys as the worker does (ROLLGATE_CODEC_*); the starter
// must use the worker's codec to read results and send operator requests.
func loadCodec(ctx context.Context) (*codec.Codec, error) {
	var cfg struct {
		Codec codec.Config
		Vault keys.VaultAuth
	}
	if err := envconfig.Process(ctx, &cfg); err != nil {
		return nil, fmt.Errorf("configuration: %w", err)
	}
	return cfg.Codec.Load(ctx, func(ctx context.Context) (*vault.Client, error) {
		return keys.NewVaultClient(ctx, cfg.Vault, slog.New(slog.DiscardHandler))
	})
}

// dialDeployment names the deployment given as <apiId>/<stage> (or its workflow id) and dials
// Temporal; the caller closes the client.
func dialDeployment(ctx context.Context, arg string) (*temporalConn, string, error) {
	id, err := deploymentID(arg)
	if err != nil {
		return nil, "", err
	}
	c, err := dial(ctx)
	return c, id, err
}

// startExclusive starts the only workflow that may run under id (a stage's deployment, a key's
// rotation): when one already runs, busy says so with its run id.
func startExclusive(ctx context.Context, c client.Client, id, what string, busy func(runID string) error, wf any, arg any) (client.WorkflowRun, error) {
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID: id, TaskQueue: workflows.TaskQueue,
		WorkflowIDConflictPolicy:                 enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		WorkflowIDReusePolicy:                    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		WorkflowExecutionErrorWhenAlreadyStarted: true,
	}, wf, arg)
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &started) {
		return nil, busy(started.RunId)
	}
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", what, err)
	}
	return run, nil
}

func defaultActor() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	return os.Getenv("USER")
}

func update(ctx context.Context, id, name string, req workflows.OperatorRequest, out any) error {
	if err := checkRequest(req); err != nil {
		return err
	}
	c, err := dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	runID, err := runningRun(ctx, c, id, name)
	if err != nil {
		return err
	}
	h, err := c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID: id, RunID: runID, UpdateName: name, WaitForStage: client.WorkflowUpdateStageCompleted, Args: []any{req},
	})
	if err == nil {
		err = h.Get(ctx, out)
	}
	if err == nil {
		return nil
	}
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) && runClosed(ctx, c, id, runID) {
		// The run closed between the describe and the update's answer: the request arrived as
		// the deployment finished.
		if rep, ok := out.(*workflows.RollbackReport); ok {
			return reportOfClosedRun(ctx, c, id, runID, rep)
		}
		return finished(id, name)
	}
	return explain(id, name, err)
}

// runningRun is the run of the deployment that an operator request goes to, named so that the
// answer is about the run the starter saw; a finished or unknown deployment is refused here.
func runningRun(ctx context.Context, c client.Client, id, what string) (string, error) {
	desc, err := c.DescribeWorkflowExecution(ctx, id, "")
	if err != nil {
		return "", explain(id, what, err)
	}
	if desc.GetWorkflowExecutionInfo().GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		return "", finished(id, what)
	}
	return desc.GetWorkflowExecutionInfo().GetExecution().GetRunId(), nil
}

// runClosed says whether the run has closed; a run that cannot be described is not known to have.
func runClosed(ctx context.Context, c client.Client, id, runID string) bool {
	desc, err := c.DescribeWorkflowExecution(ctx, id, runID)
	return err == nil && desc.GetWorkflowExecutionInfo().GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING
}

// reportOfClosedRun answers a rollback request that arrived as the deployment closed: when the
// run closed rolled back, that rollback is the one the request joins.
func reportOfClosedRun(ctx context.Context, c client.Client, id, runID string, rep *workflows.RollbackReport) error {
	var res workflows.DeployResult
	if err := c.GetWorkflow(ctx, id, runID).Get(ctx, &res); err != nil || res.Rollback == nil {
		return fmt.Errorf("cannot roll back %s: the deployment finished as the request arrived (see: starter status %s)", id, stageOf(id))
	}
	*rep = *res.Rollback
	return nil
}

// finished refuses an operator request to a deployment that has finished.
func finished(id, what string) error {
	return fmt.Errorf("cannot %s %s: the deployment has finished (to undo a finished release: starter rollback %s --release latest)", what, id, stageOf(id))
}

// explain turns Temporal's answers into one line an operator can act on.
func explain(id, what string, err error) error {
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		return fmt.Errorf("no running deployment %s: it does not exist or has finished (see: starter status %s)", id, stageOf(id))
	}
	return fmt.Errorf("%s %s refused: %w", what, id, rootCause(err))
}

func rollbackCmd() *cobra.Command {
	var reason, actor, release, notifyTo string
	cmd := &cobra.Command{
		Use:   "rollback <apiId>/<stage> --reason TEXT [--release latest|ID]",
		Short: "Roll a running deployment (or, with --release, a finished one) back and wait for the verified RollbackReport",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			stage, err := parseStage(args[0])
			if err != nil {
				return err
			}
			if reason == "" {
				return &codeError{exitInvalid, errors.New("rollback needs --reason")}
			}
			if notifyTo != "" && release == "" {
				return &codeError{exitInvalid, errors.New("--notify goes with --release: a running deployment tells the webhook its spec names")}
			}
			var rep workflows.RollbackReport
			if release != "" {
				if err := rollbackRelease(cmd.Context(), stage, workflows.RollbackSpec{Release: release, Actor: actor, Reason: reason, Notify: notifyTo}, &rep); err != nil {
					return err
				}
			} else if err := update(cmd.Context(), stage.deploymentID(), workflows.UpdateRollback, workflows.OperatorRequest{Actor: actor, Reason: reason}, &rep); err != nil {
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
	cmd.Flags().StringVar(&notifyTo, "notify", "", "with --release: a webhook name from the worker's ROLLGATE_WEBHOOKS, told when the rollback starts and ends")
	cmd.Flags().StringVar(&release, "release", "", `undo a finished release from the stage's history: "latest" or a release id`)
	return cmd
}

// rollbackRelease runs the Rollback workflow for a finished release and waits for its report.
func rollbackRelease(ctx context.Context, stage stageRef, in workflows.RollbackSpec, rep *workflows.RollbackReport) error {
	in.APIID, in.Stage = stage.APIID, stage.Stage
	if in.Release == "latest" {
		in.Release = ""
	}
	if err := invalidFlags(in.Validate(), map[string]string{"APIID": "<apiId>/<stage>", "Stage": "<apiId>/<stage>",
		"Release": "--release", "Actor": "--actor", "Reason": "--reason", "Notify": "--notify"}); err != nil {
		return err
	}
	c, err := dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	run, err := startExclusive(ctx, c, stage.rollbackID(), "rollback",
		func(runID string) error {
			return fmt.Errorf("a rollback of %s is already running (run %s)", stage, runID)
		},
		workflows.Rollback, in)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "rolling back the release of %s (workflow %s)\n", stage, run.GetID())
	if err := await.Result(ctx, run, rep); err != nil {
		return fmt.Errorf("rollback of %s: %w", stage, rootCause(err))
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

// rootCause strips the wrapping layers of a Temporal error down to the innermost error, whose
// message is the one an operator can act on; wrapped with %w, it stays recognisable by type.
func rootCause(err error) error {
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err
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
