package testsuite_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"go.temporal.io/sdk/client"

	"github.com/rollgate/rollgate/internal/registry"
	"github.com/rollgate/rollgate/internal/tokens"
	"github.com/rollgate/rollgate/testsuite"
	"github.com/rollgate/rollgate/workflows"
)

// A stolen token, revoked, is presented again from two addresses: the monitor, with the real
// activities over the bed's registry, opens one incident, revokes the subject in the registry,
// notifies once naming subject, client and addresses, and keeps that one incident while the uses
// go on; its history replays (with ROLLGATE_RECORD_HISTORY=1, the replay fixture).
func TestTokenMonitor_RevokedTokenPresented_SubjectRevokedInTheRegistry(t *testing.T) {
	r := provision(t, "monitor")
	ctx := context.Background()
	hook := &webhookSink{}
	srv := httptest.NewServer(hook)
	defer srv.Close()
	r.Activity.Notify.Webhooks = map[string]string{"oncall": srv.URL + "/hook"}

	subject := r.Clients[0]
	reg := r.Activity.Tokens.Registry
	cur, err := r.Activity.Tokens.Delivery.Current(ctx, subject)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reg.RevokeJTIs(ctx, []string{cur.JTI}, "stolen", 0, nil); err != nil {
		t.Fatal(err)
	}
	present := func() {
		for _, addr := range []string{"198.51.100.7", "203.0.113.9", "198.51.100.7"} {
			if err := reg.RecordRevokedUse(ctx, registry.UseEvent{JTI: cur.JTI, Subject: subject, ClientID: subject, Issuer: r.Issuer, Address: addr}); err != nil {
				t.Fatal(err)
			}
		}
	}
	run, err := r.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: workflows.MonitorID(r.Key), TaskQueue: workflows.TaskQueue},
		workflows.TokenMonitor, workflows.MonitorSpec{Issuer: r.IssuerRef(), Interval: workflows.MinMonitorInterval, Webhook: "oncall", Actor: "sec",
			RevokedUses: workflows.RevokedUsesPolicy{Actions: []string{"revoke", "notify"}}})
	if err != nil {
		t.Fatal(err)
	}
	waitForMonitor(t, r, run, func(st workflows.MonitorStatus) bool { return st.Judgements >= 1 })
	presented := time.Now()
	present()
	st := waitForMonitor(t, r, run, func(st workflows.MonitorStatus) bool {
		return len(st.Incidents) == 1 && st.Incidents[0].Actions[0].Done && st.Incidents[0].Actions[1].Done
	})
	inc := st.Incidents[0]
	// Detection latency: from the use to the judgement that opened the incident, at most an interval.
	t.Logf("revoked token presented → incident opened in %s, revoked and notified %s after the use (interval %s)",
		inc.OpenedAt.Sub(presented).Round(time.Millisecond), time.Since(presented).Round(time.Millisecond), workflows.MinMonitorInterval)
	if d := inc.OpenedAt.Sub(presented); d > workflows.MinMonitorInterval+5*time.Second {
		t.Fatalf("incident opened %s after the use, want within an interval (%s)", d, workflows.MinMonitorInterval)
	}
	if inc.Key != subject || inc.Signal != workflows.SignalRevokedPresented || len(inc.Evidence.Addresses) != 2 {
		t.Fatalf("incident %+v", inc)
	}
	for _, s := range st.Signals {
		if s.Error != "" {
			t.Fatalf("signal %s: %s", s.Name, s.Error)
		}
	}

	deny := registry.NewDenyList(reg)
	if err := deny.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	claims := func(sub string, iat time.Time) *tokens.Claims {
		return &tokens.Claims{RegisteredClaims: jwt.RegisteredClaims{ID: "not-" + sub, Subject: sub, Issuer: r.Issuer, IssuedAt: jwt.NewNumericDate(iat)}}
	}
	if !deny.Revoked(claims(subject, inc.OpenedAt.Add(-time.Minute)), "") {
		t.Fatal("the subject's tokens issued before the incident are not revoked in the registry")
	}
	if deny.Revoked(claims(subject+"-other", inc.OpenedAt.Add(-time.Minute)), "") || deny.Revoked(claims(subject, inc.OpenedAt.Add(time.Minute)), "") {
		t.Fatal("the revocation reached another subject, or tokens issued after the incident")
	}

	// The token is presented again: the same incident, nothing done twice.
	present()
	judged := st.Judgements
	st = waitForMonitor(t, r, run, func(st workflows.MonitorStatus) bool { return st.Judgements >= judged+2 })
	if len(st.Incidents) != 1 || st.Incidents[0].OpenedAt != inc.OpenedAt {
		t.Fatalf("incidents after more uses: %+v", st.Incidents)
	}
	notes := hook.texts()
	if len(notes) != 1 {
		t.Fatalf("%d notifications, want 1: %q", len(notes), notes)
	}
	for _, want := range []string{subject, "198.51.100.7", "203.0.113.9", "revoked every token of subject"} {
		if !strings.Contains(notes[0], want) {
			t.Fatalf("notification %q does not name %s", notes[0], want)
		}
	}

	h, err := r.Temporal.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{WorkflowID: run.GetID(), RunID: run.GetRunID(), UpdateName: workflows.UpdateStopMonitor,
		Args: []any{workflows.StopRequest{Actor: "sec", Reason: "test over"}}, WaitForStage: client.WorkflowUpdateStageCompleted})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Get(ctx, nil); err != nil {
		t.Fatal(err)
	}
	var rep workflows.MonitorReport
	if err := run.Get(ctx, &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Open) != 1 || rep.StoppedBy != "sec" {
		t.Fatalf("report %+v", rep)
	}
	replay(t, r, run, "token-monitor-revoked.json")
}

func waitForMonitor(t *testing.T, r *testsuite.ReleaseBed, run client.WorkflowRun, ok func(workflows.MonitorStatus) bool) workflows.MonitorStatus {
	t.Helper()
	var st workflows.MonitorStatus
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		v, err := r.Temporal.QueryWorkflow(context.Background(), run.GetID(), "", workflows.QueryMonitorStatus)
		if err == nil && v.Get(&st) == nil && ok(st) {
			return st
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("the monitor did not get there in 2 minutes: %+v", st)
	return st
}

// webhookSink is a webhook endpoint that keeps what it is sent.
type webhookSink struct {
	mu   sync.Mutex
	seen []string
}

func (s *webhookSink) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	var body struct{ Text string }
	_ = json.NewDecoder(req.Body).Decode(&body)
	s.mu.Lock()
	s.seen = append(s.seen, body.Text)
	s.mu.Unlock()
}

func (s *webhookSink) texts() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.seen...)
}

// The worker program is killed while the monitor's notification is in flight (the webhook holds
// it): after a new worker takes over, the revocation is not taken again, the notification is
// acknowledged once, and each action counts once in rollgate_monitor_incidents_total.
func TestTokenMonitor_WorkerKilledMidAction_EachActionOnceAndCounted(t *testing.T) {
	bin := buildWorker(t)
	r := provision(t, "monitorcrash")
	r.StopWorker()
	ctx := context.Background()
	hook := &heldWebhook{arrived: make(chan struct{}), release: make(chan int), done: make(chan struct{})}
	srv := httptest.NewServer(hook)
	defer srv.Close()
	defer close(hook.done) // before the server closes: a held request must not outlive the test
	w := newWorkerProcess(t, bin)
	w.env = append(w.env, "ROLLGATE_WEBHOOKS=oncall="+srv.URL+"/hook")
	w.start(t)

	subject := r.Clients[0]
	reg := r.Activity.Tokens.Registry
	if err := reg.RecordRevokedUse(ctx, registry.UseEvent{JTI: r.Name + "-stolen", Subject: subject, ClientID: subject, Issuer: r.Issuer, Address: "192.0.2.10"}); err != nil {
		t.Fatal(err)
	}
	run, err := r.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: workflows.MonitorID(r.Key), TaskQueue: workflows.TaskQueue},
		workflows.TokenMonitor, workflows.MonitorSpec{Issuer: r.IssuerRef(), Interval: workflows.MinMonitorInterval, Webhook: "oncall", Actor: "sec",
			RevokedUses: workflows.RevokedUsesPolicy{Actions: []string{"revoke", "notify"}}, ExpiringRenewal: workflows.RenewalPolicy{Off: true}})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-hook.arrived:
	case <-time.After(2 * time.Minute):
		t.Fatal("the notification never arrived")
	}
	counted := func(addr, action string) float64 {
		f := scrape(t, addr)["rollgate_monitor_incidents_total"]
		if f == nil {
			return 0
		}
		for _, m := range f.Metric {
			labels := map[string]string{}
			for _, l := range m.Label {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["signal"] == workflows.SignalRevokedPresented && labels["action"] == action {
				return m.Counter.GetValue()
			}
		}
		return 0
	}
	deadline := time.Now().Add(time.Minute)
	for counted(w.metrics, "revoke") != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the revocation is not counted on the worker's /metrics")
		}
		time.Sleep(250 * time.Millisecond)
	}
	w.kill()
	hook.release <- http.StatusServiceUnavailable // the held request fails: nobody is waiting for it

	w2 := newWorkerProcess(t, bin)
	w2.env = append(w2.env, "ROLLGATE_WEBHOOKS=oncall="+srv.URL+"/hook")
	w2.start(t)
	defer w2.kill()
	go func() {
		for range hook.arrived {
			hook.release <- http.StatusOK
		}
	}()
	st := waitForMonitor(t, r, run, func(st workflows.MonitorStatus) bool {
		return len(st.Incidents) == 1 && st.Incidents[0].Actions[1].Done
	})
	if a := st.Incidents[0].Actions; a[0].Action != "revoke" || a[0].Attempts != 1 || !a[0].Done {
		t.Fatalf("actions %+v, want the revocation taken once", a)
	}
	deadline = time.Now().Add(time.Minute)
	for counted(w2.metrics, "notify") != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the notification is not counted on the new worker's /metrics")
		}
		time.Sleep(250 * time.Millisecond)
	}
	if n := counted(w2.metrics, "revoke"); n != 0 {
		t.Fatalf("the new worker counted %v revocations, want none (taken before the crash)", n)
	}
	if f := scrape(t, w2.metrics)["temporal_activity_execution_latency_seconds"]; f != nil {
		for _, m := range f.Metric {
			for _, l := range m.Label {
				if l.GetName() == "activity_type" && l.GetValue() == "RevokeByRule" {
					t.Fatal("the new worker ran RevokeByRule again")
				}
			}
		}
	}
	if acked := hook.acknowledged(); acked != 1 {
		t.Fatalf("%d notifications acknowledged, want 1", acked)
	}
	stopMonitor(t, r, run)
}

func stopMonitor(t *testing.T, r *testsuite.ReleaseBed, run client.WorkflowRun) {
	t.Helper()
	ctx := context.Background()
	h, err := r.Temporal.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{WorkflowID: run.GetID(), UpdateName: workflows.UpdateStopMonitor,
		Args: []any{workflows.StopRequest{Actor: "sec", Reason: "test over"}}, WaitForStage: client.WorkflowUpdateStageCompleted})
	if err == nil {
		err = h.Get(ctx, nil)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// heldWebhook holds each request until the test says how to answer it.
type heldWebhook struct {
	arrived chan struct{}
	release chan int
	done    chan struct{} // closed when the test ends
	mu      sync.Mutex
	acked   int
}

func (h *heldWebhook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// A request the test no longer waits for (it failed, or the server is closing) gives up, so
	// that closing the server never waits for it.
	select {
	case h.arrived <- struct{}{}:
	case <-r.Context().Done():
		return
	case <-h.done:
		return
	}
	var code int
	select {
	case code = <-h.release:
	case <-r.Context().Done():
		return
	case <-h.done:
		return
	}
	if code == http.StatusOK {
		h.mu.Lock()
		h.acked++
		h.mu.Unlock()
	}
	w.WriteHeader(code)
}

func (h *heldWebhook) acknowledged() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.acked
}
