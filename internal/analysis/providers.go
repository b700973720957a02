package analysis

import (
	"fmt"
	"slices"
	"strings"

	"github.com/rollgate/rollgate/internal/spec"
)

// Providers are the providers a worker has, by the name a metric's provider field gives.
type Providers map[string]Provider

// Check says which metric names a provider the worker does not have, so that a release fails in
// preflight, before any change, and not at its first measurement.
func (ps Providers) Check(metrics []spec.Metric) error {
	for i, m := range metrics {
		if _, ok := ps[m.Provider]; !ok {
			return fmt.Errorf("analysis.metrics[%d].provider %q (metric %s): this worker has no %s provider configured (it has: %s)",
				i, m.Provider, m.Name, m.Provider, ps.Names())
		}
	}
	return nil
}

// Names lists the providers by name, or says "none".
func (ps Providers) Names() string {
	var out []string
	for name := range ps {
		out = append(out, name)
	}
	if len(out) == 0 {
		return "none"
	}
	slices.Sort(out)
	return strings.Join(out, ", ")
}
