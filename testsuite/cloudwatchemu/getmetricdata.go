package cloudwatchemu

import (
	"fmt"
	"regexp"
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
