package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/rollgate/rollgate/workflows"
)

// The text status gives on-call what each open incident is about, in the signal's own terms, and
// nothing that misleads: no zero expiry for a token whose expiry the signal does not read, no
// baseline for a signal that learns none, the count of an issuance burst.
func TestPrintMonitorStatus_EachSignalsIncidentSaysWhatWasSeen(t *testing.T) {
	at := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	inc := func(signal, key string, e workflows.Evidence) workflows.Incident {
		return workflows.Incident{Signal: signal, Key: key, OpenedAt: at, LastSeen: at, Evidence: e}
	}
	st := workflows.MonitorStatus{Issuer: "https://issuer.example.com/orders", Interval: time.Minute, LastJudged: at, Incidents: []workflows.Incident{
		inc(workflows.SignalExpiredPresented, "billing", workflows.Evidence{Clients: []string{"billing"}, Subject: "billing", JTI: "jti-old", Addresses: []string{"10.0.0.7"}, Uses: 5}),
		inc(workflows.SignalIssuanceRate, "reports", workflows.Evidence{Clients: []string{"reports"}, Issued: 42, Baseline: 3}),
		inc(workflows.SignalVerifierStale, "all releases", workflows.Evidence{Stale: 40, Rejections: 5, Verifications: 900}),
		inc(workflows.SignalUnknownKID, "all releases", workflows.Evidence{Rejections: 503, Verifications: 10000, Baseline: 2,
			Releases: []workflows.ReleaseRejections{{Release: "run-b", Count: 480}}}),
	}}
	var b bytes.Buffer
	printMonitorStatus(&b, monitorState{MonitorStatus: st, Running: true})
	out := b.String()
	lines := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) > 0 {
			lines[f[0]] += l
		}
	}
	for signal, want := range map[string][]string{
		workflows.SignalExpiredPresented: {"5 uses of expired token jti-old", "from 10.0.0.7"},
		workflows.SignalIssuanceRate:     {"42 tokens issued in one interval", "baseline 3"},
		workflows.SignalVerifierStale:    {"40 decisions on a stale deny list", "5 tokens refused for want of a key set", "of 900 verifications"},
		workflows.SignalUnknownKID:       {"503 of 10000 verifications", "baseline 2", "release run-b 480"},
	} {
		for _, w := range want {
			if !strings.Contains(lines[signal], w) {
				t.Errorf("%s: %q does not say %q", signal, lines[signal], w)
			}
		}
	}
	if strings.Contains(out, "0001-01-01") {
		t.Errorf("a zero time in the status:\n%s", out)
	}
	if strings.Contains(lines[workflows.SignalVerifierStale], "baseline") {
		t.Errorf("verifier_stale learns no baseline: %q", lines[workflows.SignalVerifierStale])
	}
}

// A monitor not judged yet says so, not a zero time; a stopped one says it stopped, and when,
// not "stopping".
func TestPrintMonitorStatus_NotJudgedYetAndStoppedSaySo(t *testing.T) {
	var b bytes.Buffer
	printMonitorStatus(&b, monitorState{MonitorStatus: workflows.MonitorStatus{Issuer: "https://i.example.com", Interval: time.Minute}, Running: true})
	if out := b.String(); !strings.Contains(out, "not judged yet") || strings.Contains(out, "0001") {
		t.Errorf("before the first judgement:\n%s", out)
	}
	b.Reset()
	at := time.Date(2026, 12, 2, 5, 0, 0, 0, time.UTC)
	printMonitorStatus(&b, monitorState{MonitorStatus: workflows.MonitorStatus{Issuer: "https://i.example.com", Interval: time.Minute, LastJudged: at, Stopping: true},
		Ended: "completed", EndedAt: at.Add(time.Second)})
	if out := b.String(); !strings.Contains(out, "(stopped: completed at 2026-12-02T05:00:01Z") || strings.Contains(out, "stopping") {
		t.Errorf("after the stop:\n%s", out)
	}
}
