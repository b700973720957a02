package activities_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/rollgate/rollgate/activities"
	"github.com/rollgate/rollgate/internal/keys"
	"github.com/rollgate/rollgate/internal/registry"
)

// A client's token nearing expiry without a successor is found, renewed once however often the
// renewal is retried (a new token of the same version and lifetime, delivered to Vault KV, the old
// one superseded), and is no longer found afterwards.
func TestRenewToken_FoundRenewedOnceAndDeliveredThenNoLongerExpiring(t *testing.T) {
	tb := newTokensBed(t, "renew")
	ctx, name, env, reg, delivery, issuer := context.Background(), tb.name, tb.env, tb.reg, tb.delivery, tb.issuer
	client := name + "-client"
	tok := &activities.Tokens{}
	call := func(fn any, in any, out any) {
		t.Helper()
		v, err := env.ExecuteActivity(fn, in)
		if err != nil {
			t.Fatal(err)
		}
		if err := v.Get(out); err != nil {
			t.Fatal(err)
		}
	}
	var first []activities.Issued
	call(tok.ReissueTokens, activities.ReissueInput{Issuer: issuer, Version: 1, Clients: []string{client}, TTL: time.Hour, Reason: "initial"}, &first)
	old, err := reg.Get(ctx, first[0].JTI)
	if err != nil {
		t.Fatal(err)
	}

	// Five minutes before its expiry, within the last tenth of its hour.
	at := old.ExpiresAt.Add(-5 * time.Minute)
	var found activities.ExpiringReport
	call(tok.ExpiringWithoutSuccessor, activities.ExpiringInput{Key: name, Now: at, Fraction: 0.1}, &found)
	if len(found.Tokens) != 1 || found.Tokens[0].JTI != old.JTI || found.Tokens[0].Client != client {
		t.Fatalf("expiring %+v, want the client's token %s", found.Tokens, old.JTI)
	}
	var early activities.ExpiringReport
	call(tok.ExpiringWithoutSuccessor, activities.ExpiringInput{Key: name, Now: at.Add(-10 * time.Minute), Fraction: 0.1}, &early)
	if len(early.Tokens) != 0 {
		t.Fatalf("15 minutes before expiry: %+v, want nothing yet", early.Tokens)
	}

	var renewed, again activities.Issued
	in := activities.RenewInput{Issuer: issuer, Token: found.Tokens[0], Reason: "renewed ahead of expiry"}
	call(tok.RenewToken, in, &renewed)
	call(tok.RenewToken, in, &again) // a retry
	if renewed.JTI == old.JTI || again.JTI != renewed.JTI || renewed.KID != keys.KID(name, 1) {
		t.Fatalf("renewed %+v, retried %+v, want one new token of v1", renewed, again)
	}
	cur, err := delivery.Current(ctx, client)
	if err != nil || cur.JTI != renewed.JTI {
		t.Fatalf("delivered %+v, %v, want %s", cur, err, renewed.JTI)
	}
	all, err := reg.BySubject(ctx, client)
	if err != nil || len(all) != 2 {
		t.Fatalf("%d tokens of the client, want 2 (%v)", len(all), err)
	}
	if prev, err := reg.Get(ctx, old.JTI); err != nil || prev.Status != registry.Superseded || prev.ReplacedBy != renewed.JTI {
		t.Fatalf("old token %+v, %v, want superseded by %s", prev, err, renewed.JTI)
	}
	// The renewal was minted now, not at the simulated time: seen from then, the client's token
	// is the new one, nearing its own expiry; the old one is gone from the signal.
	var after activities.ExpiringReport
	call(tok.ExpiringWithoutSuccessor, activities.ExpiringInput{Key: name, Now: at, Fraction: 0.1}, &after)
	if len(after.Tokens) != 1 || after.Tokens[0].JTI != renewed.JTI {
		t.Fatalf("after the renewal: %+v, want only the new token %s", after.Tokens, renewed.JTI)
	}

	// The old token is then found presented after a theft: its family (the renewal that replaced
	// it) is revoked, once however often asked, and the old token itself is left as it was.
	var fam, famAgain activities.FamilyRevoked
	fin := activities.RevokeFamilyInput{JTIs: []string{old.JTI}, Reason: "stolen token replayed"}
	call(tok.RevokeFamily, fin, &fam)
	call(tok.RevokeFamily, fin, &famAgain)
	if len(fam.Revoked) != 1 || fam.Revoked[0] != renewed.JTI || len(famAgain.Revoked) != 1 || fam.Clients[0] != client {
		t.Fatalf("family revoked %+v then %+v, want the renewal %s", fam, famAgain, renewed.JTI)
	}
	if got, err := reg.Get(ctx, renewed.JTI); err != nil || got.Status != registry.Revoked {
		t.Fatalf("the renewal after the family's revocation: %+v, %v", got, err)
	}
	if prev, err := reg.Get(ctx, old.JTI); err != nil || prev.Status != registry.Superseded {
		t.Fatalf("the presented token: %+v, %v; want left superseded", prev, err)
	}
}

// A client presenting an expired token gets a new one once, however often the renewal is
// retried (a retry reports the renewal, not a token the client "already holds"); a token that was
// revoked is never renewed: presenting it after its expiry (a thief, or a client an operator cut
// off) must not mint its client a fresh token.
func TestRenewPresented_RenewedOnceAcrossRetriesAndARevokedTokenNever(t *testing.T) {
	tb := newTokensBed(t, "presented")
	ctx, name, env, reg, delivery, issuer := context.Background(), tb.name, tb.env, tb.reg, tb.delivery, tb.issuer
	tok := &activities.Tokens{}
	issue := func(client string) activities.Issued {
		t.Helper()
		v, err := env.ExecuteActivity(tok.ReissueTokens, activities.ReissueInput{Issuer: issuer, Version: 1, Clients: []string{client}, TTL: time.Hour, Reason: "initial"})
		if err != nil {
			t.Fatal(err)
		}
		var got []activities.Issued
		if err := v.Get(&got); err != nil {
			t.Fatal(err)
		}
		return got[0]
	}
	var opened time.Time // when the incident opened
	renew := func(client, jti string) (activities.RenewedPresented, error) {
		v, err := env.ExecuteActivity(tok.RenewPresented, activities.RenewPresentedInput{Issuer: issuer, Client: client, JTI: jti, Version: 1, Reason: "presented expired", Since: opened})
		if err != nil {
			return activities.RenewedPresented{}, err
		}
		var got activities.RenewedPresented
		return got, v.Get(&got)
	}

	renewing := name + "-renewing"
	old := issue(renewing)
	opened = time.Now()
	first, err := renew(renewing, old.JTI)
	if err != nil || first.Held || first.JTI == old.JTI {
		t.Fatalf("renewal %+v, %v: want a new token", first, err)
	}
	again, err := renew(renewing, old.JTI) // the activity retried after its first attempt renewed
	if err != nil || again.Held || again.JTI != first.JTI {
		t.Fatalf("retried renewal %+v, %v: want the same renewal %s reported again", again, err, first.JTI)
	}

	cutOff := name + "-cut-off"
	stolen := issue(cutOff)
	if _, err := reg.RevokeJTIs(ctx, []string{stolen.JTI}, "stolen", 0, nil); err != nil {
		t.Fatal(err)
	}
	got, err := renew(cutOff, stolen.JTI)
	if err == nil || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("renewal of a revoked token: %+v, %v; want refused, saying it is revoked", got, err)
	}
	if all, err := reg.BySubject(ctx, cutOff); err != nil || len(all) != 1 {
		t.Fatalf("%d tokens of the cut-off client (%v), want only the revoked one", len(all), err)
	}
	if cur, err := delivery.Current(ctx, cutOff); err != nil || cur.JTI != stolen.JTI {
		t.Fatalf("the cut-off client's Vault KV holds %+v (%v), want still the revoked token", cur, err)
	}
}
