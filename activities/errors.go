// Package activities are rollgate's doors to the outside: each activity reads the current state,
// changes it only if needed, and returns a small result with no secret in it. They hold no
// policy; the workflows decide.
package activities

import (
	"errors"

	"go.temporal.io/sdk/temporal"

	"github.com/rollgate/rollgate/internal/gateway"
	"github.com/rollgate/rollgate/internal/keys"
	"github.com/rollgate/rollgate/internal/registry"
)

// Error types the workflows recognise.
const (
	ErrTypeInvalid  = "Invalid"  // the request can never succeed as asked
	ErrTypeNotFound = "NotFound" // what it names does not exist
	ErrTypeConflict = "Conflict" // someone else changed the state
)

// classify turns the internal packages' error kinds into Temporal errors once: invalid and
// not-found requests are not retried; everything else is.
func classify(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, gateway.ErrInvalid), errors.Is(err, keys.ErrInvalid):
		return temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeInvalid, err)
	case errors.Is(err, gateway.ErrNotFound), errors.Is(err, keys.ErrNotFound), errors.Is(err, registry.ErrNotFound):
		return temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeNotFound, err)
	case errors.Is(err, gateway.ErrConflict), errors.Is(err, keys.ErrConflict):
		return temporal.NewApplicationError(err.Error(), ErrTypeConflict, err)
	}
	return err
}
