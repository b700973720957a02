package analysis

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	promapi "github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"

	"github.com/rollgate/rollgate/internal/spec"
)

// PrometheusConfig says where a Prometheus-compatible query API is and how to authenticate to it;
// at most one of basic auth, a bearer token and SigV4 is set.
type PrometheusConfig struct {
	// URL is the API's base, without /api/v1: http://prometheus:9090, or for Amazon Managed
	// Prometheus https://aps-workspaces.<region>.amazonaws.com/workspaces/<workspace-id>.
	URL string
	// Timeout bounds one measurement (every query it makes); default 10s.
	Timeout time.Duration

	Username     string
	Password     string
	PasswordFile string // read at each request, so that a rotated secret is picked up

	BearerToken     string
	BearerTokenFile string // read at each request (a projected service account token rotates)

	// SigV4Region signs every request for Amazon Managed Prometheus (service "aps") with
	// Credentials, as AWS documents for its Prometheus-compatible query APIs
	// (https://docs.aws.amazon.com/prometheus/latest/userguide/AMP-compatible-APIs.html).
	SigV4Region string
	Credentials aws.CredentialsProvider

	// Transport is the base transport; default a clone of http.DefaultTransport.
	Transport http.RoundTripper
}

// DefaultPrometheusTimeout bounds a measurement when the configuration does not.
const DefaultPrometheusTimeout = 10 * time.Second

// Prometheus measures metrics with instant PromQL queries.
type Prometheus struct {
	api     promv1.API
	timeout time.Duration
	where   string // the URL, for errors
}

// NewPrometheus checks cfg and builds the provider. Its errors name the setting, never a secret.
func NewPrometheus(cfg PrometheusConfig) (*Prometheus, error) {
	u, err := checkPrometheusURL(cfg)
	if err != nil {
		return nil, err
	}
	rt, err := authTransport(cfg, u)
	if err != nil {
		return nil, err
	}
	client, err := promapi.NewClient(promapi.Config{Address: u.String(), RoundTripper: rt})
	if err != nil {
		return nil, fmt.Errorf("prometheus %s: %w", u, err)
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = DefaultPrometheusTimeout
	}
	return &Prometheus{api: promv1.NewAPI(client), timeout: timeout, where: u.String()}, nil
}

// checkPrometheusURL refuses user info (credentials belong in their own settings, where they are
// never printed), queries and fragments, and credentials sent in clear text to another machine.
func checkPrometheusURL(cfg PrometheusConfig) (*url.URL, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || !u.IsAbs() || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, errors.New("prometheus URL: must be an http(s) URL such as http://prometheus:9090")
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, errors.New("prometheus URL: no user info, query or fragment (credentials go in their own settings)")
	}
	secret := cfg.Password != "" || cfg.PasswordFile != "" || cfg.BearerToken != "" || cfg.BearerTokenFile != ""
	if secret && u.Scheme != "https" && !spec.IsLoopback(u.Hostname()) {
		return nil, fmt.Errorf("prometheus URL %s: credentials are sent over https only (http only on loopback)", u)
	}
	return u, nil
}

// Measure runs q's queries at q.At (now if zero). No series is no data; so is NaN (a ratio of
// no requests).
func (p *Prometheus) Measure(ctx context.Context, q Query) (Measurement, error) {
	expr, err := renderPromQL(q)
	if err != nil {
		return Measurement{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	at := q.At
	if at.IsZero() {
		at = time.Now()
	}
	v, ok, err := p.instant(ctx, expr.Value, at)
	if err != nil || !ok {
		return Measurement{}, p.fail(q, err)
	}
	m := Measurement{Value: v, HasData: true}
	if expr.Samples != "" {
		n, _, err := p.instant(ctx, expr.Samples, at)
		if err != nil {
			return Measurement{}, p.fail(q, err)
		}
		m.Samples = n
	}
	return m, nil
}

func (p *Prometheus) fail(q Query, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("metric %s: prometheus %s: %w", q.Metric, p.where, err)
}

// instant runs one query and reduces its answer to one value; ok is false for no data.
func (p *Prometheus) instant(ctx context.Context, query string, at time.Time) (float64, bool, error) {
	res, _, err := p.api.Query(ctx, query, at, promv1.WithTimeout(p.timeout))
	if err != nil {
		return 0, false, err
	}
	var v float64
	switch r := res.(type) {
	case model.Vector:
		switch len(r) {
		case 0:
			return 0, false, nil
		case 1:
			v = float64(r[0].Value)
		default:
			return 0, false, fmt.Errorf("the query answered %d series; it must answer one (aggregate it, e.g. with sum)", len(r))
		}
	case *model.Scalar:
		v = float64(r.Value)
	default:
		return 0, false, fmt.Errorf("the query answered a %s; it must answer one value (a vector of one series or a scalar)", res.Type())
	}
	switch {
	case math.IsNaN(v):
		return 0, false, nil
	case math.IsInf(v, 0):
		// Not a value a threshold can judge, nor one JSON (and so workflow history) can carry.
		return 0, false, fmt.Errorf("the query answered %v; a measurement must be finite (divide by a count that can be 0 with `or` guards)", v)
	}
	return v, true, nil
}
