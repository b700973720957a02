package registry_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/rollgate/rollgate/internal/keys"
	"github.com/rollgate/rollgate/internal/registry"
	"github.com/rollgate/rollgate/internal/tokens"
	"github.com/rollgate/rollgate/testsuite"
)

var shared testsuite.Shared

func TestMain(m *testing.M) { os.Exit(shared.Run(m)) }

var tableCounter atomic.Int32

// newRegistry creates a fresh pair of tables in dynalite.
func newRegistry(t testing.TB) *registry.Registry {
	t.Helper()
	bed := shared.Bed(t)
	ctx := context.Background()
	cfg, err := bed.AWSConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	n := tableCounter.Add(1)
	reg := &registry.Registry{
		DB:          bed.DynamoDBClient(cfg),
		TokensTable: fmt.Sprintf("tokens-%d", n), RevocationsTable: fmt.Sprintf("revocations-%d", n), RevokedUsesTable: fmt.Sprintf("uses-%d", n),
		Metrics: tokens.NewMetrics(prometheus.NewRegistry()),
	}
	if err := reg.CreateTables(ctx); err != nil {
		t.Fatal(err)
	}
	if err := reg.CreateTables(ctx); err != nil { // on demand: a second call is a no-op
		t.Fatal(err)
	}
	return reg
}

// issuer is a Vault transit key published on S3 with a minter and a verifier that consults a
// deny list over reg.
type issuer struct {
	minter   *tokens.Minter
	verifier *tokens.Verifier
	deny     *registry.DenyList
	kid      string
}

func newIssuer(t testing.TB, reg *registry.Registry) *issuer {
	t.Helper()
	bed := shared.Bed(t)
	ctx := context.Background()
	vc, err := bed.Vault.Client()
	if err != nil {
		t.Fatal(err)
	}
	cfg, _ := bed.AWSConfig(ctx)
	n := tableCounter.Add(1)
	name, bucket := fmt.Sprintf("reg-issuer-%d", n), fmt.Sprintf("reg-issuer-%d", n)
	tr := &keys.Transit{Client: vc}
	k, err := tr.EnsureKey(ctx, name, keys.RSA2048)
	if err != nil {
		t.Fatal(err)
	}
	s3c := bed.S3Client(cfg)
	if _, err := s3c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatal(err)
	}
	doc, err := tokens.JWKS(ctx, k, "RS256", []int{1})
	if err != nil {
		t.Fatal(err)
	}
	iss := bed.S3.URL + "/" + bucket
	if _, err := (&tokens.Publisher{S3: s3c, Bucket: bucket, CacheTTL: time.Minute}).Publish(ctx, iss, "RS256", doc); err != nil {
		t.Fatal(err)
	}
	kctx, cancel := context.WithCancel(ctx)
	t.Cleanup(cancel)
	ks, err := tokens.RemoteKeySet(kctx, iss+"/.well-known/jwks.json", tokens.RemoteKeySetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	deny := registry.NewDenyList(reg)
	v, err := tokens.NewVerifier(tokens.VerifierOptions{Keys: ks, Issuer: iss, Audiences: []string{"orders"}, Algorithms: []string{"RS256"}, Revoked: deny})
	if err != nil {
		t.Fatal(err)
	}
	return &issuer{minter: &tokens.Minter{Transit: tr, Key: name, Type: keys.RSA2048, Issuer: iss}, verifier: v, deny: deny, kid: keys.KID(name, 1)}
}

func (i *issuer) mint(t testing.TB, reg *registry.Registry, subjects ...string) []tokens.Minted {
	t.Helper()
	reqs := make([]tokens.MintRequest, len(subjects))
	for n, s := range subjects {
		reqs[n] = tokens.MintRequest{Subject: s, ClientID: s, Audience: []string{"orders"}, TTL: time.Hour}
	}
	minted, err := i.minter.Mint(context.Background(), 1, reqs...)
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.RecordIssued(context.Background(), minted); err != nil {
		t.Fatal(err)
	}
	return minted
}

func (i *issuer) reason(t testing.TB, m tokens.Minted) tokens.Reason {
	t.Helper()
	if err := i.deny.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, err := i.verifier.Verify(context.Background(), m.Token)
	return tokens.ReasonOf(err)
}

func TestRegistry_RecordsSupersedesAndLooksUpTokens(t *testing.T) {
	ctx := context.Background()
	reg := newRegistry(t)
	iss := newIssuer(t, reg)
	m := iss.mint(t, reg, "alice", "alice", "bob")

	rec, err := reg.Get(ctx, m[0].JTI)
	if err != nil || rec.Status != registry.Active || rec.Subject != "alice" || rec.KID != iss.kid || !rec.ExpiresAt.Equal(m[0].ExpiresAt) {
		t.Fatalf("Get = %+v, %v", rec, err)
	}
	if got, err := reg.BySubject(ctx, "alice"); err != nil || len(got) != 2 {
		t.Fatalf("BySubject alice = %d rows, %v", len(got), err)
	}
	if got, err := reg.ByKID(ctx, iss.kid); err != nil || len(got) != 3 {
		t.Fatalf("ByKID = %d rows, %v", len(got), err)
	}
	for range 2 { // superseding twice is the same as once
		if err := reg.Supersede(ctx, m[0].JTI, m[1].JTI, "reissued"); err != nil {
			t.Fatal(err)
		}
	}
	rec, _ = reg.Get(ctx, m[0].JTI)
	if rec.Status != registry.Superseded || rec.ReplacedBy != m[1].JTI {
		t.Fatalf("after supersede: %+v", rec)
	}
	if err := reg.Supersede(ctx, m[0].JTI, m[2].JTI, "again"); err == nil {
		t.Fatal("a superseded token was superseded by another")
	}
	if _, err := reg.Get(ctx, "nope"); err == nil {
		t.Fatal("unknown jti found")
	}
	if got := testutil.ToFloat64(reg.Metrics.Issued.WithLabelValues(iss.kid)); got != 3 {
		t.Fatalf("issued counter %v", got)
	}
	if got := testutil.ToFloat64(reg.Metrics.Superseded.WithLabelValues(iss.kid)); got != 1 {
		t.Fatalf("superseded counter %v", got)
	}
}

func TestRevocation_ByJTISubjectKIDAndNotBeforeIsSeenByTheVerifier(t *testing.T) {
	ctx := context.Background()
	reg := newRegistry(t)
	iss := newIssuer(t, reg)
	m := iss.mint(t, reg, "a", "b", "c", "d")
	for _, tok := range m {
		if r := iss.reason(t, tok); r != "" {
			t.Fatalf("fresh token rejected: %s", r)
		}
	}

	if _, err := reg.RevokeJTIs(ctx, []string{m[0].JTI}, "leaked", 0, nil); err != nil {
		t.Fatal(err)
	}
	if r := iss.reason(t, m[0]); r != tokens.Revoked {
		t.Fatalf("revoked by jti: %q", r)
	}
	if r := iss.reason(t, m[1]); r != "" {
		t.Fatalf("another token was caught by a jti revocation: %q", r)
	}
	rec, _ := reg.Get(ctx, m[0].JTI)
	if rec.Status != registry.Revoked || rec.Reason != "leaked" {
		t.Fatalf("row after revocation: %+v", rec)
	}

	if err := reg.RevokeBefore(ctx, registry.BySubject, "b", time.Now(), "offboarded"); err != nil {
		t.Fatal(err)
	}
	if r := iss.reason(t, m[1]); r != tokens.Revoked {
		t.Fatalf("revoked by subject: %q", r)
	}
	if r := iss.reason(t, m[2]); r != "" {
		t.Fatalf("subject rule caught another subject: %q", r)
	}

	// An earlier rule for the same subject never moves the time back.
	if err := reg.RevokeBefore(ctx, registry.BySubject, "b", time.Now().Add(-24*time.Hour), "older"); err != nil {
		t.Fatal(err)
	}
	if r := iss.reason(t, m[1]); r != tokens.Revoked {
		t.Fatalf("an older rule un-revoked the subject: %q", r)
	}

	if err := reg.RevokeBefore(ctx, registry.ByKID, iss.kid, registry.Forever, "key compromised"); err != nil {
		t.Fatal(err)
	}
	if r := iss.reason(t, m[2]); r != tokens.Revoked {
		t.Fatalf("revoked by kid: %q", r)
	}

	reg2 := newRegistry(t)
	iss2 := newIssuer(t, reg2)
	old := iss2.mint(t, reg2, "e")
	if err := reg2.RevokeBefore(ctx, registry.ByIssuer, iss2.minter.Issuer, time.Now(), "mass revocation"); err != nil {
		t.Fatal(err)
	}
	if r := iss2.reason(t, old[0]); r != tokens.Revoked {
		t.Fatalf("revoked by not-before: %q", r)
	}
	time.Sleep(1100 * time.Millisecond) // tokens carry whole seconds; the rule covers its own second
	fresh := iss2.mint(t, reg2, "e")
	if r := iss2.reason(t, fresh[0]); r != "" {
		t.Fatalf("a token issued after the not-before rule: %q", r)
	}
	if err := reg.RevokeBefore(ctx, "tenant", "x", time.Now(), ""); err == nil {
		t.Fatal("unknown scope accepted")
	}
}

// A bulk revocation interrupted after its first chunk resumes from the reported progress and
// ends with every token revoked once.
func TestRevokeJTIs_ResumesFromProgressAfterACrash(t *testing.T) {
	ctx := context.Background()
	reg := newRegistry(t)
	iss := newIssuer(t, reg)
	subjects := make([]string, 250)
	for i := range subjects {
		subjects[i] = fmt.Sprintf("s%d", i)
	}
	m := iss.mint(t, reg, subjects...)
	jtis := make([]string, len(m))
	for i, tok := range m {
		jtis[i] = tok.JTI
	}
	crashCtx, crash := context.WithCancel(ctx)
	heartbeat := 0
	_, err := reg.RevokeJTIs(crashCtx, jtis, "bulk", 0, func(done int) { heartbeat = done; crash() })
	if err == nil && heartbeat == len(jtis) {
		t.Fatal("the crash did not interrupt the revocation")
	}
	if heartbeat == 0 {
		t.Fatal("no progress was reported before the crash")
	}
	done, err := reg.RevokeJTIs(ctx, jtis, "bulk", heartbeat, nil)
	if err != nil || done != len(jtis) {
		t.Fatalf("resume from %d: %d, %v", heartbeat, done, err)
	}
	if err := iss.deny.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if n, _ := iss.deny.Size(); n != len(jtis) {
		t.Fatalf("deny list holds %d jtis, want %d", n, len(jtis))
	}
	for _, tok := range m {
		if _, err := iss.verifier.Verify(ctx, tok.Token); tokens.ReasonOf(err) != tokens.Revoked {
			t.Fatalf("token %s not rejected as revoked: %v", tok.JTI, err)
		}
	}
	if got := testutil.ToFloat64(reg.Metrics.Revoked.WithLabelValues(iss.kid, "jti")); got != float64(len(jtis)) {
		t.Fatalf("revoked counter %v, want %d (each token once)", got, len(jtis))
	}
}

func TestDelivery_WritesEachReissuedTokenOnceToVaultKV(t *testing.T) {
	bed := shared.Bed(t)
	ctx := context.Background()
	reg := newRegistry(t)
	iss := newIssuer(t, reg)
	vc, _ := bed.Vault.Client()
	d := &registry.Delivery{Client: vc}
	first := iss.mint(t, reg, "billing")[0]
	got, err := d.Deliver(ctx, first)
	if err != nil || got.KVVersion != 1 || got.JTI != first.JTI {
		t.Fatalf("deliver: %+v, %v", got, err)
	}
	if again, err := d.Deliver(ctx, first); err != nil || again.KVVersion != 1 {
		t.Fatalf("redeliver the same token: %+v, %v", again, err)
	}
	second := iss.mint(t, reg, "billing")[0]
	if got, err = d.Deliver(ctx, second); err != nil || got.KVVersion != 2 {
		t.Fatalf("deliver the reissued token: %+v, %v", got, err)
	}
	sec, err := vc.KVv2("secret").Get(ctx, "rollgate/clients/billing")
	if err != nil || sec.Data["token"] != second.Token || sec.Data["kid"] != iss.kid {
		t.Fatalf("what the client reads: %v", err)
	}
	if strings.Contains(fmt.Sprintf("%+v", got), second.Token) {
		t.Fatal("the delivery receipt carries the token")
	}
}

func TestSweep_MarksExpiredTokensAndCountsThemPerKID(t *testing.T) {
	ctx := context.Background()
	reg := newRegistry(t)
	now := time.Now()
	minted := []tokens.Minted{
		{JTI: "old-1", KID: "k-v1", Subject: "a", IssuedAt: now.Add(-2 * time.Hour), ExpiresAt: now.Add(-time.Hour)},
		{JTI: "old-2", KID: "k-v1", Subject: "b", IssuedAt: now.Add(-2 * time.Hour), ExpiresAt: now.Add(-time.Minute)},
		{JTI: "live", KID: "k-v2", Subject: "c", IssuedAt: now, ExpiresAt: now.Add(time.Hour)},
	}
	if err := reg.RecordIssued(ctx, minted); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.RevokeJTIs(ctx, []string{"old-2"}, "leaked", 0, nil); err != nil {
		t.Fatal(err)
	}
	for range 2 { // a second sweep finds nothing new
		if _, err := reg.Sweep(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for jti, want := range map[string]registry.Status{"old-1": registry.Expired, "old-2": registry.Revoked, "live": registry.Active} {
		if rec, err := reg.Get(ctx, jti); err != nil || rec.Status != want {
			t.Fatalf("%s: %s, %v; want %s", jti, rec.Status, err, want)
		}
	}
	if got := testutil.ToFloat64(reg.Metrics.Expired.WithLabelValues("k-v1")); got != 1 {
		t.Fatalf("expired counter for k-v1 = %v, want 1", got)
	}
	sum, err := reg.Summary(ctx)
	if err != nil || len(sum) != 2 || sum[0] != (registry.KIDSummary{KID: "k-v1", Issued: 2, Expired: 1, Revoked: 1}) ||
		sum[1] != (registry.KIDSummary{KID: "k-v2", Issued: 1, Active: 1}) {
		t.Fatalf("summary %+v, %v", sum, err)
	}
}

// A rollback revokes the release's tokens, then reissues the previous key's: the token being
// replaced is revoked by then, and must stay revoked while its replacement is recorded.
func TestRegistry_SupersedingARevokedToken_RecordsTheReplacementAndKeepsItRevoked(t *testing.T) {
	ctx := context.Background()
	reg := newRegistry(t)
	iss := newIssuer(t, reg)
	m := iss.mint(t, reg, "carol", "carol")
	if _, err := reg.RevokeJTIs(ctx, []string{m[0].JTI}, "release rolled back", 0, nil); err != nil {
		t.Fatal(err)
	}
	for range 2 { // recording the replacement twice is the same as once
		if err := reg.Supersede(ctx, m[0].JTI, m[1].JTI, "release rolled back"); err != nil {
			t.Fatalf("supersede a revoked token: %v", err)
		}
	}
	rec, err := reg.Get(ctx, m[0].JTI)
	if err != nil || rec.Status != registry.Revoked || rec.ReplacedBy != m[1].JTI || rec.Reason != "release rolled back" {
		t.Fatalf("after supersede: %+v, %v", rec, err)
	}
	if got := iss.reason(t, m[0]); got != tokens.Revoked {
		t.Fatalf("the replaced revoked token verifies with reason %q", got)
	}
	if got := iss.reason(t, m[1]); got != "" {
		t.Fatalf("the replacement verifies with reason %q", got)
	}
	if got := testutil.ToFloat64(reg.Metrics.Superseded.WithLabelValues(iss.kid)); got != 0 {
		t.Fatalf("superseded counter %v: a revoked token was counted as superseded", got)
	}
}
