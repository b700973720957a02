package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/rollgate/rollgate/internal/registry"
)

// server is the forward-auth server on a real loopback listener, as `authorizer serve` runs it.
type server struct {
	*underTest
	url string
	reg *prometheus.Registry
}

func (i *testIssuer) startServe(t *testing.T, overrides map[string]string) *server {
	t.Helper()
	reg := prometheus.NewRegistry()
	u := i.start(t, false, func(cfg Config, _ *syncBuffer) recorder { return newPromRecorder(reg, cfg.Issuer) }, overrides)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- u.a.serveOn(ctx, ln, reg) }()
	t.Cleanup(func() {
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("server stopped with %v", err)
		}
	})
	return &server{underTest: u, url: "http://" + ln.Addr().String(), reg: reg}
}

// call sends method /path with the token (if any) and release header, and returns the answer
// with its body read.
func (s *server) call(t *testing.T, method, path, token, release string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(method, s.url+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if release != "" {
		req.Header.Set("X-Rollgate-Release", release)
	}
	req.Header.Set("X-Forwarded-For", "203.0.113.7")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

// series returns the samples of a counter family by their labels.
func (s *server) series(t *testing.T, family string) []*dto.Metric {
	t.Helper()
	mfs, err := s.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == family {
			return mf.GetMetric()
		}
	}
	return nil
}

func labels(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, l := range m.GetLabel() {
		out[l.GetName()] = l.GetValue()
	}
	return out
}

func TestServe_ForwardAuth_IdentityHeadersOr401WithAChallenge(t *testing.T) {
	ctx := context.Background()
	iss := newTestIssuer(t, true)
	ms := iss.mint(t, "billing", "mallory")
	s := iss.startServe(t, nil)

	if resp, body := s.call(t, "GET", "/healthz", "", ""); resp.StatusCode != 200 || body != "ok\n" {
		t.Fatalf("healthz %d %q", resp.StatusCode, body)
	}
	for _, method := range []string{"GET", "POST"} {
		resp, _ := s.call(t, method, "/auth", ms[0].Token, "canary-7")
		h := resp.Header
		if resp.StatusCode != 200 || h.Get("X-Rollgate-Subject") != "billing" || h.Get("X-Rollgate-Client") != "billing-client" ||
			h.Get("X-Rollgate-Kid") != iss.kid || h.Get("X-Rollgate-Jti") != ms[0].JTI {
			t.Fatalf("%s good token: %d %v", method, resp.StatusCode, h)
		}
	}
	// Envoy's ext_authz: the client's method, the client's path after the path prefix.
	for _, call := range [][2]string{{"PUT", "/auth"}, {"DELETE", "/auth/orders/7"}, {"GET", "/auth/"}, {"PATCH", "/auth/orders/7?x=%2F..%2Fmetrics"}} {
		if resp, _ := s.call(t, call[0], call[1], ms[0].Token, "canary-7"); resp.StatusCode != 200 || resp.Header.Get("X-Rollgate-Subject") != "billing" {
			t.Fatalf("%s %s with a good token: %d %v", call[0], call[1], resp.StatusCode, resp.Header)
		}
		if resp, _ := s.call(t, call[0], call[1], "", ""); resp.StatusCode != 401 {
			t.Fatalf("%s %s without a token: %d", call[0], call[1], resp.StatusCode)
		}
	}

	resp, _ := s.call(t, "GET", "/auth", "", "")
	if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") != `Bearer realm="rollgate"` {
		t.Fatalf("no token: %d %q (RFC 6750: a challenge without an error code)", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	tampered := ms[0].Token[:len(ms[0].Token)-4] + "AAAA"
	iss.secrets.add(tampered)
	resp, body := s.call(t, "GET", "/auth", tampered, "canary-7")
	if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") != `Bearer realm="rollgate", error="invalid_token"` {
		t.Fatalf("bad token: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	if strings.Contains(body+fmt.Sprint(resp.Header), tampered[strings.LastIndex(tampered, ".")+1:]) {
		t.Fatal("the answer echoes the token")
	}

	// The deny list follows the table in the background.
	if err := iss.reg.RevokeBefore(ctx, registry.BySubject, "mallory", time.Now().Add(time.Second), "compromised"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a revoked subject is still let through", func() bool {
		resp, _ := s.call(t, "GET", "/auth", ms[1].Token, "canary-7")
		return resp.StatusCode == 401
	})

	want := map[string]bool{"canary-7 accepted none " + iss.kid: false, "canary-7 rejected bad_signature " + iss.kid: false, "canary-7 rejected revoked " + iss.kid: false}
	for _, m := range s.series(t, "rollgate_authorizer_verifications_total") {
		l := labels(m)
		if l["issuer"] != iss.url {
			t.Errorf("issuer label %q", l["issuer"])
		}
		want[l["release"]+" "+l["outcome"]+" "+l["reason"]+" "+l["kid"]] = true
	}
	for k, seen := range want {
		if !seen {
			t.Errorf("no series %q", k)
		}
	}
	if len(s.series(t, "rollgate_tokens_rejected_total")) == 0 {
		t.Error("the lifecycle counters that `starter tokens --metrics` reads are missing")
	}
	if resp, body := s.call(t, "GET", "/metrics", "", ""); resp.StatusCode != 200 || !strings.Contains(body, "rollgate_authorizer_verifications_total{") {
		t.Fatalf("/metrics %d", resp.StatusCode)
	}
}

// A flood of forged kids and release names must not grow the metrics: every kid outside the key
// set is "unknown", and releases beyond the first few are "other".
func TestServe_ThousandForgedKIDsAndReleases_KeepTheSeriesBounded(t *testing.T) {
	iss := newTestIssuer(t, true)
	s := iss.startServe(t, nil)
	hmac := func(kid string) string {
		enc := base64.RawURLEncoding.EncodeToString
		return enc([]byte(`{"alg":"HS256","typ":"at+jwt","kid":"`+kid+`"}`)) + ".e30." + enc([]byte("sig"))
	}
	for n := range 1000 {
		token := forged(fmt.Sprintf("forged-%d", n))
		if n%2 == 1 {
			token = hmac(fmt.Sprintf("forged-%d", n))
		}
		if resp, _ := s.call(t, "GET", "/auth", token, fmt.Sprintf("r%d", n)); resp.StatusCode != 401 {
			t.Fatalf("forged token %d: %d", n, resp.StatusCode)
		}
	}
	releases := map[string]bool{}
	got := s.series(t, "rollgate_authorizer_verifications_total")
	for _, m := range got {
		l := labels(m)
		if l["kid"] != "unknown" {
			t.Fatalf("kid label %q for a forged kid", l["kid"])
		}
		releases[l["release"]] = true
	}
	if len(releases) > maxReleases+1 || !releases["other"] {
		t.Fatalf("%d release label values, want at most %d with \"other\"", len(releases), maxReleases+1)
	}
	if len(got) > 2*(maxReleases+1) {
		t.Fatalf("%d series after 1,000 forged kids", len(got))
	}
	if n := len(s.series(t, "rollgate_tokens_rejected_total")); n != 2 {
		t.Fatalf("%d lifecycle rejection series, want 2 (unknown kid, algorithm)", n)
	}
}

func TestServe_StopsWhenItsContextEnds(t *testing.T) {
	iss := newTestIssuer(t, true)
	u := iss.start(t, false, func(cfg Config, _ *syncBuffer) recorder { return newPromRecorder(prometheus.NewRegistry(), cfg.Issuer) }, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- u.a.serveOn(ctx, ln, prometheus.NewRegistry()) }()
	cancel()
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("shutdown: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the server did not stop")
	}
	if c, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second); err == nil {
		c.Close()
		t.Fatal("still listening after shutdown")
	}
}

// Authorization is a singleton field (RFC 9110 §11.6.2): a request with two is refused, since
// the proxy in front passes both on and the backend may read the one the authorizer did not check
// (a good token first, a forged one after it).
func TestServe_TwoAuthorizationHeaders_Refused(t *testing.T) {
	iss := newTestIssuer(t, true)
	ms := iss.mint(t, "billing", "mallory")
	s := iss.startServe(t, nil)
	forged := ms[0].Token[:strings.LastIndex(ms[0].Token, ".")] + ".AAAA"
	iss.secrets.add(forged)
	for _, pair := range [][2]string{{ms[0].Token, forged}, {forged, ms[0].Token}, {ms[0].Token, ms[0].Token}} {
		req, _ := http.NewRequest("GET", s.url+"/auth", nil)
		req.Header.Add("Authorization", "Bearer "+pair[0])
		req.Header.Add("Authorization", "Bearer "+pair[1])
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 401 || resp.Header.Get("X-Rollgate-Subject") != "" {
			t.Fatalf("two Authorization headers: %d %v; want 401", resp.StatusCode, resp.Header)
		}
	}
	if resp, _ := s.call(t, "GET", "/auth", ms[0].Token, ""); resp.StatusCode != 200 {
		t.Fatalf("the good token alone: %d", resp.StatusCode)
	}
}
