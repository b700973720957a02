package testsuite_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/apigateway"
	agtypes "github.com/aws/aws-sdk-go-v2/service/apigateway/types"
	"go.temporal.io/sdk/client"

	"github.com/rollgate/rollgate/activities"
	"github.com/rollgate/rollgate/internal/keys"
	"github.com/rollgate/rollgate/internal/releases"
	"github.com/rollgate/rollgate/internal/tokens"
	"github.com/rollgate/rollgate/testsuite"
	"github.com/rollgate/rollgate/workflows"
)

// cachingStage is a ReleaseBed whose authorizer caches its answers for 300 s, whose client has
// had one request allowed (so the gateway holds that Allow), and whose release history records a
// release of the stage with the bed's issuer. samples are tokens of the same subject issued before
// the revocation, each presented at most once: the first presented after the authorizer has seen
// the revocation is refused, whatever the gateway cached for the others.
type cachingStage struct {
	r       *testsuite.ReleaseBed
	token   string
	samples []string
}

func provisionCachingStage(t *testing.T, name string) cachingStage {
	t.Helper()
	ctx := context.Background()
	r := provision(t, name)
	cfg, err := r.Bed.AWSConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	api := r.Bed.APIGateway(cfg)
	if _, err := api.UpdateAuthorizer(ctx, &apigateway.UpdateAuthorizerInput{RestApiId: &r.APIID, AuthorizerId: &r.AuthorizerID,
		PatchOperations: []agtypes.PatchOperation{{Op: agtypes.OpReplace, Path: aws.String("/authorizerResultTtlInSeconds"), Value: aws.String("300")}}}); err != nil {
		t.Fatal(err)
	}
	// As on AWS, the stage runs the authorizer's new settings from its next deployment on.
	if _, err := api.CreateDeployment(ctx, &apigateway.CreateDeploymentInput{RestApiId: &r.APIID, StageName: &r.Stage, Description: aws.String("v1, cached authorizer"),
		Variables: map[string]string{"backendUrl": r.Backends["v1"]}}); err != nil {
		t.Fatal(err)
	}
	s := cachingStage{r: r}
	runStarter(t, "revoke", "--help") // built before any clock starts
	if s.token, err = r.Activity.Tokens.Delivery.Token(ctx, r.Clients[0]); err != nil {
		t.Fatal(err)
	}
	labels, err := r.Activity.Keys.ReadLabels(ctx, r.Key)
	if err != nil {
		t.Fatal(err)
	}
	m := &tokens.Minter{Transit: r.Activity.Health.Transit, Key: r.Key, Type: keys.RSA2048, Issuer: r.Issuer}
	reqs := make([]tokens.MintRequest, 60)
	for i := range reqs {
		reqs[i] = tokens.MintRequest{Subject: r.Clients[0], ClientID: r.Clients[0], Audience: []string{"orders"}, TTL: 10 * time.Minute}
	}
	minted, err := m.Mint(ctx, labels.Current, reqs...)
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range minted {
		s.samples = append(s.samples, tok.Token)
	}
	if code := s.call(t, s.token); code != http.StatusOK {
		t.Fatalf("the client's token before the revocation: %d", code)
	}
	if err := r.Activity.Releases.RecordRelease(ctx, activities.ReleaseRecord{RunID: name + "-release", Service: r.Name, Target: r.Target(),
		DeploymentID: "v1", PromotedAt: time.Now().UTC(), Issuer: r.IssuerRef()}); err != nil {
		t.Fatal(err)
	}
	return s
}

// call presents token at the stage and returns the status.
func (s cachingStage) call(t *testing.T, token string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, s.r.Bed.Gateway.InvokeURL(s.r.APIID, s.r.Stage)+"/orders", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func (s cachingStage) revoke(t *testing.T, extra ...string) (int, string, string) {
	t.Helper()
	args := append([]string{"revoke", "--subject", s.r.Clients[0], "--issuer", s.r.Issuer, "--transit-key", s.r.Key, "--reason", "laptop stolen"}, extra...)
	return runStarter(t, args...)
}

// A stage that caches its authorizer's Allow for 300 s refuses a revoked client's token within
// seconds of `starter revoke`: the revocation flushes every stage released with the issuer (found
// in the release history), and reports a named stage that no longer exists without failing.
func TestRevocation_FlushesTheCacheOfEveryStageReleasedWithTheIssuer(t *testing.T) {
	s := provisionCachingStage(t, "flushed")
	gone := "zzzzzzzzzz/prod"
	start := time.Now()
	code, stdout, stderr := s.revoke(t, "--flush", gone)
	if code != 0 {
		t.Fatalf("revoke: exit %d\nstdout %s\nstderr %s", code, stdout, stderr)
	}
	if want := "flushed the authorizer caches of " + s.r.APIID + "/" + s.r.Stage; !strings.Contains(stdout, want) || !strings.Contains(stdout, "not flushed: "+gone) {
		t.Fatalf("revoke says\n%s\nwant %q and the missing stage %s reported", stdout, want, gone)
	}
	deadline := time.Now().Add(30 * time.Second)
	for s.call(t, s.token) != http.StatusUnauthorized {
		if time.Now().After(deadline) {
			t.Fatalf("the revoked client's cached token is still allowed %s after the revocation", time.Since(start).Round(time.Millisecond))
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("revoke started to the first 401 at the stage (TTL 300 s, --flush-after 2s): %s", time.Since(start).Round(time.Millisecond))
}

// The same revocation without the flush: the authorizer refuses the subject's tokens (one not
// presented before is refused), yet the gateway keeps serving the Allow it cached for the client's
// token. This is what the flush prevents, and it shows the test above can fail.
func TestRevocation_WithoutTheFlushACachedAllowOutlivesIt(t *testing.T) {
	s := provisionCachingStage(t, "unflushed")
	code, stdout, stderr := s.revoke(t, "--no-flush")
	if code != 0 || !strings.Contains(stdout, "flushed no authorizer cache") {
		t.Fatalf("revoke --no-flush: exit %d\nstdout %s\nstderr %s", code, stdout, stderr)
	}
	// Each sample is presented once, 250 ms apart: the first one refused shows the authorizer
	// has the revocation (15 s at most, many times the bed's deny-list refresh interval).
	seen := false
	for _, sample := range s.samples {
		if s.call(t, sample) == http.StatusUnauthorized {
			seen = true
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	if !seen {
		t.Fatalf("none of %d tokens of the revoked subject was refused: the authorizer never saw the revocation", len(s.samples))
	}
	for i := range 20 { // 2 s more: ten of the bed's deny-list refresh intervals
		if code := s.call(t, s.token); code != http.StatusOK {
			t.Fatalf("request %d with the cached token: %d, want the cached Allow (200)", i, code)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Log("the cached Allow is still served 2 s after the authorizer refused the subject's other token")
}

// The TokenRevocation workflow reports what it flushed (the proof stage, also found in the
// release history, once) and what it could not (a stage that does not exist), and its history
// replays; with ROLLGATE_RECORD_HISTORY=1 it is the replay fixture of the flushing revocation.
func TestRevocation_ReportsTheFlushedAndMissingStagesAndReplays(t *testing.T) {
	r := provision(t, "flushreport")
	ctx := context.Background()
	target := r.Target()
	if err := r.Activity.Releases.RecordRelease(ctx, activities.ReleaseRecord{RunID: r.Name + "-release", Service: r.Name, Target: target,
		DeploymentID: "v1", PromotedAt: time.Now().UTC(), Issuer: r.IssuerRef()}); err != nil {
		t.Fatal(err)
	}
	gone := activities.Target{APIID: "zzzzzzzzzz", Stage: "prod"}
	run, err := r.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "revoke/" + r.Name, TaskQueue: workflows.TaskQueue},
		workflows.TokenRevocation, workflows.RevocationSpec{Issuer: r.IssuerRef(), Subject: r.Clients[0], Actor: "sec", Reason: "laptop stolen",
			Proof: &target, Flush: []activities.Target{gone}, FlushIssuerStages: true, FlushAfter: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var rep workflows.RevocationReport
	if err := run.Get(ctx, &rep); err != nil {
		t.Fatal(err)
	}
	if !rep.Proven || len(rep.Flushed) != 1 || rep.Flushed[0] != target || len(rep.FlushSkipped) != 1 || rep.FlushSkipped[0].Target != gone || rep.FlushError != "" {
		t.Fatalf("report %+v", rep)
	}
	replay(t, r, run, "token-revocation-flush.json")
}

// The stages a revocation reaches by default are those whose latest release used the issuer: a
// stage released with another issuer since no longer accepts its tokens; an HTTP API stage keeps
// its kind, so that it is flushed as an HTTP API.
func TestIssuerStages_AreTheStagesWhoseLatestReleaseUsedTheIssuer(t *testing.T) {
	bed := shared.Bed(t)
	ctx := context.Background()
	cfg, err := bed.AWSConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	h := &releases.History{DB: bed.DynamoDBClient(cfg), Table: uniqueName("releases-")}
	if err := h.CreateTable(ctx); err != nil {
		t.Fatal(err)
	}
	rel := &activities.Releases{History: h}
	ours, theirs := activities.Issuer{URL: "https://issuer.example.com/ours"}, activities.Issuer{URL: "https://issuer.example.com/theirs"}
	start := time.Now().UTC()
	for i, rec := range []activities.ReleaseRecord{
		{Target: activities.Target{APIID: "aaaaaaaaaa", Stage: "prod"}, Issuer: ours},
		{Target: activities.Target{APIID: "bbbbbbbbbb", Stage: "prod"}, Issuer: ours},
		{Target: activities.Target{APIID: "bbbbbbbbbb", Stage: "prod"}, Issuer: theirs}, // released since with another issuer
		{Target: activities.Target{APIID: "cccccccccc", Stage: "prod"}, Issuer: theirs},
		{Target: activities.Target{Kind: "http", APIID: "dddddddddd", Stage: "live"}, Issuer: theirs},
		{Target: activities.Target{Kind: "http", APIID: "dddddddddd", Stage: "live"}, Issuer: ours}, // back to ours
	} {
		rec.RunID, rec.PromotedAt = fmt.Sprintf("run-%d", i), start.Add(time.Duration(i)*time.Second)
		if err := rel.RecordRelease(ctx, rec); err != nil {
			t.Fatal(err)
		}
	}
	got, err := rel.IssuerStages(ctx, activities.IssuerStagesInput{IssuerURL: ours.URL})
	if err != nil {
		t.Fatal(err)
	}
	want := []activities.Target{{APIID: "aaaaaaaaaa", Stage: "prod"}, {Kind: "http", APIID: "dddddddddd", Stage: "live"}}
	if fmt.Sprint(got.Stages) != fmt.Sprint(want) || got.Beyond != 0 {
		t.Fatalf("stages of the issuer %+v, want %+v", got, want)
	}
}
