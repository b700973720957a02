package workflows_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/worker"

	"github.com/rollgate/rollgate/activities"
	"github.com/rollgate/rollgate/internal/keys"
	"github.com/rollgate/rollgate/workflows"
)

// Histories recorded from real runs on the test bed (testsuite's release tests write them with
// ROLLGATE_RECORD_HISTORY=1) must replay against the current code: a change that breaks
// determinism for running deployments fails here.
func TestReplay_RecordedHistories(t *testing.T) {
	files, err := filepath.Glob("testdata/*.json")
	if err != nil || len(files) < 5 {
		t.Fatalf("recorded histories: %v, %v", files, err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			r := worker.NewWorkflowReplayer()
			workflows.Register(r)
			if err := r.ReplayWorkflowHistoryFromJSONFile(nil, f); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// No payload of a recorded history carries a token or a Vault token: workflows pass references.
func TestHistories_HoldNoSecrets(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.json")
	data := regexp.MustCompile(`"data":\s*"([^"]*)"`)
	secret := regexp.MustCompile(`eyJ[A-Za-z0-9_-]+\.eyJ[A-Za-z0-9_-]+\.|hvs\.[A-Za-z0-9]{20,}`)
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range data.FindAllSubmatch(raw, -1) {
			payload, err := base64.StdEncoding.DecodeString(string(m[1]))
			if err == nil && secret.Match(payload) {
				t.Fatalf("%s: a payload carries a secret: %.80s…", f, payload)
			}
		}
	}
}

func TestKeyRetirement_WaitsForTheLastActiveTokenThenDropsTheLabelAndRepublishes(t *testing.T) {
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestWorkflowEnvironment()
	env.RegisterWorkflow(workflows.KeyRetirement)
	env.RegisterActivity(keysA)
	env.RegisterActivity(tokA)
	var restored keys.Labels
	var published []int
	var at time.Time
	start := env.Now()
	// A token of v3 was issued after the retirement was scheduled: it expires at +2h30m.
	lastExpiry := start.Add(150 * time.Minute)
	env.OnActivity(keysA.ReadLabels, mock.Anything, mock.Anything).Return(keys.Labels{Current: 4, Previous: 3}, nil)
	env.OnActivity(tokA.LatestActiveExpiry, mock.Anything, "k-v3").Return(func(context.Context, string) (time.Time, error) {
		if env.Now().Before(lastExpiry) {
			return lastExpiry, nil
		}
		return time.Time{}, nil
	})
	env.OnActivity(keysA.RetireLabel, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.RetireInput) (keys.Labels, error) {
		if in.Key != "k" || in.Version != 3 {
			return keys.Labels{}, fmt.Errorf("retired %+v", in)
		}
		restored, at = keys.Labels{Current: 4}, env.Now()
		return restored, nil
	})
	env.OnActivity(tokA.PublishJWKS, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.PublishInput) ([]string, error) {
		published = in.Versions
		return nil, nil
	})
	env.ExecuteWorkflow(workflows.KeyRetirement, workflows.KeyRetirementInput{
		Issuer: activities.Issuer{Key: activities.KeyRef{Name: "k"}, CacheTTL: 5 * time.Minute}, Version: 3, After: 2 * time.Hour})
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	if restored != (keys.Labels{Current: 4}) || len(published) != 1 || published[0] != 4 || at.Sub(start) < 155*time.Minute {
		t.Fatalf("labels %+v, JWKS %v, retired at +%s (want after the last token + cache TTL, +2h35m)", restored, published, at.Sub(start))
	}
}

// A retirement scheduled by a deployment flushes the deployment's stage once the retired key has
// left the JWKS and the verifiers' caches of it, so that an Allow cached for a token of the
// version cannot outlive the retirement.
func TestKeyRetirement_FlushesTheStageOnceTheRetiredKeyLeftVerifierCaches(t *testing.T) {
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestWorkflowEnvironment()
	env.RegisterWorkflow(workflows.KeyRetirement)
	env.RegisterActivity(keysA)
	env.RegisterActivity(tokA)
	env.RegisterActivity(gw)
	var calls []string
	var published, flushed time.Time
	var flushIn activities.FlushInput
	env.OnActivity(keysA.ReadLabels, mock.Anything, mock.Anything).Return(keys.Labels{Current: 4, Previous: 3}, nil)
	env.OnActivity(tokA.LatestActiveExpiry, mock.Anything, "k-v3").Return(time.Time{}, nil)
	env.OnActivity(keysA.RetireLabel, mock.Anything, mock.Anything).Return(func(context.Context, activities.RetireInput) (keys.Labels, error) {
		calls = append(calls, "RetireLabel")
		return keys.Labels{Current: 4}, nil
	})
	env.OnActivity(tokA.PublishJWKS, mock.Anything, mock.Anything).Return(func(context.Context, activities.PublishInput) ([]string, error) {
		calls, published = append(calls, "PublishJWKS"), env.Now()
		return nil, nil
	})
	env.OnActivity(gw.FlushAuthorizerCaches, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.FlushInput) (activities.FlushResult, error) {
		calls, flushed, flushIn = append(calls, "FlushAuthorizerCaches"), env.Now(), in
		return activities.FlushResult{Flushed: in.Targets}, nil
	})
	stage := activities.Target{APIID: "abcdefghij", Stage: "prod"}
	env.ExecuteWorkflow(workflows.KeyRetirement, workflows.KeyRetirementInput{
		Issuer: activities.Issuer{Key: activities.KeyRef{Name: "k"}, CacheTTL: 5 * time.Minute}, Version: 3, After: time.Hour, Flush: []activities.Target{stage}})
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	if want := []string{"RetireLabel", "PublishJWKS", "FlushAuthorizerCaches"}; fmt.Sprint(calls) != fmt.Sprint(want) {
		t.Fatalf("calls %v, want %v", calls, want)
	}
	if len(flushIn.Targets) != 1 || flushIn.Targets[0] != stage || flushed.Sub(published) < 5*time.Minute {
		t.Fatalf("flushed %+v %s after the JWKS, want the stage after the cache TTL (5m)", flushIn.Targets, flushed.Sub(published))
	}
}
