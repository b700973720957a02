// Package gatewayemu is the test bed's AWS API Gateway emulator. Its control plane speaks the REST
// JSON wire format of the apigateway (REST APIs) and apigatewayv2 (HTTP APIs) services, with AWS's
// paths, status codes, field names and x-amzn-ErrorType error shapes, so the unmodified
// aws-sdk-go-v2 clients drive it through BaseEndpoint. Its data plane serves each stage at
// InvokeURL, splits traffic between the stable and canary deployments, runs the configured
// authorizer and calls the integration of the method (REST) or route (HTTP API).
package gatewayemu

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/rollgate/rollgate/testsuite/cloudwatchemu"
)

// DeploymentHeader names the deployment that served a data-plane answer; CanaryHeader says
// whether it was the canary. Tests count the traffic split with them.
const (
	DeploymentHeader = "X-Gateway-Deployment-Id"
	CanaryHeader     = "X-Gateway-Canary"
)

// Options tune the emulator. The zero value is usable.
type Options struct {
	// Now is the emulator's clock, for authorizer cache expiry. Default time.Now.
	Now func() time.Time
	// JWKSRefreshInterval is how often a JWT authorizer refreshes an issuer's JWKS. Default 1h.
	JWKSRefreshInterval time.Duration
	// UnknownKIDRefresh is the least time between two JWKS refetches caused by an unknown kid.
	// Default 1s.
	UnknownKIDRefresh time.Duration
	// Rand draws the canary split; default a random source. Set it for reproducible splits.
	Rand *mrand.Rand
	// HTTPClient fetches JWKS documents and calls backends. Default: a client with a 10s timeout.
	HTTPClient *http.Client
	// Throttle, when set, enforces API Gateway's account-wide control-plane quotas: beyond them a
	// call is answered 429 TooManyRequestsException, as AWS answers it. Off by default, so that
	// tests that set up many APIs are not paced.
	Throttle *Throttle
}

// Throttle is an account's control-plane quotas: a token bucket shared by every control-plane
// operation, and stricter buckets for the operations AWS limits on their own.
type Throttle struct {
	// Rate and Burst: AWS documents 10 requests per second with a burst of 40 for the
	// operations it lists no quota of their own for.
	Rate  float64
	Burst int
	// PerOperation are operations with quotas of their own, in requests per second (AWS:
	// CreateDeployment 1 every 5 s, CreateRestApi 1 every 3 s, GetResources 5 every 2 s, …);
	// their calls count against the shared bucket too.
	PerOperation map[string]float64
}

// AWSThrottle is the control-plane quotas AWS documents for an account in a Region.
func AWSThrottle() *Throttle {
	return &Throttle{Rate: 10, Burst: 40, PerOperation: map[string]float64{
		"CreateDeployment": 0.2, "CreateRestApi": 1.0 / 3, "GetResources": 2.5, "CreateResource": 5, "CreateApiKey": 5,
	}}
}

// Emulator is one in-memory AWS account and region's API Gateway. State lives for the life of the
// process.
type Emulator struct {
	opts Options

	mu         sync.Mutex
	restAPIs   map[string]*restAPI
	httpAPIs   map[string]*httpAPI
	apiKeys    map[string]*apiKey
	usagePlans map[string]*usagePlan
	lambdas    map[string]LambdaAuthorizer
	// httpLambdas back HTTP API REQUEST authorizers, whose events and answers differ from REST's.
	httpLambdas map[string]HTTPLambdaAuthorizer
	faults      map[string]*Fault
	calls       map[string]int
	throttle    *rate.Limiter            // the account's shared control-plane bucket (Options.Throttle)
	opThrottle  map[string]*rate.Limiter // operations with quotas of their own
	throttled   map[string]int           // calls refused by them, per operation
	jwks        *jwksCache
	rand        *mrand.Rand
	metrics     *dataPlaneMetrics
	cloudwatch  atomic.Pointer[cloudwatchemu.Store] // where the data plane publishes, if anywhere

	control, data *http.Server
	// ControlURL is the endpoint for the SDK clients (BaseEndpoint); DataURL serves invocations.
	ControlURL, DataURL string
	ctx                 context.Context
	cancel              context.CancelFunc
	wg                  sync.WaitGroup
}

// Start listens on two free loopback ports, one for the control plane and one for the data plane.
func Start(opts Options) (*Emulator, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.JWKSRefreshInterval <= 0 {
		opts.JWKSRefreshInterval = time.Hour
	}
	if opts.UnknownKIDRefresh <= 0 {
		opts.UnknownKIDRefresh = time.Second
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	ctx, cancel := context.WithCancel(context.Background())
	e := &Emulator{
		opts:        opts,
		restAPIs:    map[string]*restAPI{},
		httpAPIs:    map[string]*httpAPI{},
		apiKeys:     map[string]*apiKey{},
		usagePlans:  map[string]*usagePlan{},
		lambdas:     map[string]LambdaAuthorizer{},
		httpLambdas: map[string]HTTPLambdaAuthorizer{},
		faults:      map[string]*Fault{},
		calls:       map[string]int{},
		rand:        opts.Rand,
		metrics:     newDataPlaneMetrics(),
		ctx:         ctx,
		cancel:      cancel,
	}
	if e.rand == nil {
		e.rand = mrand.New(mrand.NewPCG(mrand.Uint64(), mrand.Uint64()))
	}
	e.SetThrottle(opts.Throttle)
	e.jwks = newJWKSCache(ctx, opts)

	var err error
	if e.control, e.ControlURL, err = e.serve(e.controlHandler()); err != nil {
		cancel()
		return nil, err
	}
	if e.data, e.DataURL, err = e.serve(http.HandlerFunc(e.invoke)); err != nil {
		e.Close()
		return nil, err
	}
	return e, nil
}

func (e *Emulator) serve(h http.Handler) (*http.Server, string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		_ = srv.Serve(l)
	}()
	return srv, "http://" + l.Addr().String(), nil
}

// Close stops both listeners and the JWKS refreshers.
func (e *Emulator) Close() error {
	e.cancel()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var errs []error
	for _, s := range []*http.Server{e.control, e.data} {
		if s != nil {
			errs = append(errs, s.Shutdown(ctx))
		}
	}
	e.wg.Wait()
	return errors.Join(errs...)
}

// InvokeURL is a stage's base URL on the data plane, the emulator's form of
// https://{apiId}.execute-api.{region}.amazonaws.com/{stage}.
func (e *Emulator) InvokeURL(apiID, stage string) string {
	return e.DataURL + "/" + apiID + "/" + stage
}

// Fault makes an operation fail or slow down. Operation names are the SDK's (GetStage,
// UpdateStage, …); "Invoke" is the data plane.
type Fault struct {
	// Status is the HTTP status to answer: 429 (TooManyRequestsException) or a 5xx. Zero adds
	// only Latency.
	Status int
	// Count is how many calls fail; zero means every call chosen by Ratio, until cleared.
	Count int
	// Ratio is the share of calls that fail when Count is zero (0 < Ratio ≤ 1; zero means 1).
	Ratio float64
	// Latency is added before answering, failing or not.
	Latency time.Duration
}

// InjectFault sets the fault for an operation, replacing any earlier one.
func (e *Emulator) InjectFault(operation string, f Fault) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.faults[operation] = &f
}

// ClearFaults removes every injected fault.
func (e *Emulator) ClearFaults() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.faults = map[string]*Fault{}
}

// Calls counts the requests an operation received, failed ones included.
func (e *Emulator) Calls(operation string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.calls[operation]
}

// ControlCalls counts every control-plane request received so far (the data plane's excluded),
// throttled ones included.
func (e *Emulator) ControlCalls() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for op, c := range e.calls {
		if op != "Invoke" {
			n += c
		}
	}
	return n
}

// SetThrottle turns the control-plane quotas on (t) or off (nil), with full buckets.
func (e *Emulator) SetThrottle(t *Throttle) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.throttle, e.opThrottle = nil, nil
	if t == nil {
		return
	}
	e.throttle = rate.NewLimiter(rate.Limit(t.Rate), t.Burst)
	e.opThrottle = map[string]*rate.Limiter{}
	for op, r := range t.PerOperation {
		e.opThrottle[op] = rate.NewLimiter(rate.Limit(r), 1)
	}
}

// Throttled counts the calls of an operation refused with 429 by the control-plane quotas.
func (e *Emulator) Throttled(operation string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.throttled[operation]
}

// fault counts a call and decides whether it fails now; it returns the latency to add and the
// status to fail with (0: do not fail).
func (e *Emulator) fault(operation string) (time.Duration, int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.calls[operation]++
	if e.throttle != nil && operation != "Invoke" {
		// A refused call takes nothing from either bucket: the shared one is looked at first, and
		// under e.mu nothing else can take its token before this call does.
		if op := e.opThrottle[operation]; e.throttle.Tokens() < 1 || (op != nil && !op.Allow()) || !e.throttle.Allow() {
			if e.throttled == nil {
				e.throttled = map[string]int{}
			}
			e.throttled[operation]++
			return 0, http.StatusTooManyRequests
		}
	}
	f := e.faults[operation]
	if f == nil {
		return 0, 0
	}
	status := 0
	switch {
	case f.Count > 0:
		f.Count--
		status = f.Status
		if f.Count == 0 && f.Latency == 0 {
			delete(e.faults, operation)
		}
	case f.Ratio == 0 || e.rand.Float64() < f.Ratio:
		status = f.Status
	}
	return f.Latency, status
}

// awsError is an error in AWS's REST JSON shape.
type awsError struct {
	status  int
	code    string // x-amzn-ErrorType
	message string
}

func (e *awsError) Error() string { return e.code + ": " + e.message }

func badRequest(format string, a ...any) error {
	return &awsError{http.StatusBadRequest, "BadRequestException", fmt.Sprintf(format, a...)}
}

func notFound(format string, a ...any) error {
	return &awsError{http.StatusNotFound, "NotFoundException", fmt.Sprintf(format, a...)}
}

// limitExceeded is AWS's answer when a quota is reached; like AWS it uses status 429.
func limitExceeded(format string, a ...any) error {
	return &awsError{http.StatusTooManyRequests, "LimitExceededException", fmt.Sprintf(format, a...)}
}

// AWS's default quotas, enforced so that state stays as bounded as it is on AWS.
const (
	maxAuthorizersPerAPI = 10
	maxStagesPerAPI      = 10
	maxResourcesPerAPI   = 300
	maxAPIKeys           = 10000
)

func conflict(format string, a ...any) error {
	return &awsError{http.StatusConflict, "ConflictException", fmt.Sprintf(format, a...)}
}

func writeError(w http.ResponseWriter, err error) {
	var ae *awsError
	if !errors.As(err, &ae) {
		ae = &awsError{http.StatusInternalServerError, "InternalFailure", "internal failure"}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Amzn-ErrorType", ae.code)
	if ae.status == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", "1")
	}
	w.WriteHeader(ae.status)
	_ = json.NewEncoder(w).Encode(map[string]string{"message": ae.message})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if v != nil {
		_ = json.NewEncoder(w).Encode(v)
	}
}

// decode reads a JSON request body into v, refusing what AWS would refuse as unparsable.
func decode(r *http.Request, v any) error {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return badRequest("Could not read request body")
	}
	if len(body) == 0 {
		body = []byte("{}")
	}
	if err := json.Unmarshal(body, v); err != nil {
		return badRequest("Could not parse request body into json: %v", err)
	}
	return nil
}

// operation wraps a handler with fault injection and AWS error writing.
func (e *Emulator) operation(name string, h func(*http.Request) (int, any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		latency, status := e.fault(name)
		if latency > 0 {
			select {
			case <-time.After(latency):
			case <-r.Context().Done():
				return
			}
		}
		if status != 0 {
			writeError(w, injected(status))
			return
		}
		code, v, err := h(r)
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, code, v)
	}
}

func injected(status int) error {
	switch {
	case status == http.StatusTooManyRequests:
		return &awsError{status, "TooManyRequestsException", "Too Many Requests"}
	case status == http.StatusServiceUnavailable:
		return &awsError{status, "ServiceUnavailableException", "Service Unavailable"}
	default:
		return &awsError{status, "InternalFailure", "Internal server error (injected " + strconv.Itoa(status) + ")"}
	}
}

const idAlphabet = "abcdefghijklmnopqrstuvwxyz0123456789"

// newID makes an id like AWS's: lower-case letters and digits, n long.
func newID(n int) string {
	b := make([]byte, n)
	for i := range b {
		k, err := rand.Int(rand.Reader, big.NewInt(int64(len(idAlphabet))))
		if err != nil {
			panic(err)
		}
		b[i] = idAlphabet[k.Int64()]
	}
	return string(b)
}

// epoch marshals a time as the fractional epoch seconds AWS's REST JSON protocol uses.
type epoch time.Time

func (t epoch) MarshalJSON() ([]byte, error) {
	return []byte(strconv.FormatFloat(float64(time.Time(t).UnixMilli())/1000, 'f', 3, 64)), nil
}

func (e *Emulator) now() epoch { return epoch(e.opts.Now()) }

func copyMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
