package gatewayemu

import (
	"net/http"
	"strings"
	"time"

	"github.com/rollgate/rollgate/testsuite/cloudwatchemu"
)

// PublishMetricsTo makes the data plane publish what API Gateway publishes to CloudWatch about
// each request it serves (https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-metrics-and-dimensions.html
// and, for HTTP APIs, .../http-api-metrics.html):
//   - REST APIs: Count, 4XXError, 5XXError (0 or 1 per request, so that Average is the error
//     rate), Latency and IntegrationLatency (milliseconds) in AWS/ApiGateway, under the
//     dimensions ApiName and ApiName+Stage. A request the canary served is also published under
//     ApiName+Stage "<stage>/Canary": AWS reports the canary's metrics and logs to the stage and
//     to a canary-specific destination named with the "/Canary" suffix
//     (https://docs.aws.amazon.com/apigateway/latest/developerguide/canary-release.html), so the
//     stable deployment's share is the stage's minus the canary's.
//   - HTTP APIs: Count, 4xx, 5xx, Latency and IntegrationLatency under ApiId and ApiId+Stage.
//
// Per-method metrics (ApiName+Method+Resource+Stage) need detailed metrics, which the emulator
// does not model: they are never published, as on a stage without detailed metrics.
func (e *Emulator) PublishMetricsTo(s *cloudwatchemu.Store) { e.cloudwatch.Store(s) }

// servedRequest is what the data plane knows of one answer a stage served.
type servedRequest struct {
	apiID, stage string
	canary       bool
	status       int
	at           time.Time
	latency      time.Duration
	integration  time.Duration
	integrated   bool
}

const gatewayNamespace = "AWS/ApiGateway"

func (e *Emulator) publishCloudWatch(r servedRequest) {
	s := e.cloudwatch.Load()
	if s == nil {
		return
	}
	e.mu.Lock()
	rest, httpAPI := e.restAPIs[r.apiID], e.httpAPIs[r.apiID]
	e.mu.Unlock()
	var sets [][]cloudwatchemu.Dimension
	names := [3]string{"4XXError", "5XXError", "Count"}
	switch {
	case rest != nil:
		name := metricAPIName(rest.Name, rest.ID)
		sets = [][]cloudwatchemu.Dimension{{{Name: "ApiName", Value: name}}, {{Name: "ApiName", Value: name}, {Name: "Stage", Value: r.stage}}}
		if r.canary {
			sets = append(sets, []cloudwatchemu.Dimension{{Name: "ApiName", Value: name}, {Name: "Stage", Value: r.stage + "/Canary"}})
		}
	case httpAPI != nil:
		names = [3]string{"4xx", "5xx", "Count"}
		sets = [][]cloudwatchemu.Dimension{{{Name: "ApiId", Value: r.apiID}}, {{Name: "ApiId", Value: r.apiID}, {Name: "Stage", Value: r.stage}}}
	default:
		return
	}
	datum := func(metric string, v float64, unit string) cloudwatchemu.Datum {
		return cloudwatchemu.Datum{Namespace: gatewayNamespace, MetricName: metric, DimensionSets: sets, Time: r.at, Value: v, Unit: unit}
	}
	data := []cloudwatchemu.Datum{
		datum(names[0], boolValue(r.status >= 400 && r.status < 500), "Count"),
		datum(names[1], boolValue(r.status >= 500), "Count"),
		datum(names[2], 1, "Count"),
		datum("Latency", milliseconds(r.latency), "Milliseconds"),
	}
	if r.integrated {
		data = append(data, datum("IntegrationLatency", milliseconds(r.integration), "Milliseconds"))
	}
	s.Put(data...)
}

// metricAPIName is the ApiName dimension: API Gateway drops non-ASCII characters from the name,
// and uses the API's id when none is left.
func metricAPIName(name, id string) string {
	ascii := strings.Map(func(r rune) rune {
		if r > 127 {
			return -1
		}
		return r
	}, name)
	if ascii == "" {
		return id
	}
	return ascii
}

// timeIntegration starts timing the backend call of the answer w; call the result when the
// backend has answered.
func timeIntegration(w http.ResponseWriter) func() {
	rec, ok := w.(*statusRecorder)
	if !ok {
		return func() {}
	}
	start := time.Now()
	return func() { rec.integration, rec.integrated = time.Since(start), true }
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func milliseconds(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
