package cloudwatchemu

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"
)

// Embedded Metric Format, as CloudWatch Logs extracts it from a Lambda function's output:
// https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html
// A line is a JSON object whose _aws member holds the Timestamp (epoch milliseconds) and
// CloudWatchMetrics directives; each directive names a Namespace, dimension sets (each a list of
// root members holding string values) and metrics (root members holding a number, or an array
// of up to 100 numbers, each a value).

type emfDirective struct {
	Namespace  string     `json:"Namespace"`
	Dimensions [][]string `json:"Dimensions"`
	Metrics    []struct {
		Name string `json:"Name"`
		Unit string `json:"Unit"`
	} `json:"Metrics"`
}

// ParseEMF returns the values one EMF line publishes. A line that is not an EMF document (a
// plain log line) publishes nothing and is no error; a malformed EMF document is an error, as
// CloudWatch Logs rejects it.
func ParseEMF(line []byte) ([]Datum, error) {
	line = bytes.TrimSpace(line)
	if len(line) == 0 || line[0] != '{' {
		return nil, nil
	}
	var root map[string]json.RawMessage
	if json.Unmarshal(line, &root) != nil {
		return nil, nil
	}
	raw, ok := root["_aws"]
	if !ok {
		return nil, nil
	}
	var meta struct {
		Timestamp         *int64         `json:"Timestamp"`
		CloudWatchMetrics []emfDirective `json:"CloudWatchMetrics"`
	}
	if err := json.Unmarshal(raw, &meta); err != nil || meta.Timestamp == nil {
		return nil, errors.New("EMF: _aws needs a Timestamp in epoch milliseconds")
	}
	at := time.UnixMilli(*meta.Timestamp)
	var out []Datum
	for _, d := range meta.CloudWatchMetrics {
		data, err := extract(d, root, at)
		if err != nil {
			return nil, err
		}
		out = append(out, data...)
	}
	return out, nil
}

func extract(d emfDirective, root map[string]json.RawMessage, at time.Time) ([]Datum, error) {
	if d.Namespace == "" || len(d.Metrics) == 0 {
		return nil, errors.New("EMF: a directive needs a Namespace and Metrics")
	}
	var sets [][]Dimension
	for _, names := range d.Dimensions {
		if len(names) > 30 {
			return nil, fmt.Errorf("EMF: a dimension set has %d dimensions (at most 30)", len(names))
		}
		set := make([]Dimension, 0, len(names))
		for _, n := range names {
			var v string
			if err := json.Unmarshal(root[n], &v); err != nil || v == "" {
				return nil, fmt.Errorf("EMF: dimension %s must be a non-empty string member of the document", n)
			}
			set = append(set, Dimension{n, v})
		}
		sets = append(sets, set)
	}
	if len(sets) == 0 {
		sets = [][]Dimension{{}} // a directive without dimensions publishes the metric with none
	}
	var out []Datum
	for _, m := range d.Metrics {
		values, err := metricValues(root[m.Name])
		if err != nil {
			return nil, fmt.Errorf("EMF: metric %s: %w", m.Name, err)
		}
		for _, v := range values {
			out = append(out, Datum{Namespace: d.Namespace, MetricName: m.Name, DimensionSets: cloneSets(sets), Time: at, Value: v, Unit: m.Unit})
		}
	}
	return out, nil
}

func metricValues(raw json.RawMessage) ([]float64, error) {
	var one float64
	if err := json.Unmarshal(raw, &one); err == nil {
		return []float64{one}, nil
	}
	var many []float64
	if err := json.Unmarshal(raw, &many); err != nil || len(many) == 0 || len(many) > 100 {
		return nil, errors.New("the member must be a number or an array of 1 to 100 numbers")
	}
	return many, nil
}

func cloneSets(sets [][]Dimension) [][]Dimension {
	out := make([][]Dimension, len(sets))
	for i, s := range sets {
		out[i] = append([]Dimension(nil), s...)
	}
	return out
}

// EMFWriter returns a writer for one process's output (one execution environment's): it
// publishes the values of every complete EMF line written to it, as CloudWatch Logs does for a
// Lambda function's log stream, and ignores other lines. Malformed EMF lines are counted
// (RejectedEMF), never published.
func (s *Store) EMFWriter() io.Writer { return &emfWriter{store: s} }

type emfWriter struct {
	store *Store
	mu    sync.Mutex
	buf   []byte
}

func (w *emfWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		data, err := ParseEMF(w.buf[:i])
		if err != nil {
			w.store.rejectEMF()
		} else if len(data) > 0 {
			w.store.Put(data...)
		}
		w.buf = w.buf[i+1:]
	}
	if len(w.buf) > 1<<20 { // a line longer than CloudWatch Logs' event limit is not a metric
		w.buf = w.buf[:0]
	}
	return len(p), nil
}
