package main_test

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/rollgate/rollgate/internal/registry"
	"github.com/rollgate/rollgate/internal/tokens"
)

// tokens adds the rejections that verifiers counted (scraped from their /metrics) to the
// registry's summary, per kid and reason, including kids the registry never issued.
func TestStarter_TokensAddsVerifierRejectionsByReason(t *testing.T) {
	b := shared.Bed(t)
	ctx := context.Background()
	cfg, err := b.AWSConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	reg := &registry.Registry{DB: b.DynamoDBClient(cfg), TokensTable: "clitokens-tokens", RevocationsTable: "clitokens-revocations"}
	if err := reg.CreateTables(ctx); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if err := reg.RecordIssued(ctx, []tokens.Minted{
		{JTI: "ct-1", KID: "clitokens-v1", Subject: "billing", ClientID: "billing", IssuedAt: now, ExpiresAt: now.Add(time.Hour)},
		{JTI: "ct-2", KID: "clitokens-v1", Subject: "billing", ClientID: "billing", IssuedAt: now, ExpiresAt: now.Add(time.Hour)},
	}); err != nil {
		t.Fatal(err)
	}
	// Two verifiers' metrics endpoints, as the authorizers would serve them.
	var urls []string
	for i := range 2 {
		pr := prometheus.NewRegistry()
		m := tokens.NewMetrics(pr)
		m.Observe("clitokens-v1", tokens.Revoked)
		m.Observe("clitokens-v1", tokens.Expired)
		m.Observe("clitokens-v1", "")
		if i == 1 {
			m.Observe(tokens.UnknownKIDLabel, tokens.UnknownKID) // what a verifier counts for any forged kid
		}
		srv := httptest.NewServer(promhttp.HandlerFor(pr, promhttp.HandlerOpts{}))
		defer srv.Close()
		urls = append(urls, srv.URL+"/metrics")
	}
	c := bedCLI(t, b)
	code, out, stderr := c.run(t, "tokens", "--tokens-table", "clitokens-tokens", "--metrics", urls[0], "--metrics", urls[1], "-o", "json")
	var rows []struct {
		KID            string
		Issued, Active int
		Rejected       map[string]int
	}
	if code != 0 || json.Unmarshal([]byte(out), &rows) != nil || len(rows) != 2 {
		t.Fatalf("tokens: exit %d\n%s\n%s", code, out, stderr)
	}
	if r := rows[0]; r.KID != "clitokens-v1" || r.Issued != 2 || r.Active != 2 || r.Rejected["revoked"] != 2 || r.Rejected["expired"] != 2 || len(r.Rejected) != 2 {
		t.Fatalf("row %+v", r)
	}
	if r := rows[1]; r.KID != tokens.UnknownKIDLabel || r.Issued != 0 || r.Rejected["unknown_kid"] != 1 {
		t.Fatalf("row %+v", r)
	}
	if code, out, _ := c.run(t, "tokens", "--tokens-table", "clitokens-tokens", "--metrics", urls[1]); code != 0 || !strings.Contains(out, "expired=1 revoked=1") {
		t.Fatalf("tokens text: exit %d\n%s", code, out)
	}
	if code, _, stderr := c.run(t, "tokens", "--tokens-table", "clitokens-tokens", "--metrics", "http://127.0.0.1:1/metrics"); code != 1 || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
		t.Fatalf("unreachable metrics: exit %d\n%s", code, stderr)
	}
}
