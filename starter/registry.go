package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/spf13/cobra"

	"github.com/rollgate/rollgate/activities"
	"github.com/rollgate/rollgate/internal/registry"
	"github.com/rollgate/rollgate/internal/releases"
)

// dynamo reads the registry and release history with the standard AWS chain (AWS_PROFILE,
// AWS_REGION, AWS_ENDPOINT_URL_DYNAMODB, …).
func dynamo(ctx context.Context) (*dynamodb.Client, error) {
	cfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("aws configuration: %w", err)
	}
	return dynamodb.NewFromConfig(cfg), nil
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func tokensCmd() *cobra.Command {
	var table, output string
	cmd := &cobra.Command{
		Use:   "tokens",
		Short: "Summarise the token registry per signing key version: issued, active, superseded, revoked, expired",
		RunE: func(cmd *cobra.Command, _ []string) error {
			db, err := dynamo(cmd.Context())
			if err != nil {
				return err
			}
			sum, err := (&registry.Registry{DB: db, TokensTable: table}).Summary(cmd.Context())
			if err != nil {
				return err
			}
			if output == "json" {
				return json.NewEncoder(os.Stdout).Encode(sum)
			}
			fmt.Printf("%-32s %8s %8s %11s %8s %8s\n", "KID", "ISSUED", "ACTIVE", "SUPERSEDED", "REVOKED", "EXPIRED")
			for _, s := range sum {
				fmt.Printf("%-32s %8d %8d %11d %8d %8d\n", s.KID, s.Issued, s.Active, s.Superseded, s.Revoked, s.Expired)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&table, "tokens-table", envOr("ROLLGATE_TOKENS_TABLE", "rollgate-tokens"), "the registry's tokens table")
	cmd.Flags().StringVarP(&output, "output", "o", "text", "text or json")
	return cmd
}

func historyCmd() *cobra.Command {
	var table, output string
	cmd := &cobra.Command{
		Use:   "history <apiId>/<stage>",
		Short: "List a stage's release history, newest first (what rollback --release can undo)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := stageTarget(args[0])
			if err != nil {
				return err
			}
			db, err := dynamo(cmd.Context())
			if err != nil {
				return err
			}
			entries, err := (&releases.History{DB: db, Table: table}).List(cmd.Context(), t.APIID+"/"+t.Stage, 0)
			if err != nil {
				return err
			}
			recs := make([]activities.ReleaseRecord, 0, len(entries))
			for _, e := range entries {
				var r activities.ReleaseRecord
				if err := json.Unmarshal(e.Record, &r); err != nil {
					return fmt.Errorf("release %s: %w", e.ID, err)
				}
				recs = append(recs, r)
			}
			if output == "json" {
				return json.NewEncoder(os.Stdout).Encode(recs)
			}
			if len(recs) == 0 {
				fmt.Printf("no releases recorded for %s\n", args[0])
				return nil
			}
			fmt.Printf("%-60s %-20s %-10s %-8s %s\n", "RELEASE", "PROMOTED", "DEPLOYMENT", "KEY", "FROM")
			for _, r := range recs {
				fmt.Printf("%-60s %-20s %-10s v%-7d %s\n", r.ID, r.PromotedAt.UTC().Format(time.DateTime), r.DeploymentID, r.Version, r.Snapshot.Stage.DeploymentID)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&table, "releases-table", envOr("ROLLGATE_RELEASES_TABLE", "rollgate-releases"), "the release history table")
	cmd.Flags().StringVarP(&output, "output", "o", "text", "text or json")
	return cmd
}
