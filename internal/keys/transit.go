// Package keys manages rollgate's JWT signing keys: Vault transit keys (the private halves never
// leave Vault) and the staging labels current, pending and previous, kept in Vault KV v2.
package keys

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"

	vault "github.com/hashicorp/vault/api"
)

// Type is a Vault transit key type rollgate signs JWTs with.
type Type string

const (
	RSA2048   Type = "rsa-2048"
	RSA3072   Type = "rsa-3072"
	RSA4096   Type = "rsa-4096"
	ECDSAP256 Type = "ecdsa-p256"
	Ed25519   Type = "ed25519"
)

// Algorithms lists the JWS algorithms a key type may sign with; the first is the default.
// API Gateway HTTP API JWT authorizers accept RSA only, hence RS256 as the overall default.
func (t Type) Algorithms() []string {
	switch t {
	case RSA2048, RSA3072, RSA4096:
		return []string{"RS256", "PS256"}
	case ECDSAP256:
		return []string{"ES256"}
	case Ed25519:
		return []string{"EdDSA"}
	}
	return nil
}

// ParseType validates a key type name.
func ParseType(s string) (Type, error) {
	t := Type(s)
	if t.Algorithms() == nil {
		return "", fmt.Errorf("key type %q: %w (allowed: rsa-2048, rsa-3072, rsa-4096, ecdsa-p256, ed25519)", s, ErrInvalid)
	}
	return t, nil
}

var (
	// ErrInvalid marks a request that can never succeed as asked: retrying cannot help.
	ErrInvalid = errors.New("invalid request")
	// ErrNotFound marks a key or version that does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict marks a lost check-and-set race: the state changed since it was read.
	ErrConflict = errors.New("conflict")
)

// KID is the JWT key id of a key version: <key>-v<N>.
func KID(key string, version int) string { return key + "-v" + strconv.Itoa(version) }

// ParseKID splits a kid made by KID.
func ParseKID(kid string) (key string, version int, err error) {
	i := strings.LastIndex(kid, "-v")
	if i <= 0 {
		return "", 0, fmt.Errorf("kid %q is not <key>-v<N>: %w", kid, ErrInvalid)
	}
	v, err := strconv.Atoi(kid[i+2:])
	if err != nil || v < 1 {
		return "", 0, fmt.Errorf("kid %q is not <key>-v<N>: %w", kid, ErrInvalid)
	}
	return kid[:i], v, nil
}

// Transit is a Vault transit secrets engine mount.
type Transit struct {
	Client *vault.Client
	Mount  string // default "transit"
}

func (t *Transit) path(parts ...string) string {
	mount := t.Mount
	if mount == "" {
		mount = "transit"
	}
	return strings.Join(append([]string{strings.Trim(mount, "/")}, parts...), "/")
}

// Key is what Vault holds about a transit key: its type, latest version and the public key of
// every version still present.
type Key struct {
	Name          string
	Type          Type
	LatestVersion int
	MinDecryption int
	PublicKeys    map[int]crypto.PublicKey
}

// Versions returns the versions present, ascending.
func (k *Key) Versions() []int {
	out := make([]int, 0, len(k.PublicKeys))
	for v := range k.PublicKeys {
		out = append(out, v)
	}
	sort.Ints(out)
	return out
}

// ReadKey reads a key and parses every version's public key.
func (t *Transit) ReadKey(ctx context.Context, name string) (*Key, error) {
	sec, err := t.Client.Logical().ReadWithContext(ctx, t.path("keys", name))
	if err != nil {
		return nil, fmt.Errorf("read transit key %s: %w", name, mapError(err))
	}
	if sec == nil || sec.Data == nil {
		return nil, fmt.Errorf("transit key %s: %w", name, ErrNotFound)
	}
	var raw struct {
		Type          string                     `json:"type"`
		LatestVersion json.Number                `json:"latest_version"`
		MinDecryption json.Number                `json:"min_decryption_version"`
		Keys          map[string]json.RawMessage `json:"keys"`
	}
	if err := remarshal(sec.Data, &raw); err != nil {
		return nil, fmt.Errorf("transit key %s: %w", name, err)
	}
	k := &Key{Name: name, Type: Type(raw.Type), PublicKeys: map[int]crypto.PublicKey{}}
	latest, _ := raw.LatestVersion.Int64()
	minDec, _ := raw.MinDecryption.Int64()
	k.LatestVersion, k.MinDecryption = int(latest), int(minDec)
	for vs, body := range raw.Keys {
		v, err := strconv.Atoi(vs)
		if err != nil {
			continue
		}
		var entry struct {
			PublicKey string `json:"public_key"`
		}
		if err := json.Unmarshal(body, &entry); err != nil {
			return nil, fmt.Errorf("transit key %s v%d: %w", name, v, err)
		}
		pub, err := parsePublicKey(k.Type, entry.PublicKey)
		if err != nil {
			return nil, fmt.Errorf("transit key %s v%d: %w", name, v, err)
		}
		k.PublicKeys[v] = pub
	}
	return k, nil
}

// parsePublicKey reads Vault's public_key: PEM for RSA and ECDSA, base64 of the raw key for
// ed25519.
func parsePublicKey(t Type, s string) (crypto.PublicKey, error) {
	if t == Ed25519 {
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil || len(b) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("ed25519 public key is not 32 base64 bytes")
		}
		return ed25519.PublicKey(b), nil
	}
	block, _ := pem.Decode([]byte(s))
	if block == nil {
		return nil, fmt.Errorf("public key is not PEM")
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, err
	}
	switch pub.(type) {
	case *rsa.PublicKey, *ecdsa.PublicKey:
		return pub, nil
	}
	return nil, fmt.Errorf("unexpected public key type %T", pub)
}

// EnsureKey creates the key with the requested type and no automatic rotation if it does not
// exist. An existing key of another type is an error, never silently reused.
func (t *Transit) EnsureKey(ctx context.Context, name string, typ Type) (*Key, error) {
	if _, err := ParseType(string(typ)); err != nil {
		return nil, err
	}
	k, err := t.ReadKey(ctx, name)
	switch {
	case err == nil:
		if k.Type != typ {
			return nil, fmt.Errorf("transit key %s is %s, not the requested %s: %w", name, k.Type, typ, ErrInvalid)
		}
		return k, nil
	case !errors.Is(err, ErrNotFound):
		return nil, err
	}
	if _, err := t.Client.Logical().WriteWithContext(ctx, t.path("keys", name), map[string]any{
		"type": string(typ), "auto_rotate_period": "0", "exportable": false,
	}); err != nil {
		return nil, fmt.Errorf("create transit key %s: %w", name, mapError(err))
	}
	return t.ReadKey(ctx, name)
}

// Rotate creates the next version only while the key's latest version still equals expected, so
// a retried call (after a crash between Vault's answer and the caller's) never makes a second
// version: it returns the version the first call created. Vault has no conditional rotate, so
// callers must not rotate one key concurrently (rollgate runs one workflow per stage and key).
func (t *Transit) Rotate(ctx context.Context, name string, expected int) (int, error) {
	k, err := t.ReadKey(ctx, name)
	if err != nil {
		return 0, err
	}
	switch {
	case k.LatestVersion == expected+1:
		return k.LatestVersion, nil // an earlier attempt already rotated
	case k.LatestVersion != expected:
		return 0, fmt.Errorf("transit key %s is at v%d, expected v%d or v%d: %w", name, k.LatestVersion, expected, expected+1, ErrConflict)
	}
	if _, err := t.Client.Logical().WriteWithContext(ctx, t.path("keys", name, "rotate"), nil); err != nil {
		return 0, fmt.Errorf("rotate transit key %s: %w", name, mapError(err))
	}
	k, err = t.ReadKey(ctx, name)
	if err != nil {
		return 0, err
	}
	return k.LatestVersion, nil
}

// signParams are the transit/sign parameters that make Vault's signature a JWS signature.
func signParams(typ Type, alg string) (hash string, params map[string]any, err error) {
	switch {
	case alg == "RS256" && strings.HasPrefix(string(typ), "rsa-"):
		return "sha2-256", map[string]any{"signature_algorithm": "pkcs1v15"}, nil
	case alg == "PS256" && strings.HasPrefix(string(typ), "rsa-"):
		return "sha2-256", map[string]any{"signature_algorithm": "pss", "salt_length": "hash"}, nil
	case alg == "ES256" && typ == ECDSAP256:
		return "sha2-256", map[string]any{"marshaling_algorithm": "jws"}, nil
	case alg == "EdDSA" && typ == Ed25519:
		return "", map[string]any{}, nil
	}
	return "", nil, fmt.Errorf("algorithm %s cannot be signed with a %s key: %w", alg, typ, ErrInvalid)
}

// Sign signs each input with one explicit version of the key (never "latest"), in one request
// (batch_input when there is more than one). It returns raw JWS signatures in input order.
func (t *Transit) Sign(ctx context.Context, name string, typ Type, version int, alg string, inputs ...[]byte) ([][]byte, error) {
	if version < 1 {
		return nil, fmt.Errorf("sign with %s: key version %d: %w", name, version, ErrInvalid)
	}
	hash, params, err := signParams(typ, alg)
	if err != nil {
		return nil, err
	}
	params["key_version"] = version
	if len(inputs) == 1 {
		params["input"] = base64.StdEncoding.EncodeToString(inputs[0])
	} else {
		batch := make([]map[string]any, len(inputs))
		for i, in := range inputs {
			batch[i] = map[string]any{"input": base64.StdEncoding.EncodeToString(in)}
		}
		params["batch_input"] = batch
	}
	p := t.path("sign", name)
	if hash != "" {
		p += "/" + hash
	}
	sec, err := t.Client.Logical().WriteWithContext(ctx, p, params)
	if err != nil {
		return nil, fmt.Errorf("sign with %s v%d: %w", name, version, mapError(err))
	}
	if sec == nil {
		return nil, fmt.Errorf("sign with %s v%d: empty answer", name, version)
	}
	var sigs []string
	if len(inputs) == 1 {
		sigs = []string{fmt.Sprint(sec.Data["signature"])}
	} else {
		var res struct {
			Results []struct {
				Signature string `json:"signature"`
				Error     string `json:"error"`
			} `json:"batch_results"`
		}
		if err := remarshal(sec.Data, &res); err != nil {
			return nil, err
		}
		if len(res.Results) != len(inputs) {
			return nil, fmt.Errorf("sign with %s v%d: %d results for %d inputs", name, version, len(res.Results), len(inputs))
		}
		for i, r := range res.Results {
			if r.Error != "" {
				return nil, fmt.Errorf("sign input %d with %s v%d: %s", i, name, version, r.Error)
			}
			sigs = append(sigs, r.Signature)
		}
	}
	out := make([][]byte, len(sigs))
	prefix := "vault:v" + strconv.Itoa(version) + ":"
	for i, s := range sigs {
		b64, ok := strings.CutPrefix(s, prefix)
		if !ok {
			return nil, fmt.Errorf("sign with %s: Vault signed with another version than v%d", name, version)
		}
		enc := base64.StdEncoding
		if params["marshaling_algorithm"] == "jws" { // Vault encodes JWS-marshaled signatures base64url
			enc = base64.RawURLEncoding
		}
		if out[i], err = enc.DecodeString(b64); err != nil {
			return nil, fmt.Errorf("sign with %s v%d: %w", name, version, err)
		}
	}
	return out, nil
}

// mapError classifies a Vault error once: 400 and 403 cannot succeed on retry, 404 is not found,
// 412 (check-and-set) is a conflict; everything else (5xx, network) is left retryable.
func mapError(err error) error {
	var re *vault.ResponseError
	if !errors.As(err, &re) {
		return err
	}
	switch re.StatusCode {
	case http.StatusNotFound:
		return errors.Join(ErrNotFound, err)
	case http.StatusBadRequest:
		if strings.Contains(strings.Join(re.Errors, " "), "check-and-set") {
			return errors.Join(ErrConflict, err)
		}
		return errors.Join(ErrInvalid, err)
	case http.StatusForbidden:
		return errors.Join(ErrInvalid, err)
	case http.StatusPreconditionFailed:
		return errors.Join(ErrConflict, err)
	}
	return err
}

func remarshal(in any, out any) error {
	b, err := json.Marshal(in)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, out)
}
