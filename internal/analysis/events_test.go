package analysis_test

import (
	"context"
	"fmt"
	"math"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/rollgate/rollgate/internal/analysis"
	"github.com/rollgate/rollgate/internal/spec"
	"github.com/rollgate/rollgate/testsuite"
	"github.com/rollgate/rollgate/testsuite/cloudwatchemu"
)

// The monitor's one read per judgement, from a real Prometheus scraping the authorizer's series
// (their names and labels as `authorizer serve` exports them): the issuer's rejections by
// reason and release, its stale decisions, every verification; another issuer's are not counted,
// and an issuer no authorizer reported is no data.
func TestPrometheus_CountEvents_ByReasonAndReleaseForOneIssuer(t *testing.T) {
	reg := prometheus.NewRegistry()
	verifications := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "rollgate_authorizer_verifications_total"}, []string{"issuer", "release", "outcome", "reason", "kid"})
	stale := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "rollgate_authorizer_denylist_stale_total"}, []string{"issuer", "mode"})
	reg.MustRegister(verifications, stale)
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	t.Cleanup(srv.Close)
	issuer, other := "https://issuer.example.com/"+randomID(t), "https://other.example.com/"+randomID(t)
	series := func(iss, release, outcome, reason string) prometheus.Counter {
		return verifications.WithLabelValues(iss, release, outcome, reason, "k-v1")
	}
	// Every series exists at 0 before the counts: increase() counts from a series' second sample.
	ok, kidB, sigB, kidU, otherKid := series(issuer, "run-b", "accepted", "none"), series(issuer, "run-b", "rejected", "unknown_kid"),
		series(issuer, "run-b", "rejected", "bad_signature"), series(issuer, "unknown", "rejected", "unknown_kid"), series(other, "run-b", "rejected", "unknown_kid")
	staleClosed := stale.WithLabelValues(issuer, "closed")

	prom := testsuite.StartPrometheusForTest(t, testsuite.PrometheusOptions{Targets: []string{strings.TrimPrefix(srv.URL, "http://")}})
	p := newProvider(t, analysis.PrometheusConfig{URL: prom.URL})
	ctx := context.Background()
	count := func(iss string) (analysis.EventCounts, error) {
		return p.CountEvents(ctx, analysis.EventQuery{Issuer: iss, Window: time.Minute})
	}
	waitFor(t, "the zero series scraped twice", func() (analysis.EventCounts, error) { return count(issuer) }, func(c analysis.EventCounts) bool {
		return c.HasData && c.Verifications == 0
	})
	ok.Add(900)
	kidB.Add(80)
	sigB.Add(5)
	kidU.Add(15)
	otherKid.Add(1000)
	staleClosed.Add(7)
	c := waitFor(t, "the counts", func() (analysis.EventCounts, error) { return count(issuer) }, func(c analysis.EventCounts) bool {
		return c.Verifications >= 1000 && c.Stale >= 7
	})
	// increase() extrapolates a little to the window's edges: within 20 %.
	if !about(c.Verifications, 1000) || !about(c.Rejections("unknown_kid"), 95) || !about(c.Rejections("bad_signature"), 5) || !about(c.Stale, 7) {
		t.Fatalf("counts %+v: want about 1000 verifications, 95 unknown_kid, 5 bad_signature, 7 stale", c)
	}
	if len(c.Rejected) != 3 || c.Rejected[0].Release != "run-b" || c.Rejected[0].Reason != "unknown_kid" || c.Queries != 3 {
		t.Fatalf("groups %+v (%d queries): want three, run-b's unknown kids first, in 3 queries", c.Rejected, c.Queries)
	}
	none, err := count("https://nobody.example.com/" + randomID(t))
	if err != nil || none.HasData || len(none.Rejected) != 0 {
		t.Fatalf("an issuer no authorizer reported: %+v, %v; want no data", none, err)
	}
}

func about(got, want float64) bool { return math.Abs(got-want) <= 0.2*want }

// The same read from CloudWatch: the authorizer's EMF metrics of the issuer, summed over the
// window by reason and release; another issuer's and an accepted verification are not
// rejections; stale decisions of both modes count.
func TestCloudWatch_CountEvents_ByReasonAndReleaseForOneIssuer(t *testing.T) {
	b := newCloudWatchBed(t, "orders")
	b.verifications("https://a", "run-b", "none", 100)
	b.verifications("https://a", "run-b", "unknown_kid", 30)
	b.verifications("https://a", "unknown", "unknown_kid", 4)
	b.verifications("https://a", "run-b", "bad_signature", 2)
	b.verifications("https://b", "run-b", "unknown_kid", 500)
	for i, mode := range []string{"closed", "open", "closed"} {
		b.cw.Put(cloudwatchemu.Datum{Namespace: "Rollgate", MetricName: "DenyListStale", Time: b.at.Add(-time.Duration(i+1) * time.Second), Value: 1, Unit: "Count",
			DimensionSets: [][]cloudwatchemu.Dimension{{{Name: "Issuer", Value: "https://a"}, {Name: "Mode", Value: mode}}}})
	}
	c, err := b.provider.CountEvents(context.Background(), analysis.EventQuery{Issuer: "https://a", Window: time.Minute, At: b.at})
	if err != nil {
		t.Fatal(err)
	}
	if !c.HasData || c.Verifications != 136 || c.Rejections("unknown_kid") != 34 || c.Rejections("bad_signature") != 2 || c.Stale != 3 || c.Queries != 3 {
		t.Fatalf("counts %+v: want 136 verifications, 34 unknown_kid, 2 bad_signature, 3 stale, in 3 calls", c)
	}
	if want := (analysis.RejectionCount{Reason: "unknown_kid", Release: "run-b", Count: 30}); len(c.Rejected) != 3 || c.Rejected[0] != want {
		t.Fatalf("groups %+v, want run-b's 30 unknown kids first of three", c.Rejected)
	}
	none, err := b.provider.CountEvents(context.Background(), analysis.EventQuery{Issuer: "https://nobody", Window: time.Minute, At: b.at})
	if err != nil || none.HasData || none.Verifications != 0 {
		t.Fatalf("an issuer nobody reported: %+v, %v", none, err)
	}
}

// A reason's count is its total over every release, whatever groups the evidence keeps: forged
// kids spread thinly over many stages' releases, beside larger groups of other reasons, still
// add up to the signal's value.
func TestCloudWatch_CountEvents_AReasonsTotalSurvivesTheGroupBound(t *testing.T) {
	b := newCloudWatchBed(t, "orders")
	for i := range analysis.MaxEventGroups {
		b.verifications("https://a", fmt.Sprintf("run-%02d", i), "expired", 20)
	}
	for i := range 10 {
		b.verifications("https://a", fmt.Sprintf("run-%02d", i), "unknown_kid", 5)
	}
	c, err := b.provider.CountEvents(context.Background(), analysis.EventQuery{Issuer: "https://a", Window: time.Minute, At: b.at})
	if err != nil {
		t.Fatal(err)
	}
	if !c.Truncated || len(c.Rejected) != analysis.MaxEventGroups {
		t.Fatalf("groups %d, truncated %v: want the evidence bounded", len(c.Rejected), c.Truncated)
	}
	if got := c.Rejections("unknown_kid"); got != 50 {
		t.Fatalf("unknown_kid rejections %g, want 50 (10 releases × 5) although no group of them is kept", got)
	}
	if got := c.Rejections("expired"); got != 1000 {
		t.Fatalf("expired rejections %g, want 1000", got)
	}
}

// CloudWatch lists a new metric up to 15 minutes late: a release promoted minutes ago, whose
// first rejections are new metrics, still counts from its first minute because the count names
// the given releases' metrics (and those of traffic without a release) beside those it lists;
// a release neither listed yet nor given is what the delay hides.
func TestCloudWatch_CountEvents_NamesTheReleasesListMetricsDoesNotListYet(t *testing.T) {
	b := newCloudWatchBed(t, "orders")
	b.verifications("https://a", "run-old", "none", 10) // listed: published before the delay
	b.cw.SetListDelay(15 * time.Minute)
	b.verifications("https://a", "run-new", "unknown_kid", 30)
	b.verifications("https://a", "unknown", "unknown_kid", 4)
	b.verifications("https://a", "run-hidden", "unknown_kid", 7)
	b.cw.Put(cloudwatchemu.Datum{Namespace: "Rollgate", MetricName: "DenyListStale", Time: b.at.Add(-time.Second), Value: 2, Unit: "Count",
		DimensionSets: [][]cloudwatchemu.Dimension{{{Name: "Issuer", Value: "https://a"}, {Name: "Mode", Value: "open"}}}})
	c, err := b.provider.CountEvents(context.Background(), analysis.EventQuery{Issuer: "https://a", Window: time.Minute, At: b.at, Releases: []string{"run-new", "run-old"}})
	if err != nil {
		t.Fatal(err)
	}
	if c.Verifications != 44 || c.Rejections("unknown_kid") != 34 || c.Stale != 2 {
		t.Fatalf("counts %+v: want 44 verifications (run-hidden's 7 not yet listed), 34 unknown_kid, 2 stale", c)
	}
	if len(c.Rejected) != 2 || c.Rejected[0] != (analysis.RejectionCount{Reason: "unknown_kid", Release: "run-new", Count: 30}) {
		t.Fatalf("groups %+v, want run-new's 30 first", c.Rejected)
	}
}

// The release analysis reads a canary's token rejections from its first minute too: its release
// label is new, and the query names the release's metrics under its issuer.
func TestCloudWatch_TokenRejections_ANewReleaseCountsBeforeItIsListed(t *testing.T) {
	b := newCloudWatchBed(t, "orders")
	b.cw.SetListDelay(15 * time.Minute)
	b.verifications("https://a", "run-canary", "none", 90)
	b.verifications("https://a", "run-canary", "bad_audience", 10)
	q := analysis.QueryFor(spec.Metric{Name: "rejections", Template: spec.TemplateTokenRejections, Window: spec.Duration(time.Minute)}, analysis.SideCanary, "run-canary", b.apiID, "prod")
	q.At = b.at
	if m, err := b.provider.Measure(context.Background(), q); err != nil || m.HasData {
		t.Fatalf("without the issuer: %+v, %v; want no data while ListMetrics lists nothing (the delay this test sets)", m, err)
	}
	q.Issuer = "https://a"
	m, err := b.provider.Measure(context.Background(), q)
	if err != nil || !m.HasData || m.Value != 0.1 || m.Samples != 100 {
		t.Fatalf("with the issuer: %+v, %v; want 10 of 100 rejected", m, err)
	}
}

// Only a provider that lists its metrics needs the releases named: the caller skips looking
// them up for Prometheus.
func TestNamesReleases_CloudWatchDoesPrometheusDoesNot(t *testing.T) {
	if !analysis.NamesReleases(newCloudWatchBed(t, "orders").provider) {
		t.Error("CloudWatch lists its metrics: it names releases")
	}
	if analysis.NamesReleases(newProvider(t, analysis.PrometheusConfig{URL: "http://127.0.0.1:1"})) {
		t.Error("Prometheus reads every series: it needs no releases")
	}
}
