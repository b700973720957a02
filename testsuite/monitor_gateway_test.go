package testsuite_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/rollgate/rollgate/testsuite"

	"github.com/rollgate/rollgate/workflows"
)

// From the gateway to the monitor, every piece real: a client's token is revoked, the client
// keeps presenting it at the stage from two addresses; the REST API's authorizer (its Lambda
// bootstrap under the Runtime Interface Emulator) refuses it and records each use with the
// caller's address; the monitor, judging the registry, opens one incident naming the subject,
// the client and both addresses, and notifies once.
func TestTokenMonitor_RevokedTokenPresentedAtTheGateway_OneIncidentWithBothAddresses(t *testing.T) {
	t.Parallel() // on a task queue of its own (WithOwnTaskQueue)
	r, err := testsuite.ProvisionRelease(context.Background(), shared.Bed(t), "monitorgw", testsuite.WithOwnTaskQueue())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	ctx := context.Background()
	hook := &webhookSink{}
	srv := httptest.NewServer(hook)
	defer srv.Close()
	r.Activity.Notify.Webhooks = map[string]string{"oncall": srv.URL + "/hook"}

	subject := r.Clients[0]
	cur, err := r.Activity.Tokens.Delivery.Current(ctx, subject)
	if err != nil {
		t.Fatal(err)
	}
	token, err := r.Activity.Tokens.Delivery.Token(ctx, subject)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Activity.Tokens.Registry.RevokeJTIs(ctx, []string{cur.JTI}, "stolen", 0, nil); err != nil {
		t.Fatal(err)
	}
	// The stolen token, from two loopback addresses (Linux routes all of 127/8 to lo), until the
	// authorizer's deny list has the revocation and refuses it from each; then the monitor starts,
	// so that its first judgement sees both uses.
	url := r.Bed.Gateway.InvokeURL(r.APIID, r.Stage) + "/orders"
	for _, addr := range []string{"127.0.0.2", "127.0.0.3"} {
		from := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(addr)}}).DialContext}}
		deadline := time.Now().Add(time.Minute)
		for {
			req, _ := http.NewRequest(http.MethodGet, url, nil)
			req.Header.Set("Authorization", "Bearer "+token)
			resp, err := from.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode == http.StatusUnauthorized {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("from %s the revoked token still gets %d after a minute", addr, resp.StatusCode)
			}
			time.Sleep(50 * time.Millisecond) // pacing the poll
		}
	}

	run, err := r.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: workflows.MonitorID(r.Key), TaskQueue: r.TaskQueue},
		workflows.TokenMonitor, workflows.MonitorSpec{Issuer: r.IssuerRef(), Interval: workflows.MinMonitorInterval, Webhook: "oncall", Actor: "sec",
			RevokedUses: workflows.RevokedUsesPolicy{Actions: []string{"notify"}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Temporal.TerminateWorkflow(context.Background(), run.GetID(), "", "test over") })

	st := waitForMonitor(t, r, run, func(st workflows.MonitorStatus) bool {
		return len(st.Incidents) == 1 && len(st.Incidents[0].Evidence.Addresses) == 2 && st.Incidents[0].Actions[0].Done
	})
	inc := st.Incidents[0]
	if inc.Key != subject || inc.Signal != workflows.SignalRevokedPresented ||
		!slices.Contains(inc.Evidence.Addresses, "127.0.0.2") || !slices.Contains(inc.Evidence.Addresses, "127.0.0.3") {
		t.Fatalf("incident %+v", inc)
	}
	texts := hook.texts()
	if len(texts) != 1 || !strings.Contains(texts[0], subject) || !strings.Contains(texts[0], "127.0.0.2") || !strings.Contains(texts[0], "127.0.0.3") {
		t.Fatalf("notifications %q; want one naming the subject and both addresses", texts)
	}
	if strings.Contains(texts[0], token) {
		t.Fatal("the notification carries the token")
	}
}
