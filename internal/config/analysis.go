package config

import (
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/rollgate/rollgate/internal/analysis"
	"github.com/rollgate/rollgate/internal/spec"
)

// Prometheus configures the Prometheus provider of analysis metrics; without a URL the worker
// has none, and a release whose spec names it fails in preflight.
type Prometheus struct {
	URL     string        `env:"ROLLGATE_PROMETHEUS_URL"`
	Timeout time.Duration `env:"ROLLGATE_PROMETHEUS_TIMEOUT, default=10s"`
	// At most one of basic auth, a bearer token and SigV4 (Amazon Managed Prometheus, with the
	// worker's AWS credentials). A secret comes inline or, better, from a file read at each
	// request.
	Username        string `env:"ROLLGATE_PROMETHEUS_USERNAME"`
	Password        string `env:"ROLLGATE_PROMETHEUS_PASSWORD"`
	PasswordFile    string `env:"ROLLGATE_PROMETHEUS_PASSWORD_FILE"`
	BearerToken     string `env:"ROLLGATE_PROMETHEUS_BEARER_TOKEN"`
	BearerTokenFile string `env:"ROLLGATE_PROMETHEUS_BEARER_TOKEN_FILE"`
	SigV4Region     string `env:"ROLLGATE_PROMETHEUS_SIGV4_REGION"`
}

// String never shows a secret: the configuration may be printed.
func (p Prometheus) String() string {
	if p.URL == "" {
		return "prometheus: off"
	}
	auth := "none"
	switch {
	case p.Username != "":
		auth = "basic"
	case p.BearerToken != "" || p.BearerTokenFile != "":
		auth = "bearer"
	case p.SigV4Region != "":
		auth = "sigv4 " + p.SigV4Region
	}
	return fmt.Sprintf("prometheus: %s (auth %s)", p.URL, auth)
}

func (p Prometheus) config(creds aws.CredentialsProvider) analysis.PrometheusConfig {
	c := analysis.PrometheusConfig{
		URL: p.URL, Timeout: p.Timeout,
		Username: p.Username, Password: p.Password, PasswordFile: p.PasswordFile,
		BearerToken: p.BearerToken, BearerTokenFile: p.BearerTokenFile, SigV4Region: p.SigV4Region,
	}
	if p.SigV4Region != "" {
		c.Credentials = creds
	}
	return c
}

// check refuses settings without a URL to use them with, and a timeout out of range.
func (p Prometheus) check() error {
	if p.URL == "" && (p.Username != "" || p.Password != "" || p.PasswordFile != "" || p.BearerToken != "" || p.BearerTokenFile != "" || p.SigV4Region != "") {
		return fmt.Errorf("ROLLGATE_PROMETHEUS_URL is required with the other ROLLGATE_PROMETHEUS_* settings")
	}
	if p.Timeout < time.Second || p.Timeout > 5*time.Minute {
		return fmt.Errorf("ROLLGATE_PROMETHEUS_TIMEOUT %s: allowed 1s to 5m", p.Timeout)
	}
	return nil
}

// Providers builds the analysis providers the configuration names (none without
// ROLLGATE_PROMETHEUS_URL); creds sign SigV4 requests. Errors name the setting, never a secret.
func (c Worker) Providers(awsCfg aws.Config) (analysis.Providers, error) {
	ps := analysis.Providers{}
	if c.CloudWatchAnalysis {
		ps[spec.ProviderCloudWatch] = analysis.NewCloudWatchFromConfig(awsCfg)
	}
	if c.Prometheus.URL == "" {
		return ps, nil
	}
	prom, err := analysis.NewPrometheus(c.Prometheus.config(awsCfg.Credentials))
	if err != nil {
		return nil, fmt.Errorf("configuration: ROLLGATE_PROMETHEUS_*: %w", err)
	}
	ps[spec.ProviderPrometheus] = prom
	return ps, nil
}
