package activities_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.temporal.io/sdk/temporal"

	"github.com/rollgate/rollgate/activities"
)

func TestNotify_PostsSlackCompatibleJSONAndKeepsTheURLOutOfErrors(t *testing.T) {
	var got map[string]string
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
			http.Error(w, "bad", 400)
			return
		}
		_ = json.NewDecoder(r.Body).Decode(&got)
	}))
	defer ok.Close()
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(503) }))
	defer failing.Close()
	n := &activities.Notify{HTTP: ok.Client(), Webhooks: map[string]string{"oncall": ok.URL + "/hook", "down": failing.URL + "/secret-path"}}
	ctx := context.Background()

	if err := n.Send(ctx, activities.NotifyInput{Webhook: "oncall", Text: "orders: rolled back"}); err != nil || got["text"] != "orders: rolled back" {
		t.Fatalf("sent %v, %v", got, err)
	}
	err := n.Send(ctx, activities.NotifyInput{Webhook: "down", Text: "x"})
	if err == nil || !strings.Contains(err.Error(), "503") || strings.Contains(err.Error(), "secret-path") {
		t.Fatalf("failing webhook: %v", err)
	}
	var app *temporal.ApplicationError
	if err := n.Send(ctx, activities.NotifyInput{Webhook: "nope", Text: "x"}); !errors.As(err, &app) || !app.NonRetryable() {
		t.Fatalf("unknown webhook: %v", err)
	}
}
