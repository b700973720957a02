package testsuite

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"time"

	vault "github.com/hashicorp/vault/api"
)

// VaultServer is a real Vault v1.15.3 dev server: in memory, unsealed, with KV v2 at secret/ (dev
// mode mounts it) and transit at transit/ (mounted by the bed).
type VaultServer struct {
	Addr  string // http://127.0.0.1:port
	Token string // the dev root token; random per start
	proc  *process
	// unsealKey is the dev server's single key share, printed in its banner; Unseal enters it.
	unsealKey string
}

// VaultOptions start a dev server of a test's own, beside the bed's.
type VaultOptions struct {
	// Progress receives a cold build of the Vault CLI. Default stderr.
	Progress io.Writer
}

// StartVault starts a Vault dev server of the test's own, which the test may seal and unseal
// without touching the bed's (other tests share it); the caller stops it.
func StartVault(ctx context.Context, o VaultOptions) (*VaultServer, error) {
	if o.Progress == nil {
		o.Progress = os.Stderr
	}
	return startVault(ctx, "", o.Progress)
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
	if v.unsealKey, err = awaitUnsealKey(ctx, log); err != nil {
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

// Stop stops a dev server started with StartVault.
func (v *VaultServer) Stop() { v.stop() }

// Logs is what the server wrote, its root token and unseal key left out.
func (v *VaultServer) Logs() string {
	return redactVault(v.proc.log.String(), v)
}

// Seal seals the server as `vault operator seal` does: it discards its root key and answers 503
// "Vault is sealed" to every request until unsealed. It returns once the server says so.
func (v *VaultServer) Seal(ctx context.Context) error {
	c, err := v.Client()
	if err != nil {
		return err
	}
	if err := c.Sys().SealWithContext(ctx); err != nil {
		return fmt.Errorf("seal vault: %w", err)
	}
	return v.awaitSealed(ctx, c, true)
}

// Unseal enters the dev server's unseal key, as `vault operator unseal` does, and returns once the
// server answers requests again.
func (v *VaultServer) Unseal(ctx context.Context) error {
	c, err := v.Client()
	if err != nil {
		return err
	}
	if _, err := c.Sys().UnsealWithContext(ctx, v.unsealKey); err != nil {
		return fmt.Errorf("unseal vault: %w", err)
	}
	return v.awaitSealed(ctx, c, false)
}

// awaitSealed polls sys/seal-status until the server's sealed state is want.
func (v *VaultServer) awaitSealed(ctx context.Context, c *vault.Client, want bool) error {
	for {
		st, err := c.Sys().SealStatusWithContext(ctx)
		if err == nil && st.Sealed == want {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("vault sealed=%v awaited: %w (last status %+v, %v)", want, ctx.Err(), st, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// unsealKeyLine is the dev server's banner line that prints its unseal key.
var unsealKeyLine = regexp.MustCompile(`Unseal Key: (\S+)`)

// awaitUnsealKey reads the unseal key from the dev server's banner, printed as it initializes.
func awaitUnsealKey(ctx context.Context, log *logBuffer) (string, error) {
	for {
		if m := unsealKeyLine.FindStringSubmatch(log.String()); m != nil {
			return m[1], nil
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("vault dev server printed no unseal key: %w", ctx.Err())
		case <-time.After(25 * time.Millisecond):
		}
	}
}

// redactVault keeps the dev server's root token and unseal key out of text meant for test output.
func redactVault(out string, v *VaultServer) string {
	if v != nil && v.Token != "" {
		out = strings.ReplaceAll(out, v.Token, "[redacted]")
	}
	return unsealKeyLine.ReplaceAllString(out, "Unseal Key: [redacted]")
}

func randomHex(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}
