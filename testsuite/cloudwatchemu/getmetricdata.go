package cloudwatchemu

import (
	"encoding/base64"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/smithy-go/encoding/cbor"
)

// GetMetricData as the API reference documents it:
// https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_GetMetricData.html
const (
	maxQueries          = 500
	defaultMaxDatapoint = 100800
)

var queryID = regexp.MustCompile(`^[a-z][a-zA-Z0-9_]*$`)

// dataQuery is one MetricDataQuery.
type dataQuery struct {
	path       string // "MetricDataQueries.member.N.", for errors
	id         string
	label      string
	stat       *metricStat
	expression string
	returnData bool
	period     int64 // the query's own Period (expressions), 0 if unset
}

type metricStat struct {
	metric metric
	period int64
	stat   string
	unit   string
}

type request struct {
	queries    []dataQuery
	start, end time.Time
	descending bool
	max        int64
	offset     int64 // from NextToken: datapoints already returned
}

func (s *Server) getMetricData(in cbor.Map) (cbor.Map, error) {
	req, err := parseGetMetricData(in, s.Now())
	if err != nil {
		return nil, err
	}
	results, err := s.evaluate(req)
	if err != nil {
		return nil, err
	}
	return paginate(req, results), nil
}

func parseGetMetricData(in cbor.Map, now time.Time) (request, error) {
	var req request
	start, okStart, err := getTime(in, "StartTime", "")
	if err != nil {
		return req, err
	}
	end, okEnd, err := getTime(in, "EndTime", "")
	if err != nil {
		return req, err
	}
	switch {
	case !okStart:
		return req, missingParameter("StartTime")
	case !okEnd:
		return req, missingParameter("EndTime")
	case !start.Before(end):
		return req, invalidValue("The parameter StartTime must be less than the parameter EndTime.")
	}
	req.start, req.end = roundStart(start, now), end
	scanBy, _, err := getString(in, "ScanBy", "")
	if err != nil {
		return req, err
	}
	switch scanBy {
	case "", "TimestampDescending":
		req.descending = true
	case "TimestampAscending":
	default:
		return req, invalidValue("The value %s for parameter ScanBy is not valid (TimestampDescending or TimestampAscending).", scanBy)
	}
	max, okMax, err := getInt(in, "MaxDatapoints", "")
	if err != nil {
		return req, err
	}
	if !okMax {
		max = defaultMaxDatapoint
	} else if max < 1 {
		return req, invalidValue("The parameter MaxDatapoints must be greater than 0.")
	}
	req.max = max
	if tok, ok, err := getString(in, "NextToken", ""); err != nil {
		return req, err
	} else if ok {
		if req.offset, err = parseNextToken(tok); err != nil {
			return req, err
		}
	}
	if opts, ok, err := getMap(in, "LabelOptions", ""); err != nil {
		return req, err
	} else if ok {
		if tz, _, _ := getString(opts, "Timezone", "LabelOptions."); tz != "" && tz != "+0000" && tz != "-0000" {
			return req, invalidValue("LabelOptions.Timezone %s: the test bed's CloudWatch has no dynamic labels to format; only +0000 is accepted.", tz)
		}
	}
	req.queries, err = parseQueries(in)
	return req, err
}

// roundStart rounds StartTime down as CloudWatch does: to the minute under 15 days ago, to 5
// minutes under 63 days, else to the hour.
func roundStart(t, now time.Time) time.Time {
	switch age := now.Sub(t); {
	case age < 15*24*time.Hour:
		return t.Truncate(time.Minute)
	case age < 63*24*time.Hour:
		return t.Truncate(5 * time.Minute)
	default:
		return t.Truncate(time.Hour)
	}
}

func parseQueries(in cbor.Map) ([]dataQuery, error) {
	list, ok, err := getList(in, "MetricDataQueries", "")
	if err != nil {
		return nil, err
	}
	if !ok || len(list) == 0 {
		return nil, missingParameter("MetricDataQueries")
	}
	if len(list) > maxQueries {
		return nil, invalidValue("The collection MetricDataQueries must not have more than %d members.", maxQueries)
	}
	seen := map[string]bool{}
	var queries []dataQuery
	for i, v := range list {
		path := fmt.Sprintf("MetricDataQueries.member.%d.", i+1)
		m, ok := v.(cbor.Map)
		if !ok {
			return nil, serializationError(path, "a structure", v)
		}
		q, err := parseQuery(m, path)
		if err != nil {
			return nil, err
		}
		if seen[q.id] {
			return nil, invalidValue("The value %s for parameter %sId is not unique: each MetricDataQuery needs an Id of its own.", q.id, path)
		}
		seen[q.id] = true
		queries = append(queries, q)
	}
	return queries, nil
}

func parseQuery(m cbor.Map, path string) (dataQuery, error) {
	q := dataQuery{path: path, returnData: true}
	var ok bool
	var err error
	if q.id, ok, err = getString(m, "Id", path); err != nil {
		return q, err
	} else if !ok {
		return q, missingParameter(path + "Id")
	}
	if len(q.id) > 255 || !queryID.MatchString(q.id) {
		return q, invalidValue("The value %s for parameter %sId is not valid: it must start with a lowercase letter and hold only letters, digits and underscores.", q.id, path)
	}
	if q.label, _, err = getString(m, "Label", path); err != nil {
		return q, err
	}
	if rd, ok, err := getBool(m, "ReturnData", path); err != nil {
		return q, err
	} else if ok {
		q.returnData = rd
	}
	if q.expression, _, err = getString(m, "Expression", path); err != nil {
		return q, err
	}
	if q.period, ok, err = getInt(m, "Period", path); err != nil {
		return q, err
	} else if ok {
		if err := checkPeriod(q.period, path+"Period"); err != nil {
			return q, err
		}
	}
	if acct, ok, _ := getString(m, "AccountId", path); ok && acct != "" {
		return q, invalidValue("%sAccountId: the test bed's CloudWatch has one account; cross-account queries are not supported.", path)
	}
	ms, hasStat, err := getMap(m, "MetricStat", path)
	if err != nil {
		return q, err
	}
	switch {
	case hasStat && q.expression != "":
		return q, invalidCombination("%s: exactly one of MetricStat and Expression must be specified, not both.", strings.TrimSuffix(path, "."))
	case !hasStat && q.expression == "":
		return q, invalidCombination("%s: exactly one of MetricStat and Expression must be specified.", strings.TrimSuffix(path, "."))
	case hasStat:
		q.stat, err = parseMetricStat(ms, path+"MetricStat.")
	}
	return q, err
}

func parseMetricStat(m cbor.Map, path string) (*metricStat, error) {
	mm, ok, err := getMap(m, "Metric", path)
	if err != nil {
		return nil, err
	} else if !ok {
		return nil, missingParameter(path + "Metric")
	}
	st := &metricStat{}
	mp := path + "Metric."
	if st.metric.Namespace, ok, err = getString(mm, "Namespace", mp); err != nil {
		return nil, err
	} else if !ok || st.metric.Namespace == "" {
		return nil, missingParameter(mp + "Namespace")
	}
	if st.metric.MetricName, ok, err = getString(mm, "MetricName", mp); err != nil {
		return nil, err
	} else if !ok || st.metric.MetricName == "" {
		return nil, missingParameter(mp + "MetricName")
	}
	if st.metric.Dimensions, err = getDimensions(mm, "Dimensions", mp, false); err != nil {
		return nil, err
	}
	if st.period, ok, err = getInt(m, "Period", path); err != nil {
		return nil, err
	} else if !ok {
		return nil, missingParameter(path + "Period")
	}
	if err := checkPeriod(st.period, path+"Period"); err != nil {
		return nil, err
	}
	if st.stat, ok, err = getString(m, "Stat", path); err != nil {
		return nil, err
	} else if !ok {
		return nil, missingParameter(path + "Stat")
	}
	if _, err := statistic(st.stat, path+"Stat"); err != nil {
		return nil, err
	}
	if st.unit, _, err = getString(m, "Unit", path); err != nil {
		return nil, err
	}
	return st, nil
}

// checkPeriod: 1, 5, 10, 20 or 30 seconds (high resolution), or a multiple of 60.
func checkPeriod(p int64, name string) error {
	switch {
	case p == 1 || p == 5 || p == 10 || p == 20 || p == 30:
	case p >= 60 && p%60 == 0:
	default:
		return invalidValue("The parameter %s must be 1, 5, 10, 20, 30, 60, or any multiple of 60 (got %d).", name, p)
	}
	return nil
}

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

// result is one MetricDataResult before pagination.
type result struct {
	id, label  string
	timestamps []int64
	values     []float64
}

func (s *Server) evaluate(req request) ([]result, error) {
	byID := map[string]*dataQuery{}
	for i := range req.queries {
		byID[req.queries[i].id] = &req.queries[i]
	}
	ev := &evaluator{s: s, req: req, byID: byID, done: map[string]series{}, busy: map[string]bool{}}
	var out []result
	for _, q := range req.queries {
		ser, err := ev.query(q.id)
		if err != nil {
			return nil, err
		}
		if !q.returnData {
			continue
		}
		out = append(out, toResult(q, ser, req.descending))
	}
	return out, nil
}

func toResult(q dataQuery, ser series, descending bool) result {
	r := result{id: q.id, label: q.label}
	if r.label == "" {
		r.label = q.id // an expression's default label
		if q.stat != nil {
			r.label = q.stat.metric.MetricName
		}
	}
	for t := range ser {
		r.timestamps = append(r.timestamps, t)
	}
	slices.Sort(r.timestamps)
	if descending {
		slices.Reverse(r.timestamps)
	}
	for _, t := range r.timestamps {
		r.values = append(r.values, ser[t])
	}
	return r
}

// paginate returns at most req.max datapoints, from req.offset on; the rest is behind a
// NextToken and the truncated results say PartialData.
func paginate(req request, results []result) cbor.Map {
	skip, room := req.offset, req.max
	list := cbor.List{}
	more := false
	for _, r := range results {
		n := int64(len(r.timestamps))
		from := min(skip, n)
		skip -= from
		to := min(n, from+room)
		room -= to - from
		status := "Complete"
		if to < n {
			status, more = "PartialData", true
		}
		ts, vs := cbor.List{}, cbor.List{}
		for i := from; i < to; i++ {
			ts = append(ts, &cbor.Tag{ID: 1, Value: cbor.Float64(float64(r.timestamps[i]))})
			vs = append(vs, cbor.Float64(r.values[i]))
		}
		list = append(list, cbor.Map{
			"Id": cbor.String(r.id), "Label": cbor.String(r.label),
			"Timestamps": ts, "Values": vs, "StatusCode": cbor.String(status), "Messages": cbor.List{},
		})
	}
	out := cbor.Map{"MetricDataResults": list, "Messages": cbor.List{}}
	if more {
		out["NextToken"] = cbor.String(nextToken(req.offset + req.max))
	}
	return out
}

func nextToken(offset int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte("offset:" + strconv.FormatInt(offset, 10)))
}

func parseNextToken(tok string) (int64, error) {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return 0, invalidNextToken()
	}
	n, err := strconv.ParseInt(strings.TrimPrefix(string(b), "offset:"), 10, 64)
	if err != nil || !strings.HasPrefix(string(b), "offset:") || n < 0 {
		return 0, invalidNextToken()
	}
	return n, nil
}
