package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/rollgate/rollgate/workflows"
)

// The text status gives on-call what each open incident is about, as the monitor summarised it,
// and nothing that misleads: no zero time.
func TestPrintMonitorStatus_EachIncidentWithItsSummary(t *testing.T) {
	at := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	st := workflows.MonitorStatus{Issuer: "https://issuer.example.com/orders", Interval: time.Minute, LastJudged: at, Incidents: []workflows.Incident{
		{Signal: workflows.SignalIssuanceRate, Key: "reports", OpenedAt: at, LastSeen: at, Summary: "client reports was issued 42 tokens in one interval, against a baseline of 3"},
		{Signal: workflows.SignalUnknownKID, Key: "all releases", OpenedAt: at, LastSeen: at},
	}}
	var b bytes.Buffer
	printMonitorStatus(&b, monitorState{MonitorStatus: st, Running: true})
	out := b.String()
	if !strings.Contains(out, "issuance_rate reports since 2026-11-23T10:00:00Z, last seen 2026-11-23T10:00:00Z: client reports was issued 42 tokens") {
		t.Errorf("the issuance incident without its summary:\n%s", out)
	}
	if !strings.Contains(out, "unknown_kid all releases since") || strings.Contains(out, "releases since 2026-11-23T10:00:00Z, last seen 2026-11-23T10:00:00Z:") {
		t.Errorf("an incident without a summary:\n%s", out)
	}
	if strings.Contains(out, "0001-01-01") {
		t.Errorf("a zero time in the status:\n%s", out)
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
