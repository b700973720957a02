package analysis

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
)

// The token monitor reads what an issuer's authorizers saw between two judgements, for every
// release at once: rejections by reason and release, and decisions taken on a stale deny list.
// It is one read per judgement whatever the number of signals, so that the monitor's load on a
// provider stays a few queries per interval.

// EventCounter counts an issuer's authorizer events over a window. The Prometheus and
// CloudWatch providers are both.
type EventCounter interface {
	CountEvents(ctx context.Context, q EventQuery) (EventCounts, error)
}

// NamesReleases says whether c reads EventQuery.Releases: a provider that lists its metrics
// (CloudWatch) names a new release's; Prometheus reads every series without them, so the
// caller need not look the releases up.
func NamesReleases(c EventCounter) bool {
	_, lists := c.(*CloudWatch)
	return lists
}

// EventQuery asks for an issuer's events over Window ending At (now if zero).
type EventQuery struct {
	Issuer string // the issuer URL, as the authorizer labels its metrics
	Window time.Duration
	At     time.Time
	// Releases are the labels of the issuer's releases a provider that must list its metrics
	// names beside those it lists (CloudWatch lists a new metric up to 15 minutes late), at most
	// MaxNamedReleases; Prometheus reads every series without them.
	Releases []string
}

// MaxEventGroups bounds the (reason, release) groups a count returns: the largest are kept.
const MaxEventGroups = 50

// EventCounts is what the authorizers of one issuer counted.
type EventCounts struct {
	// Verifications is every verification of the issuer's tokens, accepted or not; HasData is
	// false when no series answered (no traffic, or no authorizer reporting), which is not zero.
	Verifications float64 `json:"verifications"`
	HasData       bool    `json:"hasData"`
	// Rejected are the rejections by reason and release, the largest first; Truncated says
	// smaller groups beyond MaxEventGroups were left out (their counts are in no group).
	Rejected  []RejectionCount `json:"rejected,omitempty"`
	Truncated bool             `json:"truncated,omitempty"`
	// Reasons are the rejections by reason over every release (Release empty), ordered by
	// reason, counted before Rejected is bounded; nil in counts recorded before they were kept.
	Reasons []RejectionCount `json:"reasons,omitempty"`
	// Stale is the decisions taken while the deny list was older than the authorizer's maximum
	// staleness (refused, or verified without it when failing open).
	Stale float64 `json:"stale"`
	// Queries is how many requests the count cost the provider.
	Queries int `json:"queries"`
}

// RejectionCount is how many of a release's verifications were rejected for one reason.
type RejectionCount struct {
	Reason  string  `json:"reason"`
	Release string  `json:"release"`
	Count   float64 `json:"count"`
}

// Rejections sums the rejections for reason over every release: its total, or, in counts
// recorded without totals, what the kept groups hold (so that a replay judges the same).
func (c EventCounts) Rejections(reason string) float64 {
	groups := c.Rejected
	if c.Reasons != nil {
		groups = c.Reasons
	}
	var n float64
	for _, r := range groups {
		if r.Reason == reason {
			n += r.Count
		}
	}
	return n
}

// keepLargest orders groups by count, largest first (then reason and release, so that the order
// is stable), and keeps MaxEventGroups of them; totals are every group's counts by reason.
func keepLargest(groups []RejectionCount) (kept []RejectionCount, truncated bool, totals []RejectionCount) {
	groups = slices.DeleteFunc(groups, func(g RejectionCount) bool { return g.Count <= 0 })
	for _, g := range groups {
		i, found := slices.BinarySearchFunc(totals, g.Reason, func(t RejectionCount, r string) int { return cmp.Compare(t.Reason, r) })
		if !found {
			totals = slices.Insert(totals, i, RejectionCount{Reason: g.Reason})
		}
		totals[i].Count += g.Count
	}
	slices.SortFunc(groups, func(a, b RejectionCount) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Reason, b.Reason), cmp.Compare(a.Release, b.Release))
	})
	if len(groups) > MaxEventGroups {
		return groups[:MaxEventGroups], true, totals
	}
	return groups, false, totals
}

// seriesStale is the authorizer's count of decisions taken on a stale deny list.
const seriesStale = "rollgate_authorizer_denylist_stale_total" // issuer, mode

// CountEvents reads the issuer's verifications, its rejections by reason and release, and its
// stale decisions, three instant queries over the window.
func (p *Prometheus) CountEvents(ctx context.Context, q EventQuery) (EventCounts, error) {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	at := q.At
	if at.IsZero() {
		at = time.Now()
	}
	w, issuer := promDuration(q.Window), quote(q.Issuer)
	var out EventCounts
	var err error
	out.Verifications, out.HasData, err = p.instant(ctx, fmt.Sprintf(`sum(increase(%s{issuer=%s}[%s]))`, seriesVerifications, issuer, w), at)
	if err != nil {
		return EventCounts{}, p.failEvents(err)
	}
	res, _, err := p.api.Query(ctx, fmt.Sprintf(`sum by (reason, release) (increase(%s{issuer=%s,outcome="rejected"}[%s]))`, seriesVerifications, issuer, w), at, promv1.WithTimeout(p.timeout))
	if err != nil {
		return EventCounts{}, p.failEvents(err)
	}
	vec, ok := res.(model.Vector)
	if !ok {
		return EventCounts{}, p.failEvents(fmt.Errorf("rejections: the query answered a %s, not a vector", res.Type()))
	}
	groups := make([]RejectionCount, 0, len(vec))
	for _, s := range vec {
		groups = append(groups, RejectionCount{Reason: string(s.Metric["reason"]), Release: string(s.Metric["release"]), Count: finite(float64(s.Value))})
	}
	out.Rejected, out.Truncated, out.Reasons = keepLargest(groups)
	stale, _, err := p.instant(ctx, fmt.Sprintf(`sum(increase(%s{issuer=%s}[%s]))`, seriesStale, issuer, w), at)
	if err != nil {
		return EventCounts{}, p.failEvents(err)
	}
	out.Stale, out.Queries = stale, 3
	return out, nil
}

func (p *Prometheus) failEvents(err error) error {
	return fmt.Errorf("token events: prometheus %s: %w", p.where, err)
}

// finite is v, or 0 for NaN and infinities, which no count can be.
func finite(v float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0
	}
	return v
}

// CountEvents lists the issuer's Rollgate/Verifications and Rollgate/DenyListStale metrics, names
// those of the given releases and of traffic without one (listed late, or not yet), and reads the
// Sum of each over the window (CloudWatch counts by the minute: the window starts at the minute
// that holds its start).
func (c *CloudWatch) CountEvents(ctx context.Context, q EventQuery) (EventCounts, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	w := cloudWatchWindow(Query{Window: q.Window, At: q.At})
	issuer := []types.DimensionFilter{{Name: aws.String("Issuer"), Value: aws.String(q.Issuer)}}
	var out EventCounts
	verifications, err := c.list(ctx, "Verifications", issuer)
	if err != nil {
		return EventCounts{}, fmt.Errorf("token events: cloudwatch: %w", err)
	}
	stale, err := c.list(ctx, "DenyListStale", issuer)
	if err != nil {
		return EventCounts{}, fmt.Errorf("token events: cloudwatch: %w", err)
	}
	verifications = withNamed(verifications, verificationMetrics(q.Issuer, releasesToName(q.Releases...)))
	stale = withNamed(stale, staleMetrics(q.Issuer))
	sums, calls, err := c.sums(ctx, append(slices.Clip(verifications), stale...), w)
	if err != nil {
		return EventCounts{}, fmt.Errorf("token events: cloudwatch: %w", err)
	}
	out.Queries = 2 + calls
	byGroup := map[RejectionCount]float64{}
	for i, m := range verifications {
		s := sums[i]
		out.Verifications += s.value
		out.HasData = out.HasData || s.ok
		if dimension(m, "Outcome") == "rejected" {
			byGroup[RejectionCount{Reason: dimension(m, "Reason"), Release: dimension(m, "Release")}] += s.value
		}
	}
	for _, s := range sums[len(verifications):] {
		out.Stale += s.value
	}
	groups := make([]RejectionCount, 0, len(byGroup))
	for g, n := range byGroup {
		g.Count = n
		groups = append(groups, g)
	}
	out.Rejected, out.Truncated, out.Reasons = keepLargest(groups)
	return out, nil
}
