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

// An expired token's uses are recorded apart from its uses once revoked, and each kind is read
// on its own; uses of expired tokens group by client, naming the token presented last.
func TestUses_ExpiredApartFromRevoked_GroupedByClient(t *testing.T) {
	reg := newRegistry(t)
	ctx := context.Background()
	now := time.Now().UTC()
	record := func(kind, jti, client, addr string, at time.Time) {
		t.Helper()
		if err := reg.RecordRevokedUse(ctx, registry.UseEvent{Kind: kind, JTI: jti, Subject: client, ClientID: client, Issuer: "https://issuer.test", Address: addr, At: at}); err != nil {
			t.Fatal(err)
		}
	}
	record(registry.UseRevoked, "j1", "billing", "203.0.113.1", now)
	record(registry.UseExpired, "j1", "billing", "203.0.113.2", now)
	record(registry.UseExpired, "j2", "reports", "203.0.113.3", now.Add(-time.Second))
	record(registry.UseExpired, "j3", "reports", "203.0.113.4", now)
	record(registry.UseExpired, "j3", "reports", "203.0.113.4", now)

	revoked, _, err := reg.Uses(ctx, registry.UseRevoked, now.Add(-time.Minute), 100)
	if err != nil || len(revoked) != 1 || revoked[0].JTI != "j1" || revoked[0].Kind != registry.UseRevoked || revoked[0].Addresses[0] != "203.0.113.1" {
		t.Fatalf("revoked uses %+v, %v: want j1's from 203.0.113.1 only", revoked, err)
	}
	expired, _, err := reg.Uses(ctx, registry.UseExpired, now.Add(-time.Minute), 100)
	if err != nil || len(expired) != 3 {
		t.Fatalf("expired uses %+v, %v: want three tokens", expired, err)
	}
	by := registry.GroupUsesByClient(expired, "https://issuer.test")
	if len(by) != 2 || by[0].Client != "billing" || by[1].Client != "reports" || by[1].Count != 3 || by[1].JTIs != 2 || by[1].LatestJTI != "j3" ||
		!slices.Equal(by[1].Addresses, []string{"203.0.113.3", "203.0.113.4"}) {
		t.Fatalf("by client %+v", by)
	}
	if err := reg.RecordRevokedUse(ctx, registry.UseEvent{Kind: "stolen", JTI: "j9"}); err == nil {
		t.Fatal("a use of an unknown kind was recorded")
	}
}
