package keys

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	vault "github.com/hashicorp/vault/api"
	"github.com/hashicorp/vault/api/auth/approle"
	"github.com/hashicorp/vault/api/auth/kubernetes"
)

// VaultAuth says how rollgate logs in to Vault. Address, namespace and TLS come from the standard
// VAULT_* variables through vault.DefaultConfig; VAULT_TOKEN is used when Method is "token".
type VaultAuth struct {
	Method    string `env:"ROLLGATE_VAULT_AUTH, default=token"` // token | approle | kubernetes
	MountPath string `env:"ROLLGATE_VAULT_AUTH_MOUNT"`          // default: the method's name
	// AppRole: the role id, and the secret id itself or a file holding it.
	RoleID       string `env:"ROLLGATE_VAULT_ROLE_ID"`
	SecretID     string `env:"ROLLGATE_VAULT_SECRET_ID"`
	SecretIDFile string `env:"ROLLGATE_VAULT_SECRET_ID_FILE"`
	// Kubernetes: the Vault role; the service account token is read from its default path.
	Role string `env:"ROLLGATE_VAULT_ROLE"`
}

// NewVaultClient builds a client from vault.DefaultConfig (VAULT_ADDR, VAULT_NAMESPACE,
// VAULT_CACERT, …), logs in as auth says and, for a renewable login, keeps the token renewed with
// the api package's lifetime watcher until ctx ends.
func NewVaultClient(ctx context.Context, auth VaultAuth, logger *slog.Logger) (*vault.Client, error) {
	cfg := vault.DefaultConfig()
	if cfg.Error != nil {
		return nil, fmt.Errorf("vault config: %w", cfg.Error)
	}
	c, err := vault.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("vault client: %w", err)
	}
	var method vault.AuthMethod
	switch auth.Method {
	case "", "token":
		if c.Token() == "" {
			return nil, fmt.Errorf("vault auth token: VAULT_TOKEN is empty: %w", ErrInvalid)
		}
		return c, nil
	case "approle":
		if auth.RoleID == "" || (auth.SecretID == "" && auth.SecretIDFile == "") {
			return nil, fmt.Errorf("vault auth approle needs ROLLGATE_VAULT_ROLE_ID and ROLLGATE_VAULT_SECRET_ID or _FILE: %w", ErrInvalid)
		}
		secret := &approle.SecretID{FromString: auth.SecretID}
		if auth.SecretIDFile != "" {
			secret = &approle.SecretID{FromFile: auth.SecretIDFile}
		}
		var opts []approle.LoginOption
		if auth.MountPath != "" {
			opts = append(opts, approle.WithMountPath(auth.MountPath))
		}
		if method, err = approle.NewAppRoleAuth(auth.RoleID, secret, opts...); err != nil {
			return nil, fmt.Errorf("vault auth approle: %w", err)
		}
	case "kubernetes":
		if auth.Role == "" {
			return nil, fmt.Errorf("vault auth kubernetes needs ROLLGATE_VAULT_ROLE: %w", ErrInvalid)
		}
		var opts []kubernetes.LoginOption
		if auth.MountPath != "" {
			opts = append(opts, kubernetes.WithMountPath(auth.MountPath))
		}
		if method, err = kubernetes.NewKubernetesAuth(auth.Role, opts...); err != nil {
			return nil, fmt.Errorf("vault auth kubernetes: %w", err)
		}
	default:
		return nil, fmt.Errorf("vault auth method %q: %w (allowed: token, approle, kubernetes)", auth.Method, ErrInvalid)
	}
	sec, err := c.Auth().Login(ctx, method)
	if err != nil {
		return nil, fmt.Errorf("vault login (%s): %w", auth.Method, mapError(err))
	}
	if sec.Auth != nil && sec.Auth.Renewable {
		go keepRenewed(ctx, c, method, sec, logger)
	}
	return c, nil
}

// keepRenewed renews the login token with a lifetime watcher and logs in again whenever the
// watcher stops (max TTL reached, or renewal refused), until ctx ends.
func keepRenewed(ctx context.Context, c *vault.Client, method vault.AuthMethod, sec *vault.Secret, logger *slog.Logger) {
	for {
		w, err := c.NewLifetimeWatcher(&vault.LifetimeWatcherInput{Secret: sec})
		if err != nil {
			logger.Error("vault token watcher", "error", err)
			return
		}
		go w.Start()
	watch:
		for {
			select {
			case <-ctx.Done():
				w.Stop()
				return
			case <-w.RenewCh(): // drained, or the watcher blocks once its buffer fills
			case err := <-w.DoneCh():
				if err != nil {
					logger.Warn("vault token renewal stopped; logging in again", "error", err)
				}
				break watch
			}
		}
		w.Stop()
		for {
			if sec, err = c.Auth().Login(ctx, method); err == nil {
				break
			}
			logger.Error("vault login failed; retrying", "error", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(5 * time.Second):
			}
		}
	}
}
