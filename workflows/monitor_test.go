package workflows_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/rollgate/rollgate/activities"
	"github.com/rollgate/rollgate/internal/analysis"
	"github.com/rollgate/rollgate/internal/keys"
	"github.com/rollgate/rollgate/internal/registry"
	"github.com/rollgate/rollgate/workflows"
)

// monitorFakes stands in for the registry, Vault KV and the webhook of a monitor, across the runs
// of a monitor that continues as new, and records what the monitor asked of them.
type monitorFakes struct {
	mu       sync.Mutex
	uses     func(now time.Time, in activities.RevokedUsesInput) activities.RevokedUsesReport
	expiring func(in activities.ExpiringInput) activities.ExpiringReport
	rules    []activities.RuleInput
	renewals []activities.RenewInput
	renewed  []time.Time
	notes    []string
	// The provider's counts at a judgement, the stages' latest releases, and the rollbacks started.
	expired   func(now time.Time) activities.ExpiredUsesReport
	issued    func(in activities.IssuedInput) activities.IssuedReport
	disabled  []activities.APIKeyInput
	flushes   []activities.Target
	families  []activities.RevokeFamilyInput
	presented []activities.RenewPresentedInput
	held      bool
	events    func(now time.Time, in activities.IssuerEventsInput) analysis.EventCounts
	latest    activities.LatestReleases
	rollbacks []workflows.RollbackSpec
	reads     int
	beyond    int // stages of the issuer beyond those IssuerStages lists
}

func monitorSpec() workflows.MonitorSpec {
	return workflows.MonitorSpec{
		Issuer:  activities.Issuer{URL: "https://issuer.example.com/orders", Key: activities.KeyRef{Name: "rollgate-orders", Type: "rsa-2048"}, Audiences: []string{"orders"}},
		Webhook: "oncall", Actor: "sec",
	}
}

func (f *monitorFakes) env() *testsuite.TestWorkflowEnvironment {
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestWorkflowEnvironment()
	env.RegisterWorkflow(workflows.TokenMonitor)
	env.RegisterActivity(tokA)
	env.RegisterActivity(notify)
	env.RegisterActivity(health)
	env.RegisterActivity(rel)
	env.RegisterActivity(keysA)
	env.RegisterActivity(gw)
	env.OnActivity(gw.SetAPIKeyEnabled, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.APIKeyInput) (bool, error) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.disabled = append(f.disabled, in)
		return true, nil
	})
	env.OnActivity(tokA.ExpiredUsesByClient, mock.Anything, mock.Anything).Return(func(context.Context, activities.RevokedUsesInput) (activities.ExpiredUsesReport, error) {
		if f.expired == nil {
			return activities.ExpiredUsesReport{}, nil
		}
		return f.expired(env.Now()), nil
	})
	env.OnActivity(keysA.ReadLabels, mock.Anything, mock.Anything).Return(keys.Labels{Current: 4, Previous: 3}, nil)
	env.OnActivity(tokA.IssuedByClient, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.IssuedInput) (activities.IssuedReport, error) {
		if f.issued == nil {
			return activities.IssuedReport{}, nil
		}
		return f.issued(in), nil
	})
	env.OnActivity(tokA.RenewPresented, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.RenewPresentedInput) (activities.RenewedPresented, error) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.presented = append(f.presented, in)
		if f.held {
			return activities.RenewedPresented{Issued: activities.Issued{Client: in.Client, JTI: "held-1", KID: "rollgate-orders-v4"}, Held: true}, nil
		}
		return activities.RenewedPresented{Issued: activities.Issued{Client: in.Client, JTI: fmt.Sprintf("new-%d", len(f.presented)), KID: "rollgate-orders-v4"}}, nil
	})
	env.RegisterWorkflow(workflows.Rollback)
	env.OnActivity(health.IssuerEvents, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.IssuerEventsInput) (analysis.EventCounts, error) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.reads++
		if f.events == nil {
			return analysis.EventCounts{HasData: true, Verifications: 1000}, nil
		}
		return f.events(env.Now(), in), nil
	})
	env.OnActivity(rel.IssuerStages, mock.Anything, mock.Anything).Return(func(context.Context, activities.IssuerStagesInput) (activities.IssuerStages, error) {
		out := activities.IssuerStages{Beyond: f.beyond}
		for _, r := range f.latest.Releases {
			out.Stages = append(out.Stages, r.Target)
		}
		return out, nil
	})
	env.OnActivity(gw.FlushAuthorizerCaches, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.FlushInput) (activities.FlushResult, error) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.flushes = append(f.flushes, in.Targets...)
		return activities.FlushResult{Flushed: in.Targets}, nil
	})
	env.OnActivity(tokA.RevokeFamily, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.RevokeFamilyInput) (activities.FamilyRevoked, error) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.families = append(f.families, in)
		return activities.FamilyRevoked{Revoked: []string{in.JTIs[0] + "-renewed"}, Clients: []string{"billing"}}, nil
	})
	env.OnActivity(rel.LatestOfIssuer, mock.Anything, mock.Anything).Return(func(context.Context, activities.IssuerStagesInput) (activities.LatestReleases, error) {
		return f.latest, nil
	})
	env.OnWorkflow(workflows.Rollback, mock.Anything, mock.Anything).Return(func(_ workflow.Context, in workflows.RollbackSpec) (workflows.RollbackReport, error) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.rollbacks = append(f.rollbacks, in)
		return workflows.RollbackReport{Verified: true, Latency: 12 * time.Second}, nil
	})
	env.OnActivity(tokA.RevokedUsesBySubject, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.RevokedUsesInput) (activities.RevokedUsesReport, error) {
		if f.uses == nil {
			return activities.RevokedUsesReport{}, nil
		}
		return f.uses(env.Now(), in), nil
	})
	env.OnActivity(tokA.ExpiringWithoutSuccessor, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.ExpiringInput) (activities.ExpiringReport, error) {
		if f.expiring == nil {
			return activities.ExpiringReport{}, nil
		}
		return f.expiring(in), nil
	})
	env.OnActivity(tokA.RevokeByRule, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.RuleInput) error {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.rules = append(f.rules, in)
		return nil
	})
	env.OnActivity(tokA.RenewToken, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.RenewInput) (activities.Issued, error) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.renewals, f.renewed = append(f.renewals, in), append(f.renewed, env.Now())
		return activities.Issued{Client: in.Token.Client, JTI: fmt.Sprintf("renewed-%d", len(f.renewals)), KID: in.Token.KID}, nil
	})
	env.OnActivity(notify.Send, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.NotifyInput) error {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.notes = append(f.notes, in.Text)
		return nil
	})
	return env
}

// runMonitor runs a monitor from start through its continue-as-new runs until it has judged
// judgements times, then stops it; it returns the report and how many runs it took.
func runMonitor(t *testing.T, f *monitorFakes, in workflows.MonitorSpec, start time.Time, judgements int) (workflows.MonitorReport, int) {
	t.Helper()
	interval := in.Interval
	if interval == 0 {
		interval = workflows.DefaultMonitorInterval
	}
	at := start
	for runs := 1; ; runs++ {
		env := f.env()
		env.SetStartTime(at)
		done := 0
		if in.Carry != nil {
			done = in.Carry.Judgements
		}
		if left := judgements - done; left <= 15 {
			// The first judgement of a run continued as new is due one interval after the last.
			due := time.Duration(left-1) * interval
			if in.Carry != nil {
				due += interval
			}
			env.RegisterDelayedCallback(func() {
				env.UpdateWorkflow(workflows.UpdateStopMonitor, "stop", &testsuite.TestUpdateCallback{
					OnAccept: func() {}, OnReject: func(err error) { t.Errorf("stop rejected: %v", err) }, OnComplete: func(any, error) {},
				}, workflows.StopRequest{Actor: "test", Reason: "done"})
			}, due+interval/2)
		}
		env.ExecuteWorkflow(workflows.TokenMonitor, in)
		err := env.GetWorkflowError()
		var can *workflow.ContinueAsNewError
		if errors.As(err, &can) {
			var next workflows.MonitorSpec
			if err := converter.GetDefaultDataConverter().FromPayloads(can.Input, &next); err != nil {
				t.Fatal(err)
			}
			if next.Carry == nil || next.Carry.Judgements-done > 15 {
				t.Fatalf("run %d continued as new after %d judgements, want at most 15", runs, next.Carry.Judgements-done)
			}
			in, at = next, next.Carry.LastJudged
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		var rep workflows.MonitorReport
		if err := env.GetWorkflowResult(&rep); err != nil {
			t.Fatal(err)
		}
		return rep, runs
	}
}

var monitorStart = time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)

// A quiet week: every judgement finds nothing, the monitor opens no incident and acts on
// nothing, and each run continues as new long before its history grows.
func TestTokenMonitor_QuietWeek_NoIncidentAndBoundedHistory(t *testing.T) {
	f := &monitorFakes{}
	// A quiet issuer still sees a few forged kids and bad signatures: below the threshold.
	f.events = func(now time.Time, _ activities.IssuerEventsInput) analysis.EventCounts {
		n := float64(now.Minute() % 4)
		return analysis.EventCounts{HasData: true, Verifications: 5000, Rejected: []analysis.RejectionCount{
			{Reason: "unknown_kid", Release: "run-1", Count: n}, {Reason: "bad_signature", Release: "run-1", Count: 1}}}
	}
	in := monitorSpec()
	in.Provider = "prometheus"
	in.UnknownKID.Actions = []string{"notify", "rollback"}
	week := 7 * 24 * 60 // the default interval, a minute
	rep, runs := runMonitor(t, f, in, monitorStart, week)
	if rep.Judgements != week || len(rep.Open) != 0 || rep.Closed != 0 {
		t.Fatalf("report %+v, want %d judgements and no incident", rep, week)
	}
	if len(f.rules)+len(f.renewals)+len(f.notes)+len(f.rollbacks) != 0 {
		t.Fatalf("a quiet week acted: rules %v, renewals %v, notes %v, rollbacks %v", f.rules, f.renewals, f.notes, f.rollbacks)
	}
	if f.reads != week {
		t.Fatalf("%d provider reads for %d judgements, want one per judgement for every provider signal", f.reads, week)
	}
	if runs < week/15 {
		t.Fatalf("%d runs for %d judgements: the monitor did not continue as new", runs, week)
	}
}

// A revoked token of one subject is presented again and again from two addresses: one incident,
// the subject revoked once as of the incident's opening, one notification naming subject, client
// and addresses; another subject below the threshold is left alone, across continue-as-new.
func TestTokenMonitor_RevokedTokenPresentedFromTwoAddresses_OneIncidentSubjectRevokedOnce(t *testing.T) {
	f := &monitorFakes{}
	f.uses = func(now time.Time, in activities.RevokedUsesInput) activities.RevokedUsesReport {
		if in.IssuerURL != "https://issuer.example.com/orders" || now.Sub(in.Since) > 2*time.Minute {
			t.Errorf("uses asked for %+v at %s, want the issuer's since the last judgement", in, now)
		}
		return activities.RevokedUsesReport{Subjects: []registry.SubjectUses{
			{Subject: "alice", Clients: []string{"billing"}, Addresses: []string{"10.0.0.1", "10.0.0.2"}, Tokens: []string{"j-alice"}, JTIs: 1, Count: 7},
			{Subject: "bob", Clients: []string{"reports"}, Addresses: []string{"10.0.0.9"}, JTIs: 1, Count: 1},
		}}
	}
	f.latest = activities.LatestReleases{Releases: []activities.LatestRelease{{Target: activities.Target{APIID: "api1", Stage: "prod"}}}}
	in := monitorSpec()
	in.RevokedUses = workflows.RevokedUsesPolicy{Threshold: 3, Actions: []string{"notify", "revoke", "revoke-family"}}
	rep, _ := runMonitor(t, f, in, monitorStart, 45)
	if len(f.families) != 1 || !slices.Equal(f.families[0].JTIs, []string{"j-alice"}) {
		t.Fatalf("families revoked %+v, want j-alice's once", f.families)
	}
	if len(f.flushes) != 2 || f.flushes[0].APIID != "api1" {
		t.Fatalf("flushes %+v, want api1/prod after each revocation", f.flushes)
	}

	if len(f.rules) != 1 || f.rules[0].Scope != registry.BySubject || f.rules[0].Value != "alice" || !f.rules[0].Before.Equal(monitorStart) {
		t.Fatalf("revocations %+v, want alice's tokens issued before %s, once", f.rules, monitorStart)
	}
	if len(f.notes) != 1 {
		t.Fatalf("%d notifications, want 1: %q", len(f.notes), f.notes)
	}
	for _, want := range []string{"alice", "billing", "10.0.0.1", "10.0.0.2", "revoked every token of subject alice", "revoked the 1 tokens that replaced", "api1/prod flushed"} {
		if !strings.Contains(f.notes[0], want) {
			t.Fatalf("notification %q does not name %s", f.notes[0], want)
		}
	}
	if strings.Contains(f.notes[0], "bob") || len(rep.Open) != 1 || rep.Open[0].Key != "alice" || rep.Open[0].Signal != workflows.SignalRevokedPresented {
		t.Fatalf("open incidents %+v, note %q: want alice's only", rep.Open, f.notes[0])
	}
	for _, a := range rep.Open[0].Actions {
		if !a.Done || a.Attempts != 1 || a.Reason == "" {
			t.Fatalf("action %+v: want done once with its reason", a)
		}
	}
}

// A client whose token nears expiry has no newer token (it never picked up a renewal): found
// within the last tenth of the token's lifetime, renewed once before expiry, and the incident
// closes once the client is renewed.
func TestTokenMonitor_ClientWithoutRenewal_ReissuedBeforeExpiry(t *testing.T) {
	f := &monitorFakes{}
	issued, expires := monitorStart, monitorStart.Add(time.Hour)
	f.expiring = func(in activities.ExpiringInput) activities.ExpiringReport {
		f.mu.Lock()
		defer f.mu.Unlock()
		left := expires.Sub(in.Now)
		if len(f.renewals) > 0 || left <= 0 || left > time.Duration(in.Fraction*float64(time.Hour)) {
			return activities.ExpiringReport{}
		}
		return activities.ExpiringReport{Tokens: []activities.ExpiringToken{{Client: "reports", Subject: "reports", JTI: "j1", KID: "rollgate-orders-v1", IssuedAt: issued, ExpiresAt: expires}}}
	}
	in := monitorSpec()
	in.RevokedUses.Off = true
	in.CloseAfter = 10 * time.Minute
	in.ExpiringRenewal = workflows.RenewalPolicy{Actions: []string{"reissue", "notify"}}
	rep, _ := runMonitor(t, f, in, monitorStart, 90)

	if len(f.renewals) != 1 || !f.renewed[0].Before(expires) || f.renewed[0].Before(expires.Add(-6*time.Minute)) {
		t.Fatalf("renewals %+v at %v, want one in the last 6 minutes before %s", f.renewals, f.renewed, expires)
	}
	if r := f.renewals[0]; r.Token.JTI != "j1" || r.Token.Client != "reports" || r.Token.ExpiresAt.Sub(r.Token.IssuedAt) != time.Hour || r.Issuer.Key.Name != "rollgate-orders" {
		t.Fatalf("renewal %+v", r)
	}
	if len(f.notes) != 1 || !strings.Contains(f.notes[0], "reports") || !strings.Contains(f.notes[0], "reissued client reports") {
		t.Fatalf("notifications %q, want one naming the client and the reissue", f.notes)
	}
	if len(rep.Open) != 0 || rep.Closed != 1 {
		t.Fatalf("report %+v, want the incident closed", rep)
	}
}

// Bad specs fail before the monitor reads or acts, naming the field and what is allowed.
func TestTokenMonitor_InvalidSpec_RejectedBeforeAnyActivity(t *testing.T) {
	for _, tc := range []struct {
		name  string
		edit  func(*workflows.MonitorSpec)
		field string
	}{
		{"interval too short", func(s *workflows.MonitorSpec) { s.Interval = time.Second }, "Interval"},
		{"unknown action", func(s *workflows.MonitorSpec) { s.RevokedUses.Actions = []string{"reissue"} }, "RevokedUses.Actions[0]"},
		{"notify without webhook", func(s *workflows.MonitorSpec) { s.Webhook = "" }, "Webhook"},
		{"fraction above a half", func(s *workflows.MonitorSpec) { s.ExpiringRenewal.Fraction = 0.9 }, "ExpiringRenewal.Fraction"},
		{"nothing to watch", func(s *workflows.MonitorSpec) {
			s.RevokedUses.Off, s.ExpiringRenewal.Off, s.ExpiredUses.Off = true, true, true
		}, "Off"},
		{"no actor", func(s *workflows.MonitorSpec) { s.Actor = "" }, "Actor"},
		{"expired: unknown action", func(s *workflows.MonitorSpec) { s.ExpiredUses.Actions = []string{"revoke"} }, "ExpiredUses.Actions[0]"},
		{"issuance: ratio below one", func(s *workflows.MonitorSpec) { s.IssuanceRate = workflows.IssuancePolicy{On: true, MaxRatio: 0.2} }, "IssuanceRate.MaxRatio"},
		{"disable-key without keys", func(s *workflows.MonitorSpec) { s.RevokedUses.Actions = []string{"disable-key"} }, "APIKeys"},
		{"keys unsorted", func(s *workflows.MonitorSpec) {
			s.APIKeys = []workflows.ClientAPIKey{{Client: "b", KeyID: "k1"}, {Client: "a", KeyID: "k2"}}
		}, "APIKeys[1].Client"},
		{"bad key id", func(s *workflows.MonitorSpec) { s.APIKeys = []workflows.ClientAPIKey{{Client: "a", KeyID: "k/1"}} }, "APIKeys[0].KeyID"},
		{"unknown provider", func(s *workflows.MonitorSpec) { s.Provider = "datadog" }, "Provider"},
		{"rollback on staleness", func(s *workflows.MonitorSpec) {
			s.Provider, s.VerifierStale.Actions = "prometheus", []string{"rollback"}
		}, "VerifierStale.Actions[0]"},
		{"revoke on unknown kids", func(s *workflows.MonitorSpec) { s.Provider, s.UnknownKID.Actions = "prometheus", []string{"revoke"} }, "UnknownKID.Actions[0]"},
		{"ratio below one", func(s *workflows.MonitorSpec) { s.Provider, s.BadSignature.MaxRatio = "prometheus", 0.5 }, "BadSignature.MaxRatio"},
		{"baseline too long", func(s *workflows.MonitorSpec) { s.Provider, s.UnknownKID.Baseline = "prometheus", 5000 }, "UnknownKID.Baseline"},
		{"release window too long", func(s *workflows.MonitorSpec) { s.Provider, s.UnknownKID.ReleaseWindow = "prometheus", 48*time.Hour }, "UnknownKID.ReleaseWindow"},
		{"rollback without a provider", func(s *workflows.MonitorSpec) { s.UnknownKID.Actions = []string{"notify", "rollback"} }, "UnknownKID.Actions"},
		{"bad-signature rollback without a provider", func(s *workflows.MonitorSpec) { s.BadSignature.Actions = []string{"rollback"} }, "BadSignature.Actions"},
		{"disable-key with issuance off", func(s *workflows.MonitorSpec) {
			s.IssuanceRate.Actions, s.APIKeys = []string{"disable-key"}, []workflows.ClientAPIKey{{Client: "a", KeyID: "k1"}}
		}, "IssuanceRate.Actions"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &monitorFakes{uses: func(time.Time, activities.RevokedUsesInput) activities.RevokedUsesReport {
				t.Error("the monitor read the registry with a bad spec")
				return activities.RevokedUsesReport{}
			}}
			in := monitorSpec()
			tc.edit(&in)
			env := f.env()
			env.ExecuteWorkflow(workflows.TokenMonitor, in)
			err := env.GetWorkflowError()
			if err == nil || !strings.Contains(err.Error(), tc.field) || !strings.Contains(err.Error(), workflows.ErrInvalidSpec) {
				t.Fatalf("error %v, want an InvalidSpec naming %s", err, tc.field)
			}
		})
	}
}

// Uses of a revoked token that named no subject (the registry records "-") are notified, never
// revoked by subject: a rule for "-" would revoke nothing anyone meant.
func TestTokenMonitor_UsesWithoutSubject_NotifiedNotRevoked(t *testing.T) {
	f := &monitorFakes{uses: func(time.Time, activities.RevokedUsesInput) activities.RevokedUsesReport {
		return activities.RevokedUsesReport{Subjects: []registry.SubjectUses{{Subject: "-", Clients: []string{"-"}, Addresses: []string{"10.0.0.3"}, JTIs: 1, Count: 2}}}
	}}
	in := monitorSpec()
	in.RevokedUses.Actions = []string{"revoke", "notify"}
	rep, _ := runMonitor(t, f, in, monitorStart, 5)
	if len(f.rules) != 0 || len(f.notes) != 1 || !strings.Contains(f.notes[0], "revoke failed: the uses name no subject") {
		t.Fatalf("rules %+v, notes %q", f.rules, f.notes)
	}
	if a := rep.Open[0].Actions[0]; a.Done || a.Attempts != 3 {
		t.Fatalf("revoke %+v: want given up after 3 attempts", a)
	}
}

// providerSpec is a monitor that reads only the gateways' authorizer signals.
func providerSpec() workflows.MonitorSpec {
	in := monitorSpec()
	in.RevokedUses.Off, in.ExpiringRenewal.Off = true, true
	in.Provider = "cloudwatch"
	return in
}

func unknownKIDs(byRelease map[string]float64) analysis.EventCounts {
	c := analysis.EventCounts{HasData: true, Verifications: 10000}
	for _, r := range []string{"run-b", "run-c", "unknown"} {
		if n := byRelease[r]; n > 0 {
			c.Rejected = append(c.Rejected, analysis.RejectionCount{Reason: "unknown_kid", Release: r, Count: n})
		}
	}
	return c
}

// A burst of forged kids right after a release: one incident opened within two intervals of the
// burst, the release whose traffic carried the rejections (promoted 5 minutes before) rolled
// back once by its id and verified, then one notification saying so; a stage released hours ago
// is left alone, across continue-as-new.
func TestTokenMonitor_ForgedKidBurstAfterARelease_IncidentWithinTwoIntervalsAndTheReleaseRolledBack(t *testing.T) {
	burst := monitorStart.Add(20 * time.Minute)
	f := &monitorFakes{}
	f.events = func(now time.Time, in activities.IssuerEventsInput) analysis.EventCounts {
		if in.Provider != "cloudwatch" || in.IssuerURL != "https://issuer.example.com/orders" || in.Now.Sub(in.Since) != time.Minute && !in.Since.Equal(monitorStart.Add(-time.Minute)) {
			t.Errorf("events asked for %+v", in)
		}
		if now.Before(burst.Add(time.Second)) {
			return unknownKIDs(map[string]float64{"unknown": 2})
		}
		return unknownKIDs(map[string]float64{"run-b": 480, "run-c": 3, "unknown": 20})
	}
	f.latest = activities.LatestReleases{Releases: []activities.LatestRelease{
		{Target: activities.Target{APIID: "api1", Stage: "prod"}, ID: "20261123T001500-rb", Label: "run-b", PromotedAt: burst.Add(-5 * time.Minute), Rotated: true},
		{Target: activities.Target{APIID: "api2", Stage: "prod"}, ID: "20261122T210000-rc", Label: "run-c", PromotedAt: burst.Add(-3 * time.Hour)},
	}}
	in := providerSpec()
	in.UnknownKID.Actions = []string{"notify", "rollback"}
	rep, _ := runMonitor(t, f, in, monitorStart, 45)

	if len(rep.Open) != 1 {
		t.Fatalf("open incidents %+v, want one", rep.Open)
	}
	inc := rep.Open[0]
	if inc.Signal != workflows.SignalUnknownKID || inc.OpenedAt.Before(burst) || inc.OpenedAt.Sub(burst) > 2*time.Minute {
		t.Fatalf("incident %s opened at %s, want unknown_kid within two intervals of the burst at %s", inc.Signal, inc.OpenedAt, burst)
	}
	if len(f.rollbacks) != 1 || f.rollbacks[0].APIID != "api1" || f.rollbacks[0].Stage != "prod" || f.rollbacks[0].Release != "20261123T001500-rb" || f.rollbacks[0].Actor == "" {
		t.Fatalf("rollbacks %+v, want api1/prod's release 20261123T001500-rb once", f.rollbacks)
	}
	if len(f.notes) != 1 {
		t.Fatalf("%d notifications, want 1: %q", len(f.notes), f.notes)
	}
	for _, want := range []string{"503 unknown_kid", "run-b 480", "rolled back release 20261123T001500-rb", "api1/prod", "verified"} {
		if !strings.Contains(f.notes[0], want) {
			t.Fatalf("notification %q does not say %q", f.notes[0], want)
		}
	}
}

// Without a release promoted shortly before, the rollback action finds nothing to roll back and
// says so; the incident is notified once.
func TestTokenMonitor_ForgedKidBurstWithNoRecentRelease_NothingRolledBack(t *testing.T) {
	f := &monitorFakes{events: func(time.Time, activities.IssuerEventsInput) analysis.EventCounts {
		return unknownKIDs(map[string]float64{"run-c": 300})
	}}
	f.latest = activities.LatestReleases{Releases: []activities.LatestRelease{
		{Target: activities.Target{APIID: "api2", Stage: "prod"}, ID: "old", Label: "run-c", PromotedAt: monitorStart.Add(-3 * time.Hour)}}}
	in := providerSpec()
	in.UnknownKID.Actions = []string{"rollback", "notify"}
	runMonitor(t, f, in, monitorStart, 5)
	if len(f.rollbacks) != 0 || len(f.notes) != 1 || !strings.Contains(f.notes[0], "nothing rolled back") {
		t.Fatalf("rollbacks %+v, notes %q", f.rollbacks, f.notes)
	}
}

// A release label that is the latest release of two stages (a spec that names its label, "v2",
// released to staging then prod; a proxy that sets the same header for both) does not tell which
// stage's traffic carried the rejections: the monitor rolls back neither and says why, rather
// than the first stage in order (here prod, for forged kids sent to staging).
func TestTokenMonitor_ForgedKidBurstUnderALabelTwoStagesShare_NeitherRolledBack(t *testing.T) {
	burst := monitorStart.Add(3 * time.Minute)
	f := &monitorFakes{events: func(now time.Time, _ activities.IssuerEventsInput) analysis.EventCounts {
		c := analysis.EventCounts{HasData: true, Verifications: 10000}
		if !now.Before(burst) {
			c.Rejected = []analysis.RejectionCount{{Reason: "unknown_kid", Release: "v2", Count: 400}}
		}
		return c
	}}
	f.latest = activities.LatestReleases{Releases: []activities.LatestRelease{
		{Target: activities.Target{APIID: "api1", Stage: "prod"}, ID: "20261123T000100-p", Label: "v2", PromotedAt: monitorStart.Add(-5 * time.Minute), Rotated: true},
		{Target: activities.Target{APIID: "api1", Stage: "staging"}, ID: "20261122T230000-s", Label: "v2", PromotedAt: monitorStart.Add(-40 * time.Minute)},
	}}
	in := providerSpec()
	in.UnknownKID.Actions = []string{"rollback", "notify"}
	runMonitor(t, f, in, monitorStart, 6)
	if len(f.rollbacks) != 0 {
		t.Fatalf("rolled back %+v: the label names two stages' releases", f.rollbacks)
	}
	if len(f.notes) != 1 || !strings.Contains(f.notes[0], "nothing rolled back") || !strings.Contains(f.notes[0], "api1/prod") || !strings.Contains(f.notes[0], "api1/staging") {
		t.Fatalf("notes %q, want one saying nothing was rolled back and naming both stages", f.notes)
	}
}

// A steady background of forged kids below the threshold is learned as the baseline: an
// interval above the threshold but at twice the baseline opens nothing, one above three times
// it opens one incident.
func TestTokenMonitor_SteadyForgeryBackground_LearnedAndOnlyABurstAboveItAlerts(t *testing.T) {
	f := &monitorFakes{events: func(now time.Time, _ activities.IssuerEventsInput) analysis.EventCounts {
		switch m := now.Sub(monitorStart) / time.Minute; {
		case m == 20:
			return unknownKIDs(map[string]float64{"unknown": 100}) // twice the baseline
		case m >= 30:
			return unknownKIDs(map[string]float64{"unknown": 160}) // above three times it
		default:
			return unknownKIDs(map[string]float64{"unknown": 50})
		}
	}}
	in := providerSpec()
	in.UnknownKID.Threshold = 60
	rep, _ := runMonitor(t, f, in, monitorStart, 35)
	if len(rep.Open) != 1 || !rep.Open[0].OpenedAt.Equal(monitorStart.Add(30*time.Minute)) {
		t.Fatalf("open incidents %+v, want one opened at minute 30", rep.Open)
	}
	if e := rep.Open[0].Evidence; e.Baseline != 50 || e.Rejections != 160 {
		t.Fatalf("evidence %+v, want 160 rejections against a baseline of 50", e)
	}
	if len(f.notes) != 1 || !strings.Contains(f.notes[0], "baseline 50") {
		t.Fatalf("notifications %q, want one naming the baseline", f.notes)
	}
}

// A monitor started on an issuer with a steady background above the threshold alerts once while
// its baseline is young, learns the background, closes that incident once quiet, and opens a new
// one for a burst above three times the background.
func TestTokenMonitor_NoisyIssuerAtStart_OneIncidentThenLearnedThenABurstAlertsAgain(t *testing.T) {
	f := &monitorFakes{events: func(now time.Time, _ activities.IssuerEventsInput) analysis.EventCounts {
		if now.Sub(monitorStart) == 30*time.Minute {
			return unknownKIDs(map[string]float64{"unknown": 200})
		}
		return unknownKIDs(map[string]float64{"unknown": 50})
	}}
	in := providerSpec()
	in.CloseAfter = 10 * time.Minute
	rep, _ := runMonitor(t, f, in, monitorStart, 35)
	if rep.Closed != 1 || len(rep.Open) != 1 || !rep.Open[0].OpenedAt.Equal(monitorStart.Add(30*time.Minute)) || rep.Open[0].Evidence.Baseline != 50 {
		t.Fatalf("closed %d, open %+v: want the start-up incident closed and the burst's open against a baseline of 50", rep.Closed, rep.Open)
	}
	if len(f.notes) != 2 {
		t.Fatalf("%d notifications, want 2 (start-up, burst): %q", len(f.notes), f.notes)
	}
}

// Decisions taken on a stale deny list, and tokens refused for want of a key set, are notified
// once while they go on.
func TestTokenMonitor_StaleDenyList_NotifiedOnce(t *testing.T) {
	f := &monitorFakes{events: func(now time.Time, _ activities.IssuerEventsInput) analysis.EventCounts {
		c := analysis.EventCounts{HasData: true, Verifications: 900}
		if now.Sub(monitorStart) >= 3*time.Minute {
			c.Stale = 40
			c.Rejected = []analysis.RejectionCount{{Reason: "jwks_unavailable", Release: "run-1", Count: 5}, {Reason: "expired", Release: "run-1", Count: 9}}
		}
		return c
	}}
	in := providerSpec()
	in.UnknownKID.Off, in.BadSignature.Off = true, true
	rep, _ := runMonitor(t, f, in, monitorStart, 10)
	if len(rep.Open) != 1 || rep.Open[0].Signal != workflows.SignalVerifierStale || len(f.notes) != 1 || !strings.Contains(f.notes[0], "40 decisions") ||
		!strings.Contains(f.notes[0], "5 tokens refused for want of a key set") {
		t.Fatalf("open %+v, notes %q", rep.Open, f.notes)
	}
}

// A client keeps presenting its expired token (it does not renew): one incident for the client,
// a token of the key's current version reissued once, one notification; when the client already
// holds a valid token it does not fetch, nothing is reissued and the notification says so.
func TestTokenMonitor_ClientPresentingAnExpiredToken_ReissuedOnceOrToldItDoesNotFetch(t *testing.T) {
	for _, held := range []bool{false, true} {
		t.Run(fmt.Sprintf("held=%v", held), func(t *testing.T) {
			f := &monitorFakes{held: held, expired: func(now time.Time) activities.ExpiredUsesReport {
				if now.Before(monitorStart.Add(3 * time.Minute)) {
					return activities.ExpiredUsesReport{}
				}
				return activities.ExpiredUsesReport{Clients: []registry.ClientUses{{Client: "reports", Subject: "reports", LatestJTI: "j-old", Addresses: []string{"10.0.0.5"}, JTIs: 1, Count: 4}}}
			}}
			in := monitorSpec()
			in.RevokedUses.Off, in.ExpiringRenewal.Off = true, true
			in.ExpiredUses.Actions = []string{"notify", "reissue"}
			rep, _ := runMonitor(t, f, in, monitorStart, 30)
			if len(f.presented) != 1 || f.presented[0].Client != "reports" || f.presented[0].JTI != "j-old" || f.presented[0].Version != 4 {
				t.Fatalf("renewals %+v, want one for reports' j-old with the current version 4", f.presented)
			}
			want := "reissued client reports a token (jti new-1"
			if held {
				want = "nothing reissued: client reports already holds valid token held-1"
			}
			if len(f.notes) != 1 || !strings.Contains(f.notes[0], want) || !strings.Contains(f.notes[0], "10.0.0.5") {
				t.Fatalf("notifications %q, want one saying %q", f.notes, want)
			}
			if len(rep.Open) != 1 || rep.Open[0].Signal != workflows.SignalExpiredPresented || rep.Open[0].Key != "reports" {
				t.Fatalf("open incidents %+v", rep.Open)
			}
		})
	}
}

// Issuance by client against each client's baseline, across continue-as-new: a client issued 5
// tokens a minute is learned; 12 in a minute (above the threshold, not above three times the
// baseline) is quiet, 40 opens an incident; a client issued 2 a minute, then nothing, is quiet,
// and so are clients beyond the room for baselines below the threshold.
func TestTokenMonitor_IssuanceRate_ABurstAboveAClientsBaselineAlerts(t *testing.T) {
	f := &monitorFakes{issued: func(in activities.IssuedInput) activities.IssuedReport {
		if in.Key != "rollgate-orders" || !in.Until.After(in.Since) {
			t.Errorf("issued asked for %+v", in)
		}
		m := in.Until.Sub(monitorStart) / time.Minute
		rep := activities.IssuedReport{Clients: []activities.ClientIssued{{Client: "reports", Count: 5}}}
		if m < 20 {
			rep.Clients = append(rep.Clients, activities.ClientIssued{Client: "billing", Count: 2})
		}
		switch m {
		case 22:
			rep.Clients[0].Count = 12
		case 30:
			rep.Clients[0].Count = 40
		}
		if m == 25 {
			for i := range workflows.MaxIssuanceClients + 5 {
				rep.Clients = append(rep.Clients, activities.ClientIssued{Client: fmt.Sprintf("batch-%02d", i), Count: 1})
			}
		}
		return rep
	}}
	in := monitorSpec()
	in.RevokedUses.Off, in.ExpiringRenewal.Off, in.ExpiredUses.Off = true, true, true
	in.IssuanceRate = workflows.IssuancePolicy{On: true, Threshold: 6}
	rep, _ := runMonitor(t, f, in, monitorStart, 35)
	if len(rep.Open) != 1 || rep.Open[0].Key != "reports" || !rep.Open[0].OpenedAt.Equal(monitorStart.Add(30*time.Minute)) {
		t.Fatalf("open incidents %+v, want reports' at minute 30 only", rep.Open)
	}
	if e := rep.Open[0].Evidence; e.Issued != 40 || e.Baseline != 5 {
		t.Fatalf("evidence %+v, want 40 issued against a baseline of 5", e)
	}
	if len(f.notes) != 1 || !strings.Contains(f.notes[0], "client reports was issued 40 tokens") {
		t.Fatalf("notifications %q", f.notes)
	}
}

func TestTokenMonitor_IssuanceRate_ManyClientsKeepTheCarryBounded(t *testing.T) {
	f := &monitorFakes{issued: func(activities.IssuedInput) activities.IssuedReport {
		var rep activities.IssuedReport
		for i := range 3 * workflows.MaxIssuanceClients {
			rep.Clients = append(rep.Clients, activities.ClientIssued{Client: fmt.Sprintf("c-%03d", i), Count: 2})
		}
		return rep
	}}
	in := monitorSpec()
	in.RevokedUses.Off, in.ExpiringRenewal.Off, in.ExpiredUses.Off = true, true, true
	in.IssuanceRate = workflows.IssuancePolicy{On: true, Threshold: 3}
	in.Carry = &workflows.MonitorCarry{}
	env := f.env()
	env.SetStartTime(monitorStart)
	env.ExecuteWorkflow(workflows.TokenMonitor, in)
	var can *workflow.ContinueAsNewError
	if err := env.GetWorkflowError(); !errors.As(err, &can) {
		t.Fatalf("want a continue-as-new after 15 judgements, got %v", err)
	}
	var next workflows.MonitorSpec
	if err := converter.GetDefaultDataConverter().FromPayloads(can.Input, &next); err != nil {
		t.Fatal(err)
	}
	if n := len(next.Carry.Baselines); n != workflows.MaxIssuanceClients {
		t.Fatalf("%d baselines carried, want %d", n, workflows.MaxIssuanceClients)
	}
	if len(next.Carry.Incidents) != 0 || len(f.notes) != 0 {
		t.Fatalf("incidents %+v, notes %q: two tokens a minute is below the threshold", next.Carry.Incidents, f.notes)
	}
}

// The issuance baselines full, a client that learned only quiet intervals over its whole window
// (it stopped issuing) gives its place to a client without one; clients that issue keep theirs.
func TestTokenMonitor_IssuanceRate_AnIdleClientsBaselineGoesToANewClient(t *testing.T) {
	for _, c := range []struct {
		name        string
		othersIssue bool // one token each interval
		moved       bool
	}{
		{"idle for a whole window", false, true},
		{"issuing", true, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := &monitorFakes{issued: func(activities.IssuedInput) activities.IssuedReport {
				rep := activities.IssuedReport{Clients: []activities.ClientIssued{{Client: "late", Count: 2}}}
				for i := range workflows.MaxIssuanceClients {
					if c.othersIssue {
						rep.Clients = append(rep.Clients, activities.ClientIssued{Client: fmt.Sprintf("c-%02d", i), Count: 1})
					}
				}
				return rep
			}}
			in := monitorSpec()
			in.RevokedUses.Off, in.ExpiringRenewal.Off, in.ExpiredUses.Off = true, true, true
			in.IssuanceRate = workflows.IssuancePolicy{On: true, Threshold: 3, Baseline: 5}
			in.Carry = &workflows.MonitorCarry{}
			for i := range workflows.MaxIssuanceClients {
				in.Carry.Baselines = append(in.Carry.Baselines, workflows.Baseline{Signal: workflows.SignalIssuanceRate, Key: fmt.Sprintf("c-%02d", i), Values: []float64{1, 1, 1, 1, 1}})
			}
			env := f.env()
			env.SetStartTime(monitorStart)
			env.ExecuteWorkflow(workflows.TokenMonitor, in)
			var can *workflow.ContinueAsNewError
			if err := env.GetWorkflowError(); !errors.As(err, &can) {
				t.Fatalf("want a continue-as-new, got %v", err)
			}
			var next workflows.MonitorSpec
			if err := converter.GetDefaultDataConverter().FromPayloads(can.Input, &next); err != nil {
				t.Fatal(err)
			}
			keys := map[string][]float64{}
			for _, b := range next.Carry.Baselines {
				keys[b.Key] = b.Values
			}
			late, learned := keys["late"]
			if len(keys) != workflows.MaxIssuanceClients || learned != c.moved || (c.moved && !slices.Equal(late, []float64{2, 2, 2, 2, 2})) {
				t.Fatalf("%d baselines, late's %v (%t); want late's learned: %t", len(keys), late, learned, c.moved)
			}
			if _, kept := keys["c-00"]; kept == c.moved {
				t.Fatalf("c-00's baseline kept: %t, want %t", kept, !c.moved)
			}
		})
	}
}

// A revoked token of alice, presented by the billing client: billing's API key is disabled once,
// the other clients' keys are left alone, and the notification says which key; a client with no
// known key is told apart.
func TestTokenMonitor_DisableKey_DisablesOnlyThePresentingClientsKeyOnce(t *testing.T) {
	f := &monitorFakes{uses: func(time.Time, activities.RevokedUsesInput) activities.RevokedUsesReport {
		return activities.RevokedUsesReport{Subjects: []registry.SubjectUses{
			{Subject: "alice", Clients: []string{"billing", "mobile"}, Addresses: []string{"10.0.0.1"}, JTIs: 1, Count: 3}}}
	}}
	in := monitorSpec()
	in.RevokedUses.Actions = []string{"disable-key", "notify"}
	in.APIKeys = []workflows.ClientAPIKey{{Client: "billing", KeyID: "k1billing"}, {Client: "reports", KeyID: "k2reports"}}
	runMonitor(t, f, in, monitorStart, 20)
	if len(f.disabled) != 1 || f.disabled[0].KeyID != "k1billing" || f.disabled[0].Enabled {
		t.Fatalf("keys disabled %+v, want billing's k1billing once", f.disabled)
	}
	if len(f.notes) != 1 || !strings.Contains(f.notes[0], "disabled API keys k1billing (client billing)") {
		t.Fatalf("notifications %q", f.notes)
	}
}

// Expired tokens of many clients presented at once (old tokens replayed from a leak, a fleet
// that stopped renewing) cannot fill the incident table so that a stolen revoked token presented
// next goes unseen: every signal keeps room of its own, and the subject is revoked.
func TestTokenMonitor_ManyExpiredTokensPresented_ARevokedTokenStillOpensItsIncident(t *testing.T) {
	f := &monitorFakes{expired: func(time.Time) activities.ExpiredUsesReport {
		var rep activities.ExpiredUsesReport
		for i := range 120 {
			c := fmt.Sprintf("client-%03d", i)
			rep.Clients = append(rep.Clients, registry.ClientUses{Client: c, Subject: c, LatestJTI: "old-" + c, Addresses: []string{"198.51.100.7"}, JTIs: 1, Count: 1})
		}
		return rep
	}}
	f.uses = func(now time.Time, _ activities.RevokedUsesInput) activities.RevokedUsesReport {
		if now.Before(monitorStart.Add(2 * time.Minute)) {
			return activities.RevokedUsesReport{}
		}
		return activities.RevokedUsesReport{Subjects: []registry.SubjectUses{{Subject: "alice", Clients: []string{"billing"}, Addresses: []string{"203.0.113.9"}, Tokens: []string{"j-alice"}, JTIs: 1, Count: 1}}}
	}
	in := monitorSpec()
	in.RevokedUses.Actions = []string{"revoke", "notify"}
	rep, _ := runMonitor(t, f, in, monitorStart, 5)
	if len(f.rules) != 1 || f.rules[0].Value != "alice" {
		t.Fatalf("revocations %+v, want alice's (open incidents %d)", f.rules, len(rep.Open))
	}
	if len(rep.Open) > workflows.MaxOpenIncidents {
		t.Fatalf("%d open incidents, at most %d", len(rep.Open), workflows.MaxOpenIncidents)
	}
}

// Unknown kids after a release that did not rotate the signing key cannot be the release's doing
// (its key set is the one before): they are forgeries, and rolling the release back would only
// hand whoever sends them a way to undo any release. The incident is notified, nothing rolled
// back.
func TestTokenMonitor_ForgedKidBurstAfterAReleaseThatDidNotRotate_NothingRolledBack(t *testing.T) {
	burst := monitorStart.Add(3 * time.Minute)
	f := &monitorFakes{events: func(now time.Time, _ activities.IssuerEventsInput) analysis.EventCounts {
		if now.Before(burst) {
			return unknownKIDs(nil)
		}
		return unknownKIDs(map[string]float64{"run-b": 400})
	}}
	f.latest = activities.LatestReleases{Releases: []activities.LatestRelease{
		{Target: activities.Target{APIID: "api1", Stage: "prod"}, ID: "20261123T000100-rb", Label: "run-b", PromotedAt: monitorStart.Add(-5 * time.Minute)}}}
	in := providerSpec()
	in.UnknownKID.Actions = []string{"rollback", "notify"}
	runMonitor(t, f, in, monitorStart, 6)
	if len(f.rollbacks) != 0 || len(f.notes) != 1 || !strings.Contains(f.notes[0], "nothing rolled back") {
		t.Fatalf("rollbacks %+v, notes %q: want none, one notification saying so", f.rollbacks, f.notes)
	}
}

// An issuer with more stages than the release history lists for a flush: the monitor's
// revocation flushes those it lists and says that the others were not, as a revocation's report
// does, rather than that the issuer's caches were flushed.
func TestTokenMonitor_RevocationFlush_SaysWhichStagesWereNotFlushed(t *testing.T) {
	f := &monitorFakes{beyond: 3, uses: func(time.Time, activities.RevokedUsesInput) activities.RevokedUsesReport {
		return activities.RevokedUsesReport{Subjects: []registry.SubjectUses{{Subject: "alice", Clients: []string{"billing"}, Addresses: []string{"10.0.0.1"}, JTIs: 1, Count: 3}}}
	}}
	f.latest = activities.LatestReleases{Releases: []activities.LatestRelease{{Target: activities.Target{APIID: "api1", Stage: "prod"}}}}
	in := monitorSpec()
	in.RevokedUses.Actions = []string{"revoke", "notify"}
	runMonitor(t, f, in, monitorStart, 5)
	if len(f.notes) != 1 || !strings.Contains(f.notes[0], "api1/prod flushed") || !strings.Contains(f.notes[0], "3 more stages of the issuer") {
		t.Fatalf("notifications %q, want the flush of api1/prod and the 3 stages not flushed", f.notes)
	}
}

// The status query says what each open incident is about, in its signal's terms (the body of its
// notification); the carried incidents hold no summary.
func TestTokenMonitor_StatusQuery_SummarisesEachIncident(t *testing.T) {
	f := &monitorFakes{uses: func(time.Time, activities.RevokedUsesInput) activities.RevokedUsesReport {
		return activities.RevokedUsesReport{Subjects: []registry.SubjectUses{
			{Subject: "alice", Clients: []string{"billing"}, Addresses: []string{"10.0.0.1"}, JTIs: 1, Count: 4}}}
	}}
	in := monitorSpec()
	in.RevokedUses = workflows.RevokedUsesPolicy{Threshold: 3, Actions: []string{"notify"}}
	env := f.env()
	env.SetStartTime(monitorStart)
	var st workflows.MonitorStatus
	env.RegisterDelayedCallback(func() {
		v, err := env.QueryWorkflow(workflows.QueryMonitorStatus)
		if err != nil {
			t.Errorf("query: %v", err)
			return
		}
		if err := v.Get(&st); err != nil {
			t.Errorf("status: %v", err)
		}
		env.UpdateWorkflow(workflows.UpdateStopMonitor, "stop", &testsuite.TestUpdateCallback{
			OnAccept: func() {}, OnReject: func(err error) { t.Errorf("stop rejected: %v", err) }, OnComplete: func(any, error) {},
		}, workflows.StopRequest{Actor: "test", Reason: "done"})
	}, 90*time.Second)
	env.ExecuteWorkflow(workflows.TokenMonitor, in)
	var rep workflows.MonitorReport
	if err := env.GetWorkflowResult(&rep); err != nil {
		t.Fatal(err)
	}
	if len(st.Incidents) != 1 || !strings.Contains(st.Incidents[0].Summary, "revoked tokens of subject alice still presented: 4 recorded uses by clients billing from addresses 10.0.0.1") {
		t.Fatalf("status incidents %+v, want alice's summarised", st.Incidents)
	}
	if len(rep.Open) != 1 || rep.Open[0].Summary != "" {
		t.Fatalf("reported incidents %+v, want alice's without a summary", rep.Open)
	}
}
