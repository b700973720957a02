package workflows

import (
	"time"

	"github.com/rollgate/rollgate/activities"
	"github.com/rollgate/rollgate/internal/analysis"
)

// Operator updates and the status query of a Deployment workflow.
const (
	UpdateRollback = "rollback"
	UpdatePromote  = "promote"
	UpdatePause    = "pause"
	UpdateResume   = "resume"
	UpdateSkipStep = "skip-step"
	QueryStatus    = "status"
)

// Error types the workflows fail steps with.
const (
	ErrInvalidSpec  = "InvalidSpec"  // an input is refused before anything changes
	ErrHealthBreach = "HealthBreach" // tokens or traffic failed a check: roll back, do not retry
	// ErrAnalysisFailed: an analysis metric of the real traffic failed its rule: roll back.
	ErrAnalysisFailed = "AnalysisFailed"
	// ErrPostPromotionBreach: the watch after promotion saw the stage break a rule: roll back.
	ErrPostPromotionBreach = "PostPromotionBreach"
)

// Rollback triggers: a RollbackReport's Trigger and the trigger label of rollgate_rollbacks_total.
const (
	TriggerOperator        = "operator"
	TriggerHealth          = "health"
	TriggerActivityFailure = "activity-failure"
	TriggerStepTimeout     = "step-timeout"
	TriggerCancelled       = "cancelled"
	TriggerAnalysis        = "analysis"       // a metric of the real traffic failed its rule
	TriggerPostPromotion   = "post-promotion" // the watch after promotion saw the stage break a rule
)

// Phase is where a deployment is; it is also the RollgatePhase search attribute.
type Phase string

const (
	PhasePreflight    Phase = "preflight"
	PhasePreparingKey Phase = "preparing-key"
	PhasePublishing   Phase = "publishing"
	PhaseAuthorizer   Phase = "authorizer"
	PhaseCanary       Phase = "canary"
	PhaseBaking       Phase = "baking"
	PhasePromoting    Phase = "promoting"
	PhaseReissuing    Phase = "reissuing"
	PhaseWatching     Phase = "watching" // promoted, the whole stage judged against its baseline
	PhaseFinalizing   Phase = "finalizing"
	PhasePromoted     Phase = "promoted"
	PhaseRollingBack  Phase = "rolling-back"
	PhaseRolledBack   Phase = "rolled-back"
)

// Terminal says whether nothing more will happen in this phase.
func (p Phase) Terminal() bool { return p == PhasePromoted || p == PhaseRolledBack }

// OperatorRequest is what an operator sends with every update: who and why.
type OperatorRequest struct {
	Actor  string
	Reason string
}

// Event is one line of a deployment's timeline.
type Event struct {
	At      time.Time
	Phase   Phase
	Message string
}

// Status is what the status query returns.
type Status struct {
	Phase     Phase
	Step      int // canary step, 1-based; 0 before the canary
	Steps     int
	Weight    float64
	Paused    bool
	BakeEnds  time.Time // zero when not baking (or watching after promotion)
	Probes    activities.ProbeResult
	Breach    string
	Timeline  []Event
	Rollback  *RollbackReport
	KeyLatest int // the key version the release signs with
	// Release is the label the gateway's authorizer counts this release's traffic under (the
	// value of the spec's release variable in the canary's stage variables); empty before the
	// canary starts.
	Release string `json:",omitempty"`
	// Analysis is each metric's judgement after the last bake that measured it: last canary and
	// stable values, failures, verdict (the rule's threshold is in the spec and in Reason).
	Analysis []analysis.Judgement `json:",omitempty"`
	// Compensations are the steps of a rollback under way (or done), newest step first, so that an
	// operator can watch a slow rollback; empty before a rollback starts.
	Compensations []CompensationStatus `json:",omitempty"`
}

// States of a compensation while a rollback runs.
const (
	CompensationPending = "pending"
	CompensationRunning = "running"
	CompensationDone    = "done"
	CompensationFailed  = "failed"
)

// CompensationStatus is one compensation as the status query shows it during a rollback.
type CompensationStatus struct {
	Name  string
	State string // pending | running | done | failed
	// Started is the workflow time the compensation started; a client shows how long a running
	// one has been running from it.
	Started  time.Time     `json:",omitzero"`
	Duration time.Duration `json:",omitempty"` // once done or failed
	Attempts int           `json:",omitempty"`
	// WaitedForWorker is the time spent in attempts that no worker finished in time (a crashed
	// or hung worker): the attempt timed out and was retried.
	WaitedForWorker time.Duration `json:",omitempty"`
	Error           string        `json:",omitempty"`
}

// StepReport is one compensation of a rollback.
type StepReport struct {
	Name     string
	Duration time.Duration
	Error    string `json:",omitempty"`
	Attempts int    `json:",omitempty"`
	// WaitedForWorker is the part of Duration spent in attempts that no worker finished in time.
	WaitedForWorker time.Duration `json:",omitempty"`
}

// RollbackReport is the proof a rollback worked.
type RollbackReport struct {
	Trigger string // one of the Trigger constants
	Actor   string
	Reason  string
	Steps   []StepReport
	// StartedAt is when the rollback was asked for (the request's acceptance) or when the failure
	// that triggered it was seen, in workflow time.
	StartedAt  time.Time
	FinishedAt time.Time // when the verification ended, in workflow time
	// Latency is FinishedAt-StartedAt: worker crashes, timeouts and retries included.
	Latency time.Duration
	// WaitedForWorker is the part of Latency spent in attempts that no worker finished in time.
	WaitedForWorker time.Duration `json:",omitempty"`
	Verified        bool
	Problems        []string `json:",omitempty"`
}

// Outcomes of a deployment.
const (
	OutcomePromoted   = "promoted"
	OutcomeRolledBack = "rolled-back"
)

// DeployResult is what a Deployment returns.
type DeployResult struct {
	Outcome             string
	ReleaseDeploymentID string
	KeyVersion          int
	Reissued            []activities.Issued
	Rollback            *RollbackReport
	Timeline            []Event
	// Analysis is each metric's last judgement, when the spec has analysis.
	Analysis []analysis.Judgement `json:",omitempty"`
}

// KeyRetirementInput asks to retire a key version once no token it signed can be valid.
type KeyRetirementInput struct {
	Issuer  activities.Issuer
	Version int
	After   time.Duration
	// Flush names the stages that accept the issuer's tokens (the stage of the deployment that
	// scheduled the retirement): once the version leaves the JWKS, their authorizer caches are
	// flushed, so that an Allow cached for a token of the version cannot outlive it.
	Flush []activities.Target `json:",omitempty"`
}
