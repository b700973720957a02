package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/rollgate/rollgate/internal/analysis"
)

// printAnalysis shows each metric's judgement: verdict, last canary and stable values, the rule,
// failures and provider errors, then why for each metric that is not running or passing.
func printAnalysis(w io.Writer, js []analysis.Judgement) {
	if len(js) == 0 {
		return
	}
	fmt.Fprintf(w, "analysis:\n  %-20s %-13s %-22s %-22s %-22s %-9s %s\n", "METRIC", "VERDICT", "CANARY", "STABLE", "RULE", "FAILURES", "ERRORS")
	for _, j := range js {
		verdict := string(j.Verdict)
		if j.DryRun {
			verdict += " (dry)"
		}
		fmt.Fprintf(w, "  %-20s %-13s %-22s %-22s %-22s %-9d %d\n", j.Metric, verdict, value(j, j.Last.Canary), stableValue(j), j.Rule, j.Failures, j.Errors)
	}
	for _, j := range js {
		if j.Reason != "" && j.Verdict != analysis.Running && j.Verdict != analysis.Pass {
			fmt.Fprintf(w, "  %s: %s\n", j.Metric, j.Reason)
		}
	}
}

// value is a measurement as an operator reads it: the value and the requests it counts.
func value(j analysis.Judgement, m analysis.Measurement) string {
	switch {
	case j.Measured == 0:
		return "-"
	case j.Last.Error != "":
		return "error"
	case !m.HasData:
		return "no data"
	case m.Samples > 0:
		return fmt.Sprintf("%.4g (%.0f req)", m.Value, m.Samples)
	}
	return fmt.Sprintf("%.4g", m.Value)
}

func stableValue(j analysis.Judgement) string {
	if !strings.Contains(j.Rule, "maxDelta") && !strings.Contains(j.Rule, "maxRatio") {
		return "-"
	}
	return value(j, j.Last.Stable)
}

// analysisLine is the judgements in one line, for a bake's progress line.
func analysisLine(js []analysis.Judgement) string {
	var parts []string
	for _, j := range js {
		parts = append(parts, fmt.Sprintf("%s %s %s", j.Metric, value(j, j.Last.Canary), j.Verdict))
	}
	return strings.Join(parts, "; ")
}
