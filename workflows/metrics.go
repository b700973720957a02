package workflows

import (
	"go.temporal.io/sdk/workflow"
)

// Metrics rollgate's workflows emit through the SDK's metrics handler (replay-safe: nothing is
// counted again when a history is replayed). The worker's Prometheus naming adds the _total and
// _seconds suffixes.
const (
	// MetricDeployments counts finished deployments by service and outcome.
	MetricDeployments = "rollgate_deployments"
	// MetricKeyRotations counts finished key rotations by outcome.
	MetricKeyRotations = "rollgate_key_rotations"
	// MetricRollbacks counts rollbacks by trigger and whether verification passed.
	MetricRollbacks = "rollgate_rollbacks"
	// MetricRollbackLatency is the time from the rollback request to the verified report, by
	// trigger.
	MetricRollbackLatency = "rollgate_rollback_latency"
)

func countOutcome(ctx workflow.Context, metric, service, outcome string) {
	tags := map[string]string{"outcome": outcome}
	if service != "" {
		tags["service"] = service
	}
	workflow.GetMetricsHandler(ctx).WithTags(tags).Counter(metric).Inc(1)
}

func recordRollback(ctx workflow.Context, r *RollbackReport) {
	verified := "false"
	if r.Verified {
		verified = "true"
	}
	h := workflow.GetMetricsHandler(ctx)
	h.WithTags(map[string]string{"trigger": r.Trigger, "verified": verified}).Counter(MetricRollbacks).Inc(1)
	h.WithTags(map[string]string{"trigger": r.Trigger}).Timer(MetricRollbackLatency).Record(r.Latency)
}
