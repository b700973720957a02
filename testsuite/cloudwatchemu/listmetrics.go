package cloudwatchemu

import (
	"slices"
	"time"

	"github.com/aws/smithy-go/encoding/cbor"
)

// ListMetrics as the API reference documents it (500 metrics a page, a dimension filter without
// a value matches any value; RecentlyActive PT3H keeps metrics with a value in the last 3 hours):
// https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_ListMetrics.html
// Every metric the store holds is recent (DefaultRetention), so both answer the same. A new
// metric is listed at once, or after the delay a test sets (SetListDelay; "allow up to 15
// minutes for the metric to appear", the reference says).
const listMetricsPage = 500

func (s *Server) listMetrics(in cbor.Map) (cbor.Map, error) {
	ns, _, err := getString(in, "Namespace", "")
	if err != nil {
		return nil, err
	}
	name, _, err := getString(in, "MetricName", "")
	if err != nil {
		return nil, err
	}
	filters, err := getDimensions(in, "Dimensions", "", true)
	if err != nil {
		return nil, err
	}
	if len(filters) > 10 {
		return nil, invalidValue("The collection Dimensions must not have more than 10 members.")
	}
	since := time.Time{}
	if ra, ok, err := getString(in, "RecentlyActive", ""); err != nil {
		return nil, err
	} else if ok {
		if ra != "PT3H" {
			return nil, invalidValue("The value %s for parameter RecentlyActive is not valid (PT3H).", ra)
		}
		since = s.Now().Add(-3 * time.Hour)
	}
	if acct, ok, _ := getString(in, "OwningAccount", ""); ok && acct != "" {
		return nil, invalidValue("OwningAccount: the test bed's CloudWatch has one account.")
	}
	var offset int64
	if tok, ok, err := getString(in, "NextToken", ""); err != nil {
		return nil, err
	} else if ok {
		if offset, err = parseNextToken(tok); err != nil {
			return nil, err
		}
	}
	all := s.metrics(since, func(m metric) bool {
		return (ns == "" || m.Namespace == ns) && (name == "" || m.MetricName == name) && matchesFilters(m.Dimensions, filters) && s.listableLocked(m)
	})
	if offset > int64(len(all)) {
		return nil, invalidNextToken()
	}
	page := all[offset:]
	out := cbor.Map{}
	if len(page) > listMetricsPage {
		page = page[:listMetricsPage]
		out["NextToken"] = cbor.String(nextToken(offset + listMetricsPage))
	}
	list := cbor.List{}
	for _, m := range page {
		dims := cbor.List{}
		for _, d := range m.Dimensions {
			dims = append(dims, cbor.Map{"Name": cbor.String(d.Name), "Value": cbor.String(d.Value)})
		}
		list = append(list, cbor.Map{"Namespace": cbor.String(m.Namespace), "MetricName": cbor.String(m.MetricName), "Dimensions": dims})
	}
	out["Metrics"] = list
	return out, nil
}

// matchesFilters: every filter names a dimension the metric has, with its value if one is given.
func matchesFilters(dims, filters []Dimension) bool {
	for _, f := range filters {
		if !slices.ContainsFunc(dims, func(d Dimension) bool { return d.Name == f.Name && (f.Value == "" || d.Value == f.Value) }) {
			return false
		}
	}
	return true
}
