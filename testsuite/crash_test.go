package testsuite_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/apigateway"

	"github.com/rollgate/rollgate/internal/keys"
	"github.com/rollgate/rollgate/testsuite"
	"github.com/rollgate/rollgate/workflows"
)

// workerProcess runs the real worker program against the bed.
type workerProcess struct {
	bin string
	env []string
	cmd *exec.Cmd
	log *os.File
	// metrics is the address of its /metrics.
	metrics string
}

func buildWorker(t testing.TB) string {
	t.Helper()
	testsuite.SkipIfShort(t) // the build is only worth it when the bed runs
	bin := filepath.Join(t.TempDir(), "worker")
	if out, err := exec.Command("go", "build", "-o", bin, "../worker").CombinedOutput(); err != nil {
		t.Fatalf("build worker: %v\n%s", err, out)
	}
	return bin
}

// newWorkerProcess prepares the worker program wired to the bed, logging to a file and serving
// /metrics on a free port.
func newWorkerProcess(t testing.TB, bin string) *workerProcess {
	t.Helper()
	logf, err := os.Create(filepath.Join(t.TempDir(), "worker.log"))
	if err != nil {
		t.Fatal(err)
	}
	w := &workerProcess{bin: bin, log: logf, metrics: freeAddr(t)}
	w.env = []string{"ROLLGATE_METRICS_ADDR=" + w.metrics, "ROLLGATE_GATEWAY_INVOKE_URL=" + shared.Bed(t).Gateway.DataURL}
	for _, kv := range shared.Bed(t).Env() {
		w.env = append(w.env, kv[0]+"="+kv[1])
	}
	return w
}

func (w *workerProcess) start(t testing.TB) {
	t.Helper()
	w.cmd = exec.Command(w.bin)
	w.cmd.Env = append(os.Environ(), w.env...)
	w.cmd.Stdout, w.cmd.Stderr = w.log, w.log
	// The worker dies with the test binary, and with the test: a worker left polling the task
	// queue would take the next test's tasks.
	w.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := w.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	proc := w.cmd.Process
	t.Cleanup(func() { _ = proc.Signal(syscall.SIGKILL) }) // a no-op once it has exited
}

// kill ends the worker as a crash would: no shutdown, activities cut mid-flight.
func (w *workerProcess) kill() {
	_ = w.cmd.Process.Signal(syscall.SIGKILL)
	_ = w.cmd.Wait()
}

// A worker killed with SIGKILL at several points of a deployment is replaced by a new one; the
// deployment completes, Vault's latest_version rose by exactly one, and no second canary
// deployment was created.
func TestCrash_WorkerKilledMidDeployment_ReleaseCompletesExactlyOnce(t *testing.T) {
	bin := buildWorker(t)
	points := []struct {
		name string
		at   func(workflows.Status) bool
	}{
		{"after-rotation", func(st workflows.Status) bool { return st.Phase == workflows.PhasePublishing }},
		{"first-bake", func(st workflows.Status) bool { return st.Phase == workflows.PhaseBaking && st.Step == 1 }},
		{"second-bake", func(st workflows.Status) bool { return st.Phase == workflows.PhaseBaking && st.Step == 2 }},
	}
	for i, point := range points {
		phase := point.name
		t.Run(point.name, func(t *testing.T) {
			ctx := context.Background()
			r := provision(t, fmt.Sprintf("crash%d", i))
			r.StopWorker()
			w := newWorkerProcess(t, bin)
			logf, metrics := w.log, w.metrics
			before, err := r.Activity.Keys.Transit.ReadKey(ctx, r.Key)
			if err != nil {
				t.Fatal(err)
			}
			w.start(t)
			run := startDeployment(t, r, "v2", 10*time.Second)
			waitForStatus(t, r, run, point.at)
			w.kill()
			t.Logf("worker killed at %s", phase)
			w.start(t)
			defer w.kill()

			res := deployResult(t, run)
			if res.Outcome != workflows.OutcomePromoted {
				log, _ := os.ReadFile(logf.Name())
				t.Fatalf("outcome %s after a crash in %s: %+v\nworker log:\n%s", res.Outcome, phase, res.Rollback, log)
			}
			after, err := r.Activity.Keys.Transit.ReadKey(ctx, r.Key)
			if err != nil || after.LatestVersion != before.LatestVersion+1 {
				t.Fatalf("latest_version %d → %d, want exactly one rotation (%v)", before.LatestVersion, after.LatestVersion, err)
			}
			deps, err := r.Activity.Gateway.APIKeys.API.(*apigateway.Client).GetDeployments(ctx, &apigateway.GetDeploymentsInput{RestApiId: &r.APIID})
			if err != nil || len(deps.Items) != 2 {
				t.Fatalf("%d deployments on the API, want 2: the stable one and one canary (%v)", len(deps.Items), err)
			}
			// The restarted worker's /metrics counts the tokens it issued with the new key.
			resp, err := http.Get("http://" + metrics + "/metrics")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			series := fmt.Sprintf(`rollgate_tokens_issued_total{kid="%s"}`, keys.KID(r.Key, after.LatestVersion))
			if !strings.Contains(string(body), series) || !strings.Contains(string(body), "go_goroutines") {
				t.Fatalf("/metrics lacks %s:\n%.2000s", series, body)
			}
		})
	}
}

func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
