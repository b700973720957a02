package workflows

import (
	"time"

	"github.com/rollgate/rollgate/activities"
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

// Error types a Deployment fails with before changing anything.
const (
	ErrInvalidSpec = "InvalidSpec"
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
	BakeEnds  time.Time // zero when not baking
	Probes    activities.ProbeResult
	Breach    string
	Timeline  []Event
	Rollback  *RollbackReport
	KeyLatest int // the key version the release signs with
}

// StepReport is one compensation of a rollback.
type StepReport struct {
	Name     string
	Duration time.Duration
	Error    string `json:",omitempty"`
}

// RollbackReport is the proof a rollback worked.
type RollbackReport struct {
	Trigger    string // operator | health | activity-failure | step-timeout | cancelled
	Actor      string
	Reason     string
	Steps      []StepReport
	StartedAt  time.Time
	FinishedAt time.Time
	Latency    time.Duration
	Verified   bool
	Problems   []string `json:",omitempty"`
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
}

// KeyRetirementInput asks to retire a key version once no token it signed can be valid.
type KeyRetirementInput struct {
	Issuer  activities.Issuer
	Version int
	After   time.Duration
}
