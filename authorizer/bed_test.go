package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/sethvargo/go-envconfig"

	"github.com/rollgate/rollgate/internal/keys"
	"github.com/rollgate/rollgate/internal/registry"
	"github.com/rollgate/rollgate/internal/tokens"
	"github.com/rollgate/rollgate/testsuite"
)

var shared testsuite.Shared

func TestMain(m *testing.M) { os.Exit(shared.Run(m)) }

// unique names what a test creates, so runs repeat (-count) and never meet another's state.
func unique(prefix string) string {
	b := make([]byte, 5)
	_, _ = rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

// testIssuer is a Vault transit key whose JWKS and discovery document sit on the bed's S3 (the
// issuer URL), and a pair of registry tables in dynalite.
type testIssuer struct {
	bed     *testsuite.Bed
	name    string
	url     string
	key     *keys.Key
	db      *dynamodb.Client
	s3      *s3.Client
	reg     *registry.Registry
	minter  *tokens.Minter
	kid     string
	secrets *secrets
}

// newTestIssuer makes the issuer; publish says whether its JWKS is on S3 yet.
func newTestIssuer(t testing.TB, publish bool) *testIssuer {
	t.Helper()
	bed := shared.Bed(t)
	ctx := context.Background()
	cfg, err := bed.AWSConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	vc, err := bed.Vault.Client()
	if err != nil {
		t.Fatal(err)
	}
	name := unique("authz")
	tr := &keys.Transit{Client: vc}
	k, err := tr.EnsureKey(ctx, name, keys.RSA2048)
	if err != nil {
		t.Fatal(err)
	}
	i := &testIssuer{bed: bed, name: name, url: bed.S3.URL + "/" + name, key: k, db: bed.DynamoDBClient(cfg), s3: bed.S3Client(cfg),
		kid: keys.KID(name, 1), secrets: newSecrets(t)}
	if _, err := i.s3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatal(err)
	}
	i.reg = &registry.Registry{DB: i.db, TokensTable: name + "-tokens", RevocationsTable: name + "-revocations"}
	if err := i.reg.CreateTables(ctx); err != nil {
		t.Fatal(err)
	}
	i.minter = &tokens.Minter{Transit: tr, Key: name, Type: keys.RSA2048, Issuer: i.url}
	if publish {
		i.publish(t)
	}
	return i
}

// publish puts the JWKS of key version 1 and the discovery document on S3.
func (i *testIssuer) publish(t testing.TB) {
	t.Helper()
	ctx := context.Background()
	doc, err := tokens.JWKS(ctx, i.key, "RS256", []int{1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (&tokens.Publisher{S3: i.s3, Bucket: i.name, CacheTTL: time.Second}).Publish(ctx, i.url, "RS256", doc); err != nil {
		t.Fatal(err)
	}
}

// mint issues one token per subject and records it in the registry.
func (i *testIssuer) mint(t testing.TB, subjects ...string) []tokens.Minted {
	t.Helper()
	reqs := make([]tokens.MintRequest, len(subjects))
	for n, s := range subjects {
		reqs[n] = tokens.MintRequest{Subject: s, ClientID: s + "-client", Audience: []string{"orders"}, TTL: time.Hour}
	}
	minted, err := i.minter.Mint(context.Background(), 1, reqs...)
	if err != nil {
		t.Fatal(err)
	}
	if err := i.reg.RecordIssued(context.Background(), minted); err != nil {
		t.Fatal(err)
	}
	for _, m := range minted {
		i.secrets.add(m.Token)
	}
	return minted
}

// env is the authorizer's configuration for this issuer, with short intervals so that tests
// see refreshes happen; overrides win.
func (i *testIssuer) env(overrides map[string]string) map[string]string {
	env := map[string]string{
		"ROLLGATE_ISSUER": i.url, "ROLLGATE_AUDIENCES": "orders", "ROLLGATE_REVOCATIONS_TABLE": i.reg.RevocationsTable,
		"ROLLGATE_DENYLIST_REFRESH": "50ms", "ROLLGATE_DENYLIST_MAX_STALENESS": "30s", "ROLLGATE_JWKS_UNKNOWN_KID_REFRESH": "100ms",
		"ROLLGATE_LEEWAY": "5s",
	}
	for k, v := range overrides {
		env[k] = v
	}
	return env
}

// underTest is an authorizer built the way main builds it, with its log and metric output
// captured.
type underTest struct {
	a    *Authorizer
	logs *syncBuffer
	emf  *syncBuffer
}

func (i *testIssuer) start(t testing.TB, inline bool, rec func(cfg Config, out *syncBuffer) recorder, overrides map[string]string) *underTest {
	t.Helper()
	cfg, err := loadConfig(context.Background(), envconfig.MapLookuper(i.env(overrides)))
	if err != nil {
		t.Fatal(err)
	}
	life, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	u := &underTest{logs: &syncBuffer{}, emf: &syncBuffer{}}
	u.a, err = newAuthorizer(life, cfg, deps{
		DB: i.db, HTTP: &http.Client{Timeout: 5 * time.Second}, Logger: slog.New(slog.NewJSONHandler(u.logs, nil)),
		Rec: rec(cfg, u.emf), Inline: inline,
	})
	if err != nil {
		t.Fatal(err)
	}
	i.secrets.watch(u.logs, u.emf)
	return u
}

// startLambda is the Lambda mode: EMF lines, deny list refreshed on invocation.
func (i *testIssuer) startLambda(t testing.TB, overrides map[string]string) *underTest {
	return i.start(t, true, func(cfg Config, out *syncBuffer) recorder { return newEMFRecorder(out, cfg.Issuer) }, overrides)
}

// invoke runs an event through aws-lambda-go's handler, which encodes the answer and the error
// as the Lambda runtime does.
func (u *underTest) invoke(t *testing.T, event []byte) (map[string]any, error) {
	t.Helper()
	out, err := lambda.NewHandler(u.a.handleEvent).Invoke(context.Background(), event)
	if err != nil {
		return nil, err
	}
	var resp map[string]any
	if err := json.Unmarshal(out, &resp); err != nil {
		t.Fatalf("answer is not a JSON object: %v", err)
	}
	return resp, nil
}

// event reads an event as API Gateway sends it from testdata/events and puts the token and
// the release stage variable in.
func event(t testing.TB, name, token, release string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/events/" + name + ".json")
	if err != nil {
		t.Fatal(err)
	}
	quote := func(s string) string { q, _ := json.Marshal(s); return string(q[1 : len(q)-1]) }
	return []byte(strings.NewReplacer("{{TOKEN}}", quote(token), "{{RELEASE}}", quote(release)).Replace(string(b)))
}

// eventually polls cond until it holds or a generous deadline passes (a busy machine).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after 60 s: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// syncBuffer collects output written from several goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) Bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.b.Bytes())
}

// secrets fails the test if any token it minted shows up in what the authorizer wrote.
type secrets struct {
	mu      sync.Mutex
	tokens  []string
	outputs []*syncBuffer
}

func newSecrets(t testing.TB) *secrets {
	s := &secrets{}
	t.Cleanup(func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, out := range s.outputs {
			text := string(out.Bytes())
			for _, tok := range s.tokens {
				_, sig, _ := strings.Cut(tok[strings.Index(tok, ".")+1:], ".")
				if strings.Contains(text, tok) || strings.Contains(text, sig) {
					t.Errorf("a token (or its signature) appears in the authorizer's output")
				}
			}
		}
	})
	return s
}

func (s *secrets) add(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens = append(s.tokens, token)
}

func (s *secrets) watch(outs ...*syncBuffer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.outputs = append(s.outputs, outs...)
}
