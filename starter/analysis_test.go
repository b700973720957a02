package main

import (
	"bytes"
	"strings"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/converter"

	"github.com/rollgate/rollgate/activities"
	"github.com/rollgate/rollgate/internal/analysis"
	"github.com/rollgate/rollgate/internal/spec"
	"github.com/rollgate/rollgate/workflows"
)

func judgements() []analysis.Judgement {
	max, delta := 0.01, 0.005
	fivexx := spec.Metric{Name: "gateway-5xx", Template: spec.TemplateGateway5xx, Max: &max, ConsecutiveErrorLimit: new(int)}
	rej := spec.Metric{Name: "token-rejections", Template: spec.TemplateTokenRejections, MaxDelta: &delta, ConsecutiveErrorLimit: new(int)}
	return []analysis.Judgement{
		analysis.Judge(fivexx, []analysis.Observation{{Canary: analysis.Measurement{Value: 0.031, Samples: 1000, HasData: true}}}),
		analysis.Judge(rej, []analysis.Observation{{Canary: analysis.Measurement{Value: 0.002, Samples: 400, HasData: true}, Stable: analysis.Measurement{Value: 0.001, Samples: 4000, HasData: true}}}),
	}
}

// The status and the deploy result show each metric's verdict, last canary and stable values,
// rule, failures and errors, and why a metric failed.
func TestPrintStatusAndResult_ShowEachMetricsJudgement(t *testing.T) {
	js := judgements()
	var status, result bytes.Buffer
	printStatus(&status, "deploy/abc/prod", workflows.Status{Phase: workflows.PhaseBaking, Step: 1, Steps: 2, Analysis: js})
	printResult(&result, workflows.DeployResult{Outcome: workflows.OutcomeRolledBack, Analysis: js})
	for name, out := range map[string]string{"status": status.String(), "result": result.String()} {
		for _, want := range []string{
			"gateway-5xx", "fail", "0.031 (1000 req)", "max 0.01", "gateway-5xx: 1 failed measurements (failureLimit 0), last: canary 0.031 > max 0.01",
			"token-rejections", "running", "0.002 (400 req)", "0.001 (4000 req)", "maxDelta 0.005",
		} {
			if !strings.Contains(out, want) {
				t.Fatalf("%s output lacks %q:\n%s", name, want, out)
			}
		}
	}
}

// While a step bakes, or the stage is watched after promotion, status shows the judgements of the
// bake's last heartbeat: the workflow learns them only when the bake ends.
func TestWithLiveBake_ShowsTheBakesJudgements(t *testing.T) {
	js := judgements()
	dc := converter.GetDefaultDataConverter()
	details, err := dc.ToPayloads(activities.BakeProgress{Result: activities.ProbeResult{Probes: 4, Accepted: 4}, Analysis: js})
	if err != nil {
		t.Fatal(err)
	}
	desc := &workflowservice.DescribeWorkflowExecutionResponse{PendingActivities: []*workflowpb.PendingActivityInfo{{
		ActivityType: &commonpb.ActivityType{Name: activities.BakeActivity}, HeartbeatDetails: details,
	}}}
	for _, phase := range []workflows.Phase{workflows.PhaseBaking, workflows.PhaseWatching} {
		st := workflows.Status{Phase: phase}
		withLiveBake(&st, desc, dc)
		if len(st.Analysis) != 2 || st.Analysis[0].Verdict != analysis.Fail || st.Probes.Probes != 4 {
			t.Fatalf("%s: status %+v", phase, st)
		}
	}
	st := workflows.Status{Phase: workflows.PhaseBaking}
	withLiveBake(&st, desc, dc)
	if line := analysisLine(st.Analysis); !strings.Contains(line, "gateway-5xx 0.031 (1000 req) fail") {
		t.Fatalf("progress line %q", line)
	}
}
