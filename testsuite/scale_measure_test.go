package testsuite_test

import (
	"fmt"
	"maps"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/rollgate/rollgate/workflows"
)

// What the scale benchmark measures besides the releases: processes' CPU and memory from /proc,
// and the workers' task waits from their /metrics.

// processUsage reads a process's CPU time (user + system) and peak resident memory (KiB).
func processUsage(b testing.TB, pid int) (time.Duration, int) {
	cpu, err := processCPU(pid)
	if err != nil {
		b.Fatal(err)
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	rss := 0
	for line := range strings.Lines(string(status)) {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			rss, _ = strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
		}
	}
	return cpu, rss
}

// bedUsage is the CPU time so far of this test binary (the gateway emulator, S3, CloudWatch and
// the benchmark's clients) and of every live process it started, by component, and the whole
// machine's busy time: what the cores were spent on besides the workers.
func bedUsage(b testing.TB) map[string]time.Duration {
	parent := map[int]int{}
	comm := map[int]string{}
	dirs, err := os.ReadDir("/proc")
	if err != nil {
		b.Fatal(err)
	}
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue // exited meanwhile
		}
		s := string(stat)
		open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		f := strings.Fields(s[end+2:])
		parent[pid], _ = strconv.Atoi(f[1])
		comm[pid] = s[open+1 : end]
	}
	self := os.Getpid()
	out := map[string]time.Duration{"machine busy": machineBusy(b)}
	for pid := range comm {
		if !descends(pid, self, parent) {
			continue
		}
		name := "test binary (emulator)"
		if pid != self {
			name = component(comm[pid])
		}
		if cpu, err := processCPU(pid); err == nil { // else it exited meanwhile
			out[name] += cpu
		}
	}
	return out
}

func descends(pid, root int, parent map[int]int) bool {
	for ; pid > 1; pid = parent[pid] {
		if pid == root {
			return true
		}
	}
	return false
}

// component names a bed process by its command.
func component(comm string) string {
	for _, c := range []struct{ prefix, name string }{
		{"worker", "workers"}, {"temporal", "temporal dev server"}, {"vault", "vault"}, {"node", "dynalite"},
		{"aws-lambda-rie", "authorizer (RIE)"}, {"bootstrap", "authorizer (RIE)"},
	} {
		if strings.HasPrefix(comm, c.prefix) {
			return c.name
		}
	}
	return comm
}

// machineBusy is the time every core spent on anything but idling, since boot.
func machineBusy(b testing.TB) time.Duration {
	stat, err := os.ReadFile("/proc/stat")
	if err != nil {
		b.Fatal(err)
	}
	line, _, _ := strings.Cut(string(stat), "\n")
	busy := 0
	for i, f := range strings.Fields(line)[1:] {
		v, _ := strconv.Atoi(f)
		if i != 3 && i != 4 && i < 8 { // idle, iowait; guest times are already in user
			busy += v
		}
	}
	return time.Duration(busy) * time.Second / 100 // USER_HZ
}

// processCPU is a process's CPU time (user + system).
func processCPU(pid int) (time.Duration, error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the command name (which may hold spaces) start after the last ')'.
	f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+2:]))
	utime, _ := strconv.Atoi(f[11])
	stime, _ := strconv.Atoi(f[12])
	return time.Duration(utime+stime) * time.Second / 100, nil // USER_HZ
}

// cpuByComponent formats CPU seconds by component, in name order.
func cpuByComponent(m map[string]time.Duration) string {
	names := slices.Sorted(maps.Keys(m))
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = fmt.Sprintf("%s %.1f", n, m[n].Seconds())
	}
	return strings.Join(parts, ", ")
}

// taskWaits are the workers' schedule-to-start latencies (the SDK's histograms on /metrics): how
// long tasks waited for a worker to take them, sums and counts by kind.
type taskWaits struct {
	workflowSum, mainSum, gatewaySum       float64 // seconds
	workflowCount, mainCount, gatewayCount float64
}

func (w *taskWaits) add(o taskWaits) {
	w.workflowSum, w.mainSum, w.gatewaySum = w.workflowSum+o.workflowSum, w.mainSum+o.mainSum, w.gatewaySum+o.gatewaySum
	w.workflowCount, w.mainCount, w.gatewayCount = w.workflowCount+o.workflowCount, w.mainCount+o.mainCount, w.gatewayCount+o.gatewayCount
}

func (w taskWaits) String() string {
	mean := func(sum, n float64) time.Duration {
		return time.Duration(sum / max(n, 1) * float64(time.Second)).Round(time.Millisecond)
	}
	return fmt.Sprintf("schedule-to-start means: %.0f workflow tasks %s, %.0f activities on the workflow's queue %s, %.0f on the gateway queues %s",
		w.workflowCount, mean(w.workflowSum, w.workflowCount), w.mainCount, mean(w.mainSum, w.mainCount), w.gatewayCount, mean(w.gatewaySum, w.gatewayCount))
}

// scrapeWaits reads a worker program's schedule-to-start histograms from its /metrics.
func scrapeWaits(b testing.TB, addr string) taskWaits {
	families, err := scrapeFamilies(addr)
	if err != nil {
		b.Fatal(err)
	}
	// Both gateway queues; the SDK's Prometheus sanitizer writes their "-" as "_".
	gatewayQueue := strings.ReplaceAll(workflows.GatewayTaskQueue(workflows.TaskQueue), "-", "_")
	var w taskWaits
	for _, m := range families["temporal_workflow_task_schedule_to_start_latency_seconds"].GetMetric() {
		w.workflowSum += m.GetHistogram().GetSampleSum()
		w.workflowCount += float64(m.GetHistogram().GetSampleCount())
	}
	for _, m := range families["temporal_activity_schedule_to_start_latency_seconds"].GetMetric() {
		sum, count := m.GetHistogram().GetSampleSum(), float64(m.GetHistogram().GetSampleCount())
		if strings.HasPrefix(label(m, "task_queue"), gatewayQueue) {
			w.gatewaySum, w.gatewayCount = w.gatewaySum+sum, w.gatewayCount+count
		} else {
			w.mainSum, w.mainCount = w.mainSum+sum, w.mainCount+count
		}
	}
	return w
}

// label is the value of a sample's label, or "".
func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// slotWatch samples the workers' free task slots on the workflow's queue every second until
// stopped, keeping the fewest seen: whether a worker ran out of slots.
type slotWatch struct {
	stop     chan struct{}
	done     chan struct{}
	activity float64 // fewest free activity slots of any worker
	workflow float64 // fewest free workflow-task slots of any worker
}

func watchSlots(addrs []string) *slotWatch {
	w := &slotWatch{stop: make(chan struct{}), done: make(chan struct{}), activity: math.Inf(1), workflow: math.Inf(1)}
	go func() {
		defer close(w.done)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			for _, addr := range addrs {
				families, _ := scrapeFamilies(addr) // a missed sample only narrows the watch
				for _, m := range families["temporal_worker_task_slots_available"].GetMetric() {
					if label(m, "task_queue") != workflows.TaskQueue {
						continue
					}
					switch label(m, "worker_type") {
					case "ActivityWorker":
						w.activity = min(w.activity, m.GetGauge().GetValue())
					case "WorkflowWorker":
						w.workflow = min(w.workflow, m.GetGauge().GetValue())
					}
				}
			}
			select {
			case <-w.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return w
}

// fewest stops the watch and returns the fewest free activity and workflow-task slots seen.
func (w *slotWatch) fewest() (activity, workflow float64) {
	close(w.stop)
	<-w.done
	return w.activity, w.workflow
}
