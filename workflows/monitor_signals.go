package workflows

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/rollgate/rollgate/activities"
	"github.com/rollgate/rollgate/internal/keys"
	"github.com/rollgate/rollgate/internal/registry"
	"github.com/rollgate/rollgate/internal/spec"
)

// monitorSignal is one thing the monitor judges. A signal observes what happened since the last
// judgement and names a finding per subject or client; the monitor opens incidents and takes the
// policy's actions. Signals read through providers (internal/analysis) implement it too.
type monitorSignal interface {
	name() string
	threshold() float64
	actions() []string
	// observe reads what happened in (since, now]; findings are ordered by key.
	observe(ctx workflow.Context, since, now time.Time) (observation, error)
	// act takes one action other than notify on an incident and says what it did.
	act(ctx workflow.Context, action string, inc *Incident) (string, error)
	// describe is the notification's text for an incident.
	// summary says what the monitor saw of an incident, in the signal's terms: the body of its
	// notification (notification) and of its line in the status.
	summary(inc Incident) string
}

// notification is what on-call is told of an incident.
func notification(issuerURL string, s monitorSignal, inc Incident) string {
	return fmt.Sprintf("rollgate monitor %s: %s (since %s)", issuerURL, s.summary(inc), inc.OpenedAt.UTC().Format(time.RFC3339))
}

type observation struct {
	findings  []finding
	truncated bool
}

type finding struct {
	key      string
	value    float64
	evidence Evidence
}

// mergeEvidence folds a later observation of an open incident into what it holds. Uses are
// counted per token and hour by the registry and read again while a token keeps being presented,
// so the largest count seen stands, not a sum.
func mergeEvidence(old, seen Evidence) Evidence {
	out := seen
	out.Uses = max(old.Uses, seen.Uses)
	out.Clients = unionBounded(old.Clients, seen.Clients)
	out.Addresses = unionBounded(old.Addresses, seen.Addresses)
	out.JTIs = unionBounded(old.JTIs, seen.JTIs)
	return out
}

func unionBounded(a, b []string) []string {
	out := append([]string(nil), a...)
	for _, v := range b {
		if len(out) >= registry.MaxUseAddresses {
			break
		}
		if !contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// revokedPresented: revoked tokens still presented at a gateway, grouped by subject.
type revokedPresented struct {
	issuer activities.Issuer
	policy RevokedUsesPolicy
	keys   []ClientAPIKey
}

func (s revokedPresented) name() string      { return SignalRevokedPresented }
func (s revokedPresented) actions() []string { return policyActions(s.policy.Actions) }
func (s revokedPresented) threshold() float64 {
	return float64(max(s.policy.Threshold, 1))
}

func (s revokedPresented) observe(ctx workflow.Context, since, _ time.Time) (observation, error) {
	var rep activities.RevokedUsesReport
	err := workflow.ExecuteActivity(short(ctx), tokA.RevokedUsesBySubject, activities.RevokedUsesInput{IssuerURL: s.issuer.URL, Since: since}).Get(ctx, &rep)
	if err != nil {
		return observation{}, err
	}
	obs := observation{truncated: rep.Truncated}
	for _, u := range rep.Subjects {
		obs.findings = append(obs.findings, finding{key: u.Subject, value: float64(u.Count),
			evidence: Evidence{Clients: u.Clients, Addresses: u.Addresses, JTIs: u.Tokens, Uses: u.Count}})
	}
	return obs, nil
}

// act revokes every token of the subject issued before the incident opened: a fixed time, so a
// retried or repeated revocation writes the same rule.
func (s revokedPresented) act(ctx workflow.Context, action string, inc *Incident) (string, error) {
	switch action {
	case ActionDisableKey:
		return disableKeys(ctx, s.keys, inc.Evidence.Clients)
	case ActionRevokeFamily:
		return s.revokeFamily(ctx, inc)
	case ActionRevoke:
		return s.revokeSubject(ctx, inc)
	}
	return "", fmt.Errorf("%s cannot %s", s.name(), action)
}

// revokeSubject revokes every token of the subject issued before the incident opened: a fixed
// time, so a retried or repeated revocation writes the same rule.
func (s revokedPresented) revokeSubject(ctx workflow.Context, inc *Incident) (string, error) {
	if inc.Key == "" || inc.Key == "-" { // the registry's mark for a use whose token named no subject
		return "", fmt.Errorf("the uses name no subject: nothing to revoke by subject")
	}
	rule := activities.RuleInput{Scope: registry.BySubject, Value: inc.Key, Before: inc.OpenedAt,
		Reason: fmt.Sprintf("token monitor: %d uses of revoked tokens of %s", inc.Evidence.Uses, inc.Key)}
	if err := workflow.ExecuteActivity(short(ctx), tokA.RevokeByRule, rule).Get(ctx, nil); err != nil {
		return "", err
	}
	done := fmt.Sprintf("revoked every token of subject %s issued before %s", inc.Key, inc.OpenedAt.UTC().Format(time.RFC3339))
	if workflow.GetVersion(ctx, changeMonitorFlush, workflow.DefaultVersion, 1) == 1 {
		done += flushIssuer(ctx, s.issuer.URL)
	}
	return done, nil
}

// revokeFamily revokes the tokens that replaced the presented ones, then flushes the caches.
func (s revokedPresented) revokeFamily(ctx workflow.Context, inc *Incident) (string, error) {
	var got activities.FamilyRevoked
	in := activities.RevokeFamilyInput{JTIs: inc.Evidence.JTIs, Reason: fmt.Sprintf("token monitor: a revoked token of %s still presented", inc.Key)}
	if err := workflow.ExecuteActivity(short(ctx), tokA.RevokeFamily, in).Get(ctx, &got); err != nil {
		return "", err
	}
	if len(got.Revoked) == 0 {
		return fmt.Sprintf("no token replaced the %d presented: no family to revoke", len(inc.Evidence.JTIs)), nil
	}
	return fmt.Sprintf("revoked the %d tokens that replaced the presented ones (clients %s)", len(got.Revoked), list(got.Clients)) + flushIssuer(ctx, s.issuer.URL), nil
}

// changeMonitorFlush: the monitor's revocations flush the authorizer caches of the issuer's
// stages, so that an Allow cached before cannot outlive them; runs started before flush nothing.
const changeMonitorFlush = "monitor-flush-after-revocation"

// flushIssuer flushes, once the deny list has settled, the authorizer caches of the stages whose
// latest release used the issuer, and says so for the action's result. The revocation is done
// either way: a flush that fails is reported, not retried as the action.
func flushIssuer(ctx workflow.Context, issuerURL string) string {
	stages, problem := issuerStages(ctx, issuerURL)
	if problem != "" {
		problem = "; " + problem
	}
	if len(stages) == 0 {
		if problem != "" {
			return "; authorizer caches not flushed" + problem
		}
		return ""
	}
	res, err := flushAfter(ctx, workflow.Now(ctx), denyListSettle, stageSet(stages...))
	if err != nil {
		return "; authorizer caches not flushed: " + err.Error() + problem
	}
	return "; authorizer caches of " + strings.Join(stageNames(res.Flushed), ", ") + " flushed" + problem
}

func (s revokedPresented) summary(inc Incident) string {
	return fmt.Sprintf("revoked tokens of subject %s still presented: %s by clients %s from addresses %s",
		inc.Key, uses(inc.Evidence.Uses), list(inc.Evidence.Clients), list(inc.Evidence.Addresses))
}

// expiringUnrenewed: a client's token nears expiry and no newer active token of the client exists.
type expiringUnrenewed struct {
	issuer activities.Issuer
	policy RenewalPolicy
}

func (s expiringUnrenewed) name() string       { return SignalExpiringUnrenewed }
func (s expiringUnrenewed) actions() []string  { return policyActions(s.policy.Actions) }
func (s expiringUnrenewed) threshold() float64 { return 1 }

func (s expiringUnrenewed) fraction() float64 {
	if s.policy.Fraction == 0 {
		return 0.1
	}
	return s.policy.Fraction
}

func (s expiringUnrenewed) observe(ctx workflow.Context, _, now time.Time) (observation, error) {
	var rep activities.ExpiringReport
	in := activities.ExpiringInput{Key: s.issuer.Key.Name, Now: now, Window: s.policy.Window, Fraction: s.fraction()}
	if err := workflow.ExecuteActivity(short(ctx), tokA.ExpiringWithoutSuccessor, in).Get(ctx, &rep); err != nil {
		return observation{}, err
	}
	obs := observation{truncated: rep.Truncated}
	for _, t := range rep.Tokens {
		obs.findings = append(obs.findings, finding{key: t.Client, value: 1,
			evidence: Evidence{Clients: []string{t.Client}, Subject: t.Subject, JTI: t.JTI, KID: t.KID, IssuedAt: t.IssuedAt, ExpiresAt: t.ExpiresAt}})
	}
	return obs, nil
}

// act renews the client's token; the activity leaves a client already renewed alone.
func (s expiringUnrenewed) act(ctx workflow.Context, action string, inc *Incident) (string, error) {
	if action != ActionReissue {
		return "", fmt.Errorf("%s cannot %s", s.name(), action)
	}
	var issued activities.Issued
	in := activities.RenewInput{Issuer: s.issuer, Reason: "token monitor: renewed ahead of expiry",
		Token: activities.ExpiringToken{Client: inc.Key, Subject: inc.Evidence.Subject, JTI: inc.Evidence.JTI, KID: inc.Evidence.KID,
			IssuedAt: inc.Evidence.IssuedAt, ExpiresAt: inc.Evidence.ExpiresAt}}
	if err := workflow.ExecuteActivity(short(ctx), tokA.RenewToken, in).Get(ctx, &issued); err != nil {
		return "", err
	}
	return fmt.Sprintf("reissued client %s a token (jti %s, %s) delivered to Vault KV", inc.Key, issued.JTI, issued.KID), nil
}

func (s expiringUnrenewed) summary(inc Incident) string {
	return fmt.Sprintf("client %s holds token %s (%s) expiring at %s with no newer active token: its renewal is broken",
		inc.Key, inc.Evidence.JTI, inc.Evidence.KID, inc.Evidence.ExpiresAt.UTC().Format(time.RFC3339))
}

// expiredPresented: expired tokens still presented at a gateway, grouped by client.
type expiredPresented struct {
	issuer activities.Issuer
	policy ExpiredUsesPolicy
}

func (s expiredPresented) name() string       { return SignalExpiredPresented }
func (s expiredPresented) actions() []string  { return policyActions(s.policy.Actions) }
func (s expiredPresented) threshold() float64 { return float64(max(s.policy.Threshold, 1)) }

func (s expiredPresented) observe(ctx workflow.Context, since, _ time.Time) (observation, error) {
	var rep activities.ExpiredUsesReport
	err := workflow.ExecuteActivity(short(ctx), tokA.ExpiredUsesByClient, activities.RevokedUsesInput{IssuerURL: s.issuer.URL, Since: since}).Get(ctx, &rep)
	if err != nil {
		return observation{}, err
	}
	obs := observation{truncated: rep.Truncated}
	for _, u := range rep.Clients {
		obs.findings = append(obs.findings, finding{key: u.Client, value: float64(u.Count),
			evidence: Evidence{Clients: []string{u.Client}, Subject: u.Subject, JTI: u.LatestJTI, Addresses: u.Addresses, Uses: u.Count}})
	}
	return obs, nil
}

// act gives the client a token of the key's current version, unless it already holds a valid
// one, which it then does not fetch: the notification says so.
func (s expiredPresented) act(ctx workflow.Context, action string, inc *Incident) (string, error) {
	if action != ActionReissue {
		return "", fmt.Errorf("%s cannot %s", s.name(), action)
	}
	if inc.Key == "" || inc.Key == "-" {
		return "", fmt.Errorf("the uses name no client: nothing to reissue")
	}
	var labels keys.Labels
	if err := workflow.ExecuteActivity(short(ctx), keysA.ReadLabels, s.issuer.Key.Name).Get(ctx, &labels); err != nil {
		return "", err
	}
	var got activities.RenewedPresented
	in := activities.RenewPresentedInput{Issuer: s.issuer, Client: inc.Key, JTI: inc.Evidence.JTI, Version: labels.Current,
		Reason: "token monitor: the client presented an expired token", Since: inc.OpenedAt}
	if err := workflow.ExecuteActivity(short(ctx), tokA.RenewPresented, in).Get(ctx, &got); err != nil {
		return "", err
	}
	if got.Held {
		return fmt.Sprintf("nothing reissued: client %s already holds valid token %s (%s) in Vault KV and does not fetch it", inc.Key, got.JTI, got.KID), nil
	}
	return fmt.Sprintf("reissued client %s a token (jti %s, %s) delivered to Vault KV", inc.Key, got.JTI, got.KID), nil
}

func (s expiredPresented) summary(inc Incident) string {
	return fmt.Sprintf("client %s keeps presenting expired tokens (latest %s, subject %s): %s from addresses %s: it does not renew",
		inc.Key, inc.Evidence.JTI, inc.Evidence.Subject, uses(inc.Evidence.Uses), list(inc.Evidence.Addresses))
}

// uses says how many uses the authorizers recorded (at most one per token and address every 10 s).
func uses(n int) string {
	if n == 1 {
		return "1 recorded use"
	}
	return fmt.Sprintf("%d recorded uses", n)
}

func list(v []string) string {
	if len(v) == 0 {
		return "(none)"
	}
	return strings.Join(v, ", ")
}

// IssuancePolicy judges how many tokens the registry records issued to each client per interval,
// against the client's learned baseline: a client whose issuance suddenly multiplies (a leaked
// credential minting tokens, a retry loop) opens an incident. Off unless On.
type IssuancePolicy struct {
	On bool `json:",omitempty"`
	// Threshold: tokens issued to one client in an interval that may open an incident; 0 is
	// DefaultIssuanceThreshold.
	Threshold int `json:",omitempty"`
	// MaxRatio: how far above the client's baseline an interval must be; 0 is DefaultMaxRatio.
	MaxRatio float64 `json:",omitempty"`
	// Baseline: how many past quiet intervals each client's baseline is learned from; 0 is
	// DefaultBaselineIntervals.
	Baseline int `json:",omitempty"`
	// Actions: notify; none is notify.
	Actions []string `json:",omitempty"`
}

// DefaultIssuanceThreshold is how many tokens one client is issued in an interval before its
// baseline is asked.
const DefaultIssuanceThreshold = 10

func (p IssuancePolicy) check(problems *spec.Problems) {
	if p.Threshold < 0 || p.Threshold > 1_000_000 {
		problems.Add("IssuanceRate.Threshold", "%d: allowed 0 (%d) to 1000000", p.Threshold, DefaultIssuanceThreshold)
	}
	if p.MaxRatio != 0 && (p.MaxRatio < 1 || p.MaxRatio > 1000) {
		problems.Add("IssuanceRate.MaxRatio", "%g: allowed 0 (%g) or 1 to 1000", p.MaxRatio, DefaultMaxRatio)
	}
	if p.Baseline < 0 || p.Baseline > MaxBaselineIntervals {
		problems.Add("IssuanceRate.Baseline", "%d: allowed 0 (%d intervals) to %d", p.Baseline, DefaultBaselineIntervals, MaxBaselineIntervals)
	}
	checkActions(problems, "IssuanceRate.Actions", p.Actions, ActionDisableKey)
}

// issuanceRate: tokens issued per client and interval against the client's baseline.
type issuanceRate struct {
	issuer activities.Issuer
	policy IssuancePolicy
	keys   []ClientAPIKey
}

func (s issuanceRate) name() string { return SignalIssuanceRate }
func (s issuanceRate) threshold() float64 {
	return float64(cmp.Or(s.policy.Threshold, DefaultIssuanceThreshold))
}
func (s issuanceRate) actions() []string { return policyActions(s.policy.Actions) }
func (s issuanceRate) baselineWindow() int {
	return cmp.Or(s.policy.Baseline, DefaultBaselineIntervals)
}
func (s issuanceRate) baselineKeys() int { return MaxIssuanceClients }

func (s issuanceRate) breaches(value float64, history []float64) bool {
	return baselineBreach(value, s.threshold(), cmp.Or(s.policy.MaxRatio, DefaultMaxRatio), history)
}

func (s issuanceRate) observe(ctx workflow.Context, since, now time.Time) (observation, error) {
	var rep activities.IssuedReport
	in := activities.IssuedInput{Key: s.issuer.Key.Name, Since: since, Until: now}
	if err := workflow.ExecuteActivity(short(ctx), tokA.IssuedByClient, in).Get(ctx, &rep); err != nil {
		return observation{}, err
	}
	obs := observation{truncated: rep.Truncated}
	for _, c := range rep.Clients {
		obs.findings = append(obs.findings, finding{key: c.Client, value: float64(c.Count), evidence: Evidence{Clients: []string{c.Client}, Issued: c.Count}})
	}
	return obs, nil
}

func (s issuanceRate) act(ctx workflow.Context, action string, inc *Incident) (string, error) {
	if action != ActionDisableKey {
		return "", fmt.Errorf("%s cannot %s", s.name(), action)
	}
	return disableKeys(ctx, s.keys, []string{inc.Key})
}

// disableKeys disables the REST API keys of the clients that have one, on the control-plane
// queue that rollbacks use (it cannot wait behind releases); a key already disabled is left
// alone. It says which keys it disabled, or that no client had one.
func disableKeys(ctx workflow.Context, known []ClientAPIKey, clients []string) (string, error) {
	var done []string
	for _, c := range clients {
		i, found := slices.BinarySearchFunc(known, c, func(k ClientAPIKey, c string) int { return strings.Compare(k.Client, c) })
		if !found {
			continue
		}
		in := activities.APIKeyInput{KeyID: known[i].KeyID, Enabled: false}
		if err := workflow.ExecuteActivity(rollbackControlPlane(short(ctx)), gw.SetAPIKeyEnabled, in).Get(ctx, nil); err != nil {
			return "", fmt.Errorf("disable API key %s of client %s: %w", known[i].KeyID, c, err)
		}
		done = append(done, fmt.Sprintf("%s (client %s)", known[i].KeyID, c))
	}
	if len(done) == 0 {
		return fmt.Sprintf("no API key known for clients %s: nothing disabled", list(clients)), nil
	}
	return "disabled API keys " + strings.Join(done, ", "), nil
}

func (s issuanceRate) summary(inc Incident) string {
	return fmt.Sprintf("client %s was issued %d tokens in one interval, against a baseline of %g", inc.Key, inc.Evidence.Issued, inc.Evidence.Baseline)
}
