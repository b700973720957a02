package testsuite_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"
)

// otlpReceiver is an OTLP/HTTP trace endpoint: it decodes what the real exporters send.
type otlpReceiver struct {
	mu    sync.Mutex
	spans map[string][]string // span name → trace ids
	svc   map[string]string   // span name → service.name
}

func (o *otlpReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var req coltracepb.ExportTraceServiceRequest
	if r.URL.Path != "/v1/traces" || proto.Unmarshal(body, &req) != nil {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, rs := range req.ResourceSpans {
		service := ""
		for _, a := range rs.GetResource().GetAttributes() {
			if a.Key == "service.name" {
				service = a.GetValue().GetStringValue()
			}
		}
		for _, ss := range rs.ScopeSpans {
			for _, s := range ss.Spans {
				o.spans[s.Name] = append(o.spans[s.Name], string(s.TraceId))
				o.svc[s.Name] = service
			}
		}
	}
	w.Header().Set("Content-Type", "application/x-protobuf")
	out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	_, _ = w.Write(out)
}

// With an OTLP endpoint configured, `starter deploy` and the worker export spans of one trace:
// the starter's StartWorkflow span and the worker's workflow and activity spans.
func TestTracing_OneTraceFromStarterToWorker(t *testing.T) {
	recv := &otlpReceiver{spans: map[string][]string{}, svc: map[string]string{}}
	srv := httptest.NewServer(recv)
	defer srv.Close()
	otel := []string{"OTEL_EXPORTER_OTLP_ENDPOINT=" + srv.URL, "OTEL_BSP_SCHEDULE_DELAY=200"}

	r := provision(t, "tracing")
	r.StopWorker()
	w := newWorkerProcess(t, buildWorker(t))
	w.env = append(w.env, otel...)
	w.start(t)
	defer w.kill()

	starterBin := filepath.Join(t.TempDir(), "starter")
	if out, err := exec.Command("go", "build", "-o", starterBin, "../starter").CombinedOutput(); err != nil {
		t.Fatalf("build starter: %v\n%s", err, out)
	}
	spec, _ := json.Marshal(r.Spec("v2", 10*time.Second))
	specPath := filepath.Join(t.TempDir(), "release.json")
	_ = os.WriteFile(specPath, spec, 0o644)
	cmd := exec.Command(starterBin, "deploy", "-f", specPath, "--wait")
	cmd.Env = append(os.Environ(), otel...)
	for _, kv := range shared.Bed(t).Env() {
		cmd.Env = append(cmd.Env, kv[0]+"="+kv[1])
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("starter deploy: %v\n%s", err, out)
	}

	deadline := time.Now().Add(2 * time.Minute)
	for {
		recv.mu.Lock()
		start, run, act := recv.spans["StartWorkflow:Deployment"], recv.spans["RunWorkflow:Deployment"], recv.spans["RunActivity:PrepareKey"]
		svcStart, svcRun := recv.svc["StartWorkflow:Deployment"], recv.svc["RunWorkflow:Deployment"]
		recv.mu.Unlock()
		// One trace must run from the starter's start to the worker's activities. The workflow's
		// own RunWorkflow span is required from the worker but not in that trace: on a busy machine
		// the worker's cached workflow can be evicted and replayed, and the SDK's interceptor then
		// ends (and exports) a RunWorkflow span of the replayed run, in a trace of its own, while
		// the activities it schedules stay children of the starter's trace.
		if len(start) > 0 && len(run) > 0 && len(act) > 0 {
			if !slices.ContainsFunc(start, func(tr string) bool { return slices.Contains(act, tr) }) {
				t.Fatalf("no trace holds the starter's start and the worker's activity: StartWorkflow in %x, RunActivity:PrepareKey in %x (RunWorkflow in %x)", start, act, run)
			}
			if svcStart != "rollgate-starter" || svcRun != "rollgate-worker" {
				t.Fatalf("service names %q, %q", svcStart, svcRun)
			}
			return
		}
		if time.Now().After(deadline) {
			recv.mu.Lock()
			defer recv.mu.Unlock()
			names := make([]string, 0, len(recv.spans))
			for n := range recv.spans {
				names = append(names, n)
			}
			t.Fatalf("spans received: %v", names)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
