package cloudwatchemu

import (
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// statistic returns the function computing stat over a bucket's values: SampleCount, Average,
// Sum, Minimum, Maximum and percentiles pNN(.NN). Other statistics CloudWatch knows (trimmed
// means, IQM, PR(), TC(), TS(), WM()) are refused, never answered wrongly.
func statistic(stat, name string) (func([]float64) float64, error) {
	switch stat {
	case "SampleCount":
		return func(v []float64) float64 { return float64(len(v)) }, nil
	case "Sum":
		return sum, nil
	case "Average":
		return func(v []float64) float64 { return sum(v) / float64(len(v)) }, nil
	case "Minimum":
		return func(v []float64) float64 { return slices.Min(v) }, nil
	case "Maximum":
		return func(v []float64) float64 { return slices.Max(v) }, nil
	}
	if rest, ok := strings.CutPrefix(stat, "p"); ok {
		p, err := strconv.ParseFloat(rest, 64)
		if err == nil && p >= 0 && p <= 100 && !strings.ContainsAny(rest, "eE+-") {
			return func(v []float64) float64 { return percentile(v, p) }, nil
		}
	}
	return nil, invalidValue("The value %s for parameter %s is not a statistic the test bed's CloudWatch supports: SampleCount, Average, Sum, Minimum, Maximum or pNN(.NN).", stat, name)
}

func sum(v []float64) float64 {
	var s float64
	for _, x := range v {
		s += x
	}
	return s
}

// percentile is the nearest-rank percentile: the smallest value with at least p % of the values
// at or below it.
func percentile(v []float64, p float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	i := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}

// series is a time series: values by timestamp (unix seconds).
type series map[int64]float64

// statSeries computes st over [start, end) in buckets of st.period aligned on start; a bucket
// without values has no datapoint.
func (s *Server) statSeries(st *metricStat, start, end time.Time) series {
	f, _ := statistic(st.stat, "")
	period := time.Duration(st.period) * time.Second
	buckets := map[int64][]float64{}
	for _, p := range s.values(st.metric, st.unit, start, end) {
		b := start.Add(p.t.Sub(start) / period * period).Unix()
		buckets[b] = append(buckets[b], p.v)
	}
	out := series{}
	for t, vs := range buckets {
		out[t] = f(vs)
	}
	return out
}
