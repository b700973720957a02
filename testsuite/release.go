package testsuite

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/apigateway"
	agtypes "github.com/aws/aws-sdk-go-v2/service/apigateway/types"
	"github.com/aws/aws-sdk-go-v2/service/apigatewayv2"
	v2types "github.com/aws/aws-sdk-go-v2/service/apigatewayv2/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"

	"github.com/rollgate/rollgate/activities"
	"github.com/rollgate/rollgate/internal/analysis"
	"github.com/rollgate/rollgate/internal/gateway"
	"github.com/rollgate/rollgate/internal/keys"
	"github.com/rollgate/rollgate/internal/registry"
	"github.com/rollgate/rollgate/internal/releases"
	"github.com/rollgate/rollgate/internal/spec"
	"github.com/rollgate/rollgate/internal/tokens"
	"github.com/rollgate/rollgate/testsuite/gatewayemu"
	"github.com/rollgate/rollgate/workflows"
)

// ReleaseBed is the bed provisioned for releasing one service: a REST API whose stage "prod"
// serves backend v1 behind a REQUEST authorizer that is rollgate's authorizer function (its real
// Lambda bootstrap under the Runtime Interface Emulator: JWKS from the issuer on S3, deny list
// from the registry), a Vault transit key labelled current at v1 with
// its JWKS published, a client holding a v1 token, and a worker running rollgate's workflows.
type ReleaseBed struct {
	Bed          *Bed
	Name         string
	Kind         gateway.Kind
	APIID        string
	Stage        string
	AuthorizerID string
	Issuer       string
	Bucket       string
	Key          string
	Clients      []string
	// Backends: "v1" the stable release, "v2" a good release, "v3" a broken one answering 500,
	// each as the host:port a release writes to the stage variable backendUrl, which the REST
	// API's integration URI reads as http://${stageVariables.backendUrl}/{proxy}.
	Backends map[string]string
	Temporal client.Client
	// TaskQueue is where the bed's workers poll: workflows.TaskQueue, or one of the bed's own
	// (WithOwnTaskQueue).
	TaskQueue string
	Activity  *activities.Set
	// Authorizer is the REST API's authorizer function (nil for an HTTP API, whose JWT
	// authorizer is the gateway's own); its Logs hold its EMF lines and rejection logs.
	Authorizer *LambdaFunction

	worker           worker.Worker
	gatewayWorkers   []worker.Worker // the gateway task queues', as the worker program runs them
	authorizerURI    string
	revocationsTable string
	functions        []*LambdaFunction // the authorizer and its variants
	stop             []func()

	mu         sync.Mutex
	lastCaller CallerIdentity
}

// CallerIdentity is what a backend received about its caller: the headers the API's integration
// maps from the authorizer's context (REST) or the token's claims (HTTP API), as a user of API
// Gateway maps them.
type CallerIdentity struct{ Subject, Client, JTI string }

// Caller headers: the REST API maps context.authorizer.sub, .client_id and .jti to them, the HTTP
// API $context.authorizer.claims.sub, .client_id and .jti.
const (
	SubjectHeader = "X-Rollgate-Subject"
	ClientHeader  = "X-Rollgate-Client"
	JTIHeader     = "X-Rollgate-Jti"
)

// LastCaller is the identity the backends received with the latest request that reached them.
func (r *ReleaseBed) LastCaller() CallerIdentity {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lastCaller
}

func (r *ReleaseBed) sawCaller(id CallerIdentity) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lastCaller = id
}

// ProvisionRelease builds a ReleaseBed named name (lower-case letters and digits) on b, around a
// REST API.
func ProvisionRelease(ctx context.Context, b *Bed, name string, options ...ReleaseOption) (*ReleaseBed, error) {
	return provision(ctx, b, name, gateway.KindREST, options)
}

// ReleaseOption changes how a ReleaseBed is provisioned.
type ReleaseOption func(*releaseOptions)

type releaseOptions struct {
	ownQueue  bool
	vault     *VaultServer
	client    []func(*client.Options)
	providers analysis.Providers
}

// WithAnalysisProviders gives the bed's worker the analysis providers (the worker program builds
// them from ROLLGATE_PROMETHEUS_*).
func WithAnalysisProviders(ps analysis.Providers) ReleaseOption {
	return func(o *releaseOptions) { o.providers = ps }
}

// WithOwnTaskQueue gives the bed's workers a task queue of their own (ReleaseBed.TaskQueue), so
// that tests running in parallel never run each other's workflows or activities.
func WithOwnTaskQueue() ReleaseOption {
	return func(o *releaseOptions) { o.ownQueue = true }
}

// WithVault keeps the release's key, labels and client tokens in v instead of the bed's Vault,
// for a test that seals it: the bed's Vault serves the tests running beside it.
func WithVault(v *VaultServer) ReleaseOption {
	return func(o *releaseOptions) { o.vault = v }
}

// WithClientOptions applies f to the options of the Temporal client the bed's worker (and
// ReleaseBed.Temporal) uses, e.g. to install a payload codec.
func WithClientOptions(f func(*client.Options)) ReleaseOption {
	return func(o *releaseOptions) { o.client = append(o.client, f) }
}

// ProvisionHTTPRelease builds a ReleaseBed around an HTTP API whose $default route needs a JWT
// from the bed's issuer, checked by the gateway's own JWT authorizer.
func ProvisionHTTPRelease(ctx context.Context, b *Bed, name string, options ...ReleaseOption) (*ReleaseBed, error) {
	return provision(ctx, b, name, gateway.KindHTTP, options)
}

func provision(ctx context.Context, b *Bed, name string, kind gateway.Kind, options []ReleaseOption) (*ReleaseBed, error) {
	name = b.uniqueName(name)
	var ro releaseOptions
	for _, o := range options {
		o(&ro)
	}
	cfg, err := b.AWSConfig(ctx)
	if err != nil {
		return nil, err
	}
	v := b.Vault
	if ro.vault != nil {
		v = ro.vault
	}
	vc, err := v.Client()
	if err != nil {
		return nil, err
	}
	r := &ReleaseBed{Bed: b, Name: name, Kind: kind, Stage: "prod", Bucket: name + "-issuer", Key: keys.NamePrefix + name, Clients: []string{name + "-billing"},
		Backends: map[string]string{}}
	r.Issuer = b.S3.URL + "/" + r.Bucket
	ok := false
	defer func() {
		if !ok {
			r.Close()
		}
	}()
	for v, status := range map[string]int{"v1": 200, "v2": 200, "v3": 500} {
		// Each backend wants the caller's identity, which the API's integration maps from the
		// authorizer's answer (REST) or the token's claims (HTTP API).
		url, stop, err := versionBackend(v, status, r.sawCaller)
		if err != nil {
			return nil, err
		}
		r.Backends[v], r.stop = url, append(r.stop, stop)
	}

	// The issuer: Vault key v1, labelled current, its JWKS on S3.
	transit := &keys.Transit{Client: vc}
	k, err := transit.EnsureKey(ctx, r.Key, keys.RSA2048)
	if err != nil {
		return nil, err
	}
	if _, err := (&keys.LabelStore{Client: vc}).Move(ctx, r.Key, keys.Restore(keys.Labels{Current: k.LatestVersion})); err != nil {
		return nil, err
	}
	s3c := b.S3Client(cfg)
	if _, err := s3c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: &r.Bucket}); err != nil {
		return nil, fmt.Errorf("create issuer bucket: %w", err)
	}
	doc, err := tokens.JWKS(ctx, k, "RS256", []int{k.LatestVersion})
	if err != nil {
		return nil, err
	}
	if _, err := (&tokens.Publisher{S3: s3c, Bucket: r.Bucket, CacheTTL: time.Second}).Publish(ctx, r.Issuer, "RS256", doc); err != nil {
		return nil, err
	}

	// The registry and the activities, wired as the worker wires them.
	reg := registry.Registry{DB: b.DynamoDBClient(cfg)}
	if err := reg.CreateTables(ctx); err != nil {
		return nil, err
	}
	if err := (&releases.History{DB: b.DynamoDBClient(cfg)}).CreateTable(ctx); err != nil {
		return nil, err
	}
	r.Activity = activities.NewSet(activities.Clients{
		Vault: vc, APIGateway: b.APIGateway(cfg), HTTPAPIs: b.APIGatewayV2(cfg), S3: s3c, DynamoDB: b.DynamoDBClient(cfg),
		HTTP: &http.Client{Timeout: 10 * time.Second}, InvokeURL: b.Gateway.InvokeURL, CanaryHeader: gatewayemu.CanaryHeader,
		Providers: ro.providers,
	})

	if kind == gateway.KindHTTP {
		if err := r.createHTTPAPI(ctx, b.APIGatewayV2(cfg)); err != nil {
			return nil, err
		}
	} else {
		// The gateway's authorizer: rollgate's authorizer function, as deployed on AWS.
		lambda := "arn:aws:apigateway:" + Region + ":lambda:path/2015-03-31/functions/arn:aws:lambda:" + Region + ":000000000000:function:" + name + "-authorizer/invocations"
		if err := r.startAuthorizer(ctx, lambda, &reg); err != nil {
			return nil, err
		}
		r.authorizerURI = lambda
		if err := r.createAPI(ctx, b.APIGateway(cfg), lambda); err != nil {
			return nil, err
		}
	}

	// A client holding a current-key token.
	if _, err := r.Activity.Tokens.ReissueTokens(ctx, activities.ReissueInput{Issuer: r.IssuerRef(), Version: k.LatestVersion, Clients: r.Clients, TTL: time.Hour, Reason: "initial"}); err != nil {
		return nil, err
	}

	if r.Temporal, err = b.Temporal.Client(ro.client...); err != nil {
		return nil, err
	}
	r.TaskQueue = workflows.TaskQueue
	if ro.ownQueue {
		r.TaskQueue = workflows.TaskQueue + "-" + r.Name
	}
	r.worker = worker.New(r.Temporal, r.TaskQueue, worker.Options{})
	workflows.Register(r.worker)
	r.Activity.Register(r.worker)
	if err := r.worker.Start(); err != nil {
		return nil, err
	}
	for _, queue := range []string{workflows.GatewayTaskQueue(r.TaskQueue), workflows.RollbackGatewayTaskQueue(r.TaskQueue)} {
		w := worker.New(r.Temporal, queue, worker.Options{DisableWorkflowWorker: true})
		r.Activity.RegisterGateway(w)
		if err := w.Start(); err != nil {
			return nil, err
		}
		r.gatewayWorkers = append(r.gatewayWorkers, w)
	}
	ok = true
	return r, nil
}

// Target is the stage as the activities see it.
func (r *ReleaseBed) Target() activities.Target {
	t := activities.Target{APIID: r.APIID, Stage: r.Stage}
	if r.Kind != gateway.KindREST {
		t.Kind = r.Kind
	}
	return t
}

// IssuerRef is the issuer as the activities see it.
func (r *ReleaseBed) IssuerRef() activities.Issuer {
	return activities.Issuer{URL: r.Issuer, Audiences: []string{"orders"}, Key: activities.KeyRef{Name: r.Key, Type: keys.RSA2048},
		Algorithm: "RS256", Bucket: r.Bucket, CacheTTL: time.Second}
}

// startAuthorizer runs rollgate's authorizer as the stage's Lambda runs it on AWS: its real
// bootstrap under the Lambda Runtime Interface Emulator, configured for the bed's issuer and
// registry, invoked by the API Gateway emulator as the REST REQUEST authorizer behind lambda.
func (r *ReleaseBed) startAuthorizer(ctx context.Context, lambda string, reg *registry.Registry) error {
	r.revocationsTable = reg.RevocationsTableName()
	fn, err := r.runAuthorizer(ctx, lambda, nil)
	if err != nil {
		return err
	}
	r.Authorizer = fn
	return nil
}

// AuthorizerVariant runs another function of rollgate's authorizer for the bed's issuer, with
// overrides to its configuration (ROLLGATE_LEEWAY, …), and returns the authorizerUri that names
// it: what a release's authorizer patch points the canary's authorizer at.
func (r *ReleaseBed) AuthorizerVariant(ctx context.Context, name string, overrides map[string]string) (string, error) {
	if r.authorizerURI == "" {
		return "", fmt.Errorf("the bed's %s API has no Lambda authorizer", r.Kind)
	}
	uri := strings.Replace(r.authorizerURI, "-authorizer/invocations", "-"+name+"/invocations", 1)
	_, err := r.runAuthorizer(ctx, uri, overrides)
	return uri, err
}

func (r *ReleaseBed) runAuthorizer(ctx context.Context, lambda string, overrides map[string]string) (*LambdaFunction, error) {
	bootstrap, err := r.Bed.AuthorizerBootstrap(ctx)
	if err != nil {
		return nil, err
	}
	env := map[string]string{
		"ROLLGATE_ISSUER": r.Issuer, "ROLLGATE_AUDIENCES": "orders", "ROLLGATE_ALGORITHMS": "RS256",
		"ROLLGATE_REVOCATIONS_TABLE": r.revocationsTable,
		// As fresh as the release's verifier cache TTL (1 s): a newly published key is seen on
		// its first use, a revocation within a fifth of a second.
		"ROLLGATE_JWKS_CACHE_TTL": "1s", "ROLLGATE_JWKS_UNKNOWN_KID_REFRESH": "100ms", "ROLLGATE_DENYLIST_REFRESH": "200ms",
	}
	for _, kv := range r.Bed.Env() {
		switch kv[0] {
		case "AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL_DYNAMODB":
			env[kv[0]] = kv[1]
		}
	}
	maps.Copy(env, overrides)
	fn, err := StartLambda(ctx, LambdaOptions{Bootstrap: bootstrap, Env: env, Progress: r.Bed.progress,
		EnvironmentLog: r.Bed.CloudWatch.EMFWriter}) // CloudWatch Logs extracts the EMF lines
	if err != nil {
		return nil, fmt.Errorf("start the authorizer: %w", err)
	}
	r.stop = append(r.stop, fn.Close)
	r.functions = append(r.functions, fn)
	r.Bed.Gateway.RegisterLambda(lambda, fn.RESTAuthorizer())
	return fn, nil
}

func (r *ReleaseBed) createAPI(ctx context.Context, c *apigateway.Client, lambda string) error {
	api, err := c.CreateRestApi(ctx, &apigateway.CreateRestApiInput{Name: aws.String(r.Name)})
	if err != nil {
		return err
	}
	r.APIID = *api.Id
	// A REQUEST authorizer: it receives the stage variables of the deployment serving the request
	// (canary or stable), so it counts every verification under the release that served it.
	auth, err := c.CreateAuthorizer(ctx, &apigateway.CreateAuthorizerInput{RestApiId: api.Id, Name: aws.String("rollgate"),
		Type: agtypes.AuthorizerTypeRequest, AuthorizerUri: &lambda, IdentitySource: aws.String("method.request.header.Authorization"),
		AuthorizerResultTtlInSeconds: aws.Int32(0)})
	if err != nil {
		return err
	}
	r.AuthorizerID = *auth.Id
	proxy, err := c.CreateResource(ctx, &apigateway.CreateResourceInput{RestApiId: api.Id, ParentId: api.RootResourceId, PathPart: aws.String("{proxy+}")})
	if err != nil {
		return err
	}
	for _, res := range []*string{api.RootResourceId, proxy.Id} {
		if err := putProxyMethod(ctx, c, *api.Id, *res, *auth.Id, res == proxy.Id); err != nil {
			return err
		}
	}
	_, err = c.CreateDeployment(ctx, &apigateway.CreateDeploymentInput{RestApiId: api.Id, StageName: &r.Stage, Description: aws.String("v1"),
		Variables: map[string]string{"backendUrl": r.Backends["v1"]}})
	return err
}

// putProxyMethod makes the ANY method of / or of /{proxy+} as one does on AWS: guarded by the
// authorizer, with an HTTP_PROXY integration to the release's backend (the stage variable
// backendUrl, which a release sets), the greedy path mapped into the URI and the authorizer's
// identity mapped to the caller headers.
func putProxyMethod(ctx context.Context, c *apigateway.Client, apiID, resourceID, authorizerID string, greedy bool) error {
	method := &apigateway.PutMethodInput{RestApiId: &apiID, ResourceId: &resourceID, HttpMethod: aws.String("ANY"),
		AuthorizationType: aws.String("CUSTOM"), AuthorizerId: &authorizerID}
	uri := "http://${stageVariables.backendUrl}/"
	params := map[string]string{
		"integration.request.header." + SubjectHeader: "context.authorizer.sub",
		"integration.request.header." + ClientHeader:  "context.authorizer.client_id",
		"integration.request.header." + JTIHeader:     "context.authorizer.jti",
	}
	if greedy {
		method.RequestParameters = map[string]bool{"method.request.path.proxy": true}
		uri += "{proxy}"
		params["integration.request.path.proxy"] = "method.request.path.proxy"
	}
	if _, err := c.PutMethod(ctx, method); err != nil {
		return err
	}
	_, err := c.PutIntegration(ctx, &apigateway.PutIntegrationInput{RestApiId: &apiID, ResourceId: &resourceID, HttpMethod: aws.String("ANY"),
		Type: agtypes.IntegrationTypeHttpProxy, IntegrationHttpMethod: aws.String("ANY"), Uri: &uri, RequestParameters: params})
	return err
}

func (r *ReleaseBed) createHTTPAPI(ctx context.Context, c *apigatewayv2.Client) error {
	api, err := c.CreateApi(ctx, &apigatewayv2.CreateApiInput{Name: aws.String(r.Name), ProtocolType: v2types.ProtocolTypeHttp})
	if err != nil {
		return err
	}
	r.APIID = *api.ApiId
	auth, err := c.CreateAuthorizer(ctx, &apigatewayv2.CreateAuthorizerInput{
		ApiId: api.ApiId, Name: aws.String("jwt"), AuthorizerType: v2types.AuthorizerTypeJwt,
		IdentitySource:   []string{"$request.header.Authorization"},
		JwtConfiguration: &v2types.JWTConfiguration{Issuer: &r.Issuer, Audience: []string{"orders"}},
	})
	if err != nil {
		return err
	}
	r.AuthorizerID = *auth.AuthorizerId
	target, err := httpProxyIntegration(ctx, c, *api.ApiId, map[string]string{
		"overwrite:header." + SubjectHeader: "$context.authorizer.claims.sub",
		"overwrite:header." + ClientHeader:  "$context.authorizer.claims.client_id",
		"overwrite:header." + JTIHeader:     "$context.authorizer.claims.jti",
	})
	if err != nil {
		return err
	}
	if _, err := c.CreateRoute(ctx, &apigatewayv2.CreateRouteInput{ApiId: api.ApiId, RouteKey: aws.String("$default"),
		AuthorizationType: v2types.AuthorizationTypeJwt, AuthorizerId: auth.AuthorizerId, Target: &target}); err != nil {
		return err
	}
	_, err = c.CreateStage(ctx, &apigatewayv2.CreateStageInput{ApiId: api.ApiId, StageName: &r.Stage, AutoDeploy: aws.Bool(true),
		StageVariables: map[string]string{"backendUrl": r.Backends["v1"]}})
	return err
}

// httpProxyIntegration creates an HTTP API's HTTP_PROXY integration to the release's backend (the
// stage variable backendUrl, which a release sets), with the parameter mappings given, and returns
// the route target naming it.
func httpProxyIntegration(ctx context.Context, c *apigatewayv2.Client, apiID string, params map[string]string) (string, error) {
	integ, err := c.CreateIntegration(ctx, &apigatewayv2.CreateIntegrationInput{ApiId: &apiID, IntegrationType: v2types.IntegrationTypeHttpProxy,
		IntegrationMethod: aws.String("ANY"), IntegrationUri: aws.String("http://${stageVariables.backendUrl}/"), PayloadFormatVersion: aws.String("1.0"),
		RequestParameters: params})
	if err != nil {
		return "", err
	}
	return "integrations/" + *integ.IntegrationId, nil
}

// Spec is a release of backend version to the bed's stage: key rotation, two canary steps of
// bake each, client tokens reissued.
func (r *ReleaseBed) Spec(version string, bake time.Duration) spec.DeploySpec {
	s := spec.DeploySpec{
		Service: r.Name,
		Gateway: spec.Gateway{Kind: r.Kind, APIID: r.APIID, Stage: r.Stage},
		Release: spec.Release{Description: version, Variables: map[string]string{"backendUrl": r.Backends[version]}},
		Auth: spec.Auth{
			AuthorizerID: r.AuthorizerID, Issuer: r.Issuer, Audiences: []string{"orders"}, JWKSBucket: r.Bucket,
			TransitKey: r.Key, RotateKey: true, TokenTTL: spec.Duration(time.Hour), VerifierCacheTTL: spec.Duration(time.Second),
			Clients: r.Clients, AuthorizerPatch: map[string]string{"/authorizerResultTtlInSeconds": "0"},
		},
		Canary: spec.Canary{
			Steps:         []spec.Step{{Weight: 20, Bake: spec.Duration(bake)}, {Weight: 50, Bake: spec.Duration(bake)}},
			ProbeInterval: spec.Duration(time.Second), MaxRejectionRatio: 0, Max5xxRatio: 0, MinProbes: 2, AutoRollback: true,
		},
	}
	if r.Kind == gateway.KindHTTP {
		s.Canary.Steps = []spec.Step{{Weight: 100, Bake: spec.Duration(bake)}}
		s.Auth.AuthorizerPatch = map[string]string{"/jwtConfiguration/audience": "orders,orders-v2"}
	}
	s.Normalize()
	return s
}

// Verifications counts what the authorizer (and its variants) decided, by release and outcome, from their CloudWatch
// Embedded Metric Format lines (what CloudWatch makes its Rollgate/Verifications metric of).
func (r *ReleaseBed) Verifications() map[ReleaseOutcome]int {
	counts := map[ReleaseOutcome]int{}
	var logs strings.Builder
	for _, fn := range r.functions {
		logs.WriteString(fn.Logs())
	}
	for line := range strings.Lines(logs.String()) {
		var doc struct {
			Release, Outcome string
			Verifications    int
		}
		if !strings.HasPrefix(line, "{") || json.Unmarshal([]byte(line), &doc) != nil || doc.Verifications == 0 {
			continue
		}
		counts[ReleaseOutcome{doc.Release, doc.Outcome}] += doc.Verifications
	}
	return counts
}

// ReleaseOutcome is a release label and a verification outcome (accepted, rejected).
type ReleaseOutcome struct{ Release, Outcome string }

// Close stops the worker, the authorizer and the backends.
func (r *ReleaseBed) Close() {
	r.StopWorker()
	if r.Temporal != nil {
		r.Temporal.Close()
	}
	for _, stop := range r.stop {
		stop()
	}
}

// versionBackend is a backend that answers with its version, or with status if not 200. With
// caller set it wants the caller's subject and token id, which every token has (400 naming the
// missing header otherwise), and reports each identity, client included (only a client's token has
// one; the release's probe tokens do not), to caller. It returns its host:port.
func versionBackend(version string, status int, caller func(CallerIdentity)) (string, func(), error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{ReadHeaderTimeout: time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Backend-Version", version)
		if caller != nil {
			for _, h := range []string{SubjectHeader, JTIHeader} {
				if r.Header.Get(h) == "" {
					http.Error(w, "no caller identity: missing "+h, http.StatusBadRequest)
					return
				}
			}
			caller(CallerIdentity{Subject: r.Header.Get(SubjectHeader), Client: r.Header.Get(ClientHeader), JTI: r.Header.Get(JTIHeader)})
		}
		w.WriteHeader(status)
		fmt.Fprintln(w, version)
	})}
	go func() { _ = srv.Serve(l) }()
	return l.Addr().String(), func() { _ = srv.Close() }, nil
}

// StopWorker stops the in-process worker, so that a test can run the worker program instead.
func (r *ReleaseBed) StopWorker() {
	if r.worker != nil {
		r.worker.Stop()
		r.worker = nil
	}
	for _, w := range r.gatewayWorkers {
		w.Stop()
	}
	r.gatewayWorkers = nil
}
