package activities_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/rollgate/rollgate/activities"
)

// secretPath is where a Slack-style webhook keeps its secret: in the path and the query.
const secretPath = "/services/T0/B0/s3cr3tPath?token=s3cr3tQuery"

// hangingWebhook accepts the request and never answers until the caller gives up.
func hangingWebhook(t *testing.T) *httptest.Server {
	t.Helper()
	stop := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body) // a handler that has read the body sees the client hang up
		select {
		case <-r.Context().Done():
		case <-stop:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(stop) }) // runs first: Close waits for every handler
	return srv
}

// assertNoSecret fails when what shows any part of the webhook's path or query.
func assertNoSecret(t *testing.T, where, what string) {
	t.Helper()
	if strings.Contains(what, "s3cr3t") || strings.Contains(what, "/services/") {
		t.Fatalf("%s shows the webhook secret: %s", where, masked(what))
	}
}

// masked marks where the test's secret appears without printing it.
func masked(s string) string { return strings.ReplaceAll(s, "s3cr3t", "<SECRET>") }

// The error of a webhook that times out names it by scheme://host only, whether the HTTP client's
// timeout or the activity's deadline fires first, in the error and in the failure sent to history.
func TestNotify_TimingOutWebhook_ErrorNamesOnlySchemeAndHost(t *testing.T) {
	hang := hangingWebhook(t)
	cases := []struct {
		name    string
		client  *http.Client
		timeout time.Duration
	}{
		{"client timeout", &http.Client{Timeout: 200 * time.Millisecond}, time.Minute},
		{"activity deadline", &http.Client{}, 200 * time.Millisecond},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			n := &activities.Notify{HTTP: c.client, Webhooks: map[string]string{"oncall": hang.URL + secretPath}}
			ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
			defer cancel()
			err := n.Send(ctx, activities.NotifyInput{Webhook: "oncall", Text: "x"})
			if err == nil || !strings.Contains(err.Error(), hang.URL) || !strings.Contains(err.Error(), "oncall") {
				t.Fatalf("want an error naming the webhook and %s, got %v", hang.URL, masked(fmt.Sprint(err)))
			}
			assertNoSecret(t, "error", err.Error())
			assertNoSecret(t, "failure", temporal.GetDefaultFailureConverter().ErrorToFailure(err).String())
		})
	}
}

// A webhook answering 307 is not followed: the body is never re-posted to the other host, and the
// non-retryable error says why without the secret.
func TestNotify_RedirectingWebhook_IsNotFollowed(t *testing.T) {
	var received atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { received.Add(1) }))
	defer other.Close()
	redirect := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/collect?stolen=1", http.StatusTemporaryRedirect)
	}))
	defer redirect.Close()
	n := &activities.Notify{HTTP: &http.Client{Timeout: 10 * time.Second}, Webhooks: map[string]string{"oncall": redirect.URL + secretPath}}

	err := n.Send(context.Background(), activities.NotifyInput{Webhook: "oncall", Text: "x"})
	if received.Load() != 0 {
		t.Fatalf("the redirect target received %d requests", received.Load())
	}
	var app *temporal.ApplicationError
	if err == nil || !strings.Contains(err.Error(), "307") || !errors.As(err, &app) || !app.NonRetryable() {
		t.Fatalf("want a non-retryable error naming 307, got %v", masked(fmt.Sprint(err)))
	}
	assertNoSecret(t, "error", err.Error())
	if strings.Contains(err.Error(), "stolen") {
		t.Fatalf("error shows the redirect target: %v", masked(err.Error()))
	}
}
