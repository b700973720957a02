package analysis

import (
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"

	"github.com/rollgate/rollgate/internal/spec"
	"github.com/rollgate/rollgate/internal/tokens"
)

// ListMetrics can take up to 15 minutes to list a metric after its first value, while
// GetMetricData reads a metric it is named at once (the CloudWatch API reference, ListMetrics).
// A release's first rejections, and a new release's traffic, are such new metrics: the provider
// names the metrics it can name from what it knows (the issuer, the releases, the authorizer's
// bounded label values) beside those it lists, so that they count from their first minute.

// The authorizer's label values (authorizer/labels.go, authorizer/metrics.go).
const (
	outcomeAccepted = "accepted"
	outcomeRejected = "rejected"
	reasonAccepted  = string(tokens.Accepted)
)

var (
	// releaseLabelsAlways are the release labels of traffic that names no release of the
	// history: none sent, not a release id, or beyond the authorizer's live labels.
	releaseLabelsAlways = []string{"unknown", "invalid", "other"}
	// staleModes are DenyListStale's Mode values: refused (closed) or verified without the list.
	staleModes = []string{"closed", "open"}
)

// MaxNamedReleases bounds the releases a count names beside those it lists.
const MaxNamedReleases = 200

// verificationMetrics are the issuer's Verifications metrics of each release, one for the
// accepted tokens and one per rejection reason, as the authorizer publishes them.
func verificationMetrics(issuer string, releases []string) []types.Metric {
	var out []types.Metric
	for _, r := range releases {
		out = append(out, verificationMetric(issuer, r, outcomeAccepted, reasonAccepted))
		for _, reason := range spec.RejectionReasons {
			out = append(out, verificationMetric(issuer, r, outcomeRejected, reason))
		}
	}
	return out
}

func verificationMetric(issuer, release, outcome, reason string) types.Metric {
	return types.Metric{Namespace: aws.String(emfNamespace), MetricName: aws.String("Verifications"), Dimensions: []types.Dimension{
		{Name: aws.String("Issuer"), Value: aws.String(issuer)}, {Name: aws.String("Release"), Value: aws.String(release)},
		{Name: aws.String("Outcome"), Value: aws.String(outcome)}, {Name: aws.String("Reason"), Value: aws.String(reason)},
	}}
}

// staleMetrics are the issuer's DenyListStale metrics, one per mode.
func staleMetrics(issuer string) []types.Metric {
	out := make([]types.Metric, len(staleModes))
	for i, mode := range staleModes {
		out[i] = types.Metric{Namespace: aws.String(emfNamespace), MetricName: aws.String("DenyListStale"), Dimensions: []types.Dimension{
			{Name: aws.String("Issuer"), Value: aws.String(issuer)}, {Name: aws.String("Mode"), Value: aws.String(mode)},
		}}
	}
	return out
}

// releasesToName are the releases a count names: the given ones, those of traffic without a
// release, each once, at most MaxNamedReleases of the given.
func releasesToName(given ...string) []string {
	out := slices.Clone(releaseLabelsAlways)
	for _, r := range given {
		if r != "" && !slices.Contains(out, r) && len(out) < MaxNamedReleases+len(releaseLabelsAlways) {
			out = append(out, r)
		}
	}
	return out
}

// withNamed is listed followed by each metric of named that listed does not hold (CloudWatch
// tells a metric by its namespace, name and set of dimensions, in any order).
func withNamed(listed, named []types.Metric) []types.Metric {
	seen := make(map[string]bool, len(listed))
	for _, m := range listed {
		seen[metricKey(m)] = true
	}
	out := slices.Clip(listed)
	for _, m := range named {
		if k := metricKey(m); !seen[k] {
			seen[k] = true
			out = append(out, m)
		}
	}
	return out
}

func metricKey(m types.Metric) string {
	dims := make([]string, len(m.Dimensions))
	for i, d := range m.Dimensions {
		dims[i] = aws.ToString(d.Name) + "\x01" + aws.ToString(d.Value)
	}
	slices.Sort(dims)
	return aws.ToString(m.Namespace) + "\x00" + aws.ToString(m.MetricName) + "\x00" + strings.Join(dims, "\x00")
}
