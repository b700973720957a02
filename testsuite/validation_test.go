package testsuite_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"

	"github.com/rollgate/rollgate/activities"
	"github.com/rollgate/rollgate/workflows"
)

// On the real server, a rotation whose key type is empty ends at once as a non-retryable
// InvalidSpec naming the field. It used to panic in its first workflow task, which the server
// retried for ever: the rotation never ended.
func TestKeyRotation_AnEmptyKeyTypeEndsAsInvalidSpecOnTheServer(t *testing.T) {
	c, err := shared.Bed(t).Temporal.Client()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// A task queue of its own: no other test's worker picks these tasks up.
	name := fmt.Sprintf("invalid-input-%d", time.Now().UnixNano())
	w := worker.New(c, name, worker.Options{})
	w.RegisterWorkflow(workflows.KeyRotation)
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer w.Stop()

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	in := workflows.KeyRotationSpec{
		Issuer: activities.Issuer{URL: "https://issuer.example.com", Audiences: []string{"orders"}, Bucket: "issuer", Key: activities.KeyRef{Name: "orders-issuer"}},
		Actor:  "sec", Reason: "quarterly",
	}
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: name, TaskQueue: name}, workflows.KeyRotation, in)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.TerminateWorkflow(context.Background(), name, "", "test over") })
	err = run.Get(ctx, nil)
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || app.Type() != workflows.ErrInvalidSpec || !app.NonRetryable() || !strings.Contains(app.Message(), "Issuer.Key.Type") {
		t.Fatalf("want a non-retryable %s naming Issuer.Key.Type within 2 minutes, got %v", workflows.ErrInvalidSpec, err)
	}
}
