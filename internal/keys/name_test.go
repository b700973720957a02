package keys_test

import (
	"errors"
	"testing"

	"github.com/rollgate/rollgate/internal/keys"
)

func TestCheckName_OnlyRollgatePrefixedKeys(t *testing.T) {
	for name, ok := range map[string]bool{
		"rollgate-orders": true, "rollgate-a": true,
		"orders-issuer": false, "rollgate-": false, "": false, "Rollgate-orders": false, "xrollgate-orders": false,
	} {
		err := keys.CheckName(name)
		if (err == nil) != ok || err != nil && !errors.Is(err, keys.ErrInvalid) {
			t.Errorf("CheckName(%q) = %v, want ok=%v (invalid otherwise)", name, err, ok)
		}
	}
}
