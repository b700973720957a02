# The rollgate worker's Vault policy: the least it needs. Mounts are the defaults (transit/ and
# KV v2 at secret/); change them with ROLLGATE_TRANSIT_MOUNT and ROLLGATE_KV_MOUNT. To confine the
# worker to some issuers, replace "rollgate-*" below with their transit key names.
#
#   vault policy write rollgate-worker deploy/vault-policy.hcl
#
# Tested: the worker runs a release and a verified rollback with a token holding only this
# policy (and Vault's default policy, for renewing itself), in testsuite/policy_test.go.

# Signing keys: only rollgate's own, named with the prefix "rollgate-" (the worker and the starter
# refuse any other transit key name). Read the versions and public keys, create a key that does
# not exist yet (auto-rotation off, not exportable), rotate, and sign with an explicit key version.
# The private key never leaves Vault; no export, no config change, no trim, no deletion.
#
# Vault's ACL cannot name "transit/keys/rollgate-*/rotate" (a glob ends a path), so "update" is
# granted on the key paths and allowed_parameters keeps it to what rotate and create send: rotate
# sends nothing; create sends its type and the two safe settings below. A config change or a trim
# must send other parameters (deletion_allowed, exportable=true, min_decryption_version,
# min_available_version, ...) and is refused.
path "transit/keys/rollgate-*" {
  capabilities = ["read", "create", "update"]
  allowed_parameters = {
    "type"               = ["rsa-2048", "rsa-3072", "rsa-4096", "ecdsa-p256", "ed25519"]
    "auto_rotate_period" = ["0"]
    "exportable"         = [false]
  }
}
path "transit/sign/rollgate-*" {
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
