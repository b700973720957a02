package codec

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	vault "github.com/hashicorp/vault/api"
	"go.temporal.io/sdk/client"
)

// Config says where the codec's keys come from: the environment, or a Vault KV v2 secret. With
// neither set, payloads are not encrypted.
type Config struct {
	// Key is the current key, base64 of 32 random bytes, named KeyID.
	Key   string `env:"ROLLGATE_CODEC_KEY"`
	KeyID string `env:"ROLLGATE_CODEC_KEY_ID, default=k1"`
	// PreviousKeys are keys kept for reading older histories: id=base64 pairs separated by ";".
	PreviousKeys map[string]string `env:"ROLLGATE_CODEC_PREVIOUS_KEYS, delimiter=;, separator=="`
	// VaultSecret is a KV v2 secret "<mount>/<path>" whose field "current" names the current key
	// and whose other fields are keys by id, e.g.
	//   vault kv put secret/rollgate/codec current=k2 k1=<base64> k2=<base64>
	VaultSecret string `env:"ROLLGATE_CODEC_VAULT_SECRET"`
	// AllowPlaintext lets Decode pass unencrypted payloads through, to read histories written
	// before encryption was turned on; otherwise they are refused, so that nobody can slip a
	// plaintext input past a worker that expects sealed ones.
	AllowPlaintext bool `env:"ROLLGATE_CODEC_ALLOW_PLAINTEXT"`
}

// Enabled says whether any key source is configured.
func (c Config) Enabled() bool { return c.Key != "" || c.VaultSecret != "" }

// Load builds the codec, or returns nil when encryption is not configured. vc is called only for
// a Vault-held key.
func (c Config) Load(ctx context.Context, vc func(context.Context) (*vault.Client, error)) (*Codec, error) {
	cdc, err := c.load(ctx, vc)
	if cdc == nil || err != nil || !c.AllowPlaintext {
		return cdc, err
	}
	return cdc.ReadingPlaintext(), nil
}

func (c Config) load(ctx context.Context, vc func(context.Context) (*vault.Client, error)) (*Codec, error) {
	switch {
	case c.Key != "" && c.VaultSecret != "":
		return nil, fmt.Errorf("codec: set ROLLGATE_CODEC_KEY or ROLLGATE_CODEC_VAULT_SECRET, not both")
	case c.Key != "":
		keys := map[string][]byte{}
		k, err := ParseKey(c.Key)
		if err != nil {
			return nil, fmt.Errorf("codec: ROLLGATE_CODEC_KEY: %w", err)
		}
		keys[c.KeyID] = k
		for id, v := range c.PreviousKeys {
			if id == c.KeyID {
				return nil, fmt.Errorf("codec: ROLLGATE_CODEC_PREVIOUS_KEYS repeats the current key id %q", id)
			}
			if keys[id], err = ParseKey(v); err != nil {
				return nil, fmt.Errorf("codec: ROLLGATE_CODEC_PREVIOUS_KEYS %q: %w", id, err)
			}
		}
		return New(c.KeyID, keys)
	case c.VaultSecret != "":
		mount, path, ok := strings.Cut(strings.Trim(c.VaultSecret, "/"), "/")
		if !ok || path == "" {
			return nil, fmt.Errorf("codec: ROLLGATE_CODEC_VAULT_SECRET %q: want <kv-v2 mount>/<path>", c.VaultSecret)
		}
		client, err := vc(ctx)
		if err != nil {
			return nil, err
		}
		sec, err := client.KVv2(mount).Get(ctx, path)
		if err != nil {
			return nil, fmt.Errorf("codec: read %s from Vault: %w", c.VaultSecret, err)
		}
		current, _ := sec.Data["current"].(string)
		keys := map[string][]byte{}
		for id, v := range sec.Data {
			if id == "current" {
				continue
			}
			s, _ := v.(string)
			if keys[id], err = ParseKey(s); err != nil {
				return nil, fmt.Errorf("codec: %s field %q: %w", c.VaultSecret, id, err)
			}
		}
		if current == "" {
			return nil, fmt.Errorf("codec: %s has no field \"current\" naming the current key", c.VaultSecret)
		}
		return New(current, keys)
	}
	return nil, nil
}

// Apply makes a Temporal client use c for payloads and failures; with c nil it changes nothing.
func Apply(opts *client.Options, c *Codec) {
	if c == nil {
		return
	}
	opts.DataConverter = DataConverter(c)
	opts.FailureConverter = FailureConverter(opts.DataConverter)
}

// ServerConfig is how `starter codec-server` checks its callers: one static token, or access
// tokens of an OIDC issuer. It comes from the environment only: a flag's value shows in ps.
type ServerConfig struct {
	Token      string   `env:"ROLLGATE_CODEC_SERVER_TOKEN"`
	TokenFile  string   `env:"ROLLGATE_CODEC_SERVER_TOKEN_FILE"`
	Issuer     string   `env:"ROLLGATE_CODEC_SERVER_OIDC_ISSUER"`
	Audiences  []string `env:"ROLLGATE_CODEC_SERVER_OIDC_AUDIENCE"`
	Algorithms []string `env:"ROLLGATE_CODEC_SERVER_OIDC_ALGORITHMS, default=RS256,ES256,EdDSA"`
}

// maxTokenFile bounds what is read from ROLLGATE_CODEC_SERVER_TOKEN_FILE.
const maxTokenFile = 4 << 10

// Authenticator builds the configured authenticator; the OIDC one follows the issuer's JWKS
// until ctx ends.
func (c ServerConfig) Authenticator(ctx context.Context) (Authenticator, error) {
	static := c.Token != "" || c.TokenFile != ""
	switch {
	case static && c.Issuer != "", c.Token != "" && c.TokenFile != "":
		return nil, fmt.Errorf("codec server: set one of ROLLGATE_CODEC_SERVER_TOKEN, ROLLGATE_CODEC_SERVER_TOKEN_FILE or ROLLGATE_CODEC_SERVER_OIDC_ISSUER")
	case c.Token != "":
		a, err := NewStaticToken(c.Token)
		if err != nil {
			return nil, fmt.Errorf("codec server: ROLLGATE_CODEC_SERVER_TOKEN: %w", err)
		}
		return a, nil
	case c.TokenFile != "":
		return staticTokenFile(c.TokenFile)
	case c.Issuer != "":
		if len(c.Audiences) == 0 {
			return nil, fmt.Errorf("codec server: ROLLGATE_CODEC_SERVER_OIDC_AUDIENCE is required with ROLLGATE_CODEC_SERVER_OIDC_ISSUER (the audience of the Web UI's access tokens)")
		}
		a, err := NewOIDC(ctx, OIDCOptions{Issuer: c.Issuer, Audiences: c.Audiences, Algorithms: c.Algorithms})
		if err != nil {
			return nil, fmt.Errorf("codec server: ROLLGATE_CODEC_SERVER_OIDC_ISSUER: %w", err)
		}
		return a, nil
	}
	return nil, fmt.Errorf("codec server: no caller authentication configured: set ROLLGATE_CODEC_SERVER_OIDC_ISSUER and ROLLGATE_CODEC_SERVER_OIDC_AUDIENCE (Web UI with OIDC login), or ROLLGATE_CODEC_SERVER_TOKEN or ROLLGATE_CODEC_SERVER_TOKEN_FILE (a static token, for local use)")
}

func staticTokenFile(name string) (Authenticator, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("codec server: ROLLGATE_CODEC_SERVER_TOKEN_FILE: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxTokenFile+1))
	if err != nil {
		return nil, fmt.Errorf("codec server: ROLLGATE_CODEC_SERVER_TOKEN_FILE: %w", err)
	}
	if len(b) > maxTokenFile {
		return nil, fmt.Errorf("codec server: ROLLGATE_CODEC_SERVER_TOKEN_FILE %s is over %d bytes", name, maxTokenFile)
	}
	a, err := NewStaticToken(string(b))
	if err != nil {
		return nil, fmt.Errorf("codec server: ROLLGATE_CODEC_SERVER_TOKEN_FILE %s: %w", name, err)
	}
	return a, nil
}
