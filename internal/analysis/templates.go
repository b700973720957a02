package analysis

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"

	"github.com/rollgate/rollgate/internal/spec"
)

// The series the built-in templates read. The authorizer's serve mode exports the first; the
// gateway's data-plane series are what a gateway exporter (or the bed's API Gateway emulator)
// exports, per API, stage, deployment and canary/stable side.
const (
	seriesVerifications   = "rollgate_authorizer_verifications_total" // issuer, release, outcome, reason, kid
	seriesGatewayRequests = "rollgate_gateway_requests_total"         // api, stage, deployment, canary, status_class
	seriesGatewayLatency  = "rollgate_gateway_request_duration_seconds"
)

// promQL is a rendered query: the value, and the number of requests it was computed from ("" for
// a custom query, which counts none).
type promQL struct {
	Value   string
	Samples string
}

// renderPromQL renders q for Prometheus. Ratios put `or vector(0)` under the numerator, so that
// a release with traffic and no rejection measures 0, while a release without traffic (an
// empty denominator) measures nothing: no data, not zero.
func renderPromQL(q Query) (promQL, error) {
	w := promDuration(q.Window)
	switch q.Template {
	case spec.TemplateTokenRejections:
		all := verificationSelector(q, "")
		bad := verificationSelector(q, `outcome="rejected"`)
		if len(q.ExpectedReasons) > 0 {
			bad = verificationSelector(q, `outcome="rejected",reason!~`+quote(strings.Join(q.ExpectedReasons, "|")))
		}
		return ratio(bad, all, w), nil
	case spec.TemplateUnknownKID:
		return ratio(verificationSelector(q, `reason="unknown_kid"`), verificationSelector(q, ""), w), nil
	case spec.TemplateGateway5xx:
		return ratio(gatewaySelector(q, seriesGatewayRequests, `status_class="5xx"`), gatewaySelector(q, seriesGatewayRequests, ""), w), nil
	case spec.TemplateLatencyP99:
		return promQL{
			Value:   fmt.Sprintf(`histogram_quantile(0.99, sum by (le) (rate(%s[%s])))`, gatewaySelector(q, seriesGatewayLatency+"_bucket", ""), w),
			Samples: fmt.Sprintf(`sum(increase(%s[%s]))`, gatewaySelector(q, seriesGatewayLatency+"_count", ""), w),
		}, nil
	case "":
		return renderCustom(q, w)
	default:
		return promQL{}, fmt.Errorf("metric %s: unknown template %q", q.Metric, q.Template)
	}
}

func ratio(num, den, w string) promQL {
	total := fmt.Sprintf(`sum(increase(%s[%s]))`, den, w)
	return promQL{Value: fmt.Sprintf(`(sum(increase(%s[%s])) or vector(0)) / %s`, num, w, total), Samples: total}
}

// verificationSelector selects the authorizer's verifications of q's release ("": every release,
// the whole stage).
func verificationSelector(q Query, extra string) string {
	var m []string
	if q.Release != "" {
		m = append(m, "release="+quote(q.Release))
	}
	if extra != "" {
		m = append(m, extra)
	}
	return seriesVerifications + "{" + strings.Join(m, ",") + "}"
}

func gatewaySelector(q Query, series, extra string) string {
	m := []string{"api=" + quote(q.APIID), "stage=" + quote(q.Stage)}
	switch q.Side {
	case SideCanary:
		m = append(m, `canary="true"`)
	case SideStable:
		m = append(m, `canary="false"`)
	}
	if extra != "" {
		m = append(m, extra)
	}
	return series + "{" + strings.Join(m, ",") + "}"
}

func renderCustom(q Query, w string) (promQL, error) {
	t, err := spec.ParseQuery(q.Custom)
	if err != nil {
		return promQL{}, fmt.Errorf("metric %s: query: %w", q.Metric, err)
	}
	s, err := spec.RenderQuery(t, spec.QueryVars{Release: q.Release, Stage: q.Stage, APIID: q.APIID, Window: w})
	if err != nil {
		return promQL{}, fmt.Errorf("metric %s: query: %w", q.Metric, err)
	}
	return promQL{Value: s}, nil
}

// quote is a PromQL string literal (PromQL strings follow Go's escaping rules).
func quote(s string) string { return strconv.Quote(s) }

// promDuration is d as PromQL writes durations ("1m30s"); at least a millisecond.
func promDuration(d time.Duration) string {
	return model.Duration(max(d, time.Millisecond)).String()
}
