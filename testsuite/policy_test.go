package testsuite_test

import (
	"context"
	"errors"
	"os"
	"strconv"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"

	"github.com/rollgate/rollgate/internal/keys"
	"github.com/rollgate/rollgate/workflows"
)

// The worker runs a release and a verified rollback with a Vault token that holds only the
// documented policy (deploy/vault-policy.hcl), and that token can do nothing else of note.
func TestVaultPolicy_WorkerReleasesAndRollsBackWithOnlyThePolicy(t *testing.T) {
	ctx := context.Background()
	policy, err := os.ReadFile("../deploy/vault-policy.hcl")
	if err != nil {
		t.Fatal(err)
	}
	root, err := shared.Bed(t).Vault.Client()
	if err != nil {
		t.Fatal(err)
	}
	if err := root.Sys().PutPolicyWithContext(ctx, "rollgate-worker", string(policy)); err != nil {
		t.Fatalf("Vault refuses the policy: %v", err)
	}
	sec, err := root.Auth().Token().CreateWithContext(ctx, &vault.TokenCreateRequest{Policies: []string{"rollgate-worker"}, TTL: "1h"})
	if err != nil {
		t.Fatal(err)
	}
	token := sec.Auth.ClientToken

	r := provision(t, "policyw")
	r.StopWorker()
	w := newWorkerProcess(t, buildWorker(t))
	w.env = append(w.env, "VAULT_TOKEN="+token) // the last value wins
	w.start(t)
	defer w.kill()

	if res := deployResult(t, startDeployment(t, r, "v2", 10*time.Second)); res.Outcome != workflows.OutcomePromoted {
		log, _ := os.ReadFile(w.log.Name())
		t.Fatalf("release with the policy's token: %s %+v\nworker log:\n%s", res.Outcome, res.Rollback, log)
	}
	if res := deployResult(t, startDeployment(t, r, "v3", 10*time.Second)); res.Outcome != workflows.OutcomeRolledBack || !res.Rollback.Verified {
		log, _ := os.ReadFile(w.log.Name())
		t.Fatalf("rollback with the policy's token: %s %+v\nworker log:\n%s", res.Outcome, res.Rollback, log)
	}

	limited, err := root.Clone()
	if err != nil {
		t.Fatal(err)
	}
	limited.SetToken(token)
	// A key in the same transit mount that is not rollgate's.
	outside := "team-payments-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	if _, err := root.Logical().WriteWithContext(ctx, "transit/keys/"+outside, map[string]any{"type": "rsa-2048"}); err != nil {
		t.Fatal(err)
	}
	for _, denied := range []struct {
		what string
		do   func() error
	}{
		{"export a key", func() error {
			_, err := limited.Logical().ReadWithContext(ctx, "transit/export/signing-key/"+r.Key)
			return err
		}},
		{"change a key's config", func() error {
			_, err := limited.Logical().WriteWithContext(ctx, "transit/keys/"+r.Key+"/config", map[string]any{"deletion_allowed": true})
			return err
		}},
		{"sign with a key outside the rollgate- prefix", func() error {
			_, err := limited.Logical().WriteWithContext(ctx, "transit/sign/"+outside, map[string]any{"input": "aGVsbG8="})
			return err
		}},
		{"rotate a key outside the rollgate- prefix", func() error {
			_, err := limited.Logical().WriteWithContext(ctx, "transit/keys/"+outside+"/rotate", nil)
			return err
		}},
		{"create a key outside the rollgate- prefix", func() error {
			_, err := limited.Logical().WriteWithContext(ctx, "transit/keys/"+outside+"-2", map[string]any{"type": "rsa-2048"})
			return err
		}},
		{"make one of its keys exportable", func() error {
			_, err := limited.Logical().WriteWithContext(ctx, "transit/keys/"+r.Key+"/config", map[string]any{"exportable": true})
			return err
		}},
		{"trim one of its keys' old versions", func() error {
			_, err := limited.Logical().WriteWithContext(ctx, "transit/keys/"+r.Key+"/trim", map[string]any{"min_available_version": 2})
			return err
		}},
		{"create one of its keys exportable", func() error {
			_, err := limited.Logical().WriteWithContext(ctx, "transit/keys/"+keys.NamePrefix+outside, map[string]any{"type": "rsa-2048", "exportable": true})
			return err
		}},
		{"delete a key", func() error { _, err := limited.Logical().DeleteWithContext(ctx, "transit/keys/"+r.Key); return err }},
		{"read other secrets", func() error { _, err := limited.KVv2("secret").Get(ctx, "team/db-password"); return err }},
		{"write the codec key", func() error {
			_, err := limited.KVv2("secret").Put(ctx, "rollgate/codec", map[string]any{"current": "x"})
			return err
		}},
		{"read policies", func() error { _, err := limited.Sys().GetPolicyWithContext(ctx, "rollgate-worker"); return err }},
	} {
		err := denied.do()
		var re *vault.ResponseError
		if !errors.As(err, &re) || re.StatusCode != 403 {
			t.Errorf("the policy lets the worker %s (err %v)", denied.what, err)
		}
	}
}
