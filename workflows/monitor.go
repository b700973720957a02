package workflows

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/rollgate/rollgate/activities"
	"github.com/rollgate/rollgate/internal/spec"
)

// The token lifecycle monitor's contract: one TokenMonitor per issuer, id MonitorID(key), judging
// its signals every interval until stopped.

// Signals the monitor judges from the registry; those read from a metric provider are in
// monitor_provider.go.
const (
	// SignalRevokedPresented: revoked tokens still presented at a gateway, by subject.
	SignalRevokedPresented = "revoked_presented"
	// SignalExpiringUnrenewed: a client's token nears expiry with no newer active token.
	SignalExpiringUnrenewed = "expiring_unrenewed"
	// SignalExpiredPresented: expired tokens still presented at a gateway, by client: a client
	// that does not renew.
	SignalExpiredPresented = "expired_presented"
	// SignalIssuanceRate: tokens issued to a client per interval against its baseline.
	SignalIssuanceRate = "issuance_rate"
)

// Actions a policy may take on an incident.
const (
	ActionNotify  = "notify"  // post the evidence to the spec's webhook
	ActionRevoke  = "revoke"  // revoke every token of the subject issued before the incident opened
	ActionReissue = "reissue" // renew the client's token ahead of expiry (delivered to Vault KV)
	// ActionRevokeFamily revokes the tokens that replaced the presented ones (their renewals and
	// reissues), whoever holds the original may hold them too.
	ActionRevokeFamily = "revoke-family"
	// ActionDisableKey disables the REST API keys of the incident's clients (MonitorSpec.APIKeys).
	ActionDisableKey = "disable-key"
)

// The monitor's operator interface.
const (
	// UpdateStopMonitor stops the monitor after the judgement in progress, if any.
	UpdateStopMonitor = "stop"
	// QueryMonitorStatus returns a MonitorStatus.
	QueryMonitorStatus = QueryStatus
	// MetricMonitorIncidents counts actions taken on incidents by signal and action.
	MetricMonitorIncidents = "rollgate_monitor_incidents"
)

// Monitor bounds.
const (
	DefaultMonitorInterval = time.Minute
	MinMonitorInterval     = 10 * time.Second
	MaxMonitorInterval     = time.Hour
	DefaultCloseAfter      = time.Hour
	MaxCloseAfter          = 7 * 24 * time.Hour
	// MaxOpenIncidents bounds the incidents a monitor carries; a finding beyond it is counted in
	// the status, not opened.
	MaxOpenIncidents = 100
	// maxJudgementsPerRun and maxHistoryEvents make a run continue-as-new long before Temporal's
	// history limits: a judgement of a quiet issuer with both signals writes 17 events.
	maxJudgementsPerRun = 15
	maxHistoryEvents    = 300
	// maxActionAttempts is how many judgements try a failing action before it is given up.
	maxActionAttempts = 3
)

// MonitorID is the workflow id of the issuer's monitor: one per transit key.
func MonitorID(key string) string { return "monitor/" + key }

// MonitorSpec is what a TokenMonitor watches and how it acts.
type MonitorSpec struct {
	Issuer activities.Issuer
	// Interval between judgements; 0 is DefaultMonitorInterval.
	Interval time.Duration `json:",omitempty"`
	// CloseAfter closes an incident whose subject or client has not been seen for that long; 0 is
	// DefaultCloseAfter.
	CloseAfter time.Duration `json:",omitempty"`
	// Webhook is the worker's webhook (by name) that the notify action posts to.
	Webhook         string `json:",omitempty"`
	RevokedUses     RevokedUsesPolicy
	ExpiringRenewal RenewalPolicy
	ExpiredUses     ExpiredUsesPolicy `json:",omitzero"`
	IssuanceRate    IssuancePolicy    `json:",omitzero"`
	// Provider names the worker's metric provider (prometheus or cloudwatch) the signals of the
	// gateways' authorizers are read from; "" leaves those signals off.
	// APIKeys are the REST API keys of clients (sorted by client), which disable-key disables.
	APIKeys       []ClientAPIKey  `json:",omitempty"`
	Provider      string          `json:",omitempty"`
	UnknownKID    RejectionPolicy `json:",omitzero"`
	BadSignature  RejectionPolicy `json:",omitzero"`
	VerifierStale StalePolicy     `json:",omitzero"`
	Actor         string
	// Reason is why the monitor was started (a ticket), for the audit trail.
	Reason string `json:",omitempty"`
	// Carry is what a run hands the next one when it continues as new; nil when started.
	Carry *MonitorCarry `json:",omitempty"`
}

// RevokedUsesPolicy judges revoked tokens still presented, per subject.
type RevokedUsesPolicy struct {
	Off bool `json:",omitempty"`
	// Threshold is how many uses of a subject's revoked tokens since the last judgement open an
	// incident; 0 is 1.
	Threshold int `json:",omitempty"`
	// Actions: notify and/or revoke; none is notify.
	Actions []string `json:",omitempty"`
}

// RenewalPolicy judges tokens nearing expiry whose client has no newer active token.
type RenewalPolicy struct {
	Off bool `json:",omitempty"`
	// Window: a token is expiring once at most this much of it is left; 0 uses Fraction.
	Window time.Duration `json:",omitempty"`
	// Fraction of a token's lifetime that, once left, makes it expiring; 0 is 0.1.
	Fraction float64 `json:",omitempty"`
	// Actions: notify and/or reissue; none is notify.
	Actions []string `json:",omitempty"`
}

// ClientAPIKey is a client's REST API key, by id.
type ClientAPIKey struct {
	Client string
	KeyID  string
}

// MaxAPIKeys bounds MonitorSpec.APIKeys: they travel in every run's input.
const MaxAPIKeys = 200

// ExpiredUsesPolicy judges expired tokens still presented, per client.
type ExpiredUsesPolicy struct {
	Off bool `json:",omitempty"`
	// Threshold is how many uses of a client's expired tokens since the last judgement open an
	// incident; 0 is 1.
	Threshold int `json:",omitempty"`
	// Actions: notify and/or reissue (a token of the key's current version, delivered to the
	// client's Vault KV path, unless it already holds a valid one); none is notify.
	Actions []string `json:",omitempty"`
}

// MonitorCarry is the state that survives continue-as-new: small by construction.
type MonitorCarry struct {
	LastJudged time.Time
	Judgements int
	Incidents  []Incident
	Closed     int
	Overflow   int
	// Baselines are the quiet intervals' values of the signals that learn a baseline.
	Baselines []Baseline `json:",omitempty"`
}

// Baseline is a signal's values, for one key (a client; "" for the issuer as a whole), in its
// last quiet intervals, oldest first.
type Baseline struct {
	Signal string
	Key    string `json:",omitempty"`
	Values []float64
}

// Incident is one irregularity, open while its subject or client keeps showing up.
type Incident struct {
	Signal   string
	Key      string // the subject or client it is about
	OpenedAt time.Time
	LastSeen time.Time
	Evidence Evidence
	Actions  []ActionRecord
	// Summary is what the monitor saw, in the signal's terms; the status query fills it, the
	// carry never holds it.
	Summary string `json:",omitempty"`
}

// Evidence is what the monitor saw; never a token.
type Evidence struct {
	Clients   []string `json:",omitempty"`
	Addresses []string `json:",omitempty"`
	// JTIs are the tokens presented (at most 16).
	JTIs      []string `json:",omitempty"`
	Uses      int      `json:",omitempty"`
	Subject   string   `json:",omitempty"`
	JTI       string   `json:",omitempty"`
	KID       string   `json:",omitempty"`
	IssuedAt  time.Time
	ExpiresAt time.Time
	// Of the provider-based signals: the interval's rejections (or stale decisions) among its
	// verifications, the baseline they were judged against, and the releases with most of them.
	Issued        int                 `json:",omitempty"`
	Rejections    float64             `json:",omitempty"`
	Stale         float64             `json:",omitempty"`
	Verifications float64             `json:",omitempty"`
	Baseline      float64             `json:",omitempty"`
	Releases      []ReleaseRejections `json:",omitempty"`
}

// ReleaseRejections is how many rejections one release's traffic carried.
type ReleaseRejections struct {
	Release string
	Count   float64
}

// ActionRecord is one action on an incident, with why it was taken and what came of it.
type ActionRecord struct {
	Action   string
	Reason   string
	At       time.Time
	Attempts int
	Done     bool
	Result   string `json:",omitempty"`
	Error    string `json:",omitempty"`
}

// MonitorStatus is the monitor's answer to QueryMonitorStatus.
type MonitorStatus struct {
	Issuer     string
	Interval   time.Duration
	LastJudged time.Time
	Judgements int
	Signals    []SignalStatus
	Incidents  []Incident
	Closed     int
	Overflow   int
	Stopping   bool
}

// SignalStatus is one signal's latest judgement.
type SignalStatus struct {
	Name      string
	Value     float64 // the largest value one subject or client had at the last judgement
	Threshold float64
	// Baseline is the median of the signal's last quiet intervals, judged once Learned reaches
	// MinBaselineIntervals; both 0 for a signal without a baseline.
	Baseline  float64 `json:",omitempty"`
	Learned   int     `json:",omitempty"`
	Actions   []string
	Truncated bool   `json:",omitempty"`
	Error     string `json:",omitempty"`
}

// MonitorReport is what a stopped monitor returns.
type MonitorReport struct {
	Judgements int
	Open       []Incident
	Closed     int
	StoppedBy  string
}

// StopRequest stops a monitor.
type StopRequest struct {
	Actor  string
	Reason string
}

func (in MonitorSpec) interval() time.Duration {
	if in.Interval == 0 {
		return DefaultMonitorInterval
	}
	return in.Interval
}

func (in MonitorSpec) closeAfter() time.Duration {
	if in.CloseAfter == 0 {
		return DefaultCloseAfter
	}
	return in.CloseAfter
}

// expiredOn says whether expired tokens still presented are judged: unless ExpiredUses.Off, and
// not for a spec that leaves the policy unset and names no webhook. Such a spec was written
// before the signal (its policies act without notifying): judging it would need a webhook it
// does not have, and it must go on validating when its running monitor replays or continues as
// new.
func (in MonitorSpec) expiredOn() bool {
	if in.ExpiredUses.Off {
		return false
	}
	return in.Webhook != "" || in.ExpiredUses.Threshold != 0 || len(in.ExpiredUses.Actions) > 0
}

func policyActions(actions []string) []string {
	if len(actions) == 0 {
		return []string{ActionNotify}
	}
	return actions
}

// Validate checks every field of a monitor spec before the monitor acts.
func (in MonitorSpec) Validate() error {
	var p spec.Problems
	in.check(&p)
	return p.Err("token monitor")
}

// ValidateStart checks the spec a monitor starts with: Validate, and no action on a signal that
// is off, which would never be taken. The starter calls it; a monitor started before this rule
// goes on validating by Validate alone.
func (in MonitorSpec) ValidateStart() error {
	var p spec.Problems
	in.check(&p)
	in.checkIdleActions(&p)
	return p.Err("token monitor")
}

// checkIdleActions refuses a rollback without a provider and disable-key with issuance off: the
// operator would believe in a protection that never acts.
func (in MonitorSpec) checkIdleActions(p *spec.Problems) {
	if in.Provider == "" {
		for _, r := range []struct {
			field   string
			actions []string
		}{{"UnknownKID.Actions", in.UnknownKID.Actions}, {"BadSignature.Actions", in.BadSignature.Actions}} {
			if slices.Contains(r.actions, ActionRollback) {
				p.Add(r.field, "rollback: the signal is read through a provider (Provider, --provider), and none is named")
			}
		}
	}
	if !in.IssuanceRate.On && slices.Contains(in.IssuanceRate.Actions, ActionDisableKey) {
		p.Add("IssuanceRate.Actions", "disable-key: the issuance signal is off (IssuanceRate.On, --issuance)")
	}
}

func (in MonitorSpec) check(p *spec.Problems) {
	reissues := (!in.ExpiringRenewal.Off && slices.Contains(in.ExpiringRenewal.Actions, ActionReissue)) ||
		(in.expiredOn() && slices.Contains(in.ExpiredUses.Actions, ActionReissue))
	checkIssuer(p, in.Issuer, reissues, false)
	if in.Interval != 0 {
		p.CheckDuration("Interval", in.Interval, MinMonitorInterval, MaxMonitorInterval)
	}
	if in.CloseAfter != 0 {
		p.CheckDuration("CloseAfter", in.CloseAfter, in.interval(), MaxCloseAfter)
	}
	p.CheckWebhook("Webhook", in.Webhook)
	p.CheckText("Actor", in.Actor, spec.MaxActor, true)
	p.CheckText("Reason", in.Reason, spec.MaxText, false)
	if in.RevokedUses.Threshold < 0 || in.RevokedUses.Threshold > 1_000_000 {
		p.Add("RevokedUses.Threshold", "%d: allowed 0 (one use) to 1000000", in.RevokedUses.Threshold)
	}
	checkActions(p, "RevokedUses.Actions", in.RevokedUses.Actions, ActionRevoke, ActionRevokeFamily, ActionDisableKey)
	checkActions(p, "ExpiringRenewal.Actions", in.ExpiringRenewal.Actions, ActionReissue)
	if in.ExpiredUses.Threshold < 0 || in.ExpiredUses.Threshold > 1_000_000 {
		p.Add("ExpiredUses.Threshold", "%d: allowed 0 (one use) to 1000000", in.ExpiredUses.Threshold)
	}
	checkActions(p, "ExpiredUses.Actions", in.ExpiredUses.Actions, ActionReissue)
	in.IssuanceRate.check(p)
	checkAPIKeys(p, in)
	in.checkProviderPolicies(p)
	if in.ExpiringRenewal.Window != 0 {
		p.CheckDuration("ExpiringRenewal.Window", in.ExpiringRenewal.Window, time.Minute, spec.MaxTokenTTL)
	}
	if f := in.ExpiringRenewal.Fraction; f < 0 || f > 0.5 {
		p.Add("ExpiringRenewal.Fraction", "%g: allowed 0 (0.1) to 0.5", f)
	}
	unknownKID, badSignature, stale := in.providerSignalsOn()
	notifies := (!in.RevokedUses.Off && slices.Contains(policyActions(in.RevokedUses.Actions), ActionNotify)) ||
		(!in.ExpiringRenewal.Off && slices.Contains(policyActions(in.ExpiringRenewal.Actions), ActionNotify)) ||
		(in.expiredOn() && slices.Contains(policyActions(in.ExpiredUses.Actions), ActionNotify)) ||
		in.IssuanceRate.On ||
		(unknownKID && slices.Contains(policyActions(in.UnknownKID.Actions), ActionNotify)) ||
		(badSignature && slices.Contains(policyActions(in.BadSignature.Actions), ActionNotify)) ||
		(stale && slices.Contains(policyActions(in.VerifierStale.Actions), ActionNotify))
	if notifies && in.Webhook == "" {
		p.Add("Webhook", "required: a policy notifies (name a webhook configured on the worker, or choose other actions)")
	}
	if in.RevokedUses.Off && in.ExpiringRenewal.Off && !in.expiredOn() && !in.IssuanceRate.On && !unknownKID && !badSignature && !stale {
		p.Add("RevokedUses.Off|ExpiringRenewal.Off|ExpiredUses.Off", "every signal is off: nothing to monitor")
	}
	if c := in.Carry; c != nil && len(c.Incidents) > MaxOpenIncidents {
		p.Add("Carry.Incidents", "%d: at most %d", len(c.Incidents), MaxOpenIncidents)
	}
	if c := in.Carry; c != nil {
		for i, b := range c.Baselines {
			if len(b.Values) > MaxBaselineIntervals || i >= maxBaselines {
				p.Add(fmt.Sprintf("Carry.Baselines[%d]", i), "%d values: at most %d, in at most %d baselines", len(b.Values), MaxBaselineIntervals, maxBaselines)
			}
		}
	}
}

// checkActions checks a policy's actions: notify and the signal's own actions, each at most once.
func checkActions(p *spec.Problems, field string, actions []string, own ...string) {
	allowed := append([]string{ActionNotify}, own...)
	for i, a := range actions {
		if !slices.Contains(allowed, a) || slices.Index(actions, a) != i {
			p.Add(fmt.Sprintf("%s[%d]", field, i), "%q: allowed %s (each once)", a, strings.Join(allowed, ", "))
		}
	}
}

// checkAPIKeys checks the clients' API keys: sorted by client, each client once, and known keys
// when a policy disables them.
func checkAPIKeys(p *spec.Problems, in MonitorSpec) {
	if len(in.APIKeys) > MaxAPIKeys {
		p.Add("APIKeys", "%d keys: at most %d", len(in.APIKeys), MaxAPIKeys)
		return
	}
	for i, k := range in.APIKeys {
		field := fmt.Sprintf("APIKeys[%d]", i)
		p.CheckText(field+".Client", k.Client, spec.MaxActor, true)
		if !apiKeyID.MatchString(k.KeyID) {
			p.Add(field+".KeyID", "%q: an API key id is 1-128 letters and digits", k.KeyID)
		}
		switch {
		case i == 0:
		case in.APIKeys[i-1].Client == k.Client:
			p.Add(field+".Client", "%q: a client has one API key here (named twice)", k.Client)
		case in.APIKeys[i-1].Client > k.Client:
			p.Add(field+".Client", "%q: clients are sorted", k.Client)
		}
	}
	disables := (!in.RevokedUses.Off && slices.Contains(in.RevokedUses.Actions, ActionDisableKey)) ||
		(in.IssuanceRate.On && slices.Contains(in.IssuanceRate.Actions, ActionDisableKey))
	if disables && len(in.APIKeys) == 0 {
		p.Add("APIKeys", "required: a policy disables API keys (name each client's key)")
	}
}

var apiKeyID = regexp.MustCompile(`^[A-Za-z0-9]{1,128}$`)

// changeStartValidation: a monitor's first run validates its spec with ValidateStart; one started
// before validated with Validate, which its replay must keep doing.
const changeStartValidation = "monitor-start-validation"

// TokenMonitor judges an issuer's token signals every interval and acts on each incident once,
// until stopped; it continues as new to keep its history short, carrying its open incidents.
func TokenMonitor(ctx workflow.Context, in MonitorSpec) (MonitorReport, error) {
	validate := in.Validate
	if in.Carry == nil && workflow.GetVersion(ctx, changeStartValidation, workflow.DefaultVersion, 1) == 1 {
		validate = in.ValidateStart
	}
	if err := validate(); err != nil {
		return MonitorReport{}, temporal.NewNonRetryableApplicationError(err.Error(), ErrInvalidSpec, err)
	}
	m := newMonitor(ctx, in)
	if err := m.setup(ctx); err != nil {
		return MonitorReport{}, err
	}
	return m.run(ctx)
}
