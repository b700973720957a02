package testsuite_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"slices"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/rollgate/rollgate/activities"
	"github.com/rollgate/rollgate/internal/codec"
	"github.com/rollgate/rollgate/testsuite"
	"github.com/rollgate/rollgate/workflows"
)

// BenchmarkRollbackLatency measures, on the bed, the time from an operator's rollback Update to
// the verified RollbackReport over 20 rollbacks mid-bake, next to the floor: the same
// compensation and verification calls made directly, in sequence, without Temporal. Goal: p50 ≤
// 1.5× and p99 ≤ 2.5× the floor. Run it with -benchtime 1x.
func BenchmarkRollbackLatency(b *testing.B) {
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	cdc, err := codec.New("bench", map[string][]byte{"bench": key})
	if err != nil {
		b.Fatal(err)
	}
	// "encrypted": worker and client seal every payload with the AES-256-GCM codec.
	for _, v := range []struct {
		name string
		opts []testsuite.ReleaseOption
	}{
		{"plain", nil},
		{"encrypted", []testsuite.ReleaseOption{testsuite.WithClientOptions(func(o *client.Options) { codec.Apply(o, cdc) })}},
	} {
		b.Run(v.name, func(b *testing.B) { rollbackLatency(b, "latency"+v.name, v.opts) })
	}
}

func rollbackLatency(b *testing.B, name string, opts []testsuite.ReleaseOption) {
	const n = 20
	ctx := context.Background()
	for b.Loop() {
		r, err := testsuite.ProvisionRelease(ctx, shared.Bed(b), name, opts...)
		if err != nil {
			b.Fatal(err)
		}
		var withTemporal, floor []time.Duration
		for i := range n {
			d, err := rollbackThroughTemporal(ctx, r, i)
			if err != nil {
				b.Fatal(err)
			}
			withTemporal = append(withTemporal, d)
			f, err := rollbackDirectly(ctx, r)
			if err != nil {
				b.Fatal(err)
			}
			floor = append(floor, f)
		}
		r.Close()
		p50, p99 := percentiles(withTemporal)
		f50, f99 := percentiles(floor)
		b.ReportMetric(ms(p50), "p50-ms")
		b.ReportMetric(ms(p99), "p99-ms")
		b.ReportMetric(ms(f50), "floor-p50-ms")
		b.ReportMetric(ms(f99), "floor-p99-ms")
		b.ReportMetric(float64(p50)/float64(f50), "p50-x-floor")
		b.ReportMetric(float64(p99)/float64(f99), "p99-x-floor")
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func percentiles(ds []time.Duration) (p50, p99 time.Duration) {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2], s[min(len(s)-1, len(s)*99/100)]
}

// rollbackThroughTemporal starts a deployment, waits for its bake, and times the rollback Update
// from the call to the returned, verified report.
func rollbackThroughTemporal(ctx context.Context, r *testsuiteRelease, i int) (time.Duration, error) {
	s := r.Spec("v2", 10*time.Minute)
	run, err := r.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID: s.WorkflowID(), TaskQueue: workflows.TaskQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL, WorkflowExecutionErrorWhenAlreadyStarted: true,
	}, workflows.Deployment, s)
	if err != nil {
		return 0, err
	}
	if err := waitBaking(ctx, r, run); err != nil {
		return 0, err
	}
	start := time.Now()
	h, err := r.Temporal.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID: run.GetID(), RunID: run.GetRunID(), UpdateName: workflows.UpdateRollback, UpdateID: fmt.Sprintf("bench-%d", i),
		WaitForStage: client.WorkflowUpdateStageCompleted, Args: []any{workflows.OperatorRequest{Actor: "bench", Reason: "latency"}},
	})
	if err != nil {
		return 0, err
	}
	var rep workflows.RollbackReport
	if err := h.Get(ctx, &rep); err != nil {
		return 0, err
	}
	took := time.Since(start)
	if !rep.Verified {
		return 0, fmt.Errorf("rollback %d not verified: %v", i, rep.Problems)
	}
	return took, run.Get(ctx, nil)
}

func waitBaking(ctx context.Context, r *testsuiteRelease, run client.WorkflowRun) error {
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		if v, err := r.Temporal.QueryWorkflow(ctx, run.GetID(), run.GetRunID(), workflows.QueryStatus); err == nil {
			var st workflows.Status
			if v.Get(&st) == nil && st.Phase == workflows.PhaseBaking {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("never baking")
}

// rollbackDirectly makes the same changes a deployment makes before its bake, then times the
// same compensations and verification calls, straight from this process.
func rollbackDirectly(ctx context.Context, r *testsuiteRelease) (time.Duration, error) {
	a := r.Activity
	target := activities.Target{APIID: r.APIID, Stage: r.Stage}
	s := r.Spec("v2", time.Minute)
	snap, err := a.Gateway.SnapshotGateway(ctx, activities.SnapshotInput{Target: target, AuthorizerID: r.AuthorizerID})
	if err != nil {
		return 0, err
	}
	key, err := a.Keys.SnapshotKey(ctx, r.IssuerRef().Key)
	if err != nil {
		return 0, err
	}
	v, err := a.Keys.PrepareKey(ctx, activities.PrepareInput{Key: r.IssuerRef().Key, ExpectedLatest: key.Latest})
	if err != nil {
		return 0, err
	}
	if _, err := a.Tokens.PublishJWKS(ctx, activities.PublishInput{Issuer: r.IssuerRef(), Versions: append(key.Labels.Published(), v)}); err != nil {
		return 0, err
	}
	if _, err := a.Gateway.ApplyAuthorizer(ctx, activities.AuthorizerInput{Target: target, AuthorizerID: r.AuthorizerID, Settings: s.Auth.AuthorizerPatch}); err != nil {
		return 0, err
	}
	if _, err := a.Gateway.StartCanary(ctx, activities.CanaryInput{Target: target, Marker: fmt.Sprintf("floor %d", v), Weight: 20, Variables: s.Release.Variables}); err != nil {
		return 0, err
	}
	time.Sleep(s.Auth.VerifierCacheTTL.D() + 100*time.Millisecond) // as a deployment waits for verifier caches
	// As in a deployment, release tokens have been presented, so verifiers know the new key.
	if res, err := a.Health.Probe(ctx, activities.ProbeInput{Target: target, Issuer: r.IssuerRef(), Versions: []int{key.Labels.Current, v}, Rounds: 3}); err != nil || !res.Healthy() {
		return 0, fmt.Errorf("floor setup probe %+v: %v", res, err)
	}

	start := time.Now()
	in := activities.RestoreInput{Target: target, Snapshot: snap}
	steps := []func() error{
		func() error { return a.Gateway.RestoreStage(ctx, in) },
		func() error { return a.Gateway.RestoreAuthorizer(ctx, in) },
		func() error {
			_, err := a.Tokens.PublishJWKS(ctx, activities.PublishInput{Issuer: r.IssuerRef(), Versions: key.Labels.Published()})
			return err
		},
		func() error {
			return a.Keys.RestoreLabels(ctx, activities.RestoreLabelsInput{Key: r.Key, Labels: key.Labels})
		},
		func() error {
			problems, err := a.Gateway.VerifyRestored(ctx, in)
			if err == nil && len(problems) > 0 {
				return fmt.Errorf("floor rollback not restored: %v", problems)
			}
			return err
		},
		func() error {
			l, err := a.Keys.ReadLabels(ctx, r.Key)
			if err == nil && l != key.Labels {
				return fmt.Errorf("labels %+v", l)
			}
			return err
		},
		func() error {
			res, err := a.Health.Probe(ctx, activities.ProbeInput{Target: target, Issuer: r.IssuerRef(), Versions: []int{key.Labels.Current}, Rounds: 3})
			if err == nil && !res.Healthy() {
				return fmt.Errorf("current-key probe %+v", res)
			}
			return err
		},
		func() error {
			ok, err := a.Health.ProbeRevoked(ctx, activities.ProbeInput{Target: target, Issuer: r.IssuerRef(), Versions: []int{v}})
			if err == nil && !ok {
				return fmt.Errorf("revoked token accepted")
			}
			return err
		},
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return 0, err
		}
	}
	return time.Since(start), nil
}

type testsuiteRelease = testsuite.ReleaseBed
