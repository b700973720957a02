package gatewayemu_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/apigateway"
	"github.com/aws/aws-sdk-go-v2/service/apigateway/types"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/rollgate/rollgate/testsuite/gatewayemu"
)

// scrape reads the emulator's metrics as Prometheus does, from its own listener.
func scrape(t *testing.T, target string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get("http://" + target + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return fams
}

// series sums a family's samples whose labels include want.
func series(fams map[string]*dto.MetricFamily, name string, want map[string]string) (count float64, histogramCount uint64) {
	for _, m := range fams[name].GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		match := true
		for k, v := range want {
			match = match && labels[k] == v
		}
		if match {
			count += m.GetCounter().GetValue()
			histogramCount += m.GetHistogram().GetSampleCount()
		}
	}
	return count, histogramCount
}

// The data-plane metrics show the canary split as the answers did: each side's requests by
// deployment and status class, the canary's failing backend as its 5xx only, a latency histogram
// per side, and nothing for a stage that does not exist.
func TestDataPlaneMetrics_CountTheCanarySplitByDeploymentAndStatusClass(t *testing.T) {
	emu, c, _ := startEmulator(t, gatewayemu.Options{})
	ctx := context.Background()
	f := newRESTFixture(t, emu, c, backend(t, "stable"))
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "canary down", http.StatusServiceUnavailable)
	}))
	t.Cleanup(broken.Close)
	canary, err := c.CreateDeployment(ctx, &apigateway.CreateDeploymentInput{
		RestApiId: &f.api, StageName: &f.stage,
		CanarySettings: &types.DeploymentCanarySettings{PercentTraffic: 30, StageVariableOverrides: map[string]string{"backendUrl": hostPort(broken.URL)}},
	})
	if err != nil {
		t.Fatal(err)
	}
	target, err := emu.ServeMetrics()
	if err != nil {
		t.Fatal(err)
	}
	url := emu.InvokeURL(f.api, f.stage) + "/orders/42"
	seen := map[string]int{} // "<canary> <status class>"
	for range 300 {
		status, _, h := get(t, url, http.Header{"Authorization": {"good"}})
		seen[h.Get(gatewayemu.CanaryHeader)+" "+fmt.Sprintf("%dxx", status/100)]++
	}
	for range 20 {
		status, _, h := get(t, url, nil) // no token: 401 from whichever side was drawn
		seen[h.Get(gatewayemu.CanaryHeader)+" "+fmt.Sprintf("%dxx", status/100)]++
	}
	get(t, emu.InvokeURL(f.api, "nosuchstage")+"/x", nil)
	get(t, emu.DataURL+"/metrics", nil)
	if seen["true 5xx"] == 0 || seen["false 2xx"] == 0 || seen["true 2xx"] != 0 || seen["false 5xx"] != 0 {
		t.Fatalf("the split itself is off: %v", seen)
	}

	fams := scrape(t, target)
	const requests, latency = "rollgate_gateway_requests_total", "rollgate_gateway_request_duration_seconds"
	for key, want := range seen {
		var side, class string
		fmt.Sscan(key, &side, &class)
		dep := f.deployment
		if side == "true" {
			dep = *canary.Id
		}
		got, _ := series(fams, requests, map[string]string{"api": f.api, "stage": f.stage, "deployment": dep, "canary": side, "status_class": class})
		if got != float64(want) {
			t.Errorf("%s{canary=%s,status_class=%s,deployment=%s} = %v, want %d", requests, side, class, dep, got, want)
		}
	}
	total, _ := series(fams, requests, nil)
	if total != 320 {
		t.Errorf("%v requests counted, want 320 (none for an unknown stage or path)", total)
	}
	for _, side := range []string{"true", "false"} {
		n, _ := series(fams, requests, map[string]string{"canary": side})
		_, h := series(fams, latency, map[string]string{"api": f.api, "stage": f.stage, "canary": side})
		if float64(h) != n || h == 0 {
			t.Errorf("canary=%s: latency histogram has %d observations, want %v", side, h, n)
		}
	}
}
