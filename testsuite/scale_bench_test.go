package testsuite_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/rollgate/rollgate/testsuite"
	"github.com/rollgate/rollgate/testsuite/gatewayemu"
	"github.com/rollgate/rollgate/workflows"
)

// BenchmarkConcurrentReleases releases N stages at once (ROLLGATE_BENCH_RELEASES, default 100),
// each a 2-step canary with 10 s bakes (the shortest allowed) through the real authorizer, with the API Gateway emulator
// enforcing AWS's account-wide control-plane quotas (429 TooManyRequestsException), on one worker
// program and then on three. It reports the time until all finished, each release's wall time
// (p50, p99) beside the same release alone (the floor), history events and control-plane calls
// per release, the 429s the emulator answered, activity attempts that failed, and the workers'
// CPU seconds and peak RSS. Not in CI: `ROLLGATE_BENCH_RELEASES=100 go test -run '^$' -bench
// ConcurrentReleases -benchtime 1x -timeout 60m ./testsuite`.
func BenchmarkConcurrentReleases(b *testing.B) {
	n := 100
	if v := os.Getenv("ROLLGATE_BENCH_RELEASES"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 || n > 5000 {
			b.Fatalf("ROLLGATE_BENCH_RELEASES %q: allowed 1 to 5000", v)
		}
	}
	bin := buildWorker(b)
	for _, workers := range []int{1, 3} {
		b.Run(fmt.Sprintf("releases=%d/workers=%d", n, workers), func(b *testing.B) {
			for b.Loop() {
				concurrentReleases(b, bin, n, workers, true).report(b)
			}
		})
	}
}

// A handful of releases at once under AWS's control-plane quotas, on the worker program with its
// default pacing: every one is promoted and no activity attempt fails, throttled or not.
func TestScale_TenReleasesAtOnceUnderAWSQuotas_AllPromotedNoActivityFails(t *testing.T) {
	got := concurrentReleases(t, buildWorker(t), 10, 1, false)
	if got.outcomes[workflows.OutcomePromoted] != 10 || got.failed != 0 {
		t.Fatalf("outcomes %v, %d failed activity attempts; want 10 promoted and none failed", got.outcomes, got.failed)
	}
	t.Log(got)
}

// scaleRun is what one run of concurrent releases measured.
type scaleRun struct {
	n, workers        int
	total, p50, p99   time.Duration
	alone             time.Duration
	events, calls     float64 // per release
	throttled, failed int
	cpu               time.Duration
	rssKiB            int
	outcomes          map[string]int
}

func (r scaleRun) String() string {
	return fmt.Sprintf("%d releases on %d worker(s): all done in %s; outcomes %v; wall p50 %s p99 %s, alone %s; %.1f history events and %.1f control-plane calls per release; %d answered 429; %d failed activity attempts; workers %.1f CPU s, peak RSS %d MiB",
		r.n, r.workers, r.total.Round(time.Millisecond), r.outcomes, r.p50.Round(time.Millisecond), r.p99.Round(time.Millisecond), r.alone.Round(time.Millisecond),
		r.events, r.calls, r.throttled, r.failed, r.cpu.Seconds(), r.rssKiB>>10)
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

// concurrentReleases releases n extra stages at once on worker programs; withFloor releases one
// more alone first, the floor each release's wall time is compared with.
func concurrentReleases(b testing.TB, bin string, n, workers int, withFloor bool) scaleRun {
	ctx := context.Background()
	bed := shared.Bed(b)
	r, err := testsuite.ProvisionRelease(ctx, bed, "scale")
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	r.StopWorker() // the worker programs do the work, so their CPU and memory can be measured
	stages, err := r.ExtraStages(ctx, n+1)
	if err != nil {
		b.Fatal(err)
	}
	procs := make([]*workerProcess, workers)
	for i := range procs {
		procs[i] = newWorkerProcess(b, bin)
		procs[i].start(b)
	}
	defer func() {
		for _, p := range procs {
			p.kill()
		}
	}()
	bed.Gateway.SetThrottle(gatewayemu.AWSThrottle())
	defer bed.Gateway.SetThrottle(nil)

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
		err = run.Get(ctx, &res)
		return time.Since(start), res, run, err
	}

	var floor time.Duration
	if withFloor {
		var res workflows.DeployResult
		floor, res, _, err = release(stages[0])
		if err != nil || res.Outcome != workflows.OutcomePromoted {
			b.Fatalf("the release alone: %s, %v", res.Outcome, err)
		}
	}
	calls0, throttled0 := bed.Gateway.ControlCalls(), throttledCalls(bed.Gateway)

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
	calls, throttled := bed.Gateway.ControlCalls()-calls0, throttledCalls(bed.Gateway)-throttled0

	var cpu time.Duration
	var rss int
	for _, p := range procs {
		c, m := processUsage(b, p.cmd.Process.Pid)
		cpu += c
		rss = max(rss, m)
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
	return scaleRun{n: n, workers: workers, total: total, p50: p50, p99: p99, alone: floor,
		events: float64(events) / float64(max(1, len(runs))), calls: float64(calls) / float64(n), throttled: throttled, failed: failedAttempts,
		cpu: cpu, rssKiB: rss, outcomes: outcomes}
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

// processUsage reads a process's CPU time (user + system) and peak resident memory (KiB).
func processUsage(b testing.TB, pid int) (time.Duration, int) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// Fields after the command name (which may hold spaces) start after the last ')'.
	f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+2:]))
	utime, _ := strconv.Atoi(f[11])
	stime, _ := strconv.Atoi(f[12])
	cpu := time.Duration(utime+stime) * time.Second / 100 // USER_HZ
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	rss := 0
	for line := range strings.Lines(string(status)) {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			rss, _ = strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
		}
	}
	return cpu, rss
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
