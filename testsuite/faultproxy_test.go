package testsuite_test

import (
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"testing"
	"time"
)

// faultProxy is a reverse proxy put between the worker and one of the bed's servers, which a
// test switches to fail: answer every request with an HTTP status (Vault sealed or on standby
// answers 503), or refuse connections altogether (a server that is down).
type faultProxy struct {
	URL  string
	addr string
	next http.Handler

	mu      sync.Mutex
	status  int // non-zero: answer it instead of forwarding
	srv     *http.Server
	answers int // requests answered with status
}

// startFaultProxy forwards to target until told otherwise, and stops with the test.
func startFaultProxy(t *testing.T, target string) *faultProxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ErrorLog = log.New(io.Discard, "", 0)
	p := &faultProxy{next: rp}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.addr, p.URL = ln.Addr().String(), "http://"+ln.Addr().String()
	p.serve(ln)
	t.Cleanup(func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.srv != nil {
			_ = p.srv.Close()
		}
	})
	return p
}

func (p *faultProxy) serve(ln net.Listener) {
	p.srv = &http.Server{Handler: http.HandlerFunc(p.handle), ReadHeaderTimeout: 10 * time.Second}
	go func(srv *http.Server) { _ = srv.Serve(ln) }(p.srv)
}

func (p *faultProxy) handle(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	status := p.status
	if status != 0 {
		p.answers++
	}
	p.mu.Unlock()
	if status == 0 {
		p.next.ServeHTTP(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, `{"errors":["Vault is sealed"]}`)
}

// answer makes the proxy answer every request with status; zero forwards again.
func (p *faultProxy) answer(status int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.status = status
}

// answered counts the requests answered with a fault status.
func (p *faultProxy) answered() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.answers
}

// refuse closes the listener and every open connection: dials fail with "connection refused".
func (p *faultProxy) refuse() {
	p.mu.Lock()
	defer p.mu.Unlock()
	_ = p.srv.Close()
	p.srv = nil
}

// accept listens on the same address again. The port is free since refuse, but another socket of
// the machine may hold it for a moment; that is retried.
func (p *faultProxy) accept(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ln, err := net.Listen("tcp", p.addr)
		if err == nil {
			p.mu.Lock()
			p.serve(ln)
			p.mu.Unlock()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("listen again on %s: %v", p.addr, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
