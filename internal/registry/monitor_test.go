package registry_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/rollgate/rollgate/internal/registry"
	"github.com/rollgate/rollgate/internal/tokens"
)

// Uses group by subject, one issuer's only, with their clients and addresses as bounded sets.
func TestGroupUsesBySubject_OneIssuersUsesBySubjectWithBoundedSets(t *testing.T) {
	t0 := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	uses := []registry.RevokedUse{
		{JTI: "a1", Subject: "alice", ClientID: "billing", Issuer: "iss", Addresses: []string{"10.0.0.2", "10.0.0.1"}, Count: 3, First: t0, Last: t0.Add(time.Minute)},
		{JTI: "b1", Subject: "bob", ClientID: "reports", Issuer: "other", Addresses: []string{"10.0.0.9"}, Count: 9, First: t0, Last: t0},
		{JTI: "a2", Subject: "alice", ClientID: "billing-2", Issuer: "iss", Addresses: []string{"10.0.0.1"}, Count: 2, First: t0.Add(-time.Minute), Last: t0},
	}
	for i := range registry.MaxUseAddresses + 4 {
		uses = append(uses, registry.RevokedUse{JTI: fmt.Sprint("c", i), Subject: "carol", ClientID: "c", Issuer: "iss", Addresses: []string{fmt.Sprint("192.0.2.", i)}, Count: 1})
	}
	got := registry.GroupUsesBySubject(uses, "iss")
	if len(got) != 2 || got[0].Subject != "alice" || got[1].Subject != "carol" {
		t.Fatalf("subjects %+v, want alice and carol (bob's uses are another issuer's)", got)
	}
	a := got[0]
	if a.Count != 5 || a.JTIs != 2 || !slices.Equal(a.Clients, []string{"billing", "billing-2"}) || !slices.Equal(a.Addresses, []string{"10.0.0.1", "10.0.0.2"}) ||
		!a.First.Equal(t0.Add(-time.Minute)) || !a.Last.Equal(t0.Add(time.Minute)) {
		t.Fatalf("alice %+v", a)
	}
	if c := got[1]; len(c.Addresses) != registry.MaxUseAddresses || c.Count != registry.MaxUseAddresses+4 {
		t.Fatalf("carol holds %d addresses and %d uses, want %d and %d", len(c.Addresses), c.Count, registry.MaxUseAddresses, registry.MaxUseAddresses+4)
	}
}

// Active tokens of the key expiring within the window are found, another key's and later ones
// are not; a client renewed to a newer active token has a successor, one that is not has none.
func TestExpiringActive_AndSuccessor_FindTheTokensWhoseRenewalIsBroken(t *testing.T) {
	reg := newRegistry(t)
	ctx := context.Background()
	now := time.Now().Truncate(time.Second)
	tok := func(jti, client, kid string, issued time.Time, ttl time.Duration) tokens.Minted {
		return tokens.Minted{JTI: jti, KID: kid, Subject: client, ClientID: client, IssuedAt: issued, ExpiresAt: issued.Add(ttl)}
	}
	minted := []tokens.Minted{
		tok("stuck", "billing", "orders-v1", now.Add(-55*time.Minute), time.Hour),       // expires in 5m, never renewed
		tok("renewed-old", "reports", "orders-v1", now.Add(-55*time.Minute), time.Hour), // expires in 5m ...
		tok("renewed-new", "reports", "orders-v2", now.Add(-time.Minute), time.Hour),    // ... renewed
		tok("fresh", "audit", "orders-v2", now.Add(-10*time.Minute), time.Hour),         // expires in 50m
		tok("foreign", "billing", "payments-v1", now.Add(-55*time.Minute), time.Hour),   // another key
		tok("gone", "old", "orders-v1", now.Add(-2*time.Hour), time.Hour),               // already expired
	}
	if err := reg.RecordIssued(ctx, minted); err != nil {
		t.Fatal(err)
	}
	kids := []string{"orders-v1", "orders-v2"}
	recs, truncated, err := reg.ExpiringActive(ctx, kids, now.Add(-24*time.Hour), now, now.Add(10*time.Minute), 10)
	if err != nil || truncated {
		t.Fatal(truncated, err)
	}
	var jtis []string
	for _, r := range recs {
		jtis = append(jtis, r.JTI)
	}
	slices.Sort(jtis)
	if !slices.Equal(jtis, []string{"renewed-old", "stuck"}) {
		t.Fatalf("expiring %v, want renewed-old and stuck", jtis)
	}
	// Tokens issued before the cut-off are not read: they expired long ago, or outlive any window.
	if old, _, err := reg.ExpiringActive(ctx, kids, now.Add(-50*time.Minute), now, now.Add(10*time.Minute), 10); err != nil || len(old) != 0 {
		t.Fatalf("issued in the last 50 minutes and expiring within 10: %+v, %v", old, err)
	}
	for _, r := range recs {
		next, ok, err := reg.Successor(ctx, r, "orders-v")
		if err != nil {
			t.Fatal(err)
		}
		if want := r.JTI == "renewed-old"; ok != want || (ok && next.JTI != "renewed-new") {
			t.Fatalf("successor of %s: %+v %v", r.JTI, next, ok)
		}
	}
	if _, truncated, err := reg.ExpiringActive(ctx, kids, now.Add(-24*time.Hour), now, now.Add(10*time.Minute), 1); err != nil || !truncated {
		t.Fatalf("a read bounded to 1 of 2: truncated %v, %v", truncated, err)
	}
}
