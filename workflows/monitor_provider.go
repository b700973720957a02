package workflows

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/workflow"

	"github.com/rollgate/rollgate/activities"
	"github.com/rollgate/rollgate/internal/analysis"
	"github.com/rollgate/rollgate/internal/spec"
	"github.com/rollgate/rollgate/internal/tokens"
)

// The signals the monitor reads from a metric provider: what the issuer's authorizers at the
// gateways counted (rejections by reason and release, stale deny-list decisions). One provider
// read per judgement serves them all.

// Provider-based signals.
const (
	// SignalUnknownKID: tokens whose kid is in no published key set (forgery, or a key set that
	// did not reach a verifier).
	SignalUnknownKID = string(tokens.UnknownKID)
	// SignalBadSignature: tokens of a known kid whose signature does not verify.
	SignalBadSignature = string(tokens.BadSignature)
	// SignalVerifierStale: decisions taken while an authorizer's deny list was too old to trust,
	// and tokens refused because an authorizer had no key set (its JWKS fetch failing).
	SignalVerifierStale = "verifier_stale"
)

// ActionRollback rolls back the latest release of the stage whose traffic carried the
// rejections, when it was promoted shortly before the incident (a release-linked signal).
const ActionRollback = "rollback"

// Bounds of the provider-based policies.
const (
	DefaultRejectionThreshold = 10
	DefaultMaxRatio           = 3.0
	DefaultBaselineIntervals  = 60
	MaxBaselineIntervals      = 1440
	// MinBaselineIntervals is how many quiet intervals a baseline needs before it is judged:
	// until then the threshold alone decides.
	MinBaselineIntervals = 5
	DefaultReleaseWindow = time.Hour
	MaxReleaseWindow     = 24 * time.Hour
	// MaxIssuanceClients is how many clients the issuance signal learns a baseline for; the
	// others are judged by the threshold alone.
	MaxIssuanceClients = 20
	// maxBaselines bounds the baselines a monitor carries: the two rejection signals', and the
	// issuance signal's clients.
	maxBaselines = 2 + MaxIssuanceClients
	// maxEvidenceReleases is how many releases an incident names, those with most rejections.
	maxEvidenceReleases = 5
	// issuerWide is the key of an incident about the issuer's traffic as a whole.
	issuerWide = "all releases"
)

// RejectionPolicy judges one rejection reason over the issuer's traffic: an incident opens when
// an interval's rejections reach Threshold and, once a baseline is learned, exceed MaxRatio times
// it. The baseline is the median of the last Baseline quiet intervals (those that opened nothing),
// so a steady background of forged tokens is learned and a burst above it is not.
type RejectionPolicy struct {
	Off bool `json:",omitempty"`
	// Threshold: rejections in one interval that may open an incident; 0 is
	// DefaultRejectionThreshold.
	Threshold int `json:",omitempty"`
	// MaxRatio: how far above its baseline an interval must be; 0 is DefaultMaxRatio.
	MaxRatio float64 `json:",omitempty"`
	// Baseline: how many past quiet intervals the baseline is learned from; 0 is
	// DefaultBaselineIntervals.
	Baseline int `json:",omitempty"`
	// Actions: notify and/or rollback; none is notify.
	Actions []string `json:",omitempty"`
	// ReleaseWindow: rollback acts on a stage's latest release whose traffic carried the
	// rejections and that was promoted at most this long before the incident opened; 0 is
	// DefaultReleaseWindow.
	ReleaseWindow time.Duration `json:",omitempty"`
}

// StalePolicy judges decisions taken on a stale deny list: any is wrong, there is no baseline.
type StalePolicy struct {
	Off bool `json:",omitempty"`
	// Threshold: stale decisions in one interval that open an incident; 0 is 1.
	Threshold int `json:",omitempty"`
	// Actions: notify; none is notify.
	Actions []string `json:",omitempty"`
}

func (p RejectionPolicy) threshold() float64 {
	return float64(cmp.Or(p.Threshold, DefaultRejectionThreshold))
}
func (p RejectionPolicy) maxRatio() float64 { return cmp.Or(p.MaxRatio, DefaultMaxRatio) }
func (p RejectionPolicy) baseline() int     { return cmp.Or(p.Baseline, DefaultBaselineIntervals) }
func (p RejectionPolicy) releaseWindow() time.Duration {
	return cmp.Or(p.ReleaseWindow, DefaultReleaseWindow)
}

// providerSignalsOn says whether a provider-based signal is on: a provider is named and the
// signal is not turned off.
func (in MonitorSpec) providerSignalsOn() (unknownKID, badSignature, stale bool) {
	if in.Provider == "" {
		return false, false, false
	}
	return !in.UnknownKID.Off, !in.BadSignature.Off, !in.VerifierStale.Off
}

// checkProviderPolicies validates the provider and the policies of the signals it feeds.
func (in MonitorSpec) checkProviderPolicies(p *spec.Problems) {
	if in.Provider != "" && in.Provider != spec.ProviderPrometheus && in.Provider != spec.ProviderCloudWatch {
		p.Add("Provider", "%q: allowed %s, %s (or empty: no provider-based signal)", in.Provider, spec.ProviderPrometheus, spec.ProviderCloudWatch)
	}
	for _, r := range []struct {
		field  string
		policy RejectionPolicy
	}{{"UnknownKID", in.UnknownKID}, {"BadSignature", in.BadSignature}} {
		pol := r.policy
		if pol.Threshold < 0 || pol.Threshold > 1_000_000_000 {
			p.Add(r.field+".Threshold", "%d: allowed 0 (%d) to 1000000000", pol.Threshold, DefaultRejectionThreshold)
		}
		if pol.MaxRatio != 0 && (pol.MaxRatio < 1 || pol.MaxRatio > 1000) {
			p.Add(r.field+".MaxRatio", "%g: allowed 0 (%g) or 1 to 1000", pol.MaxRatio, DefaultMaxRatio)
		}
		if pol.Baseline < 0 || pol.Baseline > MaxBaselineIntervals {
			p.Add(r.field+".Baseline", "%d: allowed 0 (%d intervals) to %d", pol.Baseline, DefaultBaselineIntervals, MaxBaselineIntervals)
		}
		if pol.ReleaseWindow != 0 {
			p.CheckDuration(r.field+".ReleaseWindow", pol.ReleaseWindow, time.Minute, MaxReleaseWindow)
		}
		checkActions(p, r.field+".Actions", pol.Actions, ActionRollback)
	}
	if t := in.VerifierStale.Threshold; t < 0 || t > 1_000_000_000 {
		p.Add("VerifierStale.Threshold", "%d: allowed 0 (1) to 1000000000", t)
	}
	checkActions(p, "VerifierStale.Actions", in.VerifierStale.Actions)
}

// issuerEvents reads the issuer's event counts once per judgement for every signal that needs
// them: the judgement's time is the key.
type issuerEvents struct {
	provider string
	issuer   string
	at       time.Time
	counts   analysis.EventCounts
	err      error
}

func (e *issuerEvents) read(ctx workflow.Context, since, now time.Time) (analysis.EventCounts, error) {
	if !e.at.Equal(now) {
		e.at, e.counts = now, analysis.EventCounts{}
		in := activities.IssuerEventsInput{Provider: e.provider, IssuerURL: e.issuer, Since: since, Now: now}
		e.err = workflow.ExecuteActivity(short(ctx), health.IssuerEvents, in).Get(ctx, &e.counts)
	}
	return e.counts, e.err
}

// rejections judges one rejection reason over the issuer's traffic against its baseline.
type rejections struct {
	reason string
	events *issuerEvents
	policy RejectionPolicy
	issuer activities.Issuer
	actor  string
}

func (s rejections) name() string       { return s.reason }
func (rejections) aboutIssuer()         {}
func (s rejections) threshold() float64 { return s.policy.threshold() }
func (s rejections) actions() []string  { return policyActions(s.policy.Actions) }

// observe finds the interval's rejections for the reason, issuer-wide, naming the releases
// whose traffic carried most of them. A quiet interval is a finding too (value 0): the baseline
// learns from it.
func (s rejections) observe(ctx workflow.Context, since, now time.Time) (observation, error) {
	c, err := s.events.read(ctx, since, now)
	if err != nil {
		return observation{}, err
	}
	ev := Evidence{Rejections: c.Rejections(s.reason), Verifications: c.Verifications}
	for _, r := range c.Rejected {
		if r.Reason == s.reason && len(ev.Releases) < maxEvidenceReleases {
			ev.Releases = append(ev.Releases, ReleaseRejections{Release: r.Release, Count: r.Count})
		}
	}
	return observation{truncated: c.Truncated, findings: []finding{{key: issuerWide, value: ev.Rejections, evidence: ev}}}, nil
}

func (s rejections) breaches(value float64, history []float64) bool {
	return baselineBreach(value, s.threshold(), s.policy.maxRatio(), history)
}

// baselineBreach is the baseline rule: at least the threshold and, once MinBaselineIntervals
// quiet intervals are known, above maxRatio times their median.
func baselineBreach(value, threshold, maxRatio float64, history []float64) bool {
	if value < threshold {
		return false
	}
	if len(history) < MinBaselineIntervals {
		return true
	}
	return value > maxRatio*median(history)
}

func (s rejections) baselineWindow() int { return s.policy.baseline() }
func (s rejections) baselineKeys() int   { return 1 }

// act rolls back the stage's latest release whose traffic carried the rejections, when it was
// promoted within the release window before the incident opened: the Rollback workflow, as an
// operator's `starter rollback` runs it, verified. The release is named by its id, so that a
// repeated action never rolls back the release before it.
func (s rejections) act(ctx workflow.Context, action string, inc *Incident) (string, error) {
	if action != ActionRollback {
		return "", fmt.Errorf("%s cannot %s", s.name(), action)
	}
	var latest activities.LatestReleases
	if err := workflow.ExecuteActivity(short(ctx), rel.LatestOfIssuer, activities.IssuerStagesInput{IssuerURL: s.issuer.URL}).Get(ctx, &latest); err != nil {
		return "", err
	}
	link := releaseLink{window: s.policy.releaseWindow(), shareable: true, could: func(activities.LatestRelease) bool { return true }}
	if workflow.GetVersion(ctx, changeReleaseLink, workflow.DefaultVersion, 1) == 1 {
		link.shareable, link.could = false, s.couldCause
	}
	r, shared, ok := link.find(inc, latest.Releases)
	if len(shared) > 0 {
		return fmt.Sprintf("nothing rolled back: release label %s is the latest release of %s, so which stage's traffic carried the rejections is unknown",
			r.Label, strings.Join(shared, ", ")), nil
	}
	if !ok {
		return fmt.Sprintf("nothing rolled back: no stage's latest release promoted in the %s before the incident carried these rejections", s.policy.releaseWindow()), nil
	}
	in := RollbackSpec{APIID: r.Target.APIID, Stage: r.Target.Stage, Release: r.ID, Actor: clipText("token monitor for "+s.actor, spec.MaxActor),
		Reason: clipText(fmt.Sprintf("token monitor: %g %s rejections in its traffic (release %s) since %s", inc.Evidence.Rejections, s.reason, r.Label, inc.OpenedAt.UTC().Format(time.RFC3339)), spec.MaxText)}
	cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID:            RollbackWorkflowID(r.Target.APIID, r.Target.Stage),
		ParentClosePolicy:     enumspb.PARENT_CLOSE_POLICY_ABANDON, // a stopped monitor never abandons a rollback half done
		WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
	})
	var rep RollbackReport
	if err := workflow.ExecuteChildWorkflow(cctx, Rollback, in).Get(ctx, &rep); err != nil {
		return "", fmt.Errorf("rollback of release %s of %s/%s: %w", r.ID, r.Target.APIID, r.Target.Stage, err)
	}
	return fmt.Sprintf("rolled back release %s (%s) of %s/%s, promoted %s: verified in %s",
		r.ID, r.Label, r.Target.APIID, r.Target.Stage, r.PromotedAt.UTC().Format(time.RFC3339), rep.Latency.Round(time.Millisecond)), nil
}

// changeReleaseLink: a release label that is the latest release of several stages links the
// rejections to none of them, and unknown kids link only to a release that changed the key set
// or its source; runs started before rolled back the first stage in order whatever the release.
const changeReleaseLink = "monitor-release-link"

// couldCause says whether a release could have caused the reason's rejections. Unknown kids
// follow a release only when it rotated the signing key or patched the authorizer (where its key
// set comes from); after any other they are forgeries, and rolling back would hand whoever
// sends them a way to undo any release.
func (s rejections) couldCause(r activities.LatestRelease) bool {
	return s.reason != SignalUnknownKID || r.Rotated || r.AuthorizerPatched
}

// releaseLink is how rejections are linked to a release: promoted within window before the
// incident opened, a release that could have caused them, and, unless shareable, under a label
// no other stage's latest release has (the authorizer counts by label, not stage).
type releaseLink struct {
	window    time.Duration
	shareable bool
	could     func(activities.LatestRelease) bool
}

// find is the latest release, among those whose traffic carried the incident's rejections (most
// first), that the link allows. A label shared by several stages links nothing: find returns
// the stages (api/stage) with the release that bore it.
func (l releaseLink) find(inc *Incident, latest []activities.LatestRelease) (activities.LatestRelease, []string, bool) {
	for _, seen := range inc.Evidence.Releases {
		var stages []string
		for _, r := range latest {
			if r.Label == seen.Release {
				stages = append(stages, r.Target.APIID+"/"+r.Target.Stage)
			}
		}
		for _, r := range latest {
			if r.Label != seen.Release || r.PromotedAt.After(inc.OpenedAt) || inc.OpenedAt.Sub(r.PromotedAt) > l.window || !l.could(r) {
				continue
			}
			if !l.shareable && len(stages) > 1 {
				return r, stages, false
			}
			return r, nil, true
		}
	}
	return activities.LatestRelease{}, nil, false
}

func (s rejections) summary(inc Incident) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%g %s rejections in one interval at the gateways (of %g verifications; baseline %g)",
		inc.Evidence.Rejections, s.reason, inc.Evidence.Verifications, inc.Evidence.Baseline)
	for i, r := range inc.Evidence.Releases {
		if i == 0 {
			b.WriteString("; by release:")
		}
		fmt.Fprintf(&b, " %s %g", r.Release, r.Count)
	}
	return b.String()
}

// verifierStale: decisions taken while an authorizer's deny list was older than its maximum
// staleness: revocations may not have reached it.
type verifierStale struct {
	events *issuerEvents
	policy StalePolicy
	issuer activities.Issuer
	// countNoKeys counts tokens refused for want of a key set too (changeJudgingRules).
	countNoKeys bool
}

func (s verifierStale) name() string       { return SignalVerifierStale }
func (verifierStale) aboutIssuer()         {}
func (s verifierStale) threshold() float64 { return float64(cmp.Or(s.policy.Threshold, 1)) }
func (s verifierStale) actions() []string  { return policyActions(s.policy.Actions) }

func (s verifierStale) observe(ctx workflow.Context, since, now time.Time) (observation, error) {
	c, err := s.events.read(ctx, since, now)
	if err != nil {
		return observation{}, err
	}
	var noKeys float64
	if s.countNoKeys {
		noKeys = c.Rejections(reasonJWKSUnavailable)
	}
	ev := Evidence{Stale: c.Stale, Rejections: noKeys, Verifications: c.Verifications}
	return observation{findings: []finding{{key: issuerWide, value: c.Stale + noKeys, evidence: ev}}}, nil
}

// reasonJWKSUnavailable is the authorizer's rejection of a token it could not check because it
// has no key set (the JWKS never fetched).
const reasonJWKSUnavailable = string(tokens.JWKSUnavailable)

func (s verifierStale) act(_ workflow.Context, action string, _ *Incident) (string, error) {
	return "", fmt.Errorf("%s cannot %s", s.name(), action)
}

func (s verifierStale) summary(inc Incident) string {
	return fmt.Sprintf("stale verifiers at the gateways: %g decisions taken on a deny list older than the authorizer's maximum staleness, %g tokens refused for want of a key set (of %g verifications): revocations or keys may not reach them; check the authorizers' access to the registry and the JWKS",
		inc.Evidence.Stale, inc.Evidence.Rejections, inc.Evidence.Verifications)
}

// median of the values, which the caller keeps; 0 for none.
func median(values []float64) float64 {
	if len(values) == 0 {
		return 0
	}
	v := slices.Clone(values)
	slices.Sort(v)
	if n := len(v); n%2 == 1 {
		return v[n/2]
	} else {
		return (v[n/2-1] + v[n/2]) / 2
	}
}

// clipText keeps s within n bytes, on a rune boundary.
func clipText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "")
}
