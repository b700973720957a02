package activities_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/rollgate/rollgate/activities"
	"github.com/rollgate/rollgate/internal/keys"
	"github.com/rollgate/rollgate/internal/registry"
	"github.com/rollgate/rollgate/internal/tokens"
	rgtestsuite "github.com/rollgate/rollgate/testsuite"
)

var shared rgtestsuite.Shared

func TestMain(m *testing.M) { os.Exit(shared.Run(m)) }

// tokensBed is a Tokens activity of a test's own on the bed: a Transit key, registry tables and
// the issuer named after the test, in Temporal's activity test environment.
type tokensBed struct {
	name     string
	env      *testsuite.TestActivityEnvironment
	reg      *registry.Registry
	delivery *registry.Delivery
	issuer   activities.Issuer
}

func newTokensBed(t *testing.T, prefix string) tokensBed {
	t.Helper()
	b := shared.Bed(t)
	ctx := context.Background()
	vc, err := b.Vault.Client()
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := b.AWSConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("%s-%d", prefix, time.Now().UnixNano())
	transit := &keys.Transit{Client: vc}
	if _, err := transit.EnsureKey(ctx, name, keys.RSA2048); err != nil {
		t.Fatal(err)
	}
	reg := &registry.Registry{DB: b.DynamoDBClient(cfg), TokensTable: name + "-tokens", RevocationsTable: name + "-revocations", RevokedUsesTable: name + "-uses"}
	if err := reg.CreateTables(ctx); err != nil {
		t.Fatal(err)
	}
	delivery := &registry.Delivery{Client: vc}
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestActivityEnvironment()
	env.RegisterActivity(&activities.Tokens{Transit: transit, Registry: reg, Delivery: delivery, MaxLifetime: time.Hour})
	issuer := activities.Issuer{URL: "https://issuer.test", Audiences: []string{"orders"}, Key: activities.KeyRef{Name: name, Type: keys.RSA2048}, Algorithm: "RS256"}
	return tokensBed{name: name, env: env, reg: reg, delivery: delivery, issuer: issuer}
}

// A bulk revocation retried after a crash resumes from its last heartbeat: the jtis before it are
// not written again, the rest are revoked, and the activity heartbeats its progress.
func TestRevokeTokens_ResumesFromItsHeartbeatAfterACrash(t *testing.T) {
	b := shared.Bed(t)
	ctx := context.Background()
	cfg, err := b.AWSConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	reg := &registry.Registry{DB: b.DynamoDBClient(cfg), TokensTable: "resume-tokens", RevocationsTable: "resume-revocations"}
	if err := reg.CreateTables(ctx); err != nil {
		t.Fatal(err)
	}
	const n, crashedAt = 60, 35
	jtis := make([]string, n)
	minted := make([]tokens.Minted, n)
	now := time.Now()
	for i := range n {
		jtis[i] = fmt.Sprintf("resume-%03d", i)
		minted[i] = tokens.Minted{JTI: jtis[i], KID: "resume-v1", Subject: "billing", ClientID: "billing", IssuedAt: now, ExpiresAt: now.Add(time.Hour)}
	}
	if err := reg.RecordIssued(ctx, minted); err != nil {
		t.Fatal(err)
	}

	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestActivityEnvironment()
	env.RegisterActivity(&activities.Tokens{Registry: reg})
	env.SetHeartbeatDetails(crashedAt) // what the crashed attempt had reported
	var beats []int
	env.SetOnActivityHeartbeatListener(func(_ *activity.Info, details converter.EncodedValues) {
		var done int
		if details.Get(&done) == nil {
			beats = append(beats, done)
		}
	})
	v, err := env.ExecuteActivity((&activities.Tokens{}).RevokeTokens, activities.RevokeInput{JTIs: jtis, Reason: "laptop stolen"})
	if err != nil {
		t.Fatal(err)
	}
	var done int
	if err := v.Get(&done); err != nil || done != n {
		t.Fatalf("reported %d done, want %d (%v)", done, n, err)
	}
	for i, jti := range jtis {
		rec, err := reg.Get(ctx, jti)
		if err != nil {
			t.Fatal(err)
		}
		// The crashed attempt's writes are not in this bed, so the resumed one shows which it did.
		if want := i >= crashedAt; (rec.Status == registry.Revoked) != want {
			t.Fatalf("jti %d: status %s; the resumed attempt should revoke exactly jtis %d..%d", i, rec.Status, crashedAt, n-1)
		}
	}
	if len(beats) == 0 || beats[len(beats)-1] != n || beats[0] <= crashedAt {
		t.Fatalf("heartbeats %v: want progress past %d up to %d", beats, crashedAt, n)
	}
}

// A reissue whose TTL the verifiers would refuse fails before any token is minted, recorded or
// delivered, and is not retried.
func TestReissueTokens_RefusesATTLOverTheVerifiersMaximumLifetime(t *testing.T) {
	tb := newTokensBed(t, "maxlife")
	client := tb.name + "-client"
	_, err := tb.env.ExecuteActivity((&activities.Tokens{}).ReissueTokens, activities.ReissueInput{
		Issuer:  tb.issuer,
		Version: 1, Clients: []string{client}, TTL: 2 * time.Hour, Reason: "test",
	})
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || !appErr.NonRetryable() || appErr.Type() != activities.ErrTypeInvalid || !strings.Contains(err.Error(), "TTL 2h0m0s") {
		t.Fatalf("%v, want a non-retryable invalid-request error naming the TTL", err)
	}
	if cur, err := tb.delivery.Current(context.Background(), client); err != nil || cur.KVVersion != 0 {
		t.Fatalf("delivered %+v, %v: nothing should have been", cur, err)
	}
}
