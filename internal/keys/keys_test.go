package keys_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"testing"

	vault "github.com/hashicorp/vault/api"

	"github.com/rollgate/rollgate/internal/keys"
	"github.com/rollgate/rollgate/testsuite"
)

var shared testsuite.Shared

func TestMain(m *testing.M) { os.Exit(shared.Run(m)) }

func vaultClient(t *testing.T) *vault.Client {
	t.Helper()
	bed := shared.Bed(t)
	c, err := bed.Vault.Client()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestEnsureKey_CreatesOnceAndRefusesAnotherType(t *testing.T) {
	ctx := context.Background()
	tr := &keys.Transit{Client: vaultClient(t)}
	k, err := tr.EnsureKey(ctx, "ensure-a", keys.ECDSAP256)
	if err != nil || k.LatestVersion != 1 || k.Type != keys.ECDSAP256 || len(k.PublicKeys) != 1 {
		t.Fatalf("EnsureKey = %+v, %v", k, err)
	}
	again, err := tr.EnsureKey(ctx, "ensure-a", keys.ECDSAP256)
	if err != nil || again.LatestVersion != 1 {
		t.Fatalf("EnsureKey again = %+v, %v", again, err)
	}
	if _, err := tr.EnsureKey(ctx, "ensure-a", keys.RSA2048); !errors.Is(err, keys.ErrInvalid) {
		t.Fatalf("EnsureKey with another type: %v, want ErrInvalid", err)
	}
	if _, err := tr.EnsureKey(ctx, "ensure-b", "aes256-gcm96"); !errors.Is(err, keys.ErrInvalid) {
		t.Fatalf("EnsureKey of a non-signing type: %v", err)
	}
	raw, err := vaultClient(t).Logical().Read("transit/keys/ensure-a")
	if err != nil || raw.Data["auto_rotate_period"].(interface{ String() string }).String() != "0" {
		t.Fatalf("auto_rotate_period %v, %v", raw.Data["auto_rotate_period"], err)
	}
}

// A rotation retried after the caller crashed between Vault's answer and its own (the activity
// is run again with the same expected version) makes exactly one new version.
func TestRotate_RetriedAfterACrashMakesExactlyOneVersion(t *testing.T) {
	ctx := context.Background()
	tr := &keys.Transit{Client: vaultClient(t)}
	if _, err := tr.EnsureKey(ctx, "rotate-a", keys.RSA2048); err != nil {
		t.Fatal(err)
	}
	first, err := tr.Rotate(ctx, "rotate-a", 1)
	if err != nil || first != 2 {
		t.Fatalf("first rotate: v%d, %v", first, err)
	}
	// The first attempt's answer was lost; the retry expects v1 again.
	retried, err := tr.Rotate(ctx, "rotate-a", 1)
	if err != nil || retried != 2 {
		t.Fatalf("retried rotate: v%d, %v", retried, err)
	}
	k, err := tr.ReadKey(ctx, "rotate-a")
	if err != nil || k.LatestVersion != 2 {
		t.Fatalf("latest_version %d after a retried rotation, want 2 (%v)", k.LatestVersion, err)
	}
	if _, err := tr.Rotate(ctx, "rotate-a", 7); !errors.Is(err, keys.ErrConflict) {
		t.Fatalf("rotate with a stale expectation: %v, want ErrConflict", err)
	}
	if _, err := tr.Sign(ctx, "rotate-a", keys.RSA2048, 3, "RS256", []byte("x")); err == nil {
		t.Fatal("signed with a version that does not exist")
	}
	if _, err := tr.Sign(ctx, "rotate-a", keys.RSA2048, 1, "ES256", []byte("x")); !errors.Is(err, keys.ErrInvalid) {
		t.Fatalf("ES256 with an RSA key: %v", err)
	}
}

func TestLabels_MovesAreCheckAndSetAndALostRaceIsReported(t *testing.T) {
	ctx := context.Background()
	store := &keys.LabelStore{Client: vaultClient(t)}
	l, err := store.Move(ctx, "labels-a", keys.Restore(keys.Labels{Current: 1}))
	if err != nil || l.Current != 1 {
		t.Fatalf("initial labels %+v, %v", l, err)
	}
	if l, err = store.Move(ctx, "labels-a", keys.SetPending(2)); err != nil || l.Pending != 2 {
		t.Fatalf("set pending: %+v, %v", l, err)
	}
	before, _ := store.Read(ctx, "labels-a")
	if l, err = store.Move(ctx, "labels-a", keys.SetPending(2)); err != nil || l.Pending != 2 {
		t.Fatalf("repeated set pending: %+v, %v", l, err)
	}
	after, _ := store.Read(ctx, "labels-a")
	if after.KVVersion != before.KVVersion {
		t.Fatalf("a no-op move wrote a new KV version (%d → %d)", before.KVVersion, after.KVVersion)
	}

	// Another writer moves the labels between our read and our write.
	other := &keys.LabelStore{Client: vaultClient(t)}
	_, err = store.Move(ctx, "labels-a", func(cur keys.Labels) (keys.Labels, error) {
		if _, err := other.Move(ctx, "labels-a", keys.Promote(2)); err != nil {
			t.Fatal(err)
		}
		return keys.Labels{Current: 1, Pending: 3}, nil
	})
	if !errors.Is(err, keys.ErrConflict) {
		t.Fatalf("lost race: %v, want ErrConflict", err)
	}
	got, err := store.Read(ctx, "labels-a")
	if err != nil || got.Labels != (keys.Labels{Current: 2, Previous: 1}) {
		t.Fatalf("labels after the lost race %+v, %v; the winner's must stand", got.Labels, err)
	}
	if _, err := store.Move(ctx, "labels-a", keys.Promote(5)); !errors.Is(err, keys.ErrConflict) {
		t.Fatalf("promoting a version that is not pending: %v", err)
	}
	if l, err = store.Move(ctx, "labels-a", keys.Retire(1)); err != nil || l != (keys.Labels{Current: 2}) {
		t.Fatalf("retire: %+v, %v", l, err)
	}
	if _, err := store.Move(ctx, "labels-a", keys.Restore(keys.Labels{Current: 2, Pending: 2})); !errors.Is(err, keys.ErrInvalid) {
		t.Fatalf("one version in two roles: %v", err)
	}
}

func TestNewVaultClient_LogsInWithAppRole(t *testing.T) {
	bed := shared.Bed(t)
	ctx := context.Background()
	root := vaultClient(t)
	if err := root.Sys().EnableAuthWithOptions("approle", &vault.EnableAuthOptions{Type: "approle"}); err != nil {
		t.Fatal(err)
	}
	if err := root.Sys().PutPolicy("rollgate-worker", `path "transit/keys/*" { capabilities = ["read"] }`); err != nil {
		t.Fatal(err)
	}
	if _, err := root.Logical().Write("auth/approle/role/worker", map[string]any{"token_policies": "rollgate-worker", "token_ttl": "1h"}); err != nil {
		t.Fatal(err)
	}
	roleID, err := root.Logical().Read("auth/approle/role/worker/role-id")
	if err != nil {
		t.Fatal(err)
	}
	secretID, err := root.Logical().Write("auth/approle/role/worker/secret-id", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("VAULT_ADDR", bed.Vault.Addr)
	t.Setenv("VAULT_TOKEN", "")
	c, err := keys.NewVaultClient(ctx, keys.VaultAuth{
		Method: "approle", RoleID: roleID.Data["role_id"].(string), SecretID: secretID.Data["secret_id"].(string),
	}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if c.Token() == "" || c.Token() == bed.Vault.Token {
		t.Fatal("AppRole login did not produce its own token")
	}
	tr := &keys.Transit{Client: c}
	if _, err := (&keys.Transit{Client: root}).EnsureKey(ctx, "approle-a", keys.Ed25519); err != nil {
		t.Fatal(err)
	}
	if _, err := tr.ReadKey(ctx, "approle-a"); err != nil {
		t.Fatalf("the AppRole token cannot read what its policy allows: %v", err)
	}
	if _, err := tr.Rotate(ctx, "approle-a", 1); !errors.Is(err, keys.ErrInvalid) {
		t.Fatalf("rotate beyond the policy: %v, want a non-retryable permission error", err)
	}
	if _, err := keys.NewVaultClient(ctx, keys.VaultAuth{Method: "approle"}, slog.New(slog.DiscardHandler)); !errors.Is(err, keys.ErrInvalid) {
		t.Fatalf("approle without ids: %v", err)
	}
	if _, err := keys.NewVaultClient(ctx, keys.VaultAuth{Method: "ldap"}, slog.New(slog.DiscardHandler)); !errors.Is(err, keys.ErrInvalid) {
		t.Fatalf("unknown method: %v", err)
	}
}

func TestKID_RoundTrips(t *testing.T) {
	for _, kid := range []string{"issuer-v1", "a-v-b-v12"} {
		k, v, err := keys.ParseKID(kid)
		if err != nil || keys.KID(k, v) != kid {
			t.Fatalf("%s → %s, %d, %v", kid, k, v, err)
		}
	}
	for _, bad := range []string{"", "v1", "key-v0", "key-vx", "key"} {
		if _, _, err := keys.ParseKID(bad); err == nil {
			t.Fatalf("kid %q parsed", bad)
		}
	}
}
