package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"go.temporal.io/sdk/converter"
)

func codecServerCmd() *cobra.Command {
	var listen string
	var origins []string
	cmd := &cobra.Command{
		Use:   "codec-server",
		Short: "Serve the payload codec to the Temporal Web UI and CLI, so they show encrypted histories",
		Long: `Serve the payload codec (the worker's ROLLGATE_CODEC_* keys) over HTTP: POST /encode and
POST /decode, the remote codec protocol of the Temporal Web UI and CLI. Point the UI's
"Codec Server" setting (or TEMPORAL_CODEC_ENDPOINT for the CLI) at it. Browsers may call it only
from the origins listed with --ui-origin. Anyone who can reach it can decrypt payloads: listen on
loopback, or put it behind the same authentication as the UI.`,
		Example: `  ROLLGATE_CODEC_KEY=... starter codec-server --listen 127.0.0.1:8081 --ui-origin http://localhost:8233
  temporal workflow show -w deploy/a1b2c3d4e5/prod --codec-endpoint http://127.0.0.1:8081`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			cdc, err := loadCodec(ctx)
			if err != nil {
				return err
			}
			if cdc == nil {
				return &codeError{exitInvalid, errors.New("no codec key configured: set ROLLGATE_CODEC_KEY or ROLLGATE_CODEC_VAULT_SECRET as the worker has them")}
			}
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return err
			}
			srv := &http.Server{Handler: withCORS(origins, converter.NewPayloadCodecHTTPHandler(cdc)), ReadHeaderTimeout: 10 * time.Second}
			fmt.Fprintf(cmd.ErrOrStderr(), "codec server on http://%s (key %s; opens %v)\n", ln.Addr(), cdc.KeyID(), cdc.KeyIDs())
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
	cmd.Flags().StringSliceVar(&origins, "ui-origin", []string{"http://localhost:8233"}, "origins of Temporal Web UIs allowed to call the codec from a browser")
	return cmd
}

// withCORS lets the listed browser origins call h, with the headers the Temporal UI sends.
func withCORS(origins []string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if origin := r.Header.Get("Origin"); origin != "" && slices.Contains(origins, origin) {
			w.Header().Set("Access-Control-Allow-Origin", origin)
			w.Header().Set("Access-Control-Allow-Credentials", "true")
			w.Header().Set("Access-Control-Allow-Headers", "Content-Type,X-Namespace,Authorization")
			w.Header().Set("Access-Control-Allow-Methods", "POST")
			w.Header().Add("Vary", "Origin")
		}
		if r.Method == http.MethodOptions {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		h.ServeHTTP(w, r)
	})
}
