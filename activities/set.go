package activities

import (
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/apigateway"
	"github.com/aws/aws-sdk-go-v2/service/apigatewayv2"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	vault "github.com/hashicorp/vault/api"
	"go.temporal.io/sdk/worker"

	"github.com/rollgate/rollgate/internal/analysis"
	"github.com/rollgate/rollgate/internal/gateway"
	"github.com/rollgate/rollgate/internal/keys"
	"github.com/rollgate/rollgate/internal/registry"
	"github.com/rollgate/rollgate/internal/releases"
	"github.com/rollgate/rollgate/internal/tokens"
)

// Clients are the outside systems the activities talk to.
type Clients struct {
	Vault      *vault.Client
	TransitKV  string // transit mount, default "transit"
	KVMount    string // KV v2 mount for labels and deliveries, default "secret"
	APIGateway *apigateway.Client
	HTTPAPIs   *apigatewayv2.Client
	S3         *s3.Client
	DynamoDB   *dynamodb.Client
	Registry   registry.Registry // table names; DB and Metrics are filled in
	Metrics    *tokens.Metrics
	HTTP       *http.Client
	InvokeURL  func(apiID, stage string) string
	// CanaryHeader is the response header the release's backend sets to "true"; empty: none.
	CanaryHeader string
	Webhooks     map[string]string // notification webhooks by name
	// ReleasesTable holds each stage's release history; default "rollgate-releases".
	ReleasesTable string
	// MaxTokenLifetime is the verifiers' maximum token lifetime (0: no limit on reissue).
	MaxTokenLifetime time.Duration
	// Providers measure analysis metrics, by the provider name a spec gives; none: a spec with
	// analysis fails in preflight.
	Providers analysis.Providers
}

// Set is one of each activity struct, wired to the same clients.
type Set struct {
	Gateway  *Gateway
	Keys     *Keys
	Tokens   *Tokens
	Health   *Health
	Notify   *Notify
	Releases *Releases
}

// NewSet wires the activities.
func NewSet(c Clients) *Set {
	transit := &keys.Transit{Client: c.Vault, Mount: c.TransitKV}
	reg := c.Registry
	reg.DB, reg.Metrics = c.DynamoDB, c.Metrics
	delivery := &registry.Delivery{Client: c.Vault, Mount: c.KVMount}
	history := &Releases{History: &releases.History{DB: c.DynamoDB, Table: c.ReleasesTable}}
	return &Set{
		Gateway:  &Gateway{Gateways: gateway.NewSet(c.APIGateway, c.HTTPAPIs), APIKeys: &gateway.REST{API: c.APIGateway}},
		Keys:     &Keys{Transit: transit, Labels: &keys.LabelStore{Client: c.Vault, Mount: c.KVMount}},
		Tokens:   &Tokens{Transit: transit, S3: c.S3, Registry: &reg, Delivery: delivery, HTTP: c.HTTP, MaxLifetime: c.MaxTokenLifetime},
		Health:   &Health{Transit: transit, Registry: &reg, Delivery: delivery, HTTP: c.HTTP, InvokeURL: c.InvokeURL, CanaryHeader: c.CanaryHeader, Providers: c.Providers, Releases: history},
		Notify:   &Notify{HTTP: c.HTTP, Webhooks: c.Webhooks},
		Releases: history,
	}
}

// RegisterGateway registers the activities that call the gateway's control plane, for the worker
// of the gateway task queue.
func (s *Set) RegisterGateway(r worker.ActivityRegistry) { r.RegisterActivity(s.Gateway) }

// Register registers every activity with a worker.
func (s *Set) Register(r worker.ActivityRegistry) {
	r.RegisterActivity(s.Gateway)
	r.RegisterActivity(s.Keys)
	r.RegisterActivity(s.Tokens)
	r.RegisterActivity(s.Health)
	r.RegisterActivity(s.Notify)
	r.RegisterActivity(s.Releases)
}
