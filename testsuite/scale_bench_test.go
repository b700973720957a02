package testsuite_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/rollgate/rollgate/internal/await"
	"github.com/rollgate/rollgate/testsuite"
	"github.com/rollgate/rollgate/testsuite/gatewayemu"
	"github.com/rollgate/rollgate/workflows"
)

// BenchmarkConcurrentReleases releases N stages at once (ROLLGATE_BENCH_RELEASES, default 100),
// each a 2-step canary with 10 s bakes (the shortest allowed) through the real authorizer, with the API Gateway emulator
// enforcing AWS's account-wide control-plane quotas (429 TooManyRequestsException), on one worker
// program and then on three. It reports the time until all finished, each release's wall time
// (p50, p99) beside the same release alone (the floor), history events and control-plane calls
// per release, the 429s the emulator answered, activity attempts that failed, the workers'
// CPU seconds and peak RSS, the CPU seconds of the bed's processes (Temporal's dev server,
// Vault, dynalite, the authorizer's environments, the test binary with the emulator) and the
// authorizer's invocations with their wait for a free environment, and the workers' mean
// schedule-to-start (where tasks waited for a worker). Not in CI:
// `ROLLGATE_BENCH_RELEASES=100 go test -run '^$' -bench ConcurrentReleases -benchtime 1x -timeout 75m ./testsuite`.
//
// ROLLGATE_BENCH_PACING=off runs it unpaced: the emulator enforces no quota and the workers'
// gateway queues allow 1000 activities per second, so what remains is the workers, Temporal
// and the bed. ROLLGATE_BENCH_WORKERS (default "1,3") chooses the worker counts; the worker
// program also reads the ROLLGATE_* worker settings of the benchmark's environment.
func BenchmarkConcurrentReleases(b *testing.B) {
	n := 100
	if v := os.Getenv("ROLLGATE_BENCH_RELEASES"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 || n > 5000 {
			b.Fatalf("ROLLGATE_BENCH_RELEASES %q: allowed 1 to 5000", v)
		}
	}
	paced := true
	switch v := os.Getenv("ROLLGATE_BENCH_PACING"); v {
	case "", "on":
	case "off":
		paced = false
	default:
		b.Fatalf("ROLLGATE_BENCH_PACING %q: allowed on or off", v)
	}
	counts, err := workerCounts(os.Getenv("ROLLGATE_BENCH_WORKERS"))
	if err != nil {
		b.Fatal(err)
	}
	bin := buildWorker(b)
	for _, workers := range counts {
		b.Run(fmt.Sprintf("releases=%d/workers=%d/paced=%t", n, workers, paced), func(b *testing.B) {
			for b.Loop() {
				concurrentReleases(b, bin, scaleOptions{n: n, workers: workers, withFloor: true, unpaced: !paced}).report(b)
			}
		})
	}
}

// workerCounts parses a comma-separated list of worker counts, 1 to 10 each; empty is 1 and 3.
func workerCounts(v string) ([]int, error) {
	if v == "" {
		return []int{1, 3}, nil
	}
	var out []int
	for f := range strings.SplitSeq(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > 10 {
			return nil, fmt.Errorf("ROLLGATE_BENCH_WORKERS %q: a comma-separated list of 1 to 10", v)
		}
		out = append(out, n)
	}
	return out, nil
}

// A handful of releases at once under AWS's control-plane quotas, on the worker program with its
// default pacing: every one is promoted and no activity attempt fails, throttled or not.
func TestScale_TenReleasesAtOnceUnderAWSQuotas_AllPromotedNoActivityFails(t *testing.T) {
	got := concurrentReleases(t, buildWorker(t), scaleOptions{n: 10, workers: 1})
	if got.outcomes[workflows.OutcomePromoted] != 10 || got.failed != 0 {
		t.Fatalf("outcomes %v, %d failed activity attempts; want 10 promoted and none failed", got.outcomes, got.failed)
	}
	t.Log(got)
}

// scaleRun is what one run of concurrent releases measured.
type scaleRun struct {
	n, workers        int
	paced             bool
	total, p50, p99   time.Duration
	alone             time.Duration
	events, calls     float64 // per release
	throttled, failed int
	cpu               time.Duration
	rssKiB            int
	outcomes          map[string]int
	bedCPU            map[string]time.Duration // by component, during the concurrent releases
	authz             testsuite.InvokeStats    // the authorizer's, during the concurrent releases
	waits             taskWaits                // the workers' schedule-to-start, the floor included
	freeActivitySlots float64                  // the fewest free on any worker, during the concurrent releases
	freeWorkflowSlots float64
}

func (r scaleRun) String() string {
	pacing := "paced"
	if !r.paced {
		pacing = "unpaced"
	}
	return fmt.Sprintf("%d releases %s on %d worker(s): all done in %s; outcomes %v; wall p50 %s p99 %s, alone %s; %.1f history events and %.1f control-plane calls per release; %d answered 429; %d failed activity attempts; workers %.1f CPU s, peak RSS %d MiB; bed CPU s: %s; authorizer %d invocations, %s waiting for an environment; %s; fewest free slots on a worker: %.0f activity, %.0f workflow-task",
		r.n, pacing, r.workers, r.total.Round(time.Millisecond), r.outcomes, r.p50.Round(time.Millisecond), r.p99.Round(time.Millisecond), r.alone.Round(time.Millisecond),
		r.events, r.calls, r.throttled, r.failed, r.cpu.Seconds(), r.rssKiB>>10, cpuByComponent(r.bedCPU), r.authz.Invocations, r.authz.Waited.Round(time.Millisecond), r.waits, r.freeActivitySlots, r.freeWorkflowSlots)
}

func (r scaleRun) report(b *testing.B) {
	if r.outcomes[workflows.OutcomePromoted] != r.n {
		b.Errorf("outcomes %v; want all %d promoted", r.outcomes, r.n)
	}
	b.Log(r)
	b.ReportMetric(r.total.Seconds(), "all-done-s")
	b.ReportMetric(ms(r.p50), "p50-ms")
	b.ReportMetric(ms(r.p99), "p99-ms")
	b.ReportMetric(ms(r.alone), "alone-ms")
	b.ReportMetric(r.events, "events/release")
	b.ReportMetric(r.calls, "control-calls/release")
	b.ReportMetric(float64(r.throttled), "429s")
	b.ReportMetric(float64(r.failed), "failed-attempts")
	b.ReportMetric(r.cpu.Seconds(), "worker-cpu-s")
	b.ReportMetric(float64(r.rssKiB>>10), "worker-peak-rss-MiB")
}

// scaleOptions say what one run of concurrent releases does: n releases at once on workers
// worker programs; withFloor releases one more alone first, the floor each release's wall time
// is compared with; unpaced lifts the control-plane quota and the gateway queues' pacing.
type scaleOptions struct {
	n, workers         int
	withFloor, unpaced bool
}

// unpacedWorkerEnv paces the gateway queues at the most a worker allows, far above what the bed
// can serve, so the pacing is never what waits.
var unpacedWorkerEnv = []string{"ROLLGATE_GATEWAY_ACTIVITIES_PER_SECOND=1000", "ROLLGATE_ROLLBACK_ACTIVITIES_PER_SECOND=1000"}

// concurrentReleases releases o.n extra stages at once on worker programs.
func concurrentReleases(b testing.TB, bin string, o scaleOptions) scaleRun {
	ctx := context.Background()
	bed := shared.Bed(b)
	r, err := testsuite.ProvisionRelease(ctx, bed, "scale")
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	r.StopWorker() // the worker programs do the work, so their CPU and memory can be measured
	stages, err := r.ExtraStages(ctx, o.n+1)
	if err != nil {
		b.Fatal(err)
	}
	procs := make([]*workerProcess, o.workers)
	for i := range procs {
		procs[i] = newWorkerProcess(b, bin)
		if o.unpaced {
			procs[i].env = append(procs[i].env, unpacedWorkerEnv...)
		}
		procs[i].start(b)
	}
	defer func() {
		for _, p := range procs {
			p.kill()
		}
	}()
	if !o.unpaced {
		bed.Gateway.SetThrottle(gatewayemu.AWSThrottle())
		defer bed.Gateway.SetThrottle(nil)
	}

	const bake = 10 * time.Second // the shortest bake a spec allows
	release := func(st testsuite.ExtraStage) (time.Duration, workflows.DeployResult, client.WorkflowRun, error) {
		s := r.StageSpec(st, "v2", bake)
		start := time.Now()
		run, err := r.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: s.WorkflowID(), TaskQueue: workflows.TaskQueue,
			WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL}, workflows.Deployment, s)
		if err != nil {
			return 0, workflows.DeployResult{}, nil, err
		}
		var res workflows.DeployResult
		err = await.Result(ctx, run, &res) // a poll the busy server does not answer in time is asked again
		return time.Since(start), res, run, err
	}

	var floor time.Duration
	if o.withFloor {
		var res workflows.DeployResult
		floor, res, _, err = release(stages[0])
		if err != nil || res.Outcome != workflows.OutcomePromoted {
			b.Fatalf("the release alone: %s, %v", res.Outcome, err)
		}
	}
	calls0, throttled0 := bed.Gateway.ControlCalls(), throttledCalls(bed.Gateway)
	bed0, authz0 := bedUsage(b), r.Authorizer.Stats()
	addrs := make([]string, len(procs))
	for i, p := range procs {
		addrs[i] = p.metrics
	}
	slots := watchSlots(addrs)

	var (
		mu       sync.Mutex
		walls    []time.Duration
		runs     []client.WorkflowRun
		outcomes = map[string]int{}
		wg       sync.WaitGroup
	)
	start := time.Now()
	for _, st := range stages[1:] {
		wg.Go(func() {
			took, res, run, err := release(st)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				outcomes["error: "+firstLine(err.Error())]++
			case res.Rollback != nil:
				outcomes[res.Outcome+" ("+res.Rollback.Trigger+")"]++
			default:
				outcomes[res.Outcome]++
			}
			walls, runs = append(walls, took), append(runs, run)
		})
	}
	wg.Wait()
	total := time.Since(start)
	freeActivity, freeWorkflow := slots.fewest()
	calls, throttled := bed.Gateway.ControlCalls()-calls0, throttledCalls(bed.Gateway)-throttled0
	bedCPU, authz := bedUsage(b), r.Authorizer.Stats()
	for k, v := range bed0 {
		bedCPU[k] -= v
	}
	authz.Invocations -= authz0.Invocations
	authz.Waited -= authz0.Waited

	var cpu time.Duration
	var rss int
	var waits taskWaits
	for _, p := range procs {
		c, m := processUsage(b, p.cmd.Process.Pid)
		cpu += c
		rss = max(rss, m)
		waits.add(scrapeWaits(b, p.metrics))
	}
	events, failedAttempts := 0, 0
	for _, run := range runs {
		if run == nil {
			continue
		}
		e, f := historyCounts(b, r, run)
		events += e
		failedAttempts += f
	}
	p50, p99 := percentiles(walls)
	return scaleRun{n: o.n, workers: o.workers, paced: !o.unpaced, total: total, p50: p50, p99: p99, alone: floor,
		events: float64(events) / float64(max(1, len(runs))), calls: float64(calls) / float64(o.n), throttled: throttled, failed: failedAttempts,
		cpu: cpu, rssKiB: rss, outcomes: outcomes, bedCPU: bedCPU, authz: authz, waits: waits,
		freeActivitySlots: freeActivity, freeWorkflowSlots: freeWorkflow}
}

// throttledCalls is every 429 the emulator's control-plane quotas answered.
func throttledCalls(e *gatewayemu.Emulator) int {
	n := 0
	for _, op := range []string{"GetStage", "UpdateStage", "GetAuthorizer", "UpdateAuthorizer", "CreateDeployment", "GetDeployment", "FlushStageAuthorizersCache"} {
		n += e.Throttled(op)
	}
	return n
}

// historyCounts is a run's history length and its failed or timed-out activity attempts.
func historyCounts(b testing.TB, r *testsuite.ReleaseBed, run client.WorkflowRun) (events, failed int) {
	it := r.Temporal.GetWorkflowHistory(context.Background(), run.GetID(), run.GetRunID(), false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			b.Fatal(err)
		}
		events++
		if a := e.GetActivityTaskStartedEventAttributes(); a != nil && a.GetAttempt() > 1 {
			failed += int(a.GetAttempt()) - 1
		}
	}
	return events, failed
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// The benchmark's worker counts: a list of 1 to 10 each, or an error naming the variable.
func TestScale_BenchWorkerCounts_ParsedOrRefusedWithTheRange(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []int
		ok   bool
	}{
		{"", []int{1, 3}, true},
		{"1", []int{1}, true},
		{"1, 2,3", []int{1, 2, 3}, true},
		{"0", nil, false},
		{"11", nil, false},
		{"1,x", nil, false},
		{"1,", nil, false},
	} {
		got, err := workerCounts(c.in)
		if c.ok != (err == nil) || !slices.Equal(got, c.want) {
			t.Errorf("workerCounts(%q) = %v, %v; want %v (ok %t)", c.in, got, err, c.want, c.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "ROLLGATE_BENCH_WORKERS") {
			t.Errorf("workerCounts(%q): %v does not name the variable", c.in, err)
		}
	}
}
