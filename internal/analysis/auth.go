package analysis

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// authTransport wraps the base transport with the one authentication cfg sets.
func authTransport(cfg PrometheusConfig, u *url.URL) (http.RoundTripper, error) {
	base := cfg.Transport
	if base == nil {
		base = http.DefaultTransport.(*http.Transport).Clone()
	}
	basic := cfg.Username != "" || cfg.Password != "" || cfg.PasswordFile != ""
	bearer := cfg.BearerToken != "" || cfg.BearerTokenFile != ""
	sigv4 := cfg.SigV4Region != "" || cfg.Credentials != nil
	n := 0
	for _, set := range []bool{basic, bearer, sigv4} {
		if set {
			n++
		}
	}
	switch {
	case n > 1:
		return nil, errors.New("prometheus: set one of basic auth, bearer token and SigV4, not several")
	case basic:
		if cfg.Username == "" || (cfg.Password == "") == (cfg.PasswordFile == "") {
			return nil, errors.New("prometheus basic auth: a username and one of password, password file")
		}
		return &basicAuth{next: base, user: cfg.Username, secret: secretSource{value: cfg.Password, file: cfg.PasswordFile}}, nil
	case bearer:
		if (cfg.BearerToken == "") == (cfg.BearerTokenFile == "") {
			return nil, errors.New("prometheus bearer auth: one of token, token file")
		}
		return &bearerAuth{next: base, secret: secretSource{value: cfg.BearerToken, file: cfg.BearerTokenFile}}, nil
	case sigv4:
		if cfg.SigV4Region == "" || cfg.Credentials == nil {
			return nil, errors.New("prometheus SigV4: a region and credentials")
		}
		if u.Scheme != "https" {
			return nil, fmt.Errorf("prometheus URL %s: SigV4 requests go over https", u)
		}
		return &sigV4Auth{next: base, signer: v4.NewSigner(), creds: cfg.Credentials, region: cfg.SigV4Region, now: time.Now}, nil
	}
	return base, nil
}

// secretSource is a secret given inline or in a file. Its errors name the file, never its content.
type secretSource struct{ value, file string }

func (s secretSource) read() (string, error) {
	if s.file == "" {
		return s.value, nil
	}
	b, err := os.ReadFile(s.file)
	if err != nil {
		return "", fmt.Errorf("read secret file: %w", err) // *PathError: the path and the cause
	}
	v := strings.TrimSpace(string(b))
	if v == "" {
		return "", fmt.Errorf("secret file %s is empty", s.file)
	}
	return v, nil
}

type basicAuth struct {
	next   http.RoundTripper
	user   string
	secret secretSource
}

func (a *basicAuth) RoundTrip(r *http.Request) (*http.Response, error) {
	pw, err := a.secret.read()
	if err != nil {
		closeBody(r)
		return nil, err
	}
	r = r.Clone(r.Context())
	r.SetBasicAuth(a.user, pw)
	return a.next.RoundTrip(r)
}

type bearerAuth struct {
	next   http.RoundTripper
	secret secretSource
}

func (a *bearerAuth) RoundTrip(r *http.Request) (*http.Response, error) {
	tok, err := a.secret.read()
	if err != nil {
		closeBody(r)
		return nil, err
	}
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+tok)
	return a.next.RoundTrip(r)
}

// sigV4Auth signs each request with AWS Signature Version 4 for service "aps" (Amazon Managed
// Prometheus), over the SHA-256 of its body.
type sigV4Auth struct {
	next   http.RoundTripper
	signer *v4.Signer
	creds  aws.CredentialsProvider
	region string
	now    func() time.Time
}

func (a *sigV4Auth) RoundTrip(r *http.Request) (*http.Response, error) {
	body, err := readBody(r)
	if err != nil {
		return nil, err
	}
	creds, err := a.creds.Retrieve(r.Context())
	if err != nil {
		return nil, fmt.Errorf("SigV4 credentials: %w", err)
	}
	r = r.Clone(r.Context())
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	sum := sha256.Sum256(body)
	if err := a.signer.SignHTTP(r.Context(), creds, r, hex.EncodeToString(sum[:]), "aps", a.region, a.now()); err != nil {
		return nil, fmt.Errorf("SigV4 signing: %w", err)
	}
	return a.next.RoundTrip(r)
}

func readBody(r *http.Request) ([]byte, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	defer r.Body.Close()
	b, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, fmt.Errorf("read request body: %w", err)
	}
	return b, nil
}

// closeBody honours the RoundTripper contract: the body is closed even when no request is sent.
func closeBody(r *http.Request) {
	if r.Body != nil {
		_ = r.Body.Close()
	}
}
