package registry_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/rollgate/rollgate/internal/registry"
)

// A revoked token replayed from many addresses is one row per hour: its count grows, its
// addresses stop at the bound, and a reader gets it back with subject and client.
func TestRevokedUses_CountedPerTokenAndHourWithBoundedAddresses(t *testing.T) {
	reg := newRegistry(t)
	ctx := context.Background()
	now := time.Now().UTC()
	for i := range registry.MaxUseAddresses + 5 {
		if err := reg.RecordRevokedUse(ctx, registry.UseEvent{JTI: "stolen", Subject: "alice", ClientID: "billing", Issuer: "https://issuer.test",
			Address: fmt.Sprintf("203.0.113.%d", i%(registry.MaxUseAddresses+3)), At: now}); err != nil {
			t.Fatal(err)
		}
	}
	if err := reg.RecordRevokedUse(ctx, registry.UseEvent{JTI: "other", Subject: "bob", At: now}); err != nil {
		t.Fatal(err)
	}
	uses, truncated, err := reg.RevokedUses(ctx, now.Add(-time.Minute), 100)
	if err != nil || truncated || len(uses) != 2 {
		t.Fatalf("uses %+v, truncated %v, %v", uses, truncated, err)
	}
	i := slices.IndexFunc(uses, func(u registry.RevokedUse) bool { return u.JTI == "stolen" })
	u := uses[i]
	if u.Count != registry.MaxUseAddresses+5 || u.Subject != "alice" || u.ClientID != "billing" || len(u.Addresses) != registry.MaxUseAddresses || u.Last.Before(u.First) {
		t.Fatalf("the stolen token's uses: %+v", u)
	}
	if only, truncated, err := reg.RevokedUses(ctx, now.Add(-time.Minute), 1); err != nil || !truncated || len(only) != 1 {
		t.Fatalf("limit 1: %d uses, truncated %v, %v", len(only), truncated, err)
	}
	if _, _, err := reg.RevokedUses(ctx, now.Add(-30*24*time.Hour), 10); err == nil {
		t.Fatal("a month back was read; want an error naming the retention")
	}
}
