package testsuite_test

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/rollgate/rollgate/workflows"
)

// The worker program builds its Prometheus provider from ROLLGATE_PROMETHEUS_URL: without it a
// release with analysis fails in preflight, naming the provider, before any change; with it the
// release is judged, and a worker killed mid-bake is replaced by one whose bake resumes each
// metric's judgement from the last heartbeat (step 1 still counts every measurement of its bake).
func TestWorkerProgram_AnalysisProviderFromTheEnvironment_AndBakeResumesAfterACrash(t *testing.T) {
	bin := buildWorker(t)
	b := provisionAnalysis(t, "anaworker")
	b.StopWorker()
	before := observe(t, b.ReleaseBed)

	bare := newWorkerProcess(t, bin)
	bare.env = append(bare.env, "ROLLGATE_TASK_QUEUE="+b.TaskQueue) // the bed's own queue
	bare.start(t)
	res := deployResult(t, b.start(t, "v2", gateway5xx()))
	bare.kill()
	if res.Outcome != workflows.OutcomeRolledBack || res.Rollback == nil || !strings.Contains(res.Rollback.Reason, `provider "prometheus" (metric gateway-5xx): this worker has no prometheus provider configured`) {
		t.Fatalf("without a provider: %+v (rollback %+v)", res, res.Rollback)
	}
	if now := observe(t, b.ReleaseBed); now.stage.DeploymentID != before.stage.DeploymentID || now.stage.HasCanary() || now.labels != before.labels {
		t.Fatalf("a release refused in preflight changed the stage or key: %+v %+v", now.stage, now.labels)
	}

	b.traffic(t)
	first := newWorkerProcess(t, bin)
	first.env = append(first.env, "ROLLGATE_TASK_QUEUE="+b.TaskQueue) // the bed's own queue
	first.env = append(first.env, "ROLLGATE_PROMETHEUS_URL="+b.prom.URL)
	first.start(t)
	run := b.start(t, "v2", gateway5xx())
	awaitStatus(t, b, run, 3*time.Minute, func(st workflows.Status) bool { return st.Phase == workflows.PhaseBaking && st.Step == 1 })
	awaitMeasured(t, b, run)
	first.kill()
	second := newWorkerProcess(t, bin)
	second.env = append(second.env, "ROLLGATE_TASK_QUEUE="+b.TaskQueue) // the bed's own queue
	second.env = append(second.env, "ROLLGATE_PROMETHEUS_URL="+b.prom.URL)
	second.start(t)
	defer second.kill()
	res = deployResult(t, run)
	if res.Outcome != workflows.OutcomePromoted {
		logs, _ := os.ReadFile(second.log.Name())
		t.Fatalf("result %+v\nworker log:\n%s", res, logs)
	}
	// Step 1's bake (30 s, a measurement every 10 s) measured at 10, 20 and 30 s across the two
	// workers: the judgement from before the crash was resumed, not started over.
	step1 := ""
	for _, e := range res.Timeline {
		if strings.HasPrefix(e.Message, "analysis: metric gateway-5xx pass") {
			step1 = e.Message
			break
		}
	}
	if !strings.Contains(step1, "[3 measured") {
		t.Fatalf("step 1's judgement %q, want 3 measurements across the crash; timeline %+v", step1, res.Timeline)
	}
}
