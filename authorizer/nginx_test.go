package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/rollgate/rollgate/testsuite"
)

// servedBinary is the authorizer binary running `serve`, configured only through the environment
// as an operator runs it.
type servedBinary struct {
	addr   string
	logs   *syncBuffer
	cmd    *exec.Cmd
	exited chan struct{} // closed when the process has ended, with its exit status in err
	err    error
}

// buildAuthorizer builds the binary once per test into its temporary folder (the build cache
// makes repeats cheap).
func buildAuthorizer(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "authorizer")
	if b, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	return bin
}

// startServeBinary runs `authorizer serve` against the bed's S3 JWKS and dynalite registry; it
// is killed at the end of the test unless the test stopped it.
func (i *testIssuer) startServeBinary(t testing.TB, bin string, overrides map[string]string) *servedBinary {
	t.Helper()
	addr, err := freeLoopbackAddr()
	if err != nil {
		t.Fatal(err)
	}
	s := &servedBinary{addr: addr, logs: &syncBuffer{}, exited: make(chan struct{})}
	s.cmd = exec.Command(bin, "serve", "--listen", s.addr)
	s.cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	for _, kv := range i.bed.Env() {
		if strings.HasPrefix(kv[0], "AWS_") { // the authorizer needs AWS (DynamoDB) and nothing else of the bed
			s.cmd.Env = append(s.cmd.Env, kv[0]+"="+kv[1])
		}
	}
	for k, v := range i.env(overrides) {
		s.cmd.Env = append(s.cmd.Env, k+"="+v)
	}
	s.cmd.Stdout, s.cmd.Stderr = s.logs, s.logs
	i.secrets.watch(s.logs)
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.err = s.cmd.Wait(); close(s.exited) }()
	t.Cleanup(func() {
		_ = s.cmd.Process.Kill() // an error only says it has ended already
		<-s.exited
		if t.Failed() {
			t.Logf("authorizer log:\n%s", s.logs.Bytes())
		}
	})
	return s
}

// backend is the protected service: it records every request that reaches it.
type backend struct {
	addr string
	mu   sync.Mutex
	seen []*http.Request
}

func newBackend(t testing.TB) *backend {
	b := &backend{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.mu.Lock()
		b.seen = append(b.seen, r.Clone(context.Background()))
		b.mu.Unlock()
		_, _ = io.WriteString(w, "order\n")
	}))
	t.Cleanup(srv.Close)
	b.addr = strings.TrimPrefix(srv.URL, "http://")
	return b
}

// request is the last request the backend saw for path, or nil.
func (b *backend) request(path string) *http.Request {
	b.mu.Lock()
	defer b.mu.Unlock()
	for n := len(b.seen) - 1; n >= 0; n-- {
		if b.seen[n].URL.Path == path {
			return b.seen[n]
		}
	}
	return nil
}

// through sends a request to nginx with the token (if any) and extra headers.
func through(t *testing.T, n *testsuite.Nginx, method, path, token string, header map[string]string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(method, n.URL+path, strings.NewReader("{}"))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// The README's nginx configuration in front of the real binary: nginx lets a good token through
// with the identity the authorizer vouched for, and refuses a missing, forged or revoked one
// before the backend sees the request.
func TestServe_BehindNginx_GoodTokensReachTheBackendRefusedOnesNever(t *testing.T) {
	ctx := context.Background()
	iss := newTestIssuer(t, true)
	ms := iss.mint(t, "alice", "bob")
	authz := iss.startServeBinary(t, buildAuthorizer(t), nil)
	orders := newBackend(t)
	ngx := testsuite.StartNginxForTest(t, testsuite.NginxOptions{Backend: orders.addr, Authorizer: authz.addr, Release: "v2"})

	eventually(t, "nginx never let the good token through", func() bool {
		return through(t, ngx, "GET", "/orders/ready", ms[0].Token, nil).StatusCode == 200
	})
	// A client cannot claim an identity: the authorizer's headers replace what it sent.
	resp := through(t, ngx, "GET", "/orders/1", ms[1].Token, map[string]string{"X-Rollgate-Subject": "mallory"})
	got := orders.request("/orders/1")
	if resp.StatusCode != 200 || got == nil {
		t.Fatalf("good token: %d, backend reached: %v", resp.StatusCode, got != nil)
	}
	want := map[string]string{"X-Rollgate-Subject": "bob", "X-Rollgate-Client": "bob-client", "X-Rollgate-Kid": iss.kid, "X-Rollgate-Jti": ms[1].JTI}
	for h, v := range want {
		if got.Header.Get(h) != v {
			t.Errorf("backend got %s %q, want %q", h, got.Header.Get(h), v)
		}
	}

	refused := func(path, token, challenge string) {
		t.Helper()
		// The release is nginx's to say: a client's own header must not reach the authorizer.
		resp := through(t, ngx, "GET", path, token, map[string]string{"X-Rollgate-Release": "client-says"})
		if got := resp.Header.Values("WWW-Authenticate"); resp.StatusCode != 401 || len(got) != 1 || got[0] != challenge {
			t.Errorf("%s: %d %q, want 401 with the one challenge %q", path, resp.StatusCode, got, challenge)
		}
	}
	refused("/orders/no-token", "", `Bearer realm="rollgate"`)
	forgedToken := forged(iss.kid)
	refused("/orders/forged", forgedToken, `Bearer realm="rollgate", error="invalid_token"`)

	if _, err := iss.reg.RevokeJTIs(ctx, []string{ms[0].JTI}, "laptop stolen", 0, nil); err != nil {
		t.Fatal(err)
	}
	// Until the deny list refresh the token still works, so the polling has a path of its own.
	eventually(t, "nginx still lets the revoked token through", func() bool {
		return through(t, ngx, "GET", "/orders/until-refresh", ms[0].Token, nil).StatusCode == 401
	})
	refused("/orders/revoked", ms[0].Token, `Bearer realm="rollgate", error="invalid_token"`)
	if resp := through(t, ngx, "GET", "/orders/2", ms[1].Token, nil); resp.StatusCode != 200 {
		t.Errorf("an unrevoked token is refused after another's revocation: %d", resp.StatusCode)
	}

	for _, path := range []string{"/orders/no-token", "/orders/forged", "/orders/revoked"} {
		if orders.request(path) != nil {
			t.Errorf("the backend saw the refused request %s", path)
		}
	}
	logs := string(authz.logs.Bytes())
	if !strings.Contains(logs, `"release":"v2"`) || strings.Contains(logs, "client-says") {
		t.Error("the authorizer's rejection lines do not name the release nginx set, or name the client's")
	}
}

// freeLoopbackAddr is a loopback host:port that was free a moment ago.
func freeLoopbackAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// The authorizer answers only GET and POST /auth (anything else is a 405, which auth_request
// would turn into a 500); nginx sends its subrequests as GET whatever the client's method, so
// every method is checked.
func TestServe_BehindNginx_EveryMethodIsCheckedNotAnError(t *testing.T) {
	iss := newTestIssuer(t, true)
	m := iss.mint(t, "alice")[0]
	authz := iss.startServeBinary(t, buildAuthorizer(t), nil)
	orders := newBackend(t)
	ngx := testsuite.StartNginxForTest(t, testsuite.NginxOptions{Backend: orders.addr, Authorizer: authz.addr})
	eventually(t, "nginx never let the good token through", func() bool {
		return through(t, ngx, "GET", "/orders/ready", m.Token, nil).StatusCode == 200
	})
	for _, method := range []string{"POST", "PUT", "PATCH", "DELETE", "OPTIONS"} {
		path := "/orders/" + strings.ToLower(method)
		if resp := through(t, ngx, method, path, m.Token, nil); resp.StatusCode != 200 || orders.request(path) == nil {
			t.Errorf("%s with a good token: %d, want 200 from the backend", method, resp.StatusCode)
		}
		if resp := through(t, ngx, method, path+"-refused", "", nil); resp.StatusCode != 401 || orders.request(path+"-refused") != nil {
			t.Errorf("%s without a token: %d, want 401 before the backend", method, resp.StatusCode)
		}
	}
}
