package testsuite_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/rollgate/rollgate/workflows"
)

// The real worker's /metrics, after a broken release rolled back: the Temporal SDK's series (via
// tally), rollgate's deployment, rollback and probe series, and the token lifecycle counters, each
// with a plausible value; and its log is JSON lines throughout, workflow logs included.
func TestWorker_MetricsAndJSONLogs(t *testing.T) {
	bin := buildWorker(t)
	r := provision(t, "metricsw")
	r.StopWorker()
	w := newWorkerProcess(t, bin)
	logPath, addr := w.log.Name(), w.metrics
	w.start(t)
	defer w.kill()

	res := deployResult(t, startDeployment(t, r, "v3", 10*time.Second))
	if res.Outcome != workflows.OutcomeRolledBack || !res.Rollback.Verified {
		t.Fatalf("outcome %s, rollback %+v", res.Outcome, res.Rollback)
	}

	// tally reports to the registry every second.
	var families map[string]*dto.MetricFamily
	deadline := time.Now().Add(2 * time.Minute)
	for {
		families = scrape(t, addr)
		if f := families["temporal_workflow_completed_total"]; f != nil && f.Metric[0].Counter.GetValue() > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	value := func(name string, labels map[string]string) (float64, bool) {
		f := families[name]
		if f == nil {
			return 0, false
		}
	next:
		for _, m := range f.Metric {
			for k, v := range labels {
				found := false
				for _, l := range m.Label {
					if l.GetName() == k && l.GetValue() == v {
						found = true
					}
				}
				if !found {
					continue next
				}
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue(), true
			case m.Histogram != nil:
				return m.Histogram.GetSampleSum() / float64(max(1, m.Histogram.GetSampleCount())), true
			case m.Gauge != nil:
				return m.Gauge.GetValue(), true
			}
		}
		return 0, false
	}
	if testing.Verbose() {
		for _, f := range families {
			if strings.HasPrefix(f.GetName(), "rollgate_") || strings.HasPrefix(f.GetName(), "temporal_workflow_completed") || strings.HasPrefix(f.GetName(), "temporal_activity_execution_latency") {
				for _, m := range f.Metric {
					t.Logf("%s %v %v", f.GetName(), m.Label, m.Counter.GetValue()+m.Histogram.GetSampleSum())
				}
			}
		}
	}
	for _, c := range []struct {
		name     string
		labels   map[string]string
		min, max float64
	}{
		{"rollgate_deployments_total", map[string]string{"service": r.Name, "outcome": "rolled_back"}, 1, 1},
		{"rollgate_rollbacks_total", map[string]string{"trigger": "health", "verified": "true"}, 1, 1},
		{"rollgate_rollback_latency_seconds", map[string]string{"trigger": "health"}, 0.001, 60}, // mean of one
		{"rollgate_probes_total", map[string]string{"result": "accepted"}, 1, 1e6},
		{"rollgate_probes_total", map[string]string{"result": "server_error"}, 1, 1e6},
		{"rollgate_tokens_issued_total", nil, 1, 1e6},
		{"temporal_workflow_completed_total", map[string]string{"workflow_type": "Deployment"}, 1, 1},
		{"temporal_activity_execution_latency_seconds", map[string]string{"activity_type": "Probe"}, 0.001, 120},
		{"temporal_request_total", nil, 1, 1e9},
		{"go_goroutines", nil, 1, 1e6},
	} {
		v, ok := value(c.name, c.labels)
		if !ok || v < c.min || v > c.max {
			t.Errorf("%s%v = %v (present %v), want %v..%v", c.name, c.labels, v, ok, c.min, c.max)
		}
	}

	// Every log line is one JSON object; the workflow's own log lines come through the SDK logger.
	w.kill()
	raw, _ := os.ReadFile(logPath)
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(nil, 1<<20)
	lines, fromWorkflow := 0, 0
	for sc.Scan() {
		var rec map[string]any
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("log line %d is not JSON: %s", lines+1, sc.Text())
		}
		lines++
		if rec["WorkflowType"] == "Deployment" {
			fromWorkflow++
		}
	}
	if lines == 0 || fromWorkflow == 0 {
		t.Fatalf("%d log lines, %d from the Deployment workflow:\n%s", lines, fromWorkflow, raw)
	}
}

func scrape(t *testing.T, addr string) map[string]*dto.MetricFamily {
	t.Helper()
	families, err := scrapeFamilies(addr)
	if err != nil {
		t.Fatal(err)
	}
	return families
}

// scrapeFamilies reads a Prometheus text exposition from addr's /metrics.
func scrapeFamilies(addr string) (map[string]*dto.MetricFamily, error) {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("parse %s/metrics: %w", addr, err)
	}
	return families, nil
}
