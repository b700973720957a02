package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/rollgate/rollgate/activities"
	"github.com/rollgate/rollgate/internal/await"
	"github.com/rollgate/rollgate/internal/keys"
	"github.com/rollgate/rollgate/workflows"
)

// rotationFlags are the flags that describe a key rotation, shared by rotate-key and
// schedule-rotation.
type rotationFlags struct {
	in                                                              workflows.KeyRotationSpec
	issuer, key, keyType, bucket, prefix, audiences, clients, proof string
	cacheTTL                                                        time.Duration
}

func (r *rotationFlags) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&r.issuer, "issuer", "", "the issuer URL (required)")
	f.StringVar(&r.key, "transit-key", "", "the issuer's Vault transit key (required)")
	f.StringVar(&r.keyType, "key-type", "rsa-2048", "the transit key's type")
	f.StringVar(&r.bucket, "jwks-bucket", "", "the S3 bucket where the JWKS is published (required)")
	f.StringVar(&r.prefix, "jwks-prefix", "", "the object key prefix of the issuer's .well-known/")
	f.DurationVar(&r.cacheTTL, "cache-ttl", 5*time.Minute, "how long verifiers cache the JWKS")
	f.StringVar(&r.audiences, "audience", "", "audiences of reissued and probe tokens (comma-separated; required with --clients or --proof)")
	f.StringVar(&r.clients, "clients", "", "clients whose tokens are reissued (comma-separated)")
	f.DurationVar(&r.in.TokenTTL, "token-ttl", time.Hour, "lifetime of reissued tokens")
	f.StringVar(&r.proof, "proof", "", "a stage <apiId>/<stage> where token health is proven")
	f.StringVar(&r.in.OnRollback, "on-rollback", "revoke", "what happens to new-key tokens if the rotation rolls back: keep or revoke")
	f.StringVar(&r.in.Reason, "reason", "", "why (required)")
	f.StringVar(&r.in.Actor, "actor", defaultActor(), "who is asking")
	f.StringVar(&r.in.Notify, "notify", "", "a webhook name from the worker's ROLLGATE_WEBHOOKS, told when the key rotated or the rotation rolled back")
}

// rotationFlagNames are the flags behind a KeyRotationSpec's fields.
var rotationFlagNames = map[string]string{
	"Issuer.URL": "--issuer", "Issuer.Key.Name": "--transit-key", "Issuer.Key.Type": "--key-type", "Issuer.Algorithm": "--key-type",
	"Issuer.Audiences": "--audience", "Issuer.Bucket": "--jwks-bucket", "Issuer.Prefix": "--jwks-prefix", "Issuer.CacheTTL": "--cache-ttl",
	"Clients": "--clients", "TokenTTL": "--token-ttl", "Probe": "--proof", "OnRollback": "--on-rollback",
	"Actor": "--actor", "Reason": "--reason", "Notify": "--notify",
}

// spec builds and validates the rotation the flags describe.
func (r *rotationFlags) spec() (workflows.KeyRotationSpec, error) {
	in := r.in
	typ := keys.Type(r.keyType)
	in.Issuer = activities.Issuer{URL: r.issuer, Key: activities.KeyRef{Name: r.key, Type: typ},
		Audiences: splitList(r.audiences), Bucket: r.bucket, Prefix: r.prefix, CacheTTL: r.cacheTTL}
	if algs := typ.Algorithms(); len(algs) > 0 {
		in.Issuer.Algorithm = algs[0]
	}
	if r.clients != "" {
		in.Clients = strings.Split(r.clients, ",")
	}
	if r.proof != "" {
		var err error
		if in.Probe, err = stageTarget(r.proof); err != nil {
			return in, err
		}
	}
	if err := invalidFlags(in.Validate(), rotationFlagNames); err != nil {
		return in, err
	}
	if err := keys.CheckName(in.Issuer.Key.Name); err != nil {
		return in, &codeError{exitInvalid, fmt.Errorf("--transit-key: %w", err)}
	}
	return in, nil
}

// rotationID is the workflow id of a key's rotations; scheduled ones get the schedule's time
// appended to it.
func rotationID(key string) string { return "rotate/" + key }

// runningRotation finds a rotation of key already running, started by hand or by a schedule.
func runningRotation(ctx context.Context, c client.Client, key string) (string, error) {
	resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
		Query:    fmt.Sprintf("WorkflowType = 'KeyRotation' AND ExecutionStatus = 'Running' AND WorkflowId STARTS_WITH %q", rotationID(key)),
		PageSize: 1,
	})
	if err != nil {
		return "", fmt.Errorf("list running rotations: %w", rootCause(err))
	}
	if ex := resp.GetExecutions(); len(ex) > 0 {
		return ex[0].GetExecution().GetWorkflowId(), nil
	}
	return "", nil
}

func rotateKeyCmd() *cobra.Command {
	var r rotationFlags
	var output string
	cmd := &cobra.Command{
		Use:   "rotate-key --issuer URL --transit-key KEY --jwks-bucket BUCKET --reason TEXT",
		Short: "Rotate an issuer's signing key outside a release, proving token health, and wait for the outcome",
		Example: `  starter rotate-key --issuer https://issuer.example.com/orders --transit-key rollgate-orders \
    --jwks-bucket example-issuer --jwks-prefix orders/ --clients billing,shipping --proof a1b2c3d4e5/prod \
    --reason "quarterly rotation"`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			in, err := r.spec()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			c, err := dial(ctx)
			if err != nil {
				return err
			}
			defer c.Close()
			if id, err := runningRotation(ctx, c, r.key); err != nil || id != "" {
				if err == nil {
					err = fmt.Errorf("a rotation of %s is already running (workflow %s)", r.key, id)
				}
				return err
			}
			run, err := startExclusive(ctx, c, rotationID(r.key), "rotation", func(runID string) error {
				return fmt.Errorf("a rotation of %s is already running (run %s)", r.key, runID)
			}, workflows.KeyRotation, in)
			if err != nil {
				return err
			}
			fmt.Fprintf(os.Stderr, "rotating %s (workflow %s)\n", r.key, run.GetID())
			var res workflows.KeyRotationResult
			if err := await.Result(ctx, run, &res); err != nil {
				return fmt.Errorf("rotation of %s: %w", r.key, rootCause(err))
			}
			if output == "json" {
				_ = json.NewEncoder(os.Stdout).Encode(res)
			} else {
				printTimeline(os.Stdout, "  ", res.Timeline)
				if res.Rollback != nil {
					printReport(os.Stdout, *res.Rollback)
				}
				if res.Current == 0 {
					fmt.Printf("outcome: %s before anything changed (the key's state could not be read)\n", res.Outcome)
				} else {
					fmt.Printf("outcome: %s; %s signs with version %d\n", res.Outcome, r.key, res.Current)
				}
			}
			if res.Outcome == workflows.OutcomeRolledBack {
				return &codeError{exitRolledBack, fmt.Errorf("rotation of %s rolled back", r.key)}
			}
			return nil
		},
	}
	r.register(cmd)
	outputFlag(cmd.Flags(), &output)
	return cmd
}
