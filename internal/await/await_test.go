package await

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/temporal"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// polls answers Get with its errors in turn, then with the result.
type polls struct {
	errs  []error
	calls int
}

func (p *polls) Get(_ context.Context, out any) error {
	p.calls++
	if len(p.errs) > 0 {
		err := p.errs[0]
		p.errs = p.errs[1:]
		return err
	}
	*out.(*string) = "promoted"
	return nil
}

// Polls the server did not answer in time are asked again until the result comes; the
// workflow's own failure ends the wait at once.
func TestResult_AsksAgainAfterAPollTimedOutButNotAfterTheWorkflowFailed(t *testing.T) {
	retryPause = time.Millisecond
	p := &polls{errs: []error{
		serviceerror.NewDeadlineExceeded("context deadline exceeded"),
		status.Error(codes.Unavailable, "server restarting"),
		context.DeadlineExceeded,
	}}
	var got string
	if err := Result(context.Background(), p, &got); err != nil || got != "promoted" || p.calls != 4 {
		t.Fatalf("%q, %v after %d polls; want promoted after 4", got, err, p.calls)
	}
	failed := temporal.NewApplicationError("release failed", "x")
	p = &polls{errs: []error{failed}}
	if err := Result(context.Background(), p, &got); !errors.Is(err, failed) || p.calls != 1 {
		t.Fatalf("%v after %d polls; want the workflow's failure after 1", err, p.calls)
	}
}

// A wait whose context ends stops, whatever the server answers.
func TestResult_StopsWhenItsContextEnds(t *testing.T) {
	retryPause = time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	p := &polls{errs: []error{serviceerror.NewDeadlineExceeded("slow")}}
	var got string
	if err := Result(ctx, p, &got); err == nil || p.calls != 1 {
		t.Fatalf("%v after %d polls; want the poll's error after 1", err, p.calls)
	}
}
