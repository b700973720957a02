# The rollgate worker's Vault policy: the least it needs. Mounts are the defaults (transit/ and
# KV v2 at secret/); change them with ROLLGATE_TRANSIT_MOUNT and ROLLGATE_KV_MOUNT. To confine the
# worker to some issuers, replace the "*" and "+" below with their transit key names.
#
#   vault policy write rollgate-worker deploy/vault-policy.hcl
#
# Tested: the worker runs a release and a verified rollback with a token holding only this
# policy (and Vault's default policy, for renewing itself), in testsuite/policy_test.go.

# Signing keys: read the versions and public keys, create a key that does not exist yet
# (auto-rotation off, not exportable), rotate, and sign with an explicit key version. The
# private key never leaves Vault; no export, no config change, no deletion.
path "transit/keys/*" {
  capabilities = ["read", "create"]
}
path "transit/keys/+/rotate" {
  capabilities = ["update"]
}
path "transit/sign/*" {
  capabilities = ["update"]
}

# KV v2: the key labels (rollgate/keys/<key>/labels, check-and-set), client tokens delivered on
# reissue and revocation samples (rollgate/clients/<client>), and the payload codec's keys
# (rollgate/codec, read only, if ROLLGATE_CODEC_VAULT_SECRET points there).
path "secret/data/rollgate/keys/*" {
  capabilities = ["create", "read", "update"]
}
path "secret/data/rollgate/clients/*" {
  capabilities = ["create", "read", "update"]
}
path "secret/data/rollgate/codec" {
  capabilities = ["read"]
}
