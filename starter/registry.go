package main

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
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

// tokenSummary is the registry's summary of one kid, with the rejections verifiers counted.
type tokenSummary struct {
	registry.KIDSummary
	Rejected map[string]int `json:",omitempty"` // by reason
}

func tokensCmd() *cobra.Command {
	var table, output string
	var metricsURLs []string
	cmd := &cobra.Command{
		Use:   "tokens [--metrics URL]...",
		Short: "Summarise tokens per signing key version: issued, active, superseded, revoked, expired, rejected by reason",
		Long: `Summarise the token registry per signing key version (kid): issued, active, superseded, revoked,
expired. Rejections are counted where tokens are verified, not in the registry: give the /metrics
URL of each process that verifies tokens with rollgate's verifier (--metrics, repeatable) and its
rollgate_tokens_rejected_total counters are added per kid and reason.`,
		Example: `  starter tokens
  starter tokens --metrics http://authorizer-1:9090/metrics --metrics http://authorizer-2:9090/metrics -o json`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			db, err := dynamo(cmd.Context())
			if err != nil {
				return err
			}
			sum, err := (&registry.Registry{DB: db, TokensTable: table}).Summary(cmd.Context())
			if err != nil {
				return err
			}
			rejected := map[string]map[string]int{}
			for _, u := range metricsURLs {
				if err := scrapeRejections(cmd.Context(), u, rejected); err != nil {
					return err
				}
			}
			rows := make([]tokenSummary, 0, len(sum))
			for _, s := range sum {
				rows = append(rows, tokenSummary{KIDSummary: s, Rejected: rejected[s.KID]})
				delete(rejected, s.KID)
			}
			for _, kid := range slices.Sorted(maps.Keys(rejected)) { // kids the registry never issued; verifiers count every kid outside their key set as "unknown"
				rows = append(rows, tokenSummary{KIDSummary: registry.KIDSummary{KID: kid}, Rejected: rejected[kid]})
			}
			if output == "json" {
				return json.NewEncoder(os.Stdout).Encode(rows)
			}
			fmt.Printf("%-32s %8s %8s %11s %8s %8s  %s\n", "KID", "ISSUED", "ACTIVE", "SUPERSEDED", "REVOKED", "EXPIRED", "REJECTED")
			for _, s := range rows {
				var why []string
				for _, reason := range slices.Sorted(maps.Keys(s.Rejected)) {
					why = append(why, fmt.Sprintf("%s=%d", reason, s.Rejected[reason]))
				}
				kid := s.KID
				if kid == "" {
					kid = "(no kid)"
				}
				fmt.Printf("%-32s %8d %8d %11d %8d %8d  %s\n", kid, s.Issued, s.Active, s.Superseded, s.Revoked, s.Expired, strings.Join(why, " "))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&table, "tokens-table", envOr("ROLLGATE_TOKENS_TABLE", "rollgate-tokens"), "the registry's tokens table")
	cmd.Flags().StringArrayVar(&metricsURLs, "metrics", nil, "a verifier's Prometheus /metrics URL whose rejection counters are added (repeatable)")
	outputFlag(cmd.Flags(), &output)
	return cmd
}

// scrapeRejections adds the rollgate_tokens_rejected_total counters at url to into (kid → reason → n).
func scrapeRejections(ctx context.Context, url string, into map[string]map[string]int) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return &codeError{exitInvalid, fmt.Errorf("--metrics %q: %v", url, err)}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("scrape %s: %w", url, rootCause(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("scrape %s: %s", url, resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return fmt.Errorf("scrape %s: not Prometheus text: %v", url, err)
	}
	for _, m := range families["rollgate_tokens_rejected_total"].GetMetric() {
		var kid, reason string
		for _, l := range m.GetLabel() {
			switch l.GetName() {
			case "kid":
				kid = l.GetValue()
			case "reason":
				reason = l.GetValue()
			}
		}
		if into[kid] == nil {
			into[kid] = map[string]int{}
		}
		into[kid][reason] += int(m.GetCounter().GetValue())
	}
	return nil
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
	outputFlag(cmd.Flags(), &output)
	return cmd
}
