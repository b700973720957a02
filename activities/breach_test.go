package activities

import (
	"strings"
	"testing"
)

// The bake's breach rule at its boundaries: no verdict before MinProbes, a ratio equal to its
// threshold passes, one probe over breaches, and rejections are reported before 5xx.
func TestBreach_JudgesRatiosStrictlyOverThresholdsOnceMinProbesWereMade(t *testing.T) {
	limits := BakeInput{MaxRejectionRatio: 0.25, Max5xxRatio: 0.1, MinProbes: 20}
	cases := []struct {
		name string
		r    ProbeResult
		in   BakeInput
		want string // a part of the breach; empty means no breach
	}{
		{"no probes yet", ProbeResult{}, limits, ""},
		{"no probes and no minimum", ProbeResult{}, BakeInput{}, ""},
		{"one probe short of the minimum, all rejected", ProbeResult{Probes: 19, Rejected: 19}, limits, ""},
		{"one probe short of the minimum, all 5xx", ProbeResult{Probes: 19, ServerErrors: 19}, limits, ""},
		{"at the minimum, all accepted", ProbeResult{Probes: 20, Accepted: 20}, limits, ""},
		{"rejection ratio equal to its threshold", ProbeResult{Probes: 20, Accepted: 15, Rejected: 5}, limits, ""},
		{"one rejection over the threshold", ProbeResult{Probes: 20, Accepted: 14, Rejected: 6}, limits,
			"rejection ratio 0.300 over 0.250 (6 of 20 probes)"},
		{"5xx ratio equal to its threshold", ProbeResult{Probes: 20, Accepted: 18, ServerErrors: 2}, limits, ""},
		{"one 5xx over the threshold", ProbeResult{Probes: 20, Accepted: 17, ServerErrors: 3}, limits,
			"5xx ratio 0.150 over 0.100 (3 of 20 probes)"},
		{"both over: rejections are reported first", ProbeResult{Probes: 20, Rejected: 10, ServerErrors: 10}, limits,
			"rejection ratio 0.500"},
		{"zero tolerance: one rejection breaches", ProbeResult{Probes: 1, Rejected: 1}, BakeInput{MinProbes: 1}, "rejection ratio 1.000 over 0.000"},
		{"zero tolerance: one 5xx breaches", ProbeResult{Probes: 1, ServerErrors: 1}, BakeInput{MinProbes: 1}, "5xx ratio 1.000 over 0.000"},
		{"zero tolerance: a clean probe passes", ProbeResult{Probes: 1, Accepted: 1}, BakeInput{MinProbes: 1}, ""},
		{"other answers count as probes only", ProbeResult{Probes: 20, Accepted: 10}, limits, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := breach(c.r, c.in)
			if c.want == "" && got != "" {
				t.Fatalf("breach = %q, want none", got)
			}
			if c.want != "" && !strings.Contains(got, c.want) {
				t.Fatalf("breach = %q, want it to contain %q", got, c.want)
			}
		})
	}
}
