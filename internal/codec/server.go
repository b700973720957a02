package codec

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path"
	"slices"
	"strings"

	"go.temporal.io/sdk/converter"
)

// MaxRequestBody caps one request to the codec server: a history page of payloads is far below
// it, and an unbounded body would let any caller exhaust the server's memory.
const MaxRequestBody = 4 << 20

// ServerOptions configure NewServer.
type ServerOptions struct {
	// Auth checks the bearer token of every request but a CORS preflight.
	Auth Authenticator
	// Hosts are the Host header values served, "host:port" or "host" for any port. Every other
	// Host is refused, so a page whose name resolves to this server (DNS rebinding) gets nothing.
	Hosts []string
	// Origins are the browser origins (Temporal Web UIs) that may call the server.
	Origins []string
	// Encode serves /encode too. Off by default: anyone who may call it can make payloads
	// that workers accept as sealed by the key.
	Encode bool
}

type server struct {
	opts  ServerOptions
	hosts []string
	codec http.Handler
}

// NewServer is the remote codec protocol of the Temporal Web UI and CLI (POST …/decode and, if
// enabled, …/encode) over c, for authenticated callers at allowed hosts only.
func NewServer(c *Codec, o ServerOptions) (http.Handler, error) {
	if o.Auth == nil {
		return nil, errors.New("codec server: no authenticator")
	}
	if len(o.Hosts) == 0 {
		return nil, errors.New("codec server: no allowed host")
	}
	s := &server{opts: o, codec: converter.NewPayloadCodecHTTPHandler(c)}
	for _, h := range o.Hosts {
		s.hosts = append(s.hosts, strings.ToLower(h))
	}
	return s, nil
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !s.hostAllowed(r.Host) {
		http.Error(w, "host not served here", http.StatusMisdirectedRequest)
		return
	}
	s.cors(w, r)
	if r.Method == http.MethodOptions { // a preflight carries no credentials: answer CORS only
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST, OPTIONS")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if err := s.authenticate(r); err != nil {
		w.Header().Set("WWW-Authenticate", `Bearer realm="rollgate codec", error="invalid_token"`)
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	if op := path.Base(r.URL.Path); op != "decode" && (op != "encode" || !s.opts.Encode) {
		http.NotFound(w, r)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxRequestBody))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		http.Error(w, fmt.Sprintf("request body over %d bytes", MaxRequestBody), http.StatusRequestEntityTooLarge)
		return
	}
	if err != nil {
		http.Error(w, "cannot read the request body", http.StatusBadRequest)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	s.codec.ServeHTTP(w, r)
}

// hostAllowed matches host against the allow-list, with or without its port.
func (s *server) hostAllowed(host string) bool {
	host = strings.ToLower(host)
	if slices.Contains(s.hosts, host) {
		return true
	}
	name, _, err := net.SplitHostPort(host)
	return err == nil && slices.Contains(s.hosts, name)
}

// cors lets the listed browser origins call the server with the headers the Temporal UI sends.
func (s *server) cors(w http.ResponseWriter, r *http.Request) {
	w.Header().Add("Vary", "Origin")
	origin := r.Header.Get("Origin")
	if origin == "" || !slices.Contains(s.opts.Origins, origin) {
		return
	}
	w.Header().Set("Access-Control-Allow-Origin", origin)
	w.Header().Set("Access-Control-Allow-Credentials", "true")
	w.Header().Set("Access-Control-Allow-Headers", "Authorization, Content-Type, X-Namespace")
	w.Header().Set("Access-Control-Allow-Methods", "POST")
	w.Header().Set("Access-Control-Max-Age", "600")
}

func (s *server) authenticate(r *http.Request) error {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
		return errors.New("unauthorized: send Authorization: Bearer <token>")
	}
	return s.opts.Auth.Authenticate(r.Context(), strings.TrimSpace(token))
}
