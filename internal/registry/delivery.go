package registry

import (
	"context"
	"errors"
	"fmt"
	"time"

	vault "github.com/hashicorp/vault/api"

	"github.com/rollgate/rollgate/internal/keys"
	"github.com/rollgate/rollgate/internal/tokens"
)

// Delivery hands reissued tokens to their clients through Vault KV v2: each client reads its
// current token at <mount>/rollgate/clients/<client>; KV keeps earlier versions.
type Delivery struct {
	Client *vault.Client
	Mount  string // KV v2 mount; default "secret"
}

// Delivered describes a client's current token without the token itself.
type Delivered struct {
	ClientID  string
	JTI       string
	KID       string
	ExpiresAt time.Time
	KVVersion int
}

func (d *Delivery) kv() *vault.KVv2 { return keys.KV(d.Client, d.Mount) }

func clientPath(client string) string { return "rollgate/clients/" + client }

// Current reads what a client holds now; a client never delivered to has KVVersion 0.
func (d *Delivery) Current(ctx context.Context, client string) (Delivered, error) {
	sec, err := d.kv().Get(ctx, clientPath(client))
	if errors.Is(err, vault.ErrSecretNotFound) {
		return Delivered{ClientID: client}, nil
	}
	if err != nil {
		return Delivered{}, fmt.Errorf("read delivery of %s: %w", client, err)
	}
	out := Delivered{ClientID: client, KVVersion: sec.VersionMetadata.Version}
	out.JTI, _ = sec.Data["jti"].(string)
	out.KID, _ = sec.Data["kid"].(string)
	if exp, ok := sec.Data["expires_at"].(string); ok {
		out.ExpiresAt, _ = time.Parse(time.RFC3339, exp)
	}
	return out, nil
}

// Deliver writes the token for its client unless the client already holds it, so a retried
// delivery makes no new version.
func (d *Delivery) Deliver(ctx context.Context, m tokens.Minted) (Delivered, error) {
	if m.ClientID == "" {
		return Delivered{}, errors.New("deliver: the token names no client")
	}
	cur, err := d.Current(ctx, m.ClientID)
	if err != nil {
		return Delivered{}, err
	}
	if cur.JTI == m.JTI {
		return cur, nil
	}
	sec, err := d.kv().Put(ctx, clientPath(m.ClientID), map[string]any{
		"token": m.Token, "jti": m.JTI, "kid": m.KID, "expires_at": m.ExpiresAt.UTC().Format(time.RFC3339),
	}, vault.WithCheckAndSet(cur.KVVersion))
	if err != nil {
		return Delivered{}, fmt.Errorf("deliver to %s: %w", m.ClientID, err)
	}
	return Delivered{ClientID: m.ClientID, JTI: m.JTI, KID: m.KID, ExpiresAt: m.ExpiresAt, KVVersion: sec.VersionMetadata.Version}, nil
}

// Token reads the token a client currently holds, for a health probe that presents it; it never
// leaves the caller's process.
func (d *Delivery) Token(ctx context.Context, client string) (string, error) {
	sec, err := d.kv().Get(ctx, clientPath(client))
	if err != nil {
		return "", fmt.Errorf("read delivery of %s: %w", client, err)
	}
	tok, _ := sec.Data["token"].(string)
	if tok == "" {
		return "", fmt.Errorf("client %s holds no token", client)
	}
	return tok, nil
}
