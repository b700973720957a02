package main

import (
	"context"

	"go.temporal.io/sdk/client"

	"github.com/rollgate/rollgate/workflows"
)

// StatusOf is the status command's core, for tests that bring a Temporal client of their own.
func StatusOf(ctx context.Context, c client.Client, id string) (workflows.Status, string, error) {
	return statusOf(ctx, plainConn(c), id)
}
