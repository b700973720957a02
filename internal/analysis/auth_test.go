package analysis_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/rollgate/rollgate/internal/analysis"
	"github.com/rollgate/rollgate/testsuite"
)

// Basic auth against a Prometheus that requires it; a wrong password or a stopped server is an
// error, never a value, and no error repeats the password.
func TestPrometheus_BasicAuth_AndErrorsNeverCarryTheSecret(t *testing.T) {
	password := "pw-" + randomID(t)
	prom := testsuite.StartPrometheusForTest(t, testsuite.PrometheusOptions{Username: "rollgate", Password: password})
	ctx := context.Background()
	up := analysis.Query{Metric: "ready", Custom: "vector(1)", Window: time.Minute}

	file := filepath.Join(t.TempDir(), "password")
	if err := os.WriteFile(file, []byte(password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, cfg := range map[string]analysis.PrometheusConfig{
		"inline": {URL: prom.URL, Username: "rollgate", Password: password},
		"file":   {URL: prom.URL, Username: "rollgate", PasswordFile: file},
	} {
		if m, err := newProvider(t, cfg).Measure(ctx, up); err != nil || m.Value != 1 {
			t.Fatalf("%s password: %v, %v", name, m, err)
		}
	}
	wrong := "wrong-" + password
	_, err := newProvider(t, analysis.PrometheusConfig{URL: prom.URL, Username: "rollgate", Password: wrong}).Measure(ctx, up)
	if err == nil || strings.Contains(err.Error(), wrong) || !strings.Contains(err.Error(), "401") {
		t.Fatalf("wrong password: %v; want a 401 error without the password", err)
	}
	prom.Stop()
	_, err = newProvider(t, analysis.PrometheusConfig{URL: prom.URL, Username: "rollgate", Password: password, Timeout: 2 * time.Second}).Measure(ctx, up)
	if err == nil || strings.Contains(err.Error(), password) || !strings.Contains(err.Error(), "metric ready") {
		t.Fatalf("stopped server: %v; want an error naming the metric, without the password", err)
	}
}

// verifyingTLS stands in front of the real Prometheus over TLS and lets through only requests
// that check accepts (check returns the problem, or ""), as Amazon Managed Prometheus or an
// authenticating proxy does. Its Client().Transport trusts its certificate.
func verifyingTLS(t *testing.T, target string, check func(r *http.Request, body []byte) string) *httptest.Server {
	u, _ := url.Parse(target)
	proxy := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if problem := check(r, body); problem != "" {
			http.Error(w, problem, http.StatusForbidden)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// A bearer token read from its file at each request: a rotated token is used from the next
// measurement on, and a refused one is an error that does not repeat it.
func TestPrometheus_BearerTokenFile_IsReadAtEachRequest(t *testing.T) {
	prom := testsuite.StartPrometheusForTest(t, testsuite.PrometheusOptions{})
	var accepted atomic.Value // the token the server accepts now
	accepted.Store("tok-" + randomID(t))
	srv := verifyingTLS(t, prom.URL, func(r *http.Request, _ []byte) string {
		if r.Header.Get("Authorization") != "Bearer "+accepted.Load().(string) {
			return "wrong bearer token"
		}
		return ""
	})
	file := filepath.Join(t.TempDir(), "token")
	write := func(tok string) {
		if err := os.WriteFile(file, []byte(tok+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(accepted.Load().(string))
	p := newProvider(t, analysis.PrometheusConfig{URL: srv.URL, BearerTokenFile: file, Transport: srv.Client().Transport})
	up := analysis.Query{Metric: "ready", Custom: "vector(1)", Window: time.Minute}
	if m, err := p.Measure(context.Background(), up); err != nil || m.Value != 1 {
		t.Fatalf("first token: %v, %v", m, err)
	}
	rotated := "rotated-" + randomID(t)
	accepted.Store(rotated)
	write(rotated)
	if m, err := p.Measure(context.Background(), up); err != nil || m.Value != 1 {
		t.Fatalf("rotated token: %v, %v", m, err)
	}
	stale := "stale-" + randomID(t)
	write(stale)
	if _, err := p.Measure(context.Background(), up); err == nil || strings.Contains(err.Error(), stale) || !strings.Contains(err.Error(), "403") {
		t.Fatalf("refused token: %v; want a 403 error without the token", err)
	}
}

// A server that accepts the connection and never answers costs one timeout, then an error.
func TestPrometheus_StalledServer_TimesOut(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var held []net.Conn // connections held open, never answered
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	t.Cleanup(func() {
		l.Close()
		<-done
		for _, c := range held {
			c.Close()
		}
	})
	p := newProvider(t, analysis.PrometheusConfig{URL: "http://" + l.Addr().String(), Timeout: 300 * time.Millisecond})
	start := time.Now()
	_, err = p.Measure(context.Background(), analysis.Query{Metric: "stalled", Custom: "vector(1)", Window: time.Minute})
	if took := time.Since(start); err == nil || !strings.Contains(err.Error(), "deadline exceeded") || took > 10*time.Second {
		t.Fatalf("stalled server: %v after %v; want a deadline error after about 300ms", err, took)
	}
}

// checkSigV4 verifies a request's Signature Version 4 for service aps in us-east-1 with the
// secret of creds: the signature is recomputed over the headers it says it signed and over the
// body received, so a body or a signed header changed after signing is refused.
func checkSigV4(creds aws.Credentials) func(r *http.Request, body []byte) string {
	return func(r *http.Request, body []byte) string {
		auth := r.Header.Get("Authorization")
		date := r.Header.Get("X-Amz-Date")
		scope := "Credential=" + creds.AccessKeyID + "/" + strings.SplitN(date, "T", 2)[0] + "/us-east-1/aps/aws4_request"
		if !strings.HasPrefix(auth, "AWS4-HMAC-SHA256 ") || !strings.Contains(auth, scope) {
			return "not signed for aps in us-east-1: " + auth
		}
		_, signed, _ := strings.Cut(auth, "SignedHeaders=")
		signed, _, _ = strings.Cut(signed, ",")
		at, err := time.Parse("20060102T150405Z", date)
		if err != nil {
			return "no X-Amz-Date"
		}
		again, _ := http.NewRequest(r.Method, "https://"+r.Host+r.URL.RequestURI(), bytes.NewReader(body))
		for _, h := range strings.Split(signed, ";") {
			if h != "host" {
				again.Header.Set(h, r.Header.Get(h))
			}
		}
		sum := sha256.Sum256(body)
		if err := v4.NewSigner().SignHTTP(context.Background(), creds, again, hex.EncodeToString(sum[:]), "aps", "us-east-1", at); err != nil {
			return err.Error()
		}
		if again.Header.Get("Authorization") != auth {
			return "signature does not match"
		}
		return ""
	}
}

// SigV4 for Amazon Managed Prometheus: every query is signed for service aps over its body; a
// wrong secret is refused and the error never carries it.
func TestPrometheus_SigV4_SignsEachQueryForAPS(t *testing.T) {
	prom := testsuite.StartPrometheusForTest(t, testsuite.PrometheusOptions{})
	good := aws.Credentials{AccessKeyID: "AKIDBED" + randomID(t), SecretAccessKey: "secret-" + randomID(t)}
	srv := verifyingTLS(t, prom.URL, checkSigV4(good))
	up := analysis.Query{Metric: "ready", Custom: `vector(1) + 0*vector(0)`, Window: time.Minute}
	p := newProvider(t, analysis.PrometheusConfig{URL: srv.URL, SigV4Region: "us-east-1", Transport: srv.Client().Transport,
		Credentials: credentials.NewStaticCredentialsProvider(good.AccessKeyID, good.SecretAccessKey, "")})
	if m, err := p.Measure(context.Background(), up); err != nil || m.Value != 1 {
		t.Fatalf("signed query: %v, %v", m, err)
	}
	wrong := "wrong-" + good.SecretAccessKey
	p = newProvider(t, analysis.PrometheusConfig{URL: srv.URL, SigV4Region: "us-east-1", Transport: srv.Client().Transport,
		Credentials: credentials.NewStaticCredentialsProvider(good.AccessKeyID, wrong, "")})
	_, err := p.Measure(context.Background(), up)
	if err == nil || strings.Contains(err.Error(), wrong) || !strings.Contains(err.Error(), "403") {
		t.Fatalf("wrong secret: %v; want a 403 error without the secret", err)
	}
}

// A configuration that would leak or confuse credentials is refused before any request.
func TestNewPrometheus_RefusesUnsafeConfigurations(t *testing.T) {
	creds := credentials.NewStaticCredentialsProvider("AKID", "SECRET", "")
	cases := []struct {
		name string
		cfg  analysis.PrometheusConfig
		says string
	}{
		{"not a URL", analysis.PrometheusConfig{URL: "prometheus:9090"}, "http(s) URL"},
		{"user info in the URL", analysis.PrometheusConfig{URL: "https://me:hunter2@prom.example.com"}, "no user info"},
		{"a password in clear text to another machine", analysis.PrometheusConfig{URL: "http://prom.example.com", Username: "u", Password: "hunter2"}, "https only"},
		{"a token in clear text to another machine", analysis.PrometheusConfig{URL: "http://prom.example.com", BearerToken: "hunter2"}, "https only"},
		{"two kinds of auth", analysis.PrometheusConfig{URL: "https://prom.example.com", Username: "u", Password: "hunter2", BearerToken: "hunter2"}, "one of"},
		{"a username without a password", analysis.PrometheusConfig{URL: "https://prom.example.com", Username: "u"}, "one of password"},
		{"both a token and its file", analysis.PrometheusConfig{URL: "https://prom.example.com", BearerToken: "hunter2", BearerTokenFile: "/x"}, "one of token"},
		{"SigV4 without a region", analysis.PrometheusConfig{URL: "https://aps.example.com", Credentials: creds}, "a region"},
		{"SigV4 over http", analysis.PrometheusConfig{URL: "http://127.0.0.1:9090", SigV4Region: "us-east-1", Credentials: creds}, "over https"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := analysis.NewPrometheus(c.cfg)
			if err == nil || !strings.Contains(err.Error(), c.says) {
				t.Fatalf("got %v, want an error saying %q", err, c.says)
			}
			if strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "SECRET") {
				t.Fatalf("the error repeats a secret: %v", err)
			}
		})
	}
}
