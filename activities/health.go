package activities

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"

	"go.temporal.io/sdk/activity"

	"github.com/rollgate/rollgate/internal/analysis"
	"github.com/rollgate/rollgate/internal/keys"
	"github.com/rollgate/rollgate/internal/registry"
	"github.com/rollgate/rollgate/internal/tokens"
)

// Health proves token health at the gateway: it presents probe tokens, minted for the purpose
// and revoked afterwards, and counts what the stage answers.
type Health struct {
	Transit  *keys.Transit
	Registry *registry.Registry
	Delivery *registry.Delivery
	HTTP     *http.Client
	// InvokeURL is a stage's base URL: https://{api}.execute-api.{region}.amazonaws.com/{stage}
	// on AWS, the emulator's data plane on the test bed.
	InvokeURL func(apiID, stage string) string
	// CanaryHeader is a response header that the release's backend sets to "true", so probes
	// can count the answers the canary served; empty counts none.
	CanaryHeader string
	// Providers measure the analysis metrics a bake judges.
	Providers analysis.Providers
	// Releases is the release history, whose latest releases of an issuer a count of its token
	// events names; nil names none.
	Releases *Releases
}

// ProbeInput says how to probe a stage.
type ProbeInput struct {
	Target   Target
	Issuer   Issuer
	Versions []int // key versions to sign probe tokens with; each probe round presents one of each
	Rounds   int
	Path     string
}

// ProbeResult counts answers. Rejected are 401/403 (the authorizer refused a token), ServerErrors
// 5xx; Canary counts answers the canary served, where the gateway says so.
type ProbeResult struct {
	Probes       int
	Accepted     int
	Rejected     int
	ServerErrors int
	Canary       int
}

func (r *ProbeResult) add(status int, canary bool) {
	r.Probes++
	switch {
	case status >= 200 && status < 300:
		r.Accepted++
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		r.Rejected++
	case status >= 500:
		r.ServerErrors++
	}
	if canary {
		r.Canary++
	}
}

// Healthy says whether every probe was accepted.
func (r ProbeResult) Healthy() bool { return r.Probes > 0 && r.Accepted == r.Probes }

// probeTokens mints one short-lived token per version and records them, so they can be revoked.
func (a *Health) probeTokens(ctx context.Context, in ProbeInput, ttl time.Duration) ([]tokens.Minted, error) {
	var out []tokens.Minted
	for _, v := range in.Versions {
		m := &tokens.Minter{Transit: a.Transit, Key: in.Issuer.Key.Name, Type: in.Issuer.Key.Type, Alg: in.Issuer.Algorithm, Issuer: in.Issuer.URL}
		minted, err := m.Mint(ctx, v, tokens.MintRequest{Subject: "rollgate-probe", Audience: in.Issuer.Audiences, TTL: ttl})
		if err != nil {
			return nil, classify(err)
		}
		out = append(out, minted...)
	}
	if err := a.Registry.RecordIssued(ctx, out); err != nil {
		return nil, err
	}
	return out, nil
}

// revoke revokes probe tokens on a context of its own, so a cancelled probe still cleans up.
func (a *Health) revoke(ctx context.Context, minted []tokens.Minted) {
	jtis := make([]string, len(minted))
	for i, m := range minted {
		jtis[i] = m.JTI
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if _, err := a.Registry.RevokeJTIs(rctx, jtis, "probe finished", 0, nil); err != nil {
		activity.GetLogger(ctx).Warn("probe tokens not revoked", "error", err)
	}
}

// call presents token at the stage and counts the answer in rollgate_probes_total{result}.
func (a *Health) call(ctx context.Context, in ProbeInput, token string) (int, bool, error) {
	status, canary, err := a.present(ctx, in, token)
	result := "transport_error"
	switch {
	case err != nil:
	case status >= 200 && status < 300:
		result = "accepted"
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		result = "rejected"
	case status >= 500:
		result = "server_error"
	default:
		result = "other"
	}
	if activity.IsActivity(ctx) { // the health checks also run outside activities (tests, the bed's tools)
		activity.GetMetricsHandler(ctx).WithTags(map[string]string{"result": result}).Counter(MetricProbes).Inc(1)
	}
	return status, canary, err
}

// MetricProbes counts probe answers by result: accepted, rejected, server_error, other,
// transport_error.
const MetricProbes = "rollgate_probes"

func (a *Health) present(ctx context.Context, in ProbeInput, token string) (int, bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.InvokeURL(in.Target.APIID, in.Target.Stage)+in.Path, nil)
	if err != nil {
		return 0, false, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := a.HTTP.Do(req)
	if err != nil {
		return 0, false, fmt.Errorf("probe %s/%s: %w", in.Target.APIID, in.Target.Stage, err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	resp.Body.Close()
	return resp.StatusCode, a.CanaryHeader != "" && resp.Header.Get(a.CanaryHeader) == "true", nil
}

// Probe presents a token of each version Rounds times and counts the answers.
func (a *Health) Probe(ctx context.Context, in ProbeInput) (ProbeResult, error) {
	toks, err := a.probeTokens(ctx, in, 5*time.Minute)
	if err != nil {
		return ProbeResult{}, err
	}
	defer a.revoke(ctx, toks)
	var res ProbeResult
	for range max(in.Rounds, 1) {
		for _, t := range toks {
			status, canary, err := a.call(ctx, in, t.Token)
			if err != nil {
				return res, err
			}
			res.add(status, canary)
		}
	}
	return res, nil
}

// BakeInput is a bake: probes every Interval for Duration, judged against the thresholds once
// at least MinProbes were made, and the analysis metrics measured every metric's interval.
type BakeInput struct {
	Probe             ProbeInput
	Duration          time.Duration
	Interval          time.Duration
	MaxRejectionRatio float64
	Max5xxRatio       float64
	MinProbes         int
	Analysis          *AnalysisInput `json:",omitempty"`
}

// BakeResult is what a bake saw; Breach, when set, says which threshold was crossed. Analysis
// is each metric's judgement: concluded when the bake ran its length, as it stood when a verdict
// ended the bake early or an operator cancelled it.
type BakeResult struct {
	ProbeResult
	Breach   string
	Analysis []analysis.Judgement `json:",omitempty"`
}

// BakeProgress is what a running bake has seen so far, in its heartbeat details: the workflow
// learns a bake's counters only when it ends, so an operator's view reads them from the
// deployment's description (pending activity BakeActivity). A retried bake resumes from it.
type BakeProgress struct {
	Result   ProbeResult
	Elapsed  time.Duration
	Analysis []analysis.Judgement `json:",omitempty"`
}

// BakeActivity is the activity type name the worker registers Health.Bake under.
const BakeActivity = "Bake"

// Bake probes and measures for the bake's duration inside one heartbeating activity, so hours of
// probes and measurements cost the workflow a handful of history events. It returns early on a
// probe breach or a metric's acting verdict, and resumes from its last heartbeat after a worker
// crash. Cancelling it (an operator's promote, skip or rollback) returns what it saw so far.
func (a *Health) Bake(ctx context.Context, in BakeInput) (BakeResult, error) {
	var p BakeProgress
	if activity.HasHeartbeatDetails(ctx) {
		_ = activity.GetHeartbeatDetails(ctx, &p)
	}
	toks, err := a.probeTokens(ctx, in.Probe, in.Duration-p.Elapsed+5*time.Minute)
	if err != nil {
		return BakeResult{}, err
	}
	defer a.revoke(ctx, toks)
	start := time.Now().Add(-p.Elapsed)
	judge := newJudging(in.Analysis, in.Probe.Target, a.Providers, p.Analysis, p.Elapsed)
	beat := startKeepAlive(ctx, in.Analysis != nil)
	defer beat.stop()
	res := BakeResult{ProbeResult: p.Result}
	nextProbe := p.Elapsed
	for {
		elapsed := time.Since(start)
		if elapsed >= in.Duration {
			judge.measureDue(ctx, in.Duration) // a measurement due as the bake ends still counts
			break
		}
		if elapsed >= nextProbe {
			if a.probeRound(ctx, in.Probe, toks, &res.ProbeResult); ctx.Err() != nil {
				return cancelled(res, judge), nil
			}
			nextProbe = max(nextProbe+in.Interval, elapsed)
		}
		judge.measureDue(ctx, elapsed)
		beat.record(BakeProgress{Result: res.ProbeResult, Elapsed: time.Since(start), Analysis: slices.Clone(judge.judgements)})
		if res.Breach = breach(res.ProbeResult, in); res.Breach != "" || judge.stops() {
			res.Analysis = judge.judgements
			return res, nil
		}
		wake := min(nextProbe, in.Duration)
		if due, ok := judge.nextDue(); ok {
			wake = min(wake, due)
		}
		select {
		case <-ctx.Done():
			return cancelled(res, judge), nil
		case <-time.After(wake - time.Since(start)):
		}
	}
	if ctx.Err() != nil {
		return cancelled(res, judge), nil
	}
	res.Analysis = judge.concluded()
	return res, nil
}

// keepAlive heartbeats a bake's last progress every second from a goroutine of its own, so that
// a slow measurement (a provider may take its whole timeout, seconds) never lets the heartbeat
// timeout expire; the SDK throttles what it sends to the server.
type keepAlive struct {
	ctx  context.Context
	mu   sync.Mutex
	last *BakeProgress
	quit chan struct{}
	done chan struct{}
}

// startKeepAlive starts heartbeating when on; off, record heartbeats only when called.
func startKeepAlive(ctx context.Context, on bool) *keepAlive {
	k := &keepAlive{ctx: ctx}
	if !on {
		return k
	}
	k.quit, k.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(k.done)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-k.quit:
				return
			case <-tick.C:
			}
			k.mu.Lock()
			last := k.last
			k.mu.Unlock()
			if last != nil {
				activity.RecordHeartbeat(ctx, *last)
			}
		}
	}()
	return k
}

// record heartbeats p now and keeps it for the next beats.
func (k *keepAlive) record(p BakeProgress) {
	k.mu.Lock()
	k.last = &p
	k.mu.Unlock()
	activity.RecordHeartbeat(k.ctx, p)
}

func (k *keepAlive) stop() {
	if k.quit != nil {
		close(k.quit)
		<-k.done
	}
}

// cancelled is what a cancelled bake returns: its counts and its judgements as they stand.
func cancelled(res BakeResult, j *judging) BakeResult {
	res.Analysis = j.judgements
	return res
}

// probeRound presents each probe token once; an unreachable stage counts against it.
func (a *Health) probeRound(ctx context.Context, in ProbeInput, toks []tokens.Minted, res *ProbeResult) {
	for _, t := range toks {
		status, canary, err := a.call(ctx, in, t.Token)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			res.ServerErrors++
			res.Probes++
			continue
		}
		res.add(status, canary)
	}
}

func breach(r ProbeResult, in BakeInput) string {
	if r.Probes < in.MinProbes || r.Probes == 0 {
		return ""
	}
	if ratio := float64(r.Rejected) / float64(r.Probes); ratio > in.MaxRejectionRatio {
		return fmt.Sprintf("rejection ratio %.3f over %.3f (%d of %d probes)", ratio, in.MaxRejectionRatio, r.Rejected, r.Probes)
	}
	if ratio := float64(r.ServerErrors) / float64(r.Probes); ratio > in.Max5xxRatio {
		return fmt.Sprintf("5xx ratio %.3f over %.3f (%d of %d probes)", ratio, in.Max5xxRatio, r.ServerErrors, r.Probes)
	}
	return ""
}

// ClientsInput names clients whose delivered tokens are checked.
type ClientsInput struct {
	Target  Target
	Clients []string
	Path    string
}

// ProbeClients presents each client's delivered token (read from Vault KV inside the activity)
// at the stage and counts the answers.
func (a *Health) ProbeClients(ctx context.Context, in ClientsInput) (ProbeResult, error) {
	var res ProbeResult
	for _, c := range in.Clients {
		tok, err := a.Delivery.Token(ctx, c)
		if err != nil {
			return res, err
		}
		status, canary, err := a.call(ctx, ProbeInput{Target: in.Target, Path: in.Path}, tok)
		if err != nil {
			return res, err
		}
		res.add(status, canary)
	}
	return res, nil
}

// ProbeRevoked mints a token of the version, revokes it, and presents it until the gateway
// rejects it or the wait runs out (verifiers refresh their deny lists periodically). It returns
// whether the gateway rejected it.
func (a *Health) ProbeRevoked(ctx context.Context, in ProbeInput) (bool, error) {
	toks, err := a.probeTokens(ctx, in, 5*time.Minute)
	if err != nil {
		return false, err
	}
	a.revoke(ctx, toks)
	raw := make([]string, len(toks))
	for k, t := range toks {
		raw[k] = t.Token
	}
	rejected, err := a.untilRejected(ctx, in.Target, raw, 30*time.Second)
	return rejected == len(raw), err
}

// untilRejected presents the tokens until the stage rejects all of them or the wait runs out
// (verifiers refresh their deny lists and JWKS periodically), and returns how many it rejected.
func (a *Health) untilRejected(ctx context.Context, target Target, toks []string, wait time.Duration) (int, error) {
	deadline := time.Now().Add(wait)
	for {
		rejected := 0
		for _, tok := range toks {
			status, _, err := a.call(ctx, ProbeInput{Target: target}, tok)
			if err != nil {
				return 0, err
			}
			if status == http.StatusUnauthorized || status == http.StatusForbidden {
				rejected++
			}
		}
		if rejected == len(toks) || time.Now().After(deadline) {
			return rejected, nil
		}
		select {
		case <-ctx.Done():
			return rejected, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// SampleInput asks for a sample token, kept in Vault KV under a name so that a later probe can
// present it without the token passing through the workflow.
type SampleInput struct {
	Issuer  Issuer
	Version int
	Subject string
	Name    string
}

// StashSample mints a sample token, records it, keeps it in Vault KV and returns its jti.
func (a *Health) StashSample(ctx context.Context, in SampleInput) (string, error) {
	m := &tokens.Minter{Transit: a.Transit, Key: in.Issuer.Key.Name, Type: in.Issuer.Key.Type, Alg: in.Issuer.Algorithm, Issuer: in.Issuer.URL}
	minted, err := m.Mint(ctx, in.Version, tokens.MintRequest{Subject: in.Subject, ClientID: in.Name, Audience: in.Issuer.Audiences, TTL: 15 * time.Minute})
	if err != nil {
		return "", classify(err)
	}
	if err := a.Registry.RecordIssued(ctx, minted); err != nil {
		return "", err
	}
	if _, err := a.Delivery.Deliver(ctx, minted[0]); err != nil {
		return "", err
	}
	return minted[0].JTI, nil
}

// StashedInput presents stashed samples at a stage.
type StashedInput struct {
	Target Target
	Names  []string
	Wait   time.Duration // how long to wait for verifiers to see a revocation
}

// ProbeRejected presents each stashed sample until the stage rejects all of them or the wait
// runs out, and returns how many were rejected.
func (a *Health) ProbeRejected(ctx context.Context, in StashedInput) (int, error) {
	toks := make([]string, len(in.Names))
	for k, name := range in.Names {
		tok, err := a.Delivery.Token(ctx, name)
		if err != nil {
			return 0, err
		}
		toks[k] = tok
	}
	return a.untilRejected(ctx, in.Target, toks, in.Wait)
}
