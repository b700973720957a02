package main

import (
	"encoding/json"
	"io"
	"sync"
	"time"
)

// emfRecorder writes CloudWatch Embedded Metric Format lines: CloudWatch Logs turns each line
// a Lambda prints into metric values, with no agent and no API call on the request path.
// The kid is a property of the line, never a dimension: dimensions make series, and series
// must stay few.
type emfRecorder struct {
	issuer string
	mu     sync.Mutex
	out    io.Writer
	now    func() time.Time
}

const emfNamespace = "Rollgate"

type emfMetric struct {
	Name string `json:"Name"`
	Unit string `json:"Unit"`
}

type emfDirective struct {
	Namespace  string      `json:"Namespace"`
	Dimensions [][]string  `json:"Dimensions"`
	Metrics    []emfMetric `json:"Metrics"`
}

type emfMetadata struct {
	Timestamp         int64          `json:"Timestamp"`
	CloudWatchMetrics []emfDirective `json:"CloudWatchMetrics"`
}

func newEMFRecorder(out io.Writer, issuer string) *emfRecorder {
	return &emfRecorder{issuer: issuer, out: out, now: time.Now}
}

func (e *emfRecorder) verified(v verification) {
	e.write(map[string]any{
		"_aws": emfMetadata{Timestamp: e.now().UnixMilli(), CloudWatchMetrics: []emfDirective{{
			Namespace:  emfNamespace,
			Dimensions: [][]string{{"Issuer", "Release", "Outcome", "Reason"}},
			Metrics:    []emfMetric{{Name: "Verifications", Unit: "Count"}},
		}}},
		"Issuer": e.issuer, "Release": v.Release, "Outcome": v.outcome(), "Reason": v.Reason,
		"Verifications": 1, "Kid": v.KID,
	})
}

func (e *emfRecorder) stale(failOpen bool) {
	e.write(map[string]any{
		"_aws": emfMetadata{Timestamp: e.now().UnixMilli(), CloudWatchMetrics: []emfDirective{{
			Namespace:  emfNamespace,
			Dimensions: [][]string{{"Issuer", "Mode"}},
			Metrics:    []emfMetric{{Name: "DenyListStale", Unit: "Count"}},
		}}},
		"Issuer": e.issuer, "Mode": staleMode(failOpen), "DenyListStale": 1,
	})
}

// write prints one line per document in a single Write, so concurrent lines never interleave.
func (e *emfRecorder) write(doc map[string]any) {
	b, err := json.Marshal(doc)
	if err != nil {
		return // the document is built from strings and numbers; it always marshals
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	_, _ = e.out.Write(append(b, '\n'))
}
