package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.temporal.io/sdk/client"

	"github.com/rollgate/rollgate/activities"
	"github.com/rollgate/rollgate/internal/await"
	"github.com/rollgate/rollgate/internal/keys"
	"github.com/rollgate/rollgate/workflows"
)

// revocationFlagNames are the flags behind a RevocationSpec's fields.
var revocationFlagNames = map[string]string{
	"Issuer.URL": "--issuer", "Issuer.Key.Name": "--transit-key", "Issuer.Key.Type": "--key-type", "Issuer.Algorithm": "--key-type",
	"Issuer.Audiences": "--audience", "JTIs|Subject|KID|IssuedBefore": "--subject|--kid|--jti|--before",
	"JTIs": "--jti", "Subject": "--subject", "KID": "--kid", "IssuedBefore": "--before", "Proof": "--proof",
	"Flush": "--flush", "FlushAfter": "--flush-after", "Actor": "--actor", "Reason": "--reason",
}

func revokeCmd() *cobra.Command {
	var in workflows.RevocationSpec
	var issuer, key, keyType, audiences, proof, before, jtis, output string
	var flush []string
	var noFlush bool
	cmd := &cobra.Command{
		Use:   "revoke (--subject S | --kid KID | --jti J1,J2 | --before TIME) --issuer URL --transit-key KEY --reason TEXT",
		Short: "Revoke tokens, flush the gateway's authorizer caches, and prove at a stage that the gateway rejects them",
		Long: `Revoke tokens, flush the gateway's authorizer caches, and prove at a stage that the gateway rejects them.

API Gateway caches an authorizer's Allow for the authorizer's result TTL (up to an hour): a revoked
token keeps working at a stage until the stage's authorizer cache is flushed. Once the revocation is
written (and --flush-after has let the authorizers' deny lists refresh), revoke flushes the caches of
every stage whose latest recorded release used the issuer, the --flush stages and the --proof stage.`,
		Example: `  starter revoke --subject billing --issuer https://issuer.example.com/orders --transit-key rollgate-orders \
    --reason "laptop stolen" --proof a1b2c3d4e5/prod --flush f6g7h8i9j0/prod`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			typ := keys.Type(keyType)
			in.Issuer = activities.Issuer{URL: issuer, Key: activities.KeyRef{Name: key, Type: typ}, Audiences: splitList(audiences)}
			if algs := typ.Algorithms(); len(algs) > 0 {
				in.Issuer.Algorithm = algs[0]
			}
			if jtis != "" {
				in.JTIs = strings.Split(jtis, ",")
			}
			var err error
			if before != "" {
				if in.IssuedBefore, err = time.Parse(time.RFC3339, before); err != nil {
					return &codeError{exitInvalid, fmt.Errorf("--before %q: use RFC 3339, such as 2026-11-24T09:00:00Z", before)}
				}
			}
			if proof != "" {
				if in.Proof, err = stageTarget(proof); err != nil {
					return err
				}
			}
			if err := flushStages(&in, flush, noFlush); err != nil {
				return err
			}
			if err := invalidFlags(in.Validate(), revocationFlagNames); err != nil {
				return err
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
			if err := await.Result(cmd.Context(), run, &rep); err != nil {
				return fmt.Errorf("revocation %s: %w", run.GetID(), rootCause(err))
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
			printFlush(rep)
			if in.Proof != nil && rep.Samples > 0 && !rep.Proven {
				return errors.New("the gateway still accepts revoked tokens: see the verifier's deny-list refresh")
			}
			if rep.FlushError != "" {
				return fmt.Errorf("revoked, but not every authorizer cache was flushed (an Allow cached before lasts until the authorizer's result TTL ends): %s", rep.FlushError)
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
	f.StringVar(&audiences, "audience", "", "audiences of sample tokens (comma-separated; required with --proof)")
	f.StringVar(&proof, "proof", "", "a stage <apiId>/<stage> where sample tokens prove the revocation (its authorizer cache is flushed)")
	f.StringArrayVar(&flush, "flush", nil, "a REST API's stage <apiId>/<stage> whose authorizer cache is flushed after the revocation, beside those found in the release history (repeatable)")
	f.BoolVar(&noFlush, "no-flush", false, "flush no stage found in the release history (only --proof's): a cached Allow then lasts until its TTL ends")
	f.DurationVar(&in.FlushAfter, "flush-after", 2*time.Second, "wait this long after the revocation before flushing: the authorizers' ROLLGATE_DENYLIST_REFRESH plus one refresh")
	f.StringVar(&in.Reason, "reason", "", "why (required)")
	f.StringVar(&in.Actor, "actor", defaultActor(), "who is asking")
	outputFlag(f, &output)
	_ = cmd.MarkFlagRequired("issuer")
	_ = cmd.MarkFlagRequired("transit-key")
	return cmd
}

// flushStages sets which stages' authorizer caches the revocation flushes: the named ones, and
// unless noFlush every stage whose latest release used the issuer.
func flushStages(in *workflows.RevocationSpec, named []string, noFlush bool) error {
	if noFlush && len(named) > 0 {
		return &codeError{exitInvalid, errors.New("--no-flush: cannot be combined with --flush")}
	}
	for _, arg := range named {
		t, err := stageTarget(arg)
		if err != nil {
			return &codeError{exitInvalid, fmt.Errorf("--flush: %w", err)}
		}
		in.Flush = append(in.Flush, *t)
	}
	in.FlushIssuerStages = !noFlush
	return nil
}

// printFlush says which stages' authorizer caches were flushed, and which could not be.
func printFlush(rep workflows.RevocationReport) {
	if len(rep.Flushed) > 0 {
		names := make([]string, len(rep.Flushed))
		for i, t := range rep.Flushed {
			names[i] = stageName(t)
		}
		fmt.Printf("flushed the authorizer caches of %s\n", strings.Join(names, ", "))
	} else if rep.FlushError == "" {
		fmt.Println("flushed no authorizer cache")
	}
	for _, s := range rep.FlushSkipped {
		fmt.Printf("not flushed: %s: %s\n", stageName(s.Target), s.Reason)
	}
}

// stageName names a stage as the flags do, with its kind when it is not a REST API's.
func stageName(t activities.Target) string {
	if k := t.Describe().Kind; k != "rest" {
		return fmt.Sprintf("%s/%s (%s)", t.APIID, t.Stage, t.Kind)
	}
	return t.APIID + "/" + t.Stage
}
