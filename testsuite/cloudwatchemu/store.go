// Package cloudwatchemu is the test bed's Amazon CloudWatch: it keeps the metric values the bed
// publishes (the API Gateway emulator's data plane, the authorizer's Embedded Metric Format lines)
// and answers GetMetricData and ListMetrics as CloudWatch does, over the Smithy RPC v2 CBOR
// protocol that aws-sdk-go-v2's cloudwatch client speaks. What it does not support it refuses
// with CloudWatch's error codes; it never answers with something CloudWatch would not.
package cloudwatchemu

import (
	"slices"
	"strings"
	"sync"
	"time"
)

// Dimension is one name/value pair of a metric's identity.
type Dimension struct{ Name, Value string }

// Datum is one published value. CloudWatch keeps a metric per namespace, name and exact set of
// dimensions; a value published under several sets (an EMF directive's Dimensions, API
// Gateway's per-API and per-stage metrics) belongs to each of those metrics.
type Datum struct {
	Namespace     string
	MetricName    string
	DimensionSets [][]Dimension
	Time          time.Time
	Value         float64
	Unit          string // a StandardUnit ("Count", "Milliseconds"); "" is "None"
}

// DefaultRetention is how long the store keeps values: a test bed's hours, not CloudWatch's 15
// months, so that a long-lived bed does not grow without bound.
const DefaultRetention = 3 * time.Hour

// Store keeps published values, safe for concurrent use.
type Store struct {
	mu        sync.Mutex
	data      map[string][]Datum // by namespace and metric name, in the order of publication
	Now       func() time.Time
	Retention time.Duration
	rejected  int // malformed EMF lines
	// listDelay is how long ListMetrics waits before it lists a new metric, from its first
	// value's publication (firstSeen, kept while a delay is set): AWS documents up to 15 minutes,
	// while GetMetricData reads the metric at once. 0, the bed's default, lists at once.
	listDelay time.Duration
	firstSeen map[string]time.Time
}

// SetListDelay makes ListMetrics list a metric only d after its first value was published, as
// AWS may (up to 15 minutes); metrics published before the call are listed as they were.
func (s *Store) SetListDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.listDelay = d
	if s.firstSeen == nil {
		s.firstSeen = map[string]time.Time{}
	}
}

// listableLocked says whether ListMetrics lists m yet; the caller holds s.mu.
func (s *Store) listableLocked(m metric) bool {
	first, ok := s.firstSeen[m.key()]
	return !ok || !s.Now().Before(first.Add(s.listDelay))
}

func (s *Store) rejectEMF() {
	s.mu.Lock()
	s.rejected++
	s.mu.Unlock()
}

// RejectedEMF is how many malformed EMF lines the store's EMF writers refused.
func (s *Store) RejectedEMF() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rejected
}

// NewStore is an empty store with the real clock and DefaultRetention.
func NewStore() *Store {
	return &Store{data: map[string][]Datum{}, Now: time.Now, Retention: DefaultRetention}
}

func seriesKey(namespace, name string) string { return namespace + "\x00" + name }

// Put publishes values, as PutMetricData or CloudWatch Logs' EMF extraction would.
func (s *Store) Put(data ...Datum) {
	for i := range data {
		for j := range data[i].DimensionSets {
			data[i].DimensionSets[j] = sortedDimensions(data[i].DimensionSets[j])
		}
		if data[i].Unit == "" {
			data[i].Unit = "None"
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range data {
		k := seriesKey(d.Namespace, d.MetricName)
		s.data[k] = append(s.data[k], d)
		if s.listDelay > 0 {
			for _, set := range d.DimensionSets {
				if mk := (metric{d.Namespace, d.MetricName, set}).key(); s.firstSeen[mk].IsZero() {
					s.firstSeen[mk] = s.Now()
				}
			}
		}
	}
	for _, d := range data {
		s.pruneLocked(seriesKey(d.Namespace, d.MetricName))
	}
}

// pruneLocked drops values older than the retention, in batches rather than on every Put.
func (s *Store) pruneLocked(key string) {
	data := s.data[key]
	cut := s.Now().Add(-s.Retention)
	i := 0
	for i < len(data) && data[i].Time.Before(cut) {
		i++
	}
	if i > 1024 || (i > 0 && i*4 >= len(data)) {
		s.data[key] = slices.Delete(data, 0, i)
	}
}

// metric is one metric's identity.
type metric struct {
	Namespace, MetricName string
	Dimensions            []Dimension // sorted by name
}

// point is one value of a metric.
type point struct {
	t time.Time
	v float64
}

// values are the values of m (of unit, unless "") published in [from, to).
func (s *Store) values(m metric, unit string, from, to time.Time) []point {
	want := sortedDimensions(m.Dimensions)
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []point
	for _, d := range s.data[seriesKey(m.Namespace, m.MetricName)] {
		if d.Time.Before(from) || !d.Time.Before(to) {
			continue
		}
		if unit != "" && d.Unit != unit {
			continue
		}
		if slices.ContainsFunc(d.DimensionSets, func(set []Dimension) bool { return slices.Equal(set, want) }) {
			out = append(out, point{d.Time, d.Value})
		}
	}
	return out
}

// metrics are the distinct metrics with a value since `since` that match keep, in a stable order;
// keep runs with s.mu held.
func (s *Store) metrics(since time.Time, keep func(metric) bool) []metric {
	s.mu.Lock()
	seen := map[string]metric{}
	for _, data := range s.data {
		for _, d := range data {
			if d.Time.Before(since) {
				continue
			}
			for _, set := range d.DimensionSets {
				m := metric{d.Namespace, d.MetricName, set}
				k := m.key()
				if _, ok := seen[k]; !ok && keep(m) {
					seen[k] = m
				}
			}
		}
	}
	s.mu.Unlock()
	keys := make([]string, 0, len(seen))
	for k := range seen {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make([]metric, len(keys))
	for i, k := range keys {
		out[i] = seen[k]
	}
	return out
}

func (m metric) key() string {
	var sb strings.Builder
	sb.WriteString(m.Namespace + "\x00" + m.MetricName)
	for _, d := range m.Dimensions {
		sb.WriteString("\x00" + d.Name + "\x01" + d.Value)
	}
	return sb.String()
}

func sortedDimensions(dims []Dimension) []Dimension {
	out := slices.Clone(dims)
	slices.SortFunc(out, func(a, b Dimension) int { return strings.Compare(a.Name, b.Name) })
	return out
}
