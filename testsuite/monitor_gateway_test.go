package testsuite_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/apigateway"
	"go.temporal.io/sdk/client"

	"github.com/rollgate/rollgate/internal/keys"
	"github.com/rollgate/rollgate/internal/tokens"
	"github.com/rollgate/rollgate/testsuite"
	"github.com/rollgate/rollgate/workflows"
)

// From the gateway to the monitor, every piece real: a client's token is revoked, the client
// keeps presenting it at the stage from two addresses; the REST API's authorizer (its Lambda
// bootstrap under the Runtime Interface Emulator) refuses it and records each use with the
// caller's address; the monitor, judging the registry, opens one incident naming the subject,
// the client and both addresses, disables the client's REST API key, and notifies once.
func TestTokenMonitor_RevokedTokenPresentedAtTheGateway_OneIncidentWithBothAddresses(t *testing.T) {
	t.Parallel() // on a task queue of its own (WithOwnTaskQueue)
	r, hook := monitorBed(t, "monitorgw")
	ctx := context.Background()

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

	// The client's REST API key, which the monitor disables (a key of the account, tagged as
	// rollgate's IAM policy requires).
	cfg, err := r.Bed.AWSConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	apis := r.Bed.APIGateway(cfg)
	key, err := apis.CreateApiKey(ctx, &apigateway.CreateApiKeyInput{Name: aws.String(r.Name + "-" + subject), Enabled: true, Tags: map[string]string{"rollgate": "managed"}})
	if err != nil {
		t.Fatal(err)
	}

	run, err := r.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: workflows.MonitorID(r.Key), TaskQueue: r.TaskQueue},
		workflows.TokenMonitor, workflows.MonitorSpec{Issuer: r.IssuerRef(), Interval: workflows.MinMonitorInterval, Webhook: "oncall", Actor: "sec",
			RevokedUses: workflows.RevokedUsesPolicy{Actions: []string{"disable-key", "notify"}}, APIKeys: []workflows.ClientAPIKey{{Client: subject, KeyID: *key.Id}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Temporal.TerminateWorkflow(context.Background(), run.GetID(), "", "test over") })

	st := waitForMonitor(t, r, run, func(st workflows.MonitorStatus) bool {
		return len(st.Incidents) == 1 && len(st.Incidents[0].Evidence.Addresses) == 2 && st.Incidents[0].Actions[1].Done
	})
	if got, err := apis.GetApiKey(ctx, &apigateway.GetApiKeyInput{ApiKey: key.Id}); err != nil || got.Enabled {
		t.Fatalf("the client's API key after the incident: %+v, %v; want disabled", got, err)
	}
	inc := st.Incidents[0]
	if inc.Key != subject || inc.Signal != workflows.SignalRevokedPresented ||
		!slices.Contains(inc.Evidence.Addresses, "127.0.0.2") || !slices.Contains(inc.Evidence.Addresses, "127.0.0.3") {
		t.Fatalf("incident %+v", inc)
	}
	texts := hook.texts()
	if len(texts) != 1 || !strings.Contains(texts[0], subject) || !strings.Contains(texts[0], "127.0.0.2") || !strings.Contains(texts[0], "127.0.0.3") ||
		!strings.Contains(texts[0], "disabled API keys "+*key.Id) {
		t.Fatalf("notifications %q; want one naming the subject, both addresses and the key disabled", texts)
	}
	if strings.Contains(texts[0], token) {
		t.Fatal("the notification carries the token")
	}
}

// A client that does not renew, end to end: its delivered token has expired and it keeps
// presenting it at the stage; the real authorizer refuses it as expired (its signature good) and
// records the use by client; the monitor opens one incident for the client, reissues a token of
// the key's current version to its Vault KV path, and notifies once; the new token is accepted
// at the gateway.
func TestTokenMonitor_ExpiredTokenPresentedAtTheGateway_ClientReissuedATokenTheGatewayAccepts(t *testing.T) {
	t.Parallel() // on a task queue of its own (WithOwnTaskQueue)
	r, hook := monitorBed(t, "monitorexp")
	ctx := context.Background()

	// The client's token, issued two hours ago for an hour, recorded and delivered: it expired an
	// hour ago and the client never got another.
	client, ref := r.Clients[0], r.IssuerRef()
	labels, err := r.Activity.Keys.ReadLabels(ctx, ref.Key.Name)
	if err != nil {
		t.Fatal(err)
	}
	m := &tokens.Minter{Transit: r.Activity.Tokens.Transit, Key: ref.Key.Name, Type: ref.Key.Type, Alg: ref.Algorithm, Issuer: ref.URL,
		Now: func() time.Time { return time.Now().Add(-2 * time.Hour) }}
	old, err := m.Mint(ctx, labels.Current, tokens.MintRequest{Subject: client, ClientID: client, Audience: ref.Audiences, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Activity.Tokens.Registry.RecordIssued(ctx, old); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Activity.Tokens.Delivery.Deliver(ctx, old[0]); err != nil {
		t.Fatal(err)
	}
	run, err := r.Temporal.ExecuteWorkflow(ctx, monitorOptions(r), workflows.TokenMonitor, workflows.MonitorSpec{Issuer: ref, Interval: workflows.MinMonitorInterval,
		Webhook: "oncall", Actor: "sec", RevokedUses: workflows.RevokedUsesPolicy{Off: true}, ExpiringRenewal: workflows.RenewalPolicy{Off: true},
		ExpiredUses: workflows.ExpiredUsesPolicy{Actions: []string{"reissue", "notify"}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Temporal.TerminateWorkflow(context.Background(), run.GetID(), "", "test over") })
	waitForMonitor(t, r, run, func(st workflows.MonitorStatus) bool { return st.Judgements >= 1 })
	url := r.Bed.Gateway.InvokeURL(r.APIID, r.Stage) + "/orders"
	presented := time.Now()
	for range 3 {
		if code := get(url, old[0].Token, ""); code != http.StatusUnauthorized {
			t.Fatalf("the expired token got %d at the gateway, want 401", code)
		}
	}

	st := waitForMonitor(t, r, run, func(st workflows.MonitorStatus) bool {
		return len(st.Incidents) == 1 && st.Incidents[0].Actions[0].Done && st.Incidents[0].Actions[1].Done
	})
	inc := st.Incidents[0]
	t.Logf("expired token presented → incident opened in %s, reissued and notified %s after it (interval %s)",
		inc.OpenedAt.Sub(presented).Round(time.Millisecond), time.Since(presented).Round(time.Millisecond), workflows.MinMonitorInterval)
	if inc.Signal != workflows.SignalExpiredPresented || inc.Key != client || inc.Evidence.JTI != old[0].JTI || inc.Evidence.Uses < 1 {
		t.Fatalf("incident %+v", inc)
	}
	cur, err := r.Activity.Tokens.Delivery.Current(ctx, client)
	if err != nil {
		t.Fatal(err)
	}
	if cur.JTI == old[0].JTI || cur.KID != keys.KID(r.Key, labels.Current) || !cur.ExpiresAt.After(time.Now().Add(50*time.Minute)) {
		t.Fatalf("the client holds %+v, want a new token of %s living an hour", cur, keys.KID(r.Key, labels.Current))
	}
	token, err := r.Activity.Tokens.Delivery.Token(ctx, client)
	if err != nil {
		t.Fatal(err)
	}
	if code := get(url, token, ""); code != http.StatusOK {
		t.Fatalf("the reissued token got %d at the gateway, want 200", code)
	}
	texts := hook.texts()
	if len(texts) != 1 || !strings.Contains(texts[0], client) || !strings.Contains(texts[0], "reissued client") {
		t.Fatalf("notifications %q; want one naming the client and the reissue", texts)
	}
	if strings.Contains(texts[0], token) || strings.Contains(texts[0], old[0].Token) {
		t.Fatal("the notification carries a token")
	}
}

// monitorBed is a release bed on a task queue of its own whose worker's webhook "oncall" posts
// to the returned sink.
func monitorBed(t *testing.T, name string) (*testsuite.ReleaseBed, *webhookSink) {
	t.Helper()
	r, err := testsuite.ProvisionRelease(context.Background(), shared.Bed(t), name, testsuite.WithOwnTaskQueue())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	hook := &webhookSink{}
	srv := httptest.NewServer(hook)
	t.Cleanup(srv.Close)
	r.Activity.Notify.Webhooks = map[string]string{"oncall": srv.URL + "/hook"}
	return r, hook
}

func monitorOptions(r *testsuite.ReleaseBed) client.StartWorkflowOptions {
	return client.StartWorkflowOptions{ID: workflows.MonitorID(r.Key), TaskQueue: r.TaskQueue}
}

// Issuance against the registry, for real: a client is issued 30 tokens of the current key in
// one interval (recorded in the bed's registry as a release's reissue records them); the
// monitor, reading the by-kid index, opens one incident for that client and notifies once.
func TestTokenMonitor_IssuanceBurstInTheRegistry_OneIncidentForTheClient(t *testing.T) {
	t.Parallel() // on a task queue of its own (WithOwnTaskQueue)
	r, hook := monitorBed(t, "monitoriss")
	ctx := context.Background()
	ref := r.IssuerRef()
	labels, err := r.Activity.Keys.ReadLabels(ctx, ref.Key.Name)
	if err != nil {
		t.Fatal(err)
	}
	run, err := r.Temporal.ExecuteWorkflow(ctx, monitorOptions(r), workflows.TokenMonitor, workflows.MonitorSpec{Issuer: ref, Interval: workflows.MinMonitorInterval,
		Webhook: "oncall", Actor: "sec", RevokedUses: workflows.RevokedUsesPolicy{Off: true}, ExpiringRenewal: workflows.RenewalPolicy{Off: true},
		ExpiredUses: workflows.ExpiredUsesPolicy{Off: true}, IssuanceRate: workflows.IssuancePolicy{On: true, Threshold: 20}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Temporal.TerminateWorkflow(context.Background(), run.GetID(), "", "test over") })
	waitForMonitor(t, r, run, func(st workflows.MonitorStatus) bool { return st.Judgements >= 1 })

	now := time.Now().UTC().Truncate(time.Second)
	burst := make([]tokens.Minted, 30)
	for i := range burst {
		burst[i] = tokens.Minted{JTI: fmt.Sprintf("%s-burst-%02d", r.Name, i), KID: keys.KID(r.Key, labels.Current), Subject: "batch", ClientID: "batch",
			IssuedAt: now, ExpiresAt: now.Add(time.Hour)}
	}
	if err := r.Activity.Tokens.Registry.RecordIssued(ctx, burst); err != nil {
		t.Fatal(err)
	}
	st := waitForMonitor(t, r, run, func(st workflows.MonitorStatus) bool {
		return len(st.Incidents) == 1 && st.Incidents[0].Actions[0].Done
	})
	inc := st.Incidents[0]
	t.Logf("issuance burst recorded → incident opened in %s, notified %s after it (interval %s)",
		inc.OpenedAt.Sub(now).Round(time.Millisecond), time.Since(now).Round(time.Millisecond), workflows.MinMonitorInterval)
	if inc.Signal != workflows.SignalIssuanceRate || inc.Key != "batch" || inc.Evidence.Issued != 30 {
		t.Fatalf("incident %+v, want the batch client's 30 tokens", inc)
	}
	if texts := hook.texts(); len(texts) != 1 || !strings.Contains(texts[0], "client batch was issued 30 tokens") {
		t.Fatalf("notifications %q", texts)
	}
}
