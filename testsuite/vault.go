package testsuite

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"

	vault "github.com/hashicorp/vault/api"
)

// VaultServer is a real Vault v1.15.3 dev server: in memory, unsealed, with KV v2 at secret/ (dev
// mode mounts it) and transit at transit/ (mounted by the bed).
type VaultServer struct {
	Addr  string // http://127.0.0.1:port
	Token string // the dev root token; random per start
	proc  *process
}

func startVault(ctx context.Context, logDir string, progress io.Writer) (*VaultServer, error) {
	bin, err := vaultTool.path(ctx, progress)
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	token, err := randomHex(16)
	if err != nil {
		return nil, err
	}
	log, err := newLogBuffer(logDir, "vault")
	if err != nil {
		return nil, err
	}
	proc, err := startProcess("vault", log, bin, "server", "-dev",
		"-dev-root-token-id="+token,
		"-dev-listen-address="+loopback(port),
		"-dev-no-store-token", // never touch the user's ~/.vault-token
	)
	if err != nil {
		return nil, err
	}
	v := &VaultServer{Addr: "http://" + loopback(port), Token: token, proc: proc}
	// /v1/sys/health answers 200 once the dev server is initialized and unsealed.
	if err := waitHTTP(ctx, proc, v.Addr+"/v1/sys/health", func(r *http.Response) bool { return r.StatusCode == http.StatusOK }); err != nil {
		proc.stop()
		return nil, err
	}
	c, err := v.Client()
	if err != nil {
		proc.stop()
		return nil, err
	}
	if err := c.Sys().MountWithContext(ctx, "transit", &vault.MountInput{Type: "transit"}); err != nil {
		proc.stop()
		return nil, fmt.Errorf("mount transit: %w", err)
	}
	return v, nil
}

// Client returns a Vault API client authenticated with the root token.
func (v *VaultServer) Client() (*vault.Client, error) {
	cfg := vault.DefaultConfig()
	cfg.Address = v.Addr
	c, err := vault.NewClient(cfg)
	if err != nil {
		return nil, err
	}
	c.SetToken(v.Token)
	c.SetNamespace("")
	return c, nil
}

func (v *VaultServer) stop() { v.proc.stop() }

func randomHex(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}
