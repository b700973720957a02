package workflows

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/rollgate/rollgate/activities"
)

// maxActionError bounds a failed action's error text: incidents travel across continue-as-new.
const maxActionError = 300

// changeExpiredPresented: monitors judge expired tokens still presented; a run started before
// goes on without that signal until it continues as new.
const changeExpiredPresented = "monitor-expired-presented"

// changeJudgingRules: a young baseline learns every interval, breach or not, and verifier_stale
// counts tokens refused for want of a key set; a run started before judges as it did (a
// young baseline learns only quiet intervals; stale decisions alone) until it continues as new.
const changeJudgingRules = "monitor-judging-rules"

// changeIncidentRoom: every signal keeps room of its own in the incident table; a run started
// before lets the first signals to find something fill it, until it continues as new.
const changeIncidentRoom = "monitor-incident-room"

// changeIdleBaselines: a signal's baselines full, a client's that learned only quiet intervals
// over its whole window gives its place to a client without one; runs started before kept the
// first clients' baselines for good, and judged every later client by the threshold alone.
const changeIdleBaselines = "monitor-idle-baselines"

// incidentsReserved is the room in the incident table each signal keyed by subject or client is
// sure of, whatever the others find; a signal about the issuer as a whole needs one.
const incidentsReserved = 10

// monitor is one TokenMonitor run's state; carry is all that passes to the next run.
type monitor struct {
	spec  MonitorSpec
	carry MonitorCarry
	// youngLearnsAll: a baseline younger than MinBaselineIntervals learns breaches too.
	youngLearnsAll bool
	// reservesRoom: a signal opens no incident in the room the others keep (changeIncidentRoom).
	reservesRoom bool
	// freesIdle: an idle baseline gives its place to a key without one (changeIdleBaselines).
	freesIdle     bool
	signals       []monitorSignal
	status        []SignalStatus
	stopping      bool
	stoppedBy     string
	judgedThisRun int
	logger        log.Logger
}

func newMonitor(ctx workflow.Context, in MonitorSpec) *monitor {
	m := &monitor{spec: in, logger: log.With(workflow.GetLogger(ctx), "issuer", in.Issuer.URL)}
	if in.Carry != nil {
		m.carry = *in.Carry
	}
	m.spec.Carry = nil
	m.reservesRoom = workflow.GetVersion(ctx, changeIncidentRoom, workflow.DefaultVersion, 1) == 1
	if !in.RevokedUses.Off {
		m.signals = append(m.signals, revokedPresented{issuer: in.Issuer, policy: in.RevokedUses, keys: in.APIKeys})
	}
	if !in.ExpiringRenewal.Off {
		m.signals = append(m.signals, expiringUnrenewed{issuer: in.Issuer, policy: in.ExpiringRenewal})
	}
	if in.expiredOn() && workflow.GetVersion(ctx, changeExpiredPresented, workflow.DefaultVersion, 1) == 1 {
		m.signals = append(m.signals, expiredPresented{issuer: in.Issuer, policy: in.ExpiredUses})
	}
	if in.IssuanceRate.On {
		m.signals = append(m.signals, issuanceRate{issuer: in.Issuer, policy: in.IssuanceRate, keys: in.APIKeys})
		m.freesIdle = workflow.GetVersion(ctx, changeIdleBaselines, workflow.DefaultVersion, 1) == 1
	}
	unknownKID, badSignature, stale := in.providerSignalsOn()
	if in.IssuanceRate.On || unknownKID || badSignature || stale {
		m.youngLearnsAll = workflow.GetVersion(ctx, changeJudgingRules, workflow.DefaultVersion, 1) == 1
	}
	events := &issuerEvents{provider: in.Provider, issuer: in.Issuer.URL}
	if unknownKID {
		m.signals = append(m.signals, rejections{reason: SignalUnknownKID, events: events, policy: in.UnknownKID, issuer: in.Issuer, actor: in.Actor})
	}
	if badSignature {
		m.signals = append(m.signals, rejections{reason: SignalBadSignature, events: events, policy: in.BadSignature, issuer: in.Issuer, actor: in.Actor})
	}
	if stale {
		m.signals = append(m.signals, verifierStale{events: events, policy: in.VerifierStale, issuer: in.Issuer, countNoKeys: m.youngLearnsAll})
	}
	for _, s := range m.signals {
		m.status = append(m.status, SignalStatus{Name: s.name(), Threshold: s.threshold(), Actions: s.actions()})
	}
	return m
}

// setup registers the status query and the stop update; the validator refuses an anonymous stop
// without writing history.
func (m *monitor) setup(ctx workflow.Context) error {
	if err := workflow.SetQueryHandler(ctx, QueryMonitorStatus, func() (MonitorStatus, error) { return m.view(), nil }); err != nil {
		return err
	}
	return workflow.SetUpdateHandlerWithOptions(ctx, UpdateStopMonitor, func(_ workflow.Context, req StopRequest) error {
		m.stopping, m.stoppedBy = true, req.Actor
		m.logger.Info("monitor stopping", "actor", req.Actor, "reason", req.Reason)
		return nil
	}, workflow.UpdateHandlerOptions{Validator: func(req StopRequest) error {
		if strings.TrimSpace(req.Actor) == "" {
			return errors.New("Actor: required")
		}
		return nil
	}})
}

// run judges every interval until stopped, and continues as new once this run has judged
// maxJudgementsPerRun times or its history passed maxHistoryEvents.
func (m *monitor) run(ctx workflow.Context) (MonitorReport, error) {
	for !m.stopping {
		if wait := m.nextJudgement(ctx).Sub(workflow.Now(ctx)); wait > 0 {
			if _, err := workflow.AwaitWithTimeout(ctx, wait, func() bool { return m.stopping }); err != nil {
				return m.report(), err
			}
			if m.stopping {
				break
			}
		}
		m.judge(ctx)
		if m.judgedThisRun >= maxJudgementsPerRun || workflow.GetInfo(ctx).GetCurrentHistoryLength() > maxHistoryEvents {
			if err := workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) }); err != nil {
				return m.report(), err
			}
			if m.stopping {
				break
			}
			next, carry := m.spec, m.carry
			carry.Incidents = slices.Clone(carry.Incidents)
			next.Carry = &carry
			return MonitorReport{}, workflow.NewContinueAsNewError(ctx, TokenMonitor, next)
		}
	}
	m.logger.Info("monitor stopped", "actor", m.stoppedBy, "judgements", m.carry.Judgements)
	return m.report(), nil
}

// nextJudgement is now for a fresh monitor, else one interval after the last judgement: a run
// continued as new keeps the pace of the one before.
func (m *monitor) nextJudgement(ctx workflow.Context) time.Time {
	if m.carry.LastJudged.IsZero() {
		return workflow.Now(ctx)
	}
	return m.carry.LastJudged.Add(m.spec.interval())
}

// judge observes every signal, opens or refreshes incidents, acts on those with actions pending,
// and closes the quiet ones.
func (m *monitor) judge(ctx workflow.Context) {
	now := workflow.Now(ctx)
	since := m.carry.LastJudged
	if since.IsZero() {
		since = now.Add(-m.spec.interval())
	}
	for i, s := range m.signals {
		obs, err := s.observe(ctx, since, now)
		st := &m.status[i]
		st.Value, st.Truncated, st.Error = 0, obs.truncated, ""
		if err != nil {
			st.Error = causeMessage(err)
			m.logger.Warn("signal not observed", "signal", s.name(), "error", err)
			continue
		}
		for _, f := range obs.findings {
			st.Value = max(st.Value, f.value)
			if m.breaches(s, st, &f) {
				m.see(s, f, now)
			}
		}
		m.learnQuiet(s, obs.findings)
	}
	for i := range m.carry.Incidents {
		m.actOn(ctx, &m.carry.Incidents[i])
	}
	m.closeQuiet(now)
	m.carry.LastJudged = now
	m.carry.Judgements++
	m.judgedThisRun++
}

// baselined is a signal judged against what it learned from its quiet intervals.
type baselined interface {
	breaches(value float64, history []float64) bool
	baselineWindow() int
	// baselineKeys is how many keys the signal learns a baseline for.
	baselineKeys() int
}

// breaches judges a finding: against the threshold, or, for a signal that learns a baseline,
// by its rule against the finding key's baseline; a finding that breaches nothing is a quiet
// interval its baseline learns. A key beyond the signal's room for baselines is judged by the
// threshold alone.
func (m *monitor) breaches(s monitorSignal, st *SignalStatus, f *finding) bool {
	b, ok := s.(baselined)
	if !ok {
		return f.value >= s.threshold()
	}
	hist := m.baseline(s.name(), f.key, b.baselineKeys(), b.baselineWindow())
	if hist == nil {
		return b.breaches(f.value, nil)
	}
	f.evidence.Baseline = median(hist.Values)
	if f.value >= st.Value {
		st.Baseline, st.Learned = f.evidence.Baseline, len(hist.Values)
	}
	// While a baseline is young every interval is learned, breach or not: a monitor started on a
	// noisy issuer alerts once, then learns its normal. Once learned, a breach is left out, so
	// that an attack never becomes the normal.
	breach := b.breaches(f.value, hist.Values)
	if !breach || (m.youngLearnsAll && len(hist.Values) < MinBaselineIntervals) {
		learn(hist, f.value, b.baselineWindow())
	}
	return breach
}

// learnQuiet adds a quiet (zero) interval to the baselines of the signal's keys that no finding
// named this judgement: a client that issued nothing had a quiet interval too.
func (m *monitor) learnQuiet(s monitorSignal, seen []finding) {
	b, ok := s.(baselined)
	if !ok {
		return
	}
	for i := range m.carry.Baselines {
		hist := &m.carry.Baselines[i]
		if hist.Signal == s.name() && !slices.ContainsFunc(seen, func(f finding) bool { return f.key == hist.Key }) {
			learn(hist, 0, b.baselineWindow())
		}
	}
}

func learn(hist *Baseline, v float64, window int) {
	hist.Values = append(hist.Values, v)
	if over := len(hist.Values) - window; over > 0 {
		hist.Values = slices.Delete(hist.Values, 0, over)
	}
}

// baseline is the signal's learned values for a key, added to the carry on first use while the
// signal has room, or in the place of an idle one (a whole window of quiet intervals: a client
// that stopped issuing); nil beyond it.
func (m *monitor) baseline(signal, key string, room, window int) *Baseline {
	n, idle := 0, -1
	for i := range m.carry.Baselines {
		if b := &m.carry.Baselines[i]; b.Signal == signal {
			if b.Key == key {
				return b
			}
			n++
			if idle < 0 && len(b.Values) >= window && !slices.ContainsFunc(b.Values, func(v float64) bool { return v != 0 }) {
				idle = i
			}
		}
	}
	if n >= room {
		if !m.freesIdle || idle < 0 {
			return nil
		}
		m.carry.Baselines[idle] = Baseline{Signal: signal, Key: key}
		return &m.carry.Baselines[idle]
	}
	m.carry.Baselines = append(m.carry.Baselines, Baseline{Signal: signal, Key: key})
	return &m.carry.Baselines[len(m.carry.Baselines)-1]
}

// see refreshes the open incident of the finding's signal and key, or opens one with the
// policy's actions pending: one incident per signal and key while it is open.
func (m *monitor) see(s monitorSignal, f finding, now time.Time) {
	for i := range m.carry.Incidents {
		inc := &m.carry.Incidents[i]
		if inc.Signal == s.name() && inc.Key == f.key {
			inc.LastSeen, inc.Evidence = now, mergeEvidence(inc.Evidence, f.evidence)
			return
		}
	}
	if len(m.carry.Incidents) >= MaxOpenIncidents || (m.reservesRoom && !m.roomFor(s)) {
		m.carry.Overflow++
		return
	}
	inc := Incident{Signal: s.name(), Key: f.key, OpenedAt: now, LastSeen: now, Evidence: f.evidence}
	reason := fmt.Sprintf("policy for %s: value %g reached threshold %g", s.name(), f.value, s.threshold())
	for _, a := range ordered(s.actions()) {
		inc.Actions = append(inc.Actions, ActionRecord{Action: a, Reason: reason})
	}
	m.carry.Incidents = append(m.carry.Incidents, inc)
	m.logger.Info("incident opened", "signal", inc.Signal, "key", inc.Key)
}

// roomFor says whether the signal may open one more incident and still leave every other
// signal the room it keeps (reservedRoom, less the incidents it holds): expired tokens of many
// clients cannot crowd out a stolen token presented next.
func (m *monitor) roomFor(s monitorSignal) bool {
	needed := 0
	for _, o := range m.signals {
		if o.name() == s.name() {
			continue
		}
		held := 0
		for _, inc := range m.carry.Incidents {
			if inc.Signal == o.name() {
				held++
			}
		}
		needed += max(0, reservedRoom(o)-held)
	}
	return MaxOpenIncidents-len(m.carry.Incidents)-1 >= needed
}

// issuerWideSignal is a signal whose one incident is about the issuer as a whole.
type issuerWideSignal interface{ aboutIssuer() }

func reservedRoom(s monitorSignal) int {
	if _, ok := s.(issuerWideSignal); ok {
		return 1
	}
	return incidentsReserved
}

// ordered puts notify last, so that the notification says what the other actions did.
func ordered(actions []string) []string {
	out := slices.DeleteFunc(slices.Clone(actions), func(a string) bool { return a == ActionNotify })
	if slices.Contains(actions, ActionNotify) {
		out = append(out, ActionNotify)
	}
	return out
}

// actOn takes the incident's pending actions. An action that succeeded is never taken again,
// across retries of the workflow task and continue-as-new alike; a failing one is tried again at
// the next judgements, up to maxActionAttempts.
func (m *monitor) actOn(ctx workflow.Context, inc *Incident) {
	s := m.signal(inc.Signal)
	if s == nil {
		return
	}
	for i := range inc.Actions {
		a := &inc.Actions[i]
		if a.Done || a.Attempts >= maxActionAttempts {
			continue
		}
		a.Attempts++
		a.At = workflow.Now(ctx)
		var err error
		if a.Action == ActionNotify {
			err = m.notify(ctx, notification(m.spec.Issuer.URL, s, *inc)+outcomes(inc.Actions[:i]))
			a.Result = "notified " + m.spec.Webhook
		} else {
			a.Result, err = s.act(ctx, a.Action, inc)
		}
		if err != nil {
			a.Result, a.Error = "", clipText(err.Error(), maxActionError)
			m.logger.Warn("incident action failed", "signal", inc.Signal, "key", inc.Key, "action", a.Action, "attempt", a.Attempts, "error", err)
			continue
		}
		a.Done, a.Error = true, ""
		workflow.GetMetricsHandler(ctx).WithTags(map[string]string{"signal": inc.Signal, "action": a.Action}).Counter(MetricMonitorIncidents).Inc(1)
		m.logger.Info("incident action taken", "signal", inc.Signal, "key", inc.Key, "action", a.Action, "reason", a.Reason, "result", a.Result)
	}
}

// outcomes tells the notification what the actions before it did.
func outcomes(done []ActionRecord) string {
	var b strings.Builder
	for _, a := range done {
		switch {
		case a.Done:
			b.WriteString("; " + a.Result)
		case a.Error != "":
			b.WriteString(fmt.Sprintf("; %s failed: %s", a.Action, a.Error))
		}
	}
	return b.String()
}

func (m *monitor) notify(ctx workflow.Context, text string) error {
	nctx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 10 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumAttempts: 5},
	})
	return workflow.ExecuteActivity(nctx, notify.Send, activities.NotifyInput{Webhook: m.spec.Webhook, Text: text}).Get(ctx, nil)
}

// closeQuiet closes the incidents not seen for CloseAfter whose actions are all settled.
func (m *monitor) closeQuiet(now time.Time) {
	m.carry.Incidents = slices.DeleteFunc(m.carry.Incidents, func(inc Incident) bool {
		if now.Sub(inc.LastSeen) < m.spec.closeAfter() {
			return false
		}
		for _, a := range inc.Actions {
			if !a.Done && a.Attempts < maxActionAttempts {
				return false
			}
		}
		m.carry.Closed++
		m.logger.Info("incident closed", "signal", inc.Signal, "key", inc.Key)
		return true
	})
}

func (m *monitor) signal(name string) monitorSignal {
	for _, s := range m.signals {
		if s.name() == name {
			return s
		}
	}
	return nil
}

// view is the status query's answer: copies, so that the caller cannot touch the state.
func (m *monitor) view() MonitorStatus {
	incidents := slices.Clone(m.carry.Incidents)
	for i := range incidents {
		for _, s := range m.signals {
			if s.name() == incidents[i].Signal {
				incidents[i].Summary = s.summary(incidents[i])
			}
		}
	}
	return MonitorStatus{Issuer: m.spec.Issuer.URL, Interval: m.spec.interval(), LastJudged: m.carry.LastJudged, Judgements: m.carry.Judgements,
		Signals: slices.Clone(m.status), Incidents: incidents, Closed: m.carry.Closed, Overflow: m.carry.Overflow, Stopping: m.stopping}
}

func (m *monitor) report() MonitorReport {
	return MonitorReport{Judgements: m.carry.Judgements, Open: slices.Clone(m.carry.Incidents), Closed: m.carry.Closed, StoppedBy: m.stoppedBy}
}

// causeMessage is the innermost error's message, what an operator can act on, without an
// activity error's wrapping (its type, event ids and worker identity).
func causeMessage(err error) string {
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err.Error()
		}
		err = next
	}
}
