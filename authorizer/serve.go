package main

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Identity headers of an accepted request, for the proxy to pass on to the backend.
const (
	headerSubject = "X-Rollgate-Subject"
	headerClient  = "X-Rollgate-Client"
	headerKID     = "X-Rollgate-Kid"
	headerJTI     = "X-Rollgate-Jti"
)

// forwardAuth is the HTTP interface nginx auth_request, Envoy ext_authz (HTTP service), Traefik
// forwardAuth and Caddy forward_auth call: 200 with identity headers, or 401.
func (a *Authorizer) forwardAuth(reg *prometheus.Registry) http.Handler {
	mux := http.NewServeMux()
	// Any method: nginx and Traefik send GET, Caddy the client's method, and Envoy's ext_authz HTTP
	// service the client's method with the client's path appended to its path_prefix (DELETE
	// /orders/7 is checked as DELETE /auth/orders/7). The decision depends on neither, and the
	// path, the client's choice, is neither logged nor counted.
	mux.HandleFunc("/auth", a.serveAuth)
	mux.HandleFunc("/auth/", a.serveAuth)
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	return mux
}

func (a *Authorizer) serveAuth(w http.ResponseWriter, r *http.Request) {
	authz := r.Header.Get("Authorization")
	token := bearer(authz)
	if len(r.Header.Values("Authorization")) > 1 {
		// A singleton field (RFC 9110 §11.6.2): the proxy passes every copy on, and the backend
		// could read one this check never saw.
		token = ""
	}
	id := a.check(r.Context(), request{Token: token, Release: r.Header.Get(a.cfg.ReleaseHeader), SourceIP: sourceIP(r)})
	if id == nil {
		// RFC 6750 §3: no error code when the request carried no credentials at all.
		challenge := `Bearer realm="rollgate"`
		if authz != "" {
			challenge += `, error="invalid_token"`
		}
		w.Header().Set("WWW-Authenticate", challenge)
		w.Header().Set("Cache-Control", "no-store")
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	h := w.Header()
	h.Set(headerSubject, id.Subject)
	h.Set(headerClient, id.ClientID)
	h.Set(headerKID, id.KID)
	h.Set(headerJTI, id.JTI)
	w.WriteHeader(http.StatusOK)
}

// sourceIP is the client as the proxy in front reports it, else the peer.
func sourceIP(r *http.Request) string {
	if xff := r.Header.Get("X-Forwarded-For"); xff != "" {
		first, _, _ := strings.Cut(xff, ",")
		return strings.TrimSpace(first)
	}
	if ip := r.Header.Get("X-Real-Ip"); ip != "" {
		return ip
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// serve runs the forward-auth server until ctx ends, refreshing the deny list in the
// background, then drains requests in flight.
func (a *Authorizer) serve(ctx context.Context, listen string, reg *prometheus.Registry) error {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	return a.serveOn(ctx, ln, reg)
}

func (a *Authorizer) serveOn(ctx context.Context, ln net.Listener, reg *prometheus.Registry) error {
	defer ln.Close() // also when ctx ends before Serve has taken the listener
	go a.fresh.run(ctx)
	srv := &http.Server{Handler: a.forwardAuth(reg), ReadHeaderTimeout: 5 * time.Second, MaxHeaderBytes: 64 << 10}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	a.logger.Info("forward-auth server listening", "addr", ln.Addr().String(), "issuer", a.cfg.Issuer)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
