package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/sethvargo/go-envconfig"
	"github.com/spf13/cobra"

	"github.com/rollgate/rollgate/internal/codec"
)

func codecServerCmd() *cobra.Command {
	var listen string
	var opts codec.ServerOptions
	cmd := &cobra.Command{
		Use:   "codec-server",
		Short: "Serve the payload codec to the Temporal Web UI and CLI, so they show encrypted histories",
		Long: `Serve the payload codec (the worker's ROLLGATE_CODEC_* keys) over HTTP: POST /decode (and
POST /encode with --encode), the remote codec protocol of the Temporal Web UI and CLI.

Every request needs Authorization: Bearer <token>, checked against an OIDC issuer
(ROLLGATE_CODEC_SERVER_OIDC_ISSUER and ROLLGATE_CODEC_SERVER_OIDC_AUDIENCE: the access tokens
the Web UI passes when its "Pass access token" codec setting is on) or a static token for local
use (ROLLGATE_CODEC_SERVER_TOKEN or ROLLGATE_CODEC_SERVER_TOKEN_FILE; the temporal CLI sends it
with --codec-auth "Bearer <token>"). Only the Host names in --allowed-host are served (default:
the listen address, and localhost for a loopback one); browsers may call it only from the
origins in --ui-origin; a request body is at most 4 MiB.`,
		Example: `  export ROLLGATE_CODEC_SERVER_TOKEN=$(head -c 32 /dev/urandom | base64)
  ROLLGATE_CODEC_KEY=... starter codec-server --listen 127.0.0.1:8081
  temporal workflow show -w deploy/a1b2c3d4e5/prod --codec-endpoint http://127.0.0.1:8081 --codec-auth "Bearer $ROLLGATE_CODEC_SERVER_TOKEN"`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			h, ln, err := codecServer(ctx, listen, opts)
			if err != nil {
				return err
			}
			srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute, MaxHeaderBytes: 64 << 10}
			fmt.Fprintf(cmd.ErrOrStderr(), "codec server on http://%s (hosts %v; /encode %v)\n", ln.Addr(), opts.Hosts, opts.Encode)
			go func() {
				<-ctx.Done()
				sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				_ = srv.Shutdown(sctx)
			}()
			if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:8081", "address to listen on")
	cmd.Flags().StringSliceVar(&opts.Origins, "ui-origin", []string{"http://localhost:8233"}, "origins of Temporal Web UIs allowed to call the codec from a browser")
	cmd.Flags().StringSliceVar(&opts.Hosts, "allowed-host", nil, "Host header values served, host or host:port (default: the listen address, plus localhost when it is loopback; required for a wildcard address)")
	cmd.Flags().BoolVar(&opts.Encode, "encode", false, "serve /encode too (lets every authenticated caller seal payloads that workers accept)")
	return cmd
}

// codecServer checks the configuration (keys, caller authentication, hosts) before it listens.
func codecServer(ctx context.Context, listen string, opts codec.ServerOptions) (http.Handler, net.Listener, error) {
	cdc, err := loadCodec(ctx)
	if err != nil {
		return nil, nil, err
	}
	if cdc == nil {
		return nil, nil, &codeError{exitInvalid, errors.New("no codec key configured: set ROLLGATE_CODEC_KEY or ROLLGATE_CODEC_VAULT_SECRET as the worker has them")}
	}
	var cfg codec.ServerConfig
	if err := envconfig.Process(ctx, &cfg); err != nil {
		return nil, nil, &codeError{exitInvalid, fmt.Errorf("configuration: %w", err)}
	}
	if opts.Auth, err = cfg.Authenticator(ctx); err != nil {
		return nil, nil, &codeError{exitInvalid, err}
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, nil, err
	}
	if len(opts.Hosts) == 0 {
		if opts.Hosts, err = defaultHosts(ln.Addr().(*net.TCPAddr)); err != nil {
			ln.Close()
			return nil, nil, &codeError{exitInvalid, err}
		}
	}
	h, err := codec.NewServer(cdc, opts)
	if err != nil {
		ln.Close()
		return nil, nil, &codeError{exitInvalid, err}
	}
	return h, ln, nil
}

// defaultHosts are the names a caller of a loopback or single-address listener uses; a wildcard
// listener has no name to guess.
func defaultHosts(addr *net.TCPAddr) ([]string, error) {
	if addr.IP.IsUnspecified() {
		return nil, fmt.Errorf("--allowed-host: required when listening on %s (name the host the Web UI and CLI use, e.g. codec.example.com:%d)", addr, addr.Port)
	}
	hosts := []string{addr.String()}
	if addr.IP.IsLoopback() {
		hosts = append(hosts, fmt.Sprintf("localhost:%d", addr.Port))
	}
	return hosts, nil
}
