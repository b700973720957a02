// Package await waits for a workflow's result through a Temporal server that may be slow to
// answer: many releases at once, a busy or restarting server.
package await

import (
	"context"
	"errors"
	"time"

	"go.temporal.io/api/serviceerror"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Run is what waiting needs of a client.WorkflowRun.
type Run interface {
	Get(ctx context.Context, valuePtr any) error
}

// retryPause is the wait before asking again after a poll the server did not answer.
var retryPause = time.Second

// Result waits for run's result into out. The SDK gives each long poll for the result 65 s; a
// server that does not answer one in time (or is unavailable for a moment) has not ended the
// workflow, so the poll is asked again until ctx ends. The workflow's own failure, and ctx's
// end, are returned as they are.
func Result(ctx context.Context, run Run, out any) error {
	for {
		err := run.Get(ctx, out)
		if err == nil || ctx.Err() != nil || !transient(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(retryPause):
		}
	}
}

// transient says whether err is the server's or the network's, not the workflow's: a poll that
// timed out, or a server unavailable for a moment.
func transient(err error) bool {
	var deadline *serviceerror.DeadlineExceeded
	var unavailable *serviceerror.Unavailable
	if errors.As(err, &deadline) || errors.As(err, &unavailable) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	switch status.Code(err) {
	case codes.DeadlineExceeded, codes.Unavailable:
		return true
	}
	return false
}
