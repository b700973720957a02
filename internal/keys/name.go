package keys

import (
	"fmt"
	"strings"
)

// NamePrefix starts the name of every transit key rollgate signs with or rotates, so that its Vault
// policy (deploy/vault-policy.hcl) can grant sign and rotate on rollgate's keys and on no other
// key in the same transit mount.
const NamePrefix = "rollgate-"

// CheckName refuses a transit key name outside rollgate's prefix, before anything touches Vault.
func CheckName(name string) error {
	if !strings.HasPrefix(name, NamePrefix) || len(name) == len(NamePrefix) {
		return fmt.Errorf("transit key %q: must start with %q (the prefix rollgate's Vault policy grants sign and rotate on): %w", name, NamePrefix, ErrInvalid)
	}
	return nil
}
