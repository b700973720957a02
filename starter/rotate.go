package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/rollgate/rollgate/activities"
	"github.com/rollgate/rollgate/internal/keys"
	"github.com/rollgate/rollgate/workflows"
)

func rotateKeyCmd() *cobra.Command {
	var in workflows.KeyRotationSpec
	var issuer, key, keyType, bucket, prefix, audiences, clients, proof, output string
	var cacheTTL time.Duration
	cmd := &cobra.Command{
		Use:   "rotate-key --issuer URL --transit-key KEY --jwks-bucket BUCKET --reason TEXT",
		Short: "Rotate an issuer's signing key outside a release, proving token health, and wait for the outcome",
		Example: `  starter rotate-key --issuer https://issuer.example.com/orders --transit-key orders-issuer \
    --jwks-bucket example-issuer --jwks-prefix orders/ --clients billing,shipping --proof a1b2c3d4e5/prod \
    --reason "quarterly rotation"`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			typ, err := keys.ParseType(keyType)
			if err != nil {
				return &codeError{exitInvalid, err}
			}
			if in.Reason == "" {
				return &codeError{exitInvalid, errors.New("rotate-key needs --reason")}
			}
			in.Issuer = activities.Issuer{URL: issuer, Key: activities.KeyRef{Name: key, Type: typ}, Algorithm: typ.Algorithms()[0],
				Audiences: strings.Split(audiences, ","), Bucket: bucket, Prefix: prefix, CacheTTL: cacheTTL}
			if clients != "" {
				in.Clients = strings.Split(clients, ",")
			}
			if proof != "" {
				if in.Probe, err = stageTarget(proof); err != nil {
					return err
				}
			}
			c, err := dial(cmd.Context())
			if err != nil {
				return err
			}
			defer c.Close()
			run, err := startExclusive(cmd.Context(), c, "rotate/"+key, "rotation", func(runID string) error {
				return fmt.Errorf("a rotation of %s is already running (run %s)", key, runID)
			}, workflows.KeyRotation, in)
			if err != nil {
				return err
			}
			fmt.Fprintf(os.Stderr, "rotating %s (workflow %s)\n", key, run.GetID())
			var res workflows.KeyRotationResult
			if err := run.Get(cmd.Context(), &res); err != nil {
				return fmt.Errorf("rotation of %s: %v", key, rootCause(err))
			}
			if output == "json" {
				_ = json.NewEncoder(os.Stdout).Encode(res)
			} else {
				for _, e := range res.Timeline {
					fmt.Printf("  %s  %-13s %s\n", e.At.Format(time.TimeOnly), e.Phase, e.Message)
				}
				if res.Rollback != nil {
					printReport(os.Stdout, *res.Rollback)
				}
				fmt.Printf("outcome: %s; %s signs with version %d\n", res.Outcome, key, res.Current)
			}
			if res.Outcome == workflows.OutcomeRolledBack {
				return &codeError{exitRolledBack, fmt.Errorf("rotation of %s rolled back", key)}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&issuer, "issuer", "", "the issuer URL (required)")
	f.StringVar(&key, "transit-key", "", "the issuer's Vault transit key (required)")
	f.StringVar(&keyType, "key-type", "rsa-2048", "the transit key's type")
	f.StringVar(&bucket, "jwks-bucket", "", "the S3 bucket where the JWKS is published (required)")
	f.StringVar(&prefix, "jwks-prefix", "", "the object key prefix of the issuer's .well-known/")
	f.DurationVar(&cacheTTL, "cache-ttl", 5*time.Minute, "how long verifiers cache the JWKS")
	f.StringVar(&audiences, "audience", "orders", "audiences of reissued and probe tokens (comma-separated)")
	f.StringVar(&clients, "clients", "", "clients whose tokens are reissued (comma-separated)")
	f.DurationVar(&in.TokenTTL, "token-ttl", time.Hour, "lifetime of reissued tokens")
	f.StringVar(&proof, "proof", "", "a stage <apiId>/<stage> where token health is proven")
	f.StringVar(&in.OnRollback, "on-rollback", "revoke", "what happens to new-key tokens if the rotation rolls back: keep or revoke")
	f.StringVar(&in.Reason, "reason", "", "why (required)")
	f.StringVar(&in.Actor, "actor", defaultActor(), "who is asking")
	f.StringVarP(&output, "output", "o", "text", "text or json")
	for _, name := range []string{"issuer", "transit-key", "jwks-bucket"} {
		_ = cmd.MarkFlagRequired(name)
	}
	return cmd
}
