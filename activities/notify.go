package activities

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"go.temporal.io/sdk/temporal"
)

// Notify posts Slack-compatible JSON ({"text": …}) to webhooks the worker is configured with;
// workflows name a webhook, never its URL.
type Notify struct {
	HTTP     *http.Client
	Webhooks map[string]string // name → URL
}

// NotifyInput is one notification.
type NotifyInput struct {
	Webhook string
	Text    string
}

// Send posts the notification. A webhook name the worker does not know is not retried; a
// failing endpoint is (its status is in the error).
func (a *Notify) Send(ctx context.Context, in NotifyInput) error {
	url, ok := a.Webhooks[in.Webhook]
	if !ok {
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf("webhook %q is not configured on the worker (ROLLGATE_WEBHOOKS)", in.Webhook), ErrTypeNotFound, nil)
	}
	body, _ := json.Marshal(map[string]string{"text": in.Text})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return temporal.NewNonRetryableApplicationError("webhook "+in.Webhook+": bad URL", ErrTypeInvalid, nil)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := a.HTTP.Do(req)
	if err != nil {
		return fmt.Errorf("webhook %s: %v", in.Webhook, err) // the URL stays out of the error
	}
	resp.Body.Close()
	if resp.StatusCode >= 300 {
		return fmt.Errorf("webhook %s answered %d", in.Webhook, resp.StatusCode)
	}
	return nil
}
