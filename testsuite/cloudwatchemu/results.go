package cloudwatchemu

import (
	"encoding/base64"
	"slices"
	"strconv"
	"strings"

	"github.com/aws/smithy-go/encoding/cbor"
)

// result is one MetricDataResult before pagination.
type result struct {
	id, label  string
	timestamps []int64
	values     []float64
}

func (s *Server) evaluate(req request) ([]result, error) {
	byID := map[string]*dataQuery{}
	for i := range req.queries {
		byID[req.queries[i].id] = &req.queries[i]
	}
	ev := &evaluator{s: s, req: req, byID: byID, done: map[string]series{}, busy: map[string]bool{}}
	var out []result
	for _, q := range req.queries {
		ser, err := ev.query(q.id)
		if err != nil {
			return nil, err
		}
		if !q.returnData {
			continue
		}
		out = append(out, toResult(q, ser, req.descending))
	}
	return out, nil
}

func toResult(q dataQuery, ser series, descending bool) result {
	r := result{id: q.id, label: q.label}
	if r.label == "" {
		r.label = q.id // an expression's default label
		if q.stat != nil {
			r.label = q.stat.metric.MetricName
		}
	}
	for t := range ser {
		r.timestamps = append(r.timestamps, t)
	}
	slices.Sort(r.timestamps)
	if descending {
		slices.Reverse(r.timestamps)
	}
	for _, t := range r.timestamps {
		r.values = append(r.values, ser[t])
	}
	return r
}

// paginate returns at most req.max datapoints, from req.offset on; the rest is behind a
// NextToken and the truncated results say PartialData.
func paginate(req request, results []result) cbor.Map {
	skip, room := req.offset, req.max
	list := cbor.List{}
	more := false
	for _, r := range results {
		n := int64(len(r.timestamps))
		from := min(skip, n)
		skip -= from
		to := min(n, from+room)
		room -= to - from
		status := "Complete"
		if to < n {
			status, more = "PartialData", true
		}
		ts, vs := cbor.List{}, cbor.List{}
		for i := from; i < to; i++ {
			ts = append(ts, &cbor.Tag{ID: 1, Value: cbor.Float64(float64(r.timestamps[i]))})
			vs = append(vs, cbor.Float64(r.values[i]))
		}
		list = append(list, cbor.Map{
			"Id": cbor.String(r.id), "Label": cbor.String(r.label),
			"Timestamps": ts, "Values": vs, "StatusCode": cbor.String(status), "Messages": cbor.List{},
		})
	}
	out := cbor.Map{"MetricDataResults": list, "Messages": cbor.List{}}
	if more {
		out["NextToken"] = cbor.String(nextToken(req.offset + req.max))
	}
	return out
}

func nextToken(offset int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte("offset:" + strconv.FormatInt(offset, 10)))
}

func parseNextToken(tok string) (int64, error) {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return 0, invalidNextToken()
	}
	n, err := strconv.ParseInt(strings.TrimPrefix(string(b), "offset:"), 10, 64)
	if err != nil || !strings.HasPrefix(string(b), "offset:") || n < 0 {
		return 0, invalidNextToken()
	}
	return n, nil
}
