package keys

import (
	"errors"
	"fmt"
	"net/http"
	"testing"

	vault "github.com/hashicorp/vault/api"
)

// Vault's answers map to the error kinds that decide retrying: a sealed or standby Vault (503)
// and its other 5xx are retried, since an unseal or a failover makes the same request succeed;
// what Vault refuses as asked is not.
func TestMapError_SealedVaultIsRetriedRefusalsAreNot(t *testing.T) {
	for _, c := range []struct {
		status int
		errors []string
		want   error // nil: no kind, retried
	}{
		{http.StatusServiceUnavailable, []string{"Vault is sealed"}, nil},
		{http.StatusInternalServerError, []string{"internal error"}, nil},
		{http.StatusTooManyRequests, []string{"request path \"transit/sign\": rate limit quota exceeded"}, nil},
		{http.StatusNotFound, nil, ErrNotFound},
		{http.StatusBadRequest, []string{"check-and-set parameter did not match the current version"}, ErrConflict},
		{http.StatusBadRequest, []string{"invalid key version"}, ErrInvalid},
		{http.StatusForbidden, []string{"permission denied"}, ErrInvalid},
		{http.StatusPreconditionFailed, nil, ErrConflict},
	} {
		err := mapError(fmt.Errorf("read transit key k: %w", &vault.ResponseError{StatusCode: c.status, Errors: c.errors}))
		for _, kind := range []error{ErrNotFound, ErrConflict, ErrInvalid} {
			if errors.Is(err, kind) != (kind == c.want) {
				t.Errorf("%d %v: %v; want kind %v", c.status, c.errors, err, c.want)
			}
		}
	}
}
