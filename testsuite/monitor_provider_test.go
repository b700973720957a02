package testsuite_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/rollgate/rollgate/internal/spec"
	"github.com/rollgate/rollgate/workflows"
)

// From the gateway to a rollback, every piece real: a release is promoted; right after it, a
// burst of tokens with a forged kid hits the stage; the REST API's authorizer (its Lambda
// bootstrap under the Runtime Interface Emulator) refuses them as unknown_kid and reports each
// in its Embedded Metric Format lines, which the bed's CloudWatch turns into metrics under the
// release's label; the monitor, reading CloudWatch, opens one incident within two intervals,
// rolls the release back from the stage's history (the Rollback workflow, verified) and
// notifies once. Its history replays (ROLLGATE_RECORD_HISTORY=1 writes the fixture).
func TestTokenMonitor_ForgedKidBurstAfterARelease_ReleaseRolledBackAndVerified(t *testing.T) {
	t.Parallel() // on a task queue of its own
	r := provisionCloudWatch(t, "monitorkid")
	ctx := context.Background()
	hook := &webhookSink{}
	srv := httptest.NewServer(hook)
	defer srv.Close()
	r.Activity.Notify.Webhooks = map[string]string{"oncall": srv.URL + "/hook"}

	before := observe(t, r)
	s := r.Spec("v2", 10*time.Second)
	run, err := r.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: s.WorkflowID(), TaskQueue: r.TaskQueue}, workflows.Deployment, s)
	if err != nil {
		t.Fatal(err)
	}
	res := deployResult(t, run)
	if res.Outcome != workflows.OutcomePromoted {
		t.Fatalf("outcome %s: %+v", res.Outcome, res.Rollback)
	}
	promoted := observe(t, r)
	label := promoted.stage.Variables["rollgateRelease"]
	if label == "" {
		t.Fatalf("the promoted stage carries no release label: %v", promoted.stage.Variables)
	}

	mon, err := r.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: workflows.MonitorID(r.Key), TaskQueue: r.TaskQueue},
		workflows.TokenMonitor, workflows.MonitorSpec{Issuer: r.IssuerRef(), Interval: workflows.MinMonitorInterval, Webhook: "oncall", Actor: "sec",
			RevokedUses: workflows.RevokedUsesPolicy{Off: true}, ExpiringRenewal: workflows.RenewalPolicy{Off: true},
			Provider:   spec.ProviderCloudWatch,
			UnknownKID: workflows.RejectionPolicy{Threshold: 20, Actions: []string{"rollback", "notify"}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Temporal.TerminateWorkflow(context.Background(), mon.GetID(), "", "test over") })
	waitForMonitor(t, r, mon, func(st workflows.MonitorStatus) bool { return st.Judgements >= 1 })

	// The burst: a client's own token, its kid replaced by one no key set holds.
	token, err := r.Activity.Tokens.Delivery.Token(ctx, r.Clients[0])
	if err != nil {
		t.Fatal(err)
	}
	forged := withUnknownKID(token)
	url := r.Bed.Gateway.InvokeURL(r.APIID, r.Stage) + "/orders"
	burst := time.Now()
	for range 60 {
		if code := get(url, forged, ""); code != http.StatusUnauthorized {
			t.Fatalf("a forged kid got %d at the gateway, want 401", code)
		}
	}

	st := waitForMonitor(t, r, mon, func(st workflows.MonitorStatus) bool {
		return len(st.Incidents) == 1 && st.Incidents[0].Actions[0].Done && st.Incidents[0].Actions[1].Done
	})
	inc := st.Incidents[0]
	t.Logf("forged-kid burst → incident opened in %s, rolled back and notified %s after it (interval %s)",
		inc.OpenedAt.Sub(burst).Round(time.Millisecond), time.Since(burst).Round(time.Millisecond), workflows.MinMonitorInterval)
	if d := inc.OpenedAt.Sub(burst); d > 2*workflows.MinMonitorInterval+5*time.Second {
		t.Errorf("incident opened %s after the burst, want within two intervals", d)
	}
	if inc.Signal != workflows.SignalUnknownKID || inc.Evidence.Rejections < 20 || len(inc.Evidence.Releases) == 0 || inc.Evidence.Releases[0].Release != label {
		t.Fatalf("incident %+v, want unknown_kid carried by release %s", inc, label)
	}
	if a := inc.Actions[0]; a.Action != "rollback" || !strings.Contains(a.Result, "rolled back release") || !strings.Contains(a.Result, "verified") {
		t.Fatalf("rollback action %+v", a)
	}

	// The Rollback workflow the monitor started ran to its verified end, and the stage is back.
	var rep workflows.RollbackReport
	if err := r.Temporal.GetWorkflow(ctx, workflows.RollbackWorkflowID(r.APIID, r.Stage), "").Get(ctx, &rep); err != nil {
		t.Fatal(err)
	}
	if !rep.Verified || !strings.HasPrefix(rep.Actor, "token monitor") {
		t.Fatalf("rollback report %+v", rep)
	}
	after := observe(t, r)
	if after.stage.DeploymentID != before.stage.DeploymentID || after.stage.DeploymentID == promoted.stage.DeploymentID || after.labels != before.labels {
		t.Fatalf("not restored: stage %s labels %+v (before %s %+v)", after.stage.DeploymentID, after.labels, before.stage.DeploymentID, before.labels)
	}
	texts := hook.texts()
	if len(texts) != 1 || !strings.Contains(texts[0], "unknown_kid") || !strings.Contains(texts[0], "rolled back release") {
		t.Fatalf("notifications %q, want one saying what was rolled back", texts)
	}
	if strings.Contains(texts[0], token[:40]) {
		t.Fatal("the notification carries the token")
	}
	for _, sig := range st.Signals {
		if sig.Error != "" {
			t.Fatalf("signal %s: %s", sig.Name, sig.Error)
		}
	}
	if err := r.Temporal.TerminateWorkflow(ctx, mon.GetID(), "", "test over"); err != nil {
		t.Fatal(err)
	}
	replay(t, r, mon, "token-monitor-unknown-kid-rollback.json")
}
