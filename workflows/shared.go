// Package workflows holds rollgate's Temporal workflows: orchestration only, no I/O.
package workflows

import "go.temporal.io/sdk/temporal"

// TaskQueue is the task queue rollgate's worker polls.
const TaskQueue = "rollgate"

// GatewayTaskQueue is where the workflows of a task queue schedule the activities that call API
// Gateway's control plane; a worker serves it with a rate limit for all its pollers together.
func GatewayTaskQueue(queue string) string { return queue + "-gateway" }

// RollbackGatewayTaskQueue is where they schedule a rollback's control-plane activities, paced
// apart from the releases going forward.
func RollbackGatewayTaskQueue(queue string) string { return queue + "-gateway-rollback" }

// Typed search attributes, upserted as a deployment moves through its phases, so the Temporal UI
// and `starter list` can find deployments by service, stage and phase.
var (
	ServiceAttr = temporal.NewSearchAttributeKeyKeyword("RollgateService")
	StageAttr   = temporal.NewSearchAttributeKeyKeyword("RollgateStage")
	PhaseAttr   = temporal.NewSearchAttributeKeyKeyword("RollgatePhase")
)

// SearchAttributes lists every search attribute rollgate uses, for registering on a namespace.
func SearchAttributes() temporal.SearchAttributes {
	return temporal.NewSearchAttributes(
		ServiceAttr.ValueSet(""),
		StageAttr.ValueSet(""),
		PhaseAttr.ValueSet(""),
	)
}
