package cloudwatchemu

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// postJSON calls op in AWS JSON 1.0, as SDKs of that protocol do.
func postJSON(t *testing.T, s *Server, op, body string) (int, http.Header, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.URL+"/", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.0")
	req.Header.Set("X-Amz-Target", "GraniteServiceVersion20100801."+op)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, doc
}

func TestAWSJSON_GetMetricDataAndErrors(t *testing.T) {
	s, _ := start(t)
	b := base()
	put(s, b.Add(time.Second), "Count", 2, dims("Api", "a"))
	put(s, b.Add(2*time.Second), "Count", 3, dims("Api", "a"))
	from, to := strconv.FormatInt(b.Unix(), 10), strconv.FormatInt(b.Add(time.Hour).Unix(), 10)
	status, h, doc := postJSON(t, s, "GetMetricData", `{"StartTime":`+from+`,"EndTime":`+to+`,"MetricDataQueries":[
		{"Id":"m","MetricStat":{"Metric":{"Namespace":"Test","MetricName":"Count","Dimensions":[{"Name":"Api","Value":"a"}]},"Period":60,"Stat":"Sum"}}]}`)
	if status != 200 || h.Get("Content-Type") != "application/x-amz-json-1.0" {
		t.Fatalf("status %d, content type %q: %v", status, h.Get("Content-Type"), doc)
	}
	r := doc["MetricDataResults"].([]any)[0].(map[string]any)
	if r["Id"] != "m" || r["Label"] != "Count" || r["StatusCode"] != "Complete" ||
		r["Values"].([]any)[0] != 5.0 || r["Timestamps"].([]any)[0] != float64(b.Unix()) {
		t.Errorf("result %v, want Sum 5 at the minute in epoch seconds", r)
	}
	status, h, doc = postJSON(t, s, "GetMetricData", `{"StartTime":`+to+`,"EndTime":`+from+`,"MetricDataQueries":[{"Id":"m","Expression":"1"}]}`)
	if status != 400 || h.Get("X-Amzn-Query-Error") != "InvalidParameterValue;Sender" ||
		doc["__type"] != "com.amazonaws.cloudwatch#InvalidParameterValueException" || !strings.Contains(doc["message"].(string), "StartTime") {
		t.Errorf("bad input: %d %q %v", status, h.Get("X-Amzn-Query-Error"), doc)
	}
	status, _, doc = postJSON(t, s, "PutMetricAlarm", `{}`)
	if status != 404 || !strings.Contains(doc["message"].(string), "not supported") {
		t.Errorf("unsupported operation: %d %v", status, doc)
	}
}
