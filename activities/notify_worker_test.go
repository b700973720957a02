package activities_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/rollgate/rollgate/activities"
	rgtestsuite "github.com/rollgate/rollgate/testsuite"
)

// notifyOnce sends one notification with a single attempt bounded by timeout.
func notifyOnce(ctx workflow.Context, in activities.NotifyInput, timeout time.Duration) error {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: timeout, RetryPolicy: &temporal.RetryPolicy{MaximumAttempts: 1}})
	var n *activities.Notify
	return workflow.ExecuteActivity(ctx, n.Send, in).Get(ctx, nil)
}

// lockedLog collects what the SDK logs from the worker's goroutines.
type lockedLog struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// On a real worker, a webhook that times out (by the HTTP client's timeout, failing the
// activity, or by the activity's deadline, which the SDK logs after the fact) leaves its path and
// query out of the workflow's error, the history and the worker's log.
func TestNotify_OnARealWorker_TimeoutsKeepTheWebhookSecretOutOfLogsAndHistory(t *testing.T) {
	b := shared.Bed(t)
	hang := hangingWebhook(t)
	logs := &lockedLog{}
	c, err := b.Temporal.Client(func(o *client.Options) {
		o.Logger = tlog.NewStructuredLogger(slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	queue := fmt.Sprintf("notify-secret-%d", time.Now().UnixNano())
	cases := []struct {
		webhook  string
		client   *http.Client
		deadline time.Duration
		logged   string // what the SDK logs once the attempt is over
	}{
		{"client-timeout", &http.Client{Timeout: 300 * time.Millisecond}, time.Minute, "Activity error."},
		{"activity-deadline", &http.Client{}, time.Second, "Activity complete after timeout."},
	}
	for _, tc := range cases {
		w := worker.New(c, queue+"-"+tc.webhook, worker.Options{})
		w.RegisterWorkflow(notifyOnce)
		w.RegisterActivity(&activities.Notify{HTTP: tc.client, Webhooks: map[string]string{tc.webhook: hang.URL + secretPath}})
		if err := w.Start(); err != nil {
			t.Fatal(err)
		}
		defer w.Stop()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: queue + "-" + tc.webhook, TaskQueue: queue + "-" + tc.webhook},
			notifyOnce, activities.NotifyInput{Webhook: tc.webhook, Text: "x"}, tc.deadline)
		if err != nil {
			t.Fatal(err)
		}
		werr := run.Get(ctx, nil)
		if werr == nil {
			t.Fatalf("%s: the workflow succeeded against a hanging webhook", tc.webhook)
		}
		assertNoSecret(t, tc.webhook+": workflow error", werr.Error())
		h, err := rgtestsuite.History(ctx, c, run.GetID(), run.GetRunID())
		if err != nil {
			t.Fatal(err)
		}
		j, _ := protojson.Marshal(h)
		assertNoSecret(t, tc.webhook+": history", string(j))
		waitForLog(t, logs, tc.webhook, tc.logged)
	}
	assertNoSecret(t, "worker log", logs.String())
}

// waitForLog polls the log until it holds a line with both parts.
func waitForLog(t *testing.T, logs *lockedLog, parts ...string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		for _, line := range strings.Split(logs.String(), "\n") {
			if containsAll(line, parts) {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no log line with %q in:\n%s", parts, masked(logs.String()))
}

func containsAll(s string, parts []string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}
