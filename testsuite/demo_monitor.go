package testsuite

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/apigateway"
	"go.temporal.io/sdk/client"

	"github.com/rollgate/rollgate/workflows"
)

// demoMonitor is the runtime half between releases: a client's token is stolen and revoked, and
// the thief keeps presenting it at the stage; the real authorizer refuses it and records each use,
// and the issuer's TokenMonitor opens one incident, revokes the subject, disables the client's API
// key and notifies on-call (a webhook the demo listens on).
func demoMonitor(ctx context.Context, b *Bed, out io.Writer) error {
	r, err := ProvisionRelease(ctx, b, "demomonitor")
	if err != nil {
		return err
	}
	defer r.Close()
	var mu sync.Mutex
	var notes []string
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var body struct{ Text string }
		_ = json.NewDecoder(io.LimitReader(req.Body, 1<<20)).Decode(&body)
		mu.Lock()
		notes = append(notes, body.Text)
		mu.Unlock()
	}))
	defer hook.Close()
	r.Activity.Notify.Webhooks = map[string]string{"oncall": hook.URL}

	client0 := r.Clients[0]
	cur, err := r.Activity.Tokens.Delivery.Current(ctx, client0)
	if err != nil {
		return err
	}
	token, err := r.Activity.Tokens.Delivery.Token(ctx, client0)
	if err != nil {
		return err
	}
	cfg, err := b.AWSConfig(ctx)
	if err != nil {
		return err
	}
	key, err := createManagedAPIKey(ctx, b.APIGateway(cfg), r.Name+"-"+client0)
	if err != nil {
		return err
	}
	spec := workflows.MonitorSpec{Issuer: r.IssuerRef(), Interval: workflows.MinMonitorInterval, Webhook: "oncall", Actor: "security-team",
		RevokedUses: workflows.RevokedUsesPolicy{Actions: []string{workflows.ActionRevoke, workflows.ActionDisableKey, workflows.ActionNotify}},
		APIKeys:     []workflows.ClientAPIKey{{Client: client0, KeyID: key}}}
	run, err := r.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: workflows.MonitorID(r.Key), TaskQueue: workflows.TaskQueue}, workflows.TokenMonitor, spec)
	if err != nil {
		return err
	}
	defer func() {
		_, _ = r.Temporal.UpdateWorkflow(context.WithoutCancel(ctx), client.UpdateWorkflowOptions{WorkflowID: run.GetID(), UpdateName: workflows.UpdateStopMonitor,
			WaitForStage: client.WorkflowUpdateStageCompleted, Args: []any{workflows.StopRequest{Actor: "demo", Reason: "demo over"}}})
	}()
	fmt.Fprintf(out, "  monitor %s every %s: revoked tokens presented → revoke the subject, disable the client's API key, notify on-call\n", run.GetID(), spec.Interval)
	if _, err := waitMonitor(ctx, r, run, func(st workflows.MonitorStatus) bool { return st.Judgements >= 1 }); err != nil {
		return err
	}
	if _, err := r.Activity.Tokens.Registry.RevokeJTIs(ctx, []string{cur.JTI}, "laptop stolen", 0, nil); err != nil {
		return err
	}
	fmt.Fprintf(out, "  %s's token %s revoked (laptop stolen); the thief keeps presenting it at the stage\n", client0, cur.JTI)
	url := b.Gateway.InvokeURL(r.APIID, r.Stage) + "/orders"
	refused, presented := 0, time.Now()
	for deadline := time.Now().Add(time.Minute); refused < 3; {
		code, err := present(ctx, url, token)
		if err != nil {
			return err
		}
		if code == http.StatusUnauthorized {
			refused++
		}
		if time.Now().After(deadline) {
			return errors.New("demo: the revoked token was still accepted after a minute")
		}
		time.Sleep(100 * time.Millisecond) // pacing the thief
	}
	st, err := waitMonitor(ctx, r, run, func(st workflows.MonitorStatus) bool {
		return len(st.Incidents) == 1 && allDone(st.Incidents[0].Actions)
	})
	if err != nil {
		return err
	}
	inc := st.Incidents[0]
	fmt.Fprintf(out, "  incident %s %s opened %s after the stolen token was first presented: %d recorded uses by %s from %s\n", inc.Signal, inc.Key,
		inc.OpenedAt.Sub(presented).Round(time.Millisecond), inc.Evidence.Uses, strings.Join(inc.Evidence.Clients, ","), strings.Join(inc.Evidence.Addresses, ","))
	for _, a := range inc.Actions {
		fmt.Fprintf(out, "    %-12s %s\n", a.Action, a.Result)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, n := range notes {
		fmt.Fprintf(out, "  on-call was told: %s\n", n)
	}
	if len(notes) != 1 {
		return fmt.Errorf("demo: %d notifications, want 1", len(notes))
	}
	return nil
}

func allDone(actions []workflows.ActionRecord) bool {
	for _, a := range actions {
		if !a.Done {
			return false
		}
	}
	return len(actions) > 0
}

func present(ctx context.Context, url, token string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

func waitMonitor(ctx context.Context, r *ReleaseBed, run client.WorkflowRun, ok func(workflows.MonitorStatus) bool) (workflows.MonitorStatus, error) {
	var st workflows.MonitorStatus
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		v, err := r.Temporal.QueryWorkflow(ctx, run.GetID(), "", workflows.QueryMonitorStatus)
		if err == nil && v.Get(&st) == nil && ok(st) {
			return st, nil
		}
	}
	return st, fmt.Errorf("demo: the monitor did not get there in 2 minutes: %+v", st)
}

// createManagedAPIKey creates an enabled REST API key tagged as rollgate's IAM policy requires
// of the keys it may disable, and returns its id.
func createManagedAPIKey(ctx context.Context, c *apigateway.Client, name string) (string, error) {
	key, err := c.CreateApiKey(ctx, &apigateway.CreateApiKeyInput{Name: aws.String(name), Enabled: true, Tags: map[string]string{"rollgate": "managed"}})
	if err != nil {
		return "", fmt.Errorf("create API key %s: %w", name, err)
	}
	return aws.ToString(key.Id), nil
}
