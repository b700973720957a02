package testsuite_test

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/apigateway"
	agtypes "github.com/aws/aws-sdk-go-v2/service/apigateway/types"
	"go.temporal.io/sdk/client"

	"github.com/rollgate/rollgate/activities"
	"github.com/rollgate/rollgate/internal/tokens"
	"github.com/rollgate/rollgate/testsuite"
	"github.com/rollgate/rollgate/workflows"
)

// bedDenyListRefresh is the bed authorizer's ROLLGATE_DENYLIST_REFRESH (testsuite/release.go).
const bedDenyListRefresh = 200 * time.Millisecond

// BenchmarkRevocationPropagation measures, on the bed, the time from starting a revocation by
// subject (the TokenRevocation workflow `starter revoke --subject` starts) to the first 401 at
// the stage for a token of that subject that the stage accepted just before, through the real
// authorizer under the Lambda emulator, over 20 revocations, beside the goal: the authorizer's
// deny-list refresh interval + 1 s. With the authorizer result TTL at 300 s the stage keeps the
// Allow cached until the revocation flushes it, two refresh intervals after writing it (the
// bed's `--flush-after`). Run it with -benchtime 1x.
func BenchmarkRevocationPropagation(b *testing.B) {
	for _, ttl := range []int32{0, 300} {
		b.Run("ttl="+strconv.Itoa(int(ttl)), func(b *testing.B) { revocationPropagation(b, ttl) })
	}
}

func revocationPropagation(b *testing.B, ttl int32) {
	const n = 20
	ctx := context.Background()
	for b.Loop() {
		r, err := testsuite.ProvisionRelease(ctx, shared.Bed(b), "propagate")
		if err != nil {
			b.Fatal(err)
		}
		if err := setAuthorizerTTL(ctx, r, ttl); err != nil {
			b.Fatal(err)
		}
		var took []time.Duration
		for i := range n {
			d, err := revokeAndWaitFor401(ctx, r, fmt.Sprintf("%s-user-%d", r.Name, i))
			if err != nil {
				b.Fatal(err)
			}
			took = append(took, d)
		}
		r.Close()
		p50, p99 := percentiles(took)
		goal := bedDenyListRefresh + time.Second
		b.ReportMetric(ms(p50), "p50-ms")
		b.ReportMetric(ms(p99), "p99-ms")
		b.ReportMetric(ms(goal), "goal-ms")
	}
}

// setAuthorizerTTL sets the REST authorizer's result TTL and deploys the stage again, since a
// REST stage serves the authorizer of its deployment.
func setAuthorizerTTL(ctx context.Context, r *testsuite.ReleaseBed, ttl int32) error {
	cfg, err := r.Bed.AWSConfig(ctx)
	if err != nil {
		return err
	}
	c := r.Bed.APIGateway(cfg)
	if _, err := c.UpdateAuthorizer(ctx, &apigateway.UpdateAuthorizerInput{RestApiId: &r.APIID, AuthorizerId: &r.AuthorizerID,
		PatchOperations: []agtypes.PatchOperation{{Op: agtypes.OpReplace, Path: aws.String("/authorizerResultTtlInSeconds"), Value: aws.String(strconv.Itoa(int(ttl)))}}}); err != nil {
		return err
	}
	_, err = c.CreateDeployment(ctx, &apigateway.CreateDeploymentInput{RestApiId: &r.APIID, StageName: &r.Stage})
	return err
}

// revokeAndWaitFor401 mints a token for subject, waits until the stage accepts it (so that a
// cached Allow exists when the TTL is set), starts the revocation of the subject and times it
// until the stage first refuses the token.
func revokeAndWaitFor401(ctx context.Context, r *testsuite.ReleaseBed, subject string) (time.Duration, error) {
	token, err := mintFor(ctx, r, subject)
	if err != nil {
		return 0, err
	}
	url := r.Bed.Gateway.InvokeURL(r.APIID, r.Stage) + "/orders"
	if err := pollStatus(ctx, url, token, http.StatusOK, time.Minute); err != nil {
		return 0, fmt.Errorf("before the revocation: %w", err)
	}
	start := time.Now()
	run, err := r.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "revoke/" + subject, TaskQueue: workflows.TaskQueue},
		workflows.TokenRevocation, workflows.RevocationSpec{Issuer: r.IssuerRef(), Subject: subject, Actor: "bench", Reason: "propagation",
			Flush: []activities.Target{r.Target()}, FlushAfter: 2 * bedDenyListRefresh})
	if err != nil {
		return 0, err
	}
	if err := pollStatus(ctx, url, token, http.StatusUnauthorized, time.Minute); err != nil {
		return 0, fmt.Errorf("after the revocation: %w", err)
	}
	took := time.Since(start)
	return took, run.Get(ctx, nil)
}

// mintFor mints a current-key token of the bed's issuer for subject.
func mintFor(ctx context.Context, r *testsuite.ReleaseBed, subject string) (string, error) {
	ref := r.IssuerRef()
	labels, err := r.Activity.Keys.ReadLabels(ctx, ref.Key.Name)
	if err != nil {
		return "", err
	}
	m := &tokens.Minter{Transit: r.Activity.Tokens.Transit, Key: ref.Key.Name, Type: ref.Key.Type, Alg: ref.Algorithm, Issuer: ref.URL}
	minted, err := m.Mint(ctx, labels.Current, tokens.MintRequest{Subject: subject, ClientID: subject, Audience: ref.Audiences, TTL: time.Hour})
	if err != nil {
		return "", err
	}
	return minted[0].Token, nil
}

// pollStatus requests url with the token until the gateway answers want, every 10 ms.
func pollStatus(ctx context.Context, url, token string, want int, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	last := 0
	for time.Now().Before(deadline) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if last = resp.StatusCode; last == want {
				return nil
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Errorf("the stage still answers %d after %s; want %d", last, limit, want)
}
