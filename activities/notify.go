package activities

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

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

// Send posts the notification. A webhook name the worker does not know, a bad URL and a redirect
// are not retried; a failing or silent endpoint is. Errors name the endpoint by scheme://host
// only: Slack-style webhooks keep their secret in the path and query, and an error reaches the
// worker's log, the workflow's log and the history.
func (a *Notify) Send(ctx context.Context, in NotifyInput) error {
	raw, ok := a.Webhooks[in.Webhook]
	if !ok {
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf("webhook %q is not configured on the worker (ROLLGATE_WEBHOOKS)", in.Webhook), ErrTypeNotFound, nil)
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf("webhook %s: the configured URL is not an absolute http(s) URL", in.Webhook), ErrTypeInvalid, nil)
	}
	endpoint := u.Scheme + "://" + u.Host
	body, _ := json.Marshal(map[string]string{"text": in.Text})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, raw, bytes.NewReader(body))
	if err != nil {
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf("webhook %s (%s): bad URL", in.Webhook, endpoint), ErrTypeInvalid, nil)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := a.client().Do(req)
	if err != nil {
		return fmt.Errorf("webhook %s (%s): %s", in.Webhook, endpoint, transportFailure(err, raw, endpoint))
	}
	resp.Body.Close()
	switch {
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf("webhook %s (%s) answered %d: redirects are not followed (configure the final URL)", in.Webhook, endpoint, resp.StatusCode), ErrTypeInvalid, nil)
	case resp.StatusCode >= 400:
		return fmt.Errorf("webhook %s (%s) answered %d", in.Webhook, endpoint, resp.StatusCode)
	}
	return nil
}

// client is a.HTTP that never follows a redirect: following a 307 re-posts the body to whatever
// host the answer names.
func (a *Notify) client() *http.Client {
	c := http.Client{}
	if a.HTTP != nil {
		c = *a.HTTP
	}
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &c
}

// transportFailure is err's reason without the URL that *url.Error puts in front of it (a
// reason naming the URL anyway is redacted to endpoint).
func transportFailure(err error, raw, endpoint string) string {
	var uerr *url.Error
	if errors.As(err, &uerr) {
		err = uerr.Err
	}
	reason := err.Error()
	if uerr != nil && uerr.Timeout() {
		reason = "timed out (" + reason + ")"
	}
	return strings.ReplaceAll(reason, raw, endpoint)
}
