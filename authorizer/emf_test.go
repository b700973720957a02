package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"slices"
	"testing"
	"time"
)

// checkEMF parses every line of out as an Embedded Metric Format document and checks the
// structure CloudWatch Logs requires before it extracts anything: _aws.Timestamp in epoch
// milliseconds, CloudWatchMetrics directives whose dimensions and metrics all exist at the root
// (dimension values strings, metric values numbers). It returns the documents.
func checkEMF(t *testing.T, out []byte) []map[string]any {
	t.Helper()
	var docs []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		var doc map[string]any
		if err := json.Unmarshal(sc.Bytes(), &doc); err != nil {
			t.Fatalf("EMF line is not one JSON object: %v: %s", err, sc.Bytes())
		}
		var meta struct {
			Timestamp         *float64 `json:"Timestamp"`
			CloudWatchMetrics []struct {
				Namespace  string     `json:"Namespace"`
				Dimensions [][]string `json:"Dimensions"`
				Metrics    []struct {
					Name string `json:"Name"`
					Unit string `json:"Unit"`
				} `json:"Metrics"`
			} `json:"CloudWatchMetrics"`
		}
		raw, _ := json.Marshal(doc["_aws"])
		if err := json.Unmarshal(raw, &meta); err != nil || meta.Timestamp == nil || len(meta.CloudWatchMetrics) == 0 {
			t.Fatalf("no _aws metadata with a Timestamp and CloudWatchMetrics: %s", sc.Bytes())
		}
		if age := time.Since(time.UnixMilli(int64(*meta.Timestamp))); age < -time.Minute || age > 10*time.Minute {
			t.Fatalf("Timestamp %v is not epoch milliseconds of now", *meta.Timestamp)
		}
		for _, d := range meta.CloudWatchMetrics {
			if d.Namespace != "Rollgate" || len(d.Metrics) == 0 || len(d.Dimensions) == 0 {
				t.Fatalf("directive %+v", d)
			}
			for _, set := range d.Dimensions {
				if len(set) > 30 || slices.Contains(set, "Kid") {
					t.Fatalf("dimension set %v: at most 30, and never the kid", set)
				}
				for _, name := range set {
					if _, ok := doc[name].(string); !ok {
						t.Fatalf("dimension %s has no string value at the root: %s", name, sc.Bytes())
					}
				}
			}
			for _, m := range d.Metrics {
				if _, ok := doc[m.Name].(float64); !ok || m.Unit != "Count" {
					t.Fatalf("metric %s has no number at the root (unit %q): %s", m.Name, m.Unit, sc.Bytes())
				}
			}
		}
		docs = append(docs, doc)
	}
	return docs
}

func TestEMF_LinesFollowTheSpecification(t *testing.T) {
	var out bytes.Buffer
	e := newEMFRecorder(&out, "https://issuer.example.com/orders")
	e.verified(verification{Release: "a1b2c3d4e5", KID: "orders-issuer-v3", Reason: reasonNone})
	e.verified(verification{Release: labelUnknown, KID: labelUnknown, Reason: "unknown_kid"})
	e.stale(false)
	docs := checkEMF(t, out.Bytes())
	if len(docs) != 3 {
		t.Fatalf("%d lines, want 3:\n%s", len(docs), out.String())
	}
	if d := docs[0]; d["Release"] != "a1b2c3d4e5" || d["Outcome"] != "accepted" || d["Reason"] != "none" || d["Kid"] != "orders-issuer-v3" || d["Verifications"] != 1.0 {
		t.Fatalf("accepted line %v", d)
	}
	if d := docs[1]; d["Outcome"] != "rejected" || d["Reason"] != "unknown_kid" || d["Kid"] != "unknown" {
		t.Fatalf("rejected line %v", d)
	}
	if d := docs[2]; d["Mode"] != "closed" || d["DenyListStale"] != 1.0 {
		t.Fatalf("stale line %v", d)
	}
}
