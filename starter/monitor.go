package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/rollgate/rollgate/activities"
	"github.com/rollgate/rollgate/internal/keys"
	"github.com/rollgate/rollgate/workflows"
)

// monitorFlagNames are the flags behind a MonitorSpec's fields.
var monitorFlagNames = map[string]string{
	"Issuer.URL": "--issuer", "Issuer.Key.Name": "--transit-key", "Issuer.Key.Type": "--key-type", "Issuer.Algorithm": "--key-type",
	"Issuer.Audiences": "--audience", "Interval": "--interval", "CloseAfter": "--close-after", "Webhook": "--webhook", "Actor": "--actor", "Reason": "--reason",
	"RevokedUses.Threshold": "--revoked-threshold", "RevokedUses.Actions": "--revoked-actions",
	"ExpiringRenewal.Window": "--renewal-window", "ExpiringRenewal.Fraction": "--renewal-fraction", "ExpiringRenewal.Actions": "--renewal-actions",
	"ExpiredUses.Threshold": "--expired-threshold", "ExpiredUses.Actions": "--expired-actions",
	"IssuanceRate.Threshold": "--issuance-threshold", "IssuanceRate.MaxRatio": "--max-ratio", "IssuanceRate.Baseline": "--baseline",
	"IssuanceRate.Actions": "--issuance-actions", "APIKeys": "--api-key",
	"Provider": "--provider", "UnknownKID.Threshold": "--unknown-kid-threshold", "UnknownKID.MaxRatio": "--max-ratio",
	"UnknownKID.Baseline": "--baseline", "UnknownKID.ReleaseWindow": "--release-window", "UnknownKID.Actions": "--unknown-kid-actions",
	"BadSignature.Threshold": "--bad-signature-threshold", "BadSignature.MaxRatio": "--max-ratio", "BadSignature.Baseline": "--baseline",
	"BadSignature.ReleaseWindow": "--release-window", "BadSignature.Actions": "--bad-signature-actions",
	"VerifierStale.Threshold": "--stale-threshold", "VerifierStale.Actions": "--stale-actions",
	"RevokedUses.Off|ExpiringRenewal.Off|ExpiredUses.Off": "--no-revoked|--no-renewal|--no-expired",
}

func monitorCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "monitor",
		Short: "Start, stop and inspect an issuer's token lifecycle monitor",
	}
	cmd.AddCommand(monitorStartCmd(), monitorStopCmd(), monitorStatusCmd(), monitorAuditCmd())
	return cmd
}

func monitorStartCmd() *cobra.Command {
	var in workflows.MonitorSpec
	var issuer, key, keyType, audiences, revokedActions, renewalActions string
	var noRevoked, noRenewal, noExpired, noWait bool
	var expiredActions, issuanceActions string
	var apiKeys []string
	var kidActions, sigActions, staleActions string
	var maxRatio float64
	var baseline int
	var releaseWindow time.Duration
	var noUnknownKID, noBadSignature, noStale bool
	cmd := &cobra.Command{
		Use:   "start --issuer URL --transit-key KEY [--webhook NAME]",
		Short: "Start the issuer's token monitor (nothing happens when it already runs)",
		Example: `  starter monitor start --issuer https://issuer.example.com/orders --transit-key rollgate-orders \
    --webhook oncall --revoked-actions notify,revoke --renewal-actions notify,reissue \
    --provider prometheus --unknown-kid-actions notify,rollback`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			typ := keys.Type(keyType)
			in.Issuer = activities.Issuer{URL: issuer, Key: activities.KeyRef{Name: key, Type: typ}, Audiences: splitList(audiences)}
			if algs := typ.Algorithms(); len(algs) > 0 {
				in.Issuer.Algorithm = algs[0]
			}
			in.RevokedUses.Actions, in.RevokedUses.Off = splitList(revokedActions), noRevoked
			in.ExpiringRenewal.Actions, in.ExpiringRenewal.Off = splitList(renewalActions), noRenewal
			in.ExpiredUses.Actions, in.ExpiredUses.Off = splitList(expiredActions), noExpired
			for _, p := range []*workflows.RejectionPolicy{&in.UnknownKID, &in.BadSignature} {
				p.MaxRatio, p.Baseline, p.ReleaseWindow = maxRatio, baseline, releaseWindow
			}
			in.IssuanceRate.MaxRatio, in.IssuanceRate.Baseline, in.IssuanceRate.Actions = maxRatio, baseline, splitList(issuanceActions)
			keys, err := parseAPIKeys(apiKeys)
			if err != nil {
				return err
			}
			in.APIKeys = keys
			in.UnknownKID.Actions, in.UnknownKID.Off = splitList(kidActions), noUnknownKID
			in.BadSignature.Actions, in.BadSignature.Off = splitList(sigActions), noBadSignature
			in.VerifierStale.Actions, in.VerifierStale.Off = splitList(staleActions), noStale
			if err := invalidFlags(in.ValidateStart(), monitorFlagNames); err != nil {
				return err
			}
			c, err := dial(cmd.Context())
			if err != nil {
				return err
			}
			defer c.Close()
			id := workflows.MonitorID(key)
			run, err := startExclusive(cmd.Context(), c, id, "monitor", func(runID string) error {
				fmt.Printf("%s already runs (run %s): not started again, its spec unchanged (these flags are not applied: stop it first to change it)\n", id, runID)
				return nil
			}, workflows.TokenMonitor, in)
			if err != nil || run == nil {
				return err
			}
			fmt.Printf("started %s (run %s)\n", id, run.GetRunID())
			if noWait {
				return nil
			}
			return firstJudgement(cmd.Context(), c, id, run.GetRunID(), firstJudgementWait)
		},
	}
	f := cmd.Flags()
	f.StringVar(&issuer, "issuer", "", "the issuer URL (required)")
	f.StringVar(&key, "transit-key", "", "the issuer's Vault transit key: one monitor per key (required)")
	f.StringVar(&keyType, "key-type", "rsa-2048", "the transit key's type")
	f.StringVar(&audiences, "audience", "", "audiences of reissued tokens (comma-separated; required with a reissue action)")
	f.DurationVar(&in.Interval, "interval", workflows.DefaultMonitorInterval, "time between judgements (10s to 1h)")
	f.DurationVar(&in.CloseAfter, "close-after", workflows.DefaultCloseAfter, "close an incident not seen for this long")
	f.StringVar(&in.Webhook, "webhook", "", "the worker's webhook (by name, ROLLGATE_WEBHOOKS) that notify posts to")
	f.IntVar(&in.RevokedUses.Threshold, "revoked-threshold", 1, "uses of a subject's revoked tokens that open an incident")
	f.StringVar(&revokedActions, "revoked-actions", "notify", "on revoked tokens still presented: notify, revoke (the subject), revoke-family (the tokens that replaced the presented ones), disable-key (the presenting clients' API keys, --api-key)")
	f.BoolVar(&noRevoked, "no-revoked", false, "do not watch revoked tokens still presented")
	f.DurationVar(&in.ExpiringRenewal.Window, "renewal-window", 0, "a token is expiring once this much of it is left (0: --renewal-fraction of its lifetime)")
	f.Float64Var(&in.ExpiringRenewal.Fraction, "renewal-fraction", 0.1, "the fraction of a token's lifetime left that makes it expiring (up to 0.5)")
	f.StringVar(&renewalActions, "renewal-actions", "notify", "on a token expiring without a newer one: notify and/or reissue (to Vault KV)")
	f.BoolVar(&noRenewal, "no-renewal", false, "do not watch tokens expiring without renewal")
	// Unset (0, ""), the policy is the spec's unset one: on with a webhook, off without (MonitorSpec.expiredOn).
	f.IntVar(&in.ExpiredUses.Threshold, "expired-threshold", 0, "uses of a client's expired tokens that open an incident (0: 1)")
	f.StringVar(&expiredActions, "expired-actions", "", "on expired tokens still presented: notify and/or reissue (a token of the current key version to the client's Vault KV path, unless it holds a valid one); none is notify; without --webhook and this flag or --expired-threshold, the signal is off")
	f.BoolVar(&noExpired, "no-expired", false, "do not watch expired tokens still presented")
	f.BoolVar(&in.IssuanceRate.On, "issuance", false, "watch tokens issued per client per interval against each client's baseline (the registry's by-kid index)")
	f.IntVar(&in.IssuanceRate.Threshold, "issuance-threshold", workflows.DefaultIssuanceThreshold, "tokens issued to one client in an interval that may open an incident")
	f.StringVar(&issuanceActions, "issuance-actions", "notify", "on an issuance burst: notify and/or disable-key (the client's API key, --api-key)")
	f.StringArrayVar(&apiKeys, "api-key", nil, "a client's REST API key, CLIENT=KEY_ID (repeatable), which the disable-key action disables")
	f.StringVar(&in.Provider, "provider", "", "the worker's metric provider (prometheus or cloudwatch) to read the gateways' authorizer signals from: unknown kids, bad signatures, stale deny lists (empty: off)")
	f.IntVar(&in.UnknownKID.Threshold, "unknown-kid-threshold", workflows.DefaultRejectionThreshold, "unknown-kid rejections in one interval that may open an incident")
	f.StringVar(&kidActions, "unknown-kid-actions", "notify", "on an unknown-kid burst: notify and/or rollback (the stage's latest release, when it carried the rejections and was promoted within --release-window)")
	f.BoolVar(&noUnknownKID, "no-unknown-kid", false, "do not watch unknown-kid rejections")
	f.IntVar(&in.BadSignature.Threshold, "bad-signature-threshold", workflows.DefaultRejectionThreshold, "bad-signature rejections in one interval that may open an incident")
	f.StringVar(&sigActions, "bad-signature-actions", "notify", "on a bad-signature burst: notify and/or rollback")
	f.BoolVar(&noBadSignature, "no-bad-signature", false, "do not watch bad-signature rejections")
	f.Float64Var(&maxRatio, "max-ratio", workflows.DefaultMaxRatio, "once a baseline is learned, rejections and issuance must also exceed this many times it (1 to 1000)")
	f.IntVar(&baseline, "baseline", workflows.DefaultBaselineIntervals, "quiet intervals the rejection and issuance baselines (their median) are learned from")
	f.DurationVar(&releaseWindow, "release-window", workflows.DefaultReleaseWindow, "how soon after its promotion a release is linked to a rejection burst (rollback)")
	f.IntVar(&in.VerifierStale.Threshold, "stale-threshold", 1, "decisions on a stale deny list in one interval that open an incident")
	f.StringVar(&staleActions, "stale-actions", "notify", "on decisions taken on a stale deny list: notify")
	f.BoolVar(&noStale, "no-stale", false, "do not watch stale deny lists")
	f.StringVar(&in.Actor, "actor", defaultActor(), "who is asking")
	f.StringVar(&in.Reason, "reason", "", "why, e.g. a change ticket (shown by monitor audit)")
	f.BoolVar(&noWait, "no-wait", false, "return once started, without waiting for the first judgement")
	_ = cmd.MarkFlagRequired("issuer")
	_ = cmd.MarkFlagRequired("transit-key")
	return cmd
}

func monitorStopCmd() *cobra.Command {
	var req workflows.StopRequest
	cmd := &cobra.Command{
		Use:   "stop <transit-key>",
		Short: "Stop the issuer's token monitor after its judgement in progress",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if strings.TrimSpace(req.Actor) == "" {
				return &codeError{exitInvalid, fmt.Errorf("--actor: required")}
			}
			c, err := dial(cmd.Context())
			if err != nil {
				return err
			}
			defer c.Close()
			id := workflows.MonitorID(args[0])
			// No run id: a monitor continues as new, and the stop goes to whichever run is current.
			h, err := c.UpdateWorkflow(cmd.Context(), client.UpdateWorkflowOptions{WorkflowID: id, UpdateName: workflows.UpdateStopMonitor,
				WaitForStage: client.WorkflowUpdateStageCompleted, Args: []any{req}})
			if err == nil {
				err = h.Get(cmd.Context(), nil)
			}
			if err != nil {
				return monitorError(id, "stop", err)
			}
			fmt.Printf("stopping %s\n", id)
			return nil
		},
	}
	cmd.Flags().StringVar(&req.Actor, "actor", defaultActor(), "who is asking")
	cmd.Flags().StringVar(&req.Reason, "reason", "", "why")
	return cmd
}

// firstJudgementWait bounds how long start waits for a new monitor's first judgement, which comes
// at once when a worker polls the task queue.
const firstJudgementWait = 30 * time.Second

// firstJudgement waits for a new monitor's first judgement and says what it could not observe (a
// provider the worker lacks, a transit key that does not exist, a registry it cannot read): a
// monitor that cannot act must say so at start, not in a status nobody reads. The monitor runs on
// either way; only a signal it cannot observe makes the start exit 1.
func firstJudgement(ctx context.Context, c *temporalConn, id, runID string, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	for {
		v, err := c.QueryWorkflow(ctx, id, runID, workflows.QueryMonitorStatus)
		var st workflows.MonitorStatus
		if err == nil {
			err = v.Get(&st)
		}
		if err == nil && st.Judgements > 0 {
			var blind []string
			for _, s := range st.Signals {
				if s.Error != "" {
					blind = append(blind, s.Name+": "+s.Error)
				}
			}
			if len(blind) > 0 {
				return fmt.Errorf("%s started, but its first judgement could not observe %s (it runs on and tries again each interval; fix the worker's configuration or the flags, or stop it)",
					id, strings.Join(blind, "; "))
			}
			fmt.Printf("first judgement: every signal observed (starter monitor status %s)\n", strings.TrimPrefix(id, "monitor/"))
			return nil
		}
		if time.Now().After(deadline) {
			fmt.Printf("no judgement yet after %s: is a worker polling task queue %s? (starter monitor status %s)\n", wait, workflows.TaskQueue, strings.TrimPrefix(id, "monitor/"))
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func monitorStatusCmd() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "status <transit-key>",
		Short: "Each signal's value and threshold, and the open incidents with their actions",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := dial(cmd.Context())
			if err != nil {
				return err
			}
			defer c.Close()
			id := workflows.MonitorID(args[0])
			v, err := c.QueryWorkflow(cmd.Context(), id, "", workflows.QueryMonitorStatus)
			if err != nil {
				return monitorError(id, "status", err)
			}
			var st monitorState
			if err := v.Get(&st.MonitorStatus); err != nil {
				return fmt.Errorf("monitor status of %s: %w", id, err)
			}
			// A query answers a closed monitor too, from its last state: say that it stopped.
			st.Running = true
			if desc, err := c.DescribeWorkflowExecution(cmd.Context(), id, ""); err == nil {
				info := desc.GetWorkflowExecutionInfo()
				if info.GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
					st.Running, st.Ended = false, strings.ToLower(strings.TrimPrefix(info.GetStatus().String(), "WORKFLOW_EXECUTION_STATUS_"))
					if ct := info.GetCloseTime(); ct != nil {
						st.EndedAt = ct.AsTime()
					}
				}
			}
			if output == "json" {
				return json.NewEncoder(os.Stdout).Encode(st)
			}
			printMonitorStatus(os.Stdout, st)
			return nil
		},
	}
	outputFlag(cmd.Flags(), &output)
	return cmd
}

// monitorState is a monitor's status as it answered, and whether it still runs.
type monitorState struct {
	workflows.MonitorStatus
	Running bool      `json:"running"`
	Ended   string    `json:"ended,omitempty"` // completed, terminated, …
	EndedAt time.Time `json:"endedAt,omitzero"`
}

func printMonitorStatus(w io.Writer, st monitorState) {
	fmt.Fprintf(w, "issuer %s, every %s, %d judgements", st.Issuer, st.Interval, st.Judgements)
	if st.LastJudged.IsZero() {
		fmt.Fprint(w, ", not judged yet")
	} else {
		fmt.Fprintf(w, ", last %s", st.LastJudged.UTC().Format(time.RFC3339))
	}
	switch {
	case !st.Running:
		fmt.Fprintf(w, " (stopped: %s", st.Ended)
		if !st.EndedAt.IsZero() {
			fmt.Fprintf(w, " at %s", st.EndedAt.UTC().Format(time.RFC3339))
		}
		fmt.Fprint(w, "; its last state follows)")
	case st.Stopping:
		fmt.Fprint(w, " (stopping)")
	}
	fmt.Fprintln(w)
	for _, s := range st.Signals {
		fmt.Fprintf(w, "  %-20s value %g, threshold %g", s.Name, s.Value, s.Threshold)
		if s.Learned > 0 {
			fmt.Fprintf(w, ", baseline %g (%d quiet intervals", s.Baseline, s.Learned)
			if s.Learned < workflows.MinBaselineIntervals {
				fmt.Fprintf(w, ", judged from %d", workflows.MinBaselineIntervals)
			}
			fmt.Fprint(w, ")")
		}
		fmt.Fprintf(w, ", actions %s", strings.Join(s.Actions, ","))
		if s.Truncated {
			fmt.Fprint(w, " (reads truncated)")
		}
		if s.Error != "" {
			fmt.Fprintf(w, " — not observed: %s", s.Error)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "open incidents: %d (closed %d, not opened for lack of room %d)\n", len(st.Incidents), st.Closed, st.Overflow)
	for _, inc := range st.Incidents {
		fmt.Fprintf(w, "  %s %s since %s, last seen %s", inc.Signal, inc.Key, inc.OpenedAt.UTC().Format(time.RFC3339), inc.LastSeen.UTC().Format(time.RFC3339))
		if inc.Summary != "" {
			fmt.Fprint(w, ": "+inc.Summary)
		}
		fmt.Fprintln(w)
		for _, a := range inc.Actions {
			state := "pending"
			switch {
			case a.Done:
				state = "done: " + a.Result
			case a.Error != "":
				state = fmt.Sprintf("failed %d times: %s", a.Attempts, a.Error)
			}
			fmt.Fprintf(w, "    %s (%s): %s\n", a.Action, a.Reason, state)
		}
	}
}

// parseAPIKeys reads --api-key CLIENT=KEY_ID values into the spec's sorted list.
func parseAPIKeys(values []string) ([]workflows.ClientAPIKey, error) {
	var out []workflows.ClientAPIKey
	for _, v := range values {
		client, key, ok := strings.Cut(v, "=")
		if !ok || client == "" || key == "" {
			return nil, &codeError{exitInvalid, fmt.Errorf("--api-key %q: want CLIENT=KEY_ID", v)}
		}
		out = append(out, workflows.ClientAPIKey{Client: client, KeyID: key})
	}
	slices.SortFunc(out, func(a, b workflows.ClientAPIKey) int { return strings.Compare(a.Client, b.Client) })
	return out, nil
}

func splitList(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// monitorError says what a refused monitor request means: most often, that no monitor runs.
func monitorError(id, what string, err error) error {
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		return fmt.Errorf("no running monitor %s (start it: starter monitor start)", id)
	}
	return fmt.Errorf("%s %s refused: %w", what, id, rootCause(err))
}
