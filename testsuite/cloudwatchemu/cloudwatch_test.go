package cloudwatchemu

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/smithy-go"
)

// start serves a store through the unmodified SDK client, as the provider and any other
// client meet it.
func start(t *testing.T) (*Server, *cloudwatch.Client) {
	t.Helper()
	s, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	c := cloudwatch.New(cloudwatch.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(s.URL),
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""),
	})
	return s, c
}

func dims(kv ...string) []Dimension {
	var out []Dimension
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, Dimension{kv[i], kv[i+1]})
	}
	return out
}

func sdkDims(kv ...string) []types.Dimension {
	var out []types.Dimension
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, types.Dimension{Name: aws.String(kv[i]), Value: aws.String(kv[i+1])})
	}
	return out
}

func stat(id, name, s string, period int32, kv ...string) types.MetricDataQuery {
	return types.MetricDataQuery{Id: aws.String(id), MetricStat: &types.MetricStat{
		Metric: &types.Metric{Namespace: aws.String("Test"), MetricName: aws.String(name), Dimensions: sdkDims(kv...)},
		Period: aws.Int32(period), Stat: aws.String(s),
	}}
}

// base is a whole minute in the recent past, so bucket boundaries are known.
func base() time.Time { return time.Now().UTC().Truncate(time.Minute).Add(-10 * time.Minute) }

func put(s *Server, at time.Time, name string, v float64, sets ...[]Dimension) {
	s.Put(Datum{Namespace: "Test", MetricName: name, DimensionSets: sets, Time: at, Value: v, Unit: "Count"})
}

func TestGetMetricData_StatisticsPerPeriod_NewestFirst_EmptyPeriodsOmitted(t *testing.T) {
	s, c := start(t)
	b := base()
	a := dims("Api", "a")
	for i, v := range []float64{1, 2, 3, 4, 100} { // minute 0
		put(s, b.Add(time.Duration(i)*time.Second), "Latency", v, a)
	}
	put(s, b.Add(2*time.Minute+5*time.Second), "Latency", 7, a) // minute 2; minute 1 has none
	put(s, b.Add(30*time.Second), "Latency", 1000, dims("Api", "other"))
	want := map[string][]float64{ // newest first
		"Sum": {7, 110}, "SampleCount": {1, 5}, "Average": {7, 22}, "Minimum": {7, 1}, "Maximum": {7, 100}, "p50": {7, 3}, "p99": {7, 100},
	}
	var queries []types.MetricDataQuery
	for st := range want {
		queries = append(queries, stat("q"+strings.ToLower(st), "Latency", st, 60, "Api", "a"))
	}
	out, err := c.GetMetricData(context.Background(), &cloudwatch.GetMetricDataInput{
		MetricDataQueries: queries, StartTime: aws.Time(b.Add(20 * time.Second)), EndTime: aws.Time(b.Add(5 * time.Minute)),
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.MetricDataResults) != len(want) {
		t.Fatalf("%d results, want %d", len(out.MetricDataResults), len(want))
	}
	for _, r := range out.MetricDataResults {
		st := strings.TrimPrefix(*r.Id, "q")
		for k := range want {
			if strings.ToLower(k) == st {
				st = k
			}
		}
		// StartTime 20 s past the minute is rounded down to the minute: minute 0 counts whole.
		if !slices.Equal(r.Values, want[st]) {
			t.Errorf("%s: values %v, want %v", st, r.Values, want[st])
		}
		wantTimes := []time.Time{b.Add(2 * time.Minute), b}
		if len(r.Timestamps) != 2 || !r.Timestamps[0].Equal(wantTimes[0]) || !r.Timestamps[1].Equal(wantTimes[1]) {
			t.Errorf("%s: timestamps %v, want %v", st, r.Timestamps, wantTimes)
		}
		if r.StatusCode != types.StatusCodeComplete || aws.ToString(r.Label) != "Latency" {
			t.Errorf("%s: status %s label %q, want Complete and the metric name", st, r.StatusCode, aws.ToString(r.Label))
		}
	}
}

func TestGetMetricData_DimensionsMatchExactly_EndTimeExclusive_Ascending_LabelEcho(t *testing.T) {
	s, c := start(t)
	b := base()
	put(s, b, "Count", 1, dims("Api", "a"), dims("Api", "a", "Stage", "prod"))
	put(s, b.Add(time.Minute), "Count", 1, dims("Api", "a", "Stage", "prod"))
	put(s, b.Add(2*time.Minute), "Count", 1, dims("Api", "a", "Stage", "prod")) // at EndTime: excluded
	q := stat("m", "Count", "Sum", 60, "Stage", "prod", "Api", "a")             // dimension order does not matter
	q.Label = aws.String("requests")
	apiOnly := stat("api", "Count", "Sum", 60, "Api", "a")
	none := stat("none", "Count", "Sum", 60, "Stage", "prod")
	out, err := c.GetMetricData(context.Background(), &cloudwatch.GetMetricDataInput{
		MetricDataQueries: []types.MetricDataQuery{q, apiOnly, none}, ScanBy: types.ScanByTimestampAscending,
		StartTime: aws.Time(b), EndTime: aws.Time(b.Add(2 * time.Minute)),
	})
	if err != nil {
		t.Fatal(err)
	}
	r := out.MetricDataResults
	if aws.ToString(r[0].Label) != "requests" || !slices.Equal(r[0].Values, []float64{1, 1}) || !r[0].Timestamps[0].Equal(b) {
		t.Errorf("stage metric: label %q values %v times %v", aws.ToString(r[0].Label), r[0].Values, r[0].Timestamps)
	}
	if !slices.Equal(r[1].Values, []float64{1}) {
		t.Errorf("the API-only metric is its own: values %v, want [1]", r[1].Values)
	}
	if len(r[2].Values) != 0 || len(r[2].Timestamps) != 0 || r[2].StatusCode != types.StatusCodeComplete {
		t.Errorf("a metric nobody published: %v %v %s, want no datapoints, Complete", r[2].Values, r[2].Timestamps, r[2].StatusCode)
	}
}

func TestGetMetricData_ArithmeticBetweenIds(t *testing.T) {
	s, c := start(t)
	b := base()
	for i := range 4 {
		put(s, b.Add(time.Duration(i)*time.Second), "Count", 1, dims("Api", "a"))
		put(s, b.Add(time.Duration(i)*time.Second), "Errors", float64(i%2), dims("Api", "a"))
	}
	put(s, b.Add(time.Minute), "Count", 1, dims("Api", "a")) // minute 1: no Errors value
	bad, all := stat("bad", "Errors", "Sum", 60, "Api", "a"), stat("all", "Count", "Sum", 60, "Api", "a")
	bad.ReturnData, all.ReturnData = aws.Bool(false), aws.Bool(false)
	out, err := c.GetMetricData(context.Background(), &cloudwatch.GetMetricDataInput{
		MetricDataQueries: []types.MetricDataQuery{bad, all,
			{Id: aws.String("ratio"), Expression: aws.String("100 * bad / (all - 0)")},
			{Id: aws.String("zero"), Expression: aws.String("bad / (all - all)")},
		},
		StartTime: aws.Time(b), EndTime: aws.Time(b.Add(3 * time.Minute)),
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.MetricDataResults) != 2 {
		t.Fatalf("%d results, want the 2 expressions (ReturnData false hides the others)", len(out.MetricDataResults))
	}
	ratio := out.MetricDataResults[0]
	if aws.ToString(ratio.Label) != "ratio" || !slices.Equal(ratio.Values, []float64{50}) || !ratio.Timestamps[0].Equal(b) {
		t.Errorf("ratio: %q %v %v, want 50 at minute 0 only (minute 1 has no Errors)", aws.ToString(ratio.Label), ratio.Values, ratio.Timestamps)
	}
	if len(out.MetricDataResults[1].Values) != 0 {
		t.Errorf("division by zero: %v, want no datapoint", out.MetricDataResults[1].Values)
	}
}

func TestGetMetricData_MaxDatapoints_PaginatesWithNextToken(t *testing.T) {
	s, c := start(t)
	b := base()
	for i := range 5 {
		put(s, b.Add(time.Duration(i)*time.Minute), "Count", float64(i), dims("Api", "a"))
	}
	in := &cloudwatch.GetMetricDataInput{
		MetricDataQueries: []types.MetricDataQuery{stat("m", "Count", "Sum", 60, "Api", "a")}, MaxDatapoints: aws.Int32(2),
		StartTime: aws.Time(b), EndTime: aws.Time(b.Add(10 * time.Minute)), ScanBy: types.ScanByTimestampAscending,
	}
	var got []float64
	for page := 0; ; page++ {
		out, err := c.GetMetricData(context.Background(), in)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, out.MetricDataResults[0].Values...)
		if out.NextToken == nil {
			if out.MetricDataResults[0].StatusCode != types.StatusCodeComplete {
				t.Errorf("last page: status %s, want Complete", out.MetricDataResults[0].StatusCode)
			}
			break
		}
		if out.MetricDataResults[0].StatusCode != types.StatusCodePartialData || page > 3 {
			t.Fatalf("page %d: status %s", page, out.MetricDataResults[0].StatusCode)
		}
		in.NextToken = out.NextToken
	}
	if !slices.Equal(got, []float64{0, 1, 2, 3, 4}) {
		t.Errorf("pages: %v, want 0..4", got)
	}
}

func TestGetMetricData_BadInput_AnswersCloudWatchErrors(t *testing.T) {
	_, c := start(t)
	b := base()
	good := stat("m", "Count", "Sum", 60)
	both := stat("m", "Count", "Sum", 60)
	both.Expression = aws.String("1")
	cases := []struct {
		name string
		in   cloudwatch.GetMetricDataInput
		code string
		typ  any
		says string
	}{
		{"start after end", cloudwatch.GetMetricDataInput{MetricDataQueries: []types.MetricDataQuery{good}, StartTime: aws.Time(b), EndTime: aws.Time(b)},
			"InvalidParameterValue", &types.InvalidParameterValueException{}, "StartTime must be less than"},
		{"bad period", cloudwatch.GetMetricDataInput{MetricDataQueries: []types.MetricDataQuery{stat("m", "Count", "Sum", 90)}, StartTime: aws.Time(b), EndTime: aws.Time(b.Add(time.Hour))},
			"InvalidParameterValue", &types.InvalidParameterValueException{}, "MetricDataQueries.member.1.MetricStat.Period"},
		{"bad stat", cloudwatch.GetMetricDataInput{MetricDataQueries: []types.MetricDataQuery{stat("m", "Count", "tm99", 60)}, StartTime: aws.Time(b), EndTime: aws.Time(b.Add(time.Hour))},
			"InvalidParameterValue", &types.InvalidParameterValueException{}, "tm99"},
		{"bad id", cloudwatch.GetMetricDataInput{MetricDataQueries: []types.MetricDataQuery{stat("Upper", "Count", "Sum", 60)}, StartTime: aws.Time(b), EndTime: aws.Time(b.Add(time.Hour))},
			"InvalidParameterValue", &types.InvalidParameterValueException{}, "MetricDataQueries.member.1.Id"},
		{"duplicate id", cloudwatch.GetMetricDataInput{MetricDataQueries: []types.MetricDataQuery{good, good}, StartTime: aws.Time(b), EndTime: aws.Time(b.Add(time.Hour))},
			"InvalidParameterValue", &types.InvalidParameterValueException{}, "not unique"},
		{"stat and expression", cloudwatch.GetMetricDataInput{MetricDataQueries: []types.MetricDataQuery{both}, StartTime: aws.Time(b), EndTime: aws.Time(b.Add(time.Hour))},
			"InvalidParameterCombination", &types.InvalidParameterCombinationException{}, "exactly one of MetricStat and Expression"},
		{"function", cloudwatch.GetMetricDataInput{MetricDataQueries: []types.MetricDataQuery{good, {Id: aws.String("e"), Expression: aws.String("SUM(METRICS())")}}, StartTime: aws.Time(b), EndTime: aws.Time(b.Add(time.Hour))},
			"InvalidParameterValue", &types.InvalidParameterValueException{}, "function SUM is not supported"},
		{"unknown id", cloudwatch.GetMetricDataInput{MetricDataQueries: []types.MetricDataQuery{good, {Id: aws.String("e"), Expression: aws.String("m / x")}}, StartTime: aws.Time(b), EndTime: aws.Time(b.Add(time.Hour))},
			"InvalidParameterValue", &types.InvalidParameterValueException{}, `"x" is not the id`},
		{"bad token", cloudwatch.GetMetricDataInput{MetricDataQueries: []types.MetricDataQuery{good}, NextToken: aws.String("nope!"), StartTime: aws.Time(b), EndTime: aws.Time(b.Add(time.Hour))},
			"InvalidNextToken", &types.InvalidNextToken{}, "invalid NextToken"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.GetMetricData(context.Background(), &tc.in)
			var api smithy.APIError
			if !errors.As(err, &api) || api.ErrorCode() != tc.code || !strings.Contains(api.ErrorMessage(), tc.says) || api.ErrorFault() != smithy.FaultClient {
				t.Fatalf("err = %v, want %s (client fault) saying %q", err, tc.code, tc.says)
			}
			switch tc.typ.(type) {
			case *types.InvalidParameterValueException:
				var e *types.InvalidParameterValueException
				if !errors.As(err, &e) {
					t.Errorf("err is %T, want the modelled InvalidParameterValueException", err)
				}
			case *types.InvalidParameterCombinationException:
				var e *types.InvalidParameterCombinationException
				if !errors.As(err, &e) {
					t.Errorf("err is %T, want the modelled InvalidParameterCombinationException", err)
				}
			case *types.InvalidNextToken:
				var e *types.InvalidNextToken
				if !errors.As(err, &e) {
					t.Errorf("err is %T, want the modelled InvalidNextToken", err)
				}
			}
		})
	}
}

func TestListMetrics_FiltersByNamespaceNameAndDimensions(t *testing.T) {
	s, c := start(t)
	b := base()
	put(s, b, "Verifications", 1, dims("Release", "r1", "Reason", "none"))
	put(s, b, "Verifications", 1, dims("Release", "r1", "Reason", "expired"))
	put(s, b, "Verifications", 1, dims("Release", "r2", "Reason", "none"))
	put(s, b, "Other", 1, dims("Release", "r1"))
	out, err := c.ListMetrics(context.Background(), &cloudwatch.ListMetricsInput{
		Namespace: aws.String("Test"), MetricName: aws.String("Verifications"),
		Dimensions: []types.DimensionFilter{{Name: aws.String("Release"), Value: aws.String("r1")}, {Name: aws.String("Reason")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range out.Metrics {
		var kv []string
		for _, d := range m.Dimensions {
			kv = append(kv, *d.Name+"="+*d.Value)
		}
		got = append(got, *m.Namespace+"/"+*m.MetricName+" "+strings.Join(kv, ","))
	}
	want := []string{"Test/Verifications Reason=expired,Release=r1", "Test/Verifications Reason=none,Release=r1"}
	if !slices.Equal(got, want) {
		t.Errorf("metrics %q, want %q", got, want)
	}
}

// With the delay AWS documents for a new metric ("allow up to 15 minutes"), ListMetrics lists it
// only once the delay has passed since its first value, while GetMetricData reads it at once,
// its dimensions named in any order.
func TestListMetrics_ANewMetricIsListedAfterTheDelayButReadAtOnce(t *testing.T) {
	s, c := start(t)
	now := time.Now()
	s.Now = func() time.Time { return now }
	b := base()
	put(s, b, "Verifications", 1, dims("Release", "old"))
	s.SetListDelay(15 * time.Minute)
	put(s, b, "Verifications", 2, dims("Release", "new", "Reason", "none"))
	listed := func() int {
		t.Helper()
		out, err := c.ListMetrics(context.Background(), &cloudwatch.ListMetricsInput{Namespace: aws.String("Test")})
		if err != nil {
			t.Fatal(err)
		}
		return len(out.Metrics)
	}
	if n := listed(); n != 1 {
		t.Fatalf("%d metrics listed right after the new one's first value, want the old one only", n)
	}
	out, err := c.GetMetricData(context.Background(), &cloudwatch.GetMetricDataInput{StartTime: aws.Time(b), EndTime: aws.Time(b.Add(time.Minute)),
		MetricDataQueries: []types.MetricDataQuery{stat("n", "Verifications", "Sum", 60, "Reason", "none", "Release", "new")}})
	if err != nil || len(out.MetricDataResults) != 1 || !slices.Equal(out.MetricDataResults[0].Values, []float64{2}) {
		t.Fatalf("GetMetricData of the new metric: %+v, %v; want 2 at once", out, err)
	}
	now = now.Add(15 * time.Minute)
	if n := listed(); n != 2 {
		t.Fatalf("%d metrics listed after the delay, want 2", n)
	}
}

func TestEMFWriter_PublishesEveryDimensionSet_IgnoresLogLines(t *testing.T) {
	s := NewStore()
	w := s.EMFWriter()
	at := time.Now().Truncate(time.Millisecond)
	line := `{"_aws":{"Timestamp":` + itoa(at.UnixMilli()) + `,"CloudWatchMetrics":[{"Namespace":"Rollgate","Dimensions":[["Issuer","Release"],["Release"]],"Metrics":[{"Name":"Verifications","Unit":"Count"}]}]},"Issuer":"i","Release":"r1","Verifications":1,"Kid":"k"}`
	// Written in pieces, with a plain log line between documents, as a process's pipe delivers it.
	for _, chunk := range []string{"START RequestId: x\n", line[:40], line[40:] + "\n", "not json\n", `{"_aws":{"CloudWatchMetrics":[]}}` + "\n"} {
		if _, err := w.Write([]byte(chunk)); err != nil {
			t.Fatal(err)
		}
	}
	for _, set := range [][]Dimension{dims("Issuer", "i", "Release", "r1"), dims("Release", "r1")} {
		got := s.values(metric{"Rollgate", "Verifications", set}, "Count", at.Add(-time.Second), at.Add(time.Second))
		if len(got) != 1 || got[0].v != 1 || !got[0].t.Equal(at) {
			t.Errorf("%v: %v, want one value 1 at the line's timestamp", set, got)
		}
	}
	if s.RejectedEMF() != 1 {
		t.Errorf("rejected %d EMF lines, want 1 (the one without a Timestamp)", s.RejectedEMF())
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestStore_DropsValuesPastTheRetention(t *testing.T) {
	s := NewStore()
	old := time.Now().Add(-DefaultRetention - time.Minute)
	for i := range 2000 {
		s.Put(Datum{Namespace: "Test", MetricName: "Count", DimensionSets: [][]Dimension{dims("Old", "yes")}, Time: old.Add(time.Duration(i) * time.Millisecond), Value: 1})
	}
	s.Put(Datum{Namespace: "Test", MetricName: "Count", DimensionSets: [][]Dimension{dims("Old", "no")}, Time: time.Now(), Value: 1})
	got := s.metrics(time.Time{}, func(metric) bool { return true })
	if len(got) != 1 || got[0].Dimensions[0].Value != "no" {
		t.Errorf("metrics %v, want only the recent one", got)
	}
}
