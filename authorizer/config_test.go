package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/sethvargo/go-envconfig"

	"github.com/rollgate/rollgate/internal/spec"
	"github.com/rollgate/rollgate/internal/tokens"
)

func TestLoadConfig_DefaultsAndOverrides(t *testing.T) {
	c, err := loadConfig(context.Background(), envconfig.MapLookuper(map[string]string{
		"ROLLGATE_ISSUER": "https://issuer.example.com/orders", "ROLLGATE_AUDIENCES": "orders,billing",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.DenyListRefresh != time.Second || c.MaxStaleness != 30*time.Second || c.FailOpen || c.ReleaseVariable != "rollgateRelease" ||
		c.ReleaseHeader != "X-Rollgate-Release" || len(c.Audiences) != 2 || c.Algorithms[0] != "RS256" || c.RevocationsTable != "rollgate-revocations" {
		t.Fatalf("defaults %+v", c)
	}
	if got := tokens.DiscoveryURL(c.Issuer); got != "https://issuer.example.com/orders/.well-known/openid-configuration" {
		t.Fatal(got)
	}
	c, err = loadConfig(context.Background(), envconfig.MapLookuper(map[string]string{
		"ROLLGATE_ISSUER": "https://issuer.example.com/", "ROLLGATE_AUDIENCES": "orders", "ROLLGATE_DENYLIST_FAIL_OPEN": "true",
		"ROLLGATE_DENYLIST_REFRESH": "200ms", "ROLLGATE_DENYLIST_MAX_STALENESS": "2s", "ROLLGATE_RELEASE_HEADER": "x-release",
	}))
	if err != nil || !c.FailOpen || c.DenyListRefresh != 200*time.Millisecond || c.ReleaseHeader != "X-Release" {
		t.Fatalf("overrides %+v, %v", c, err)
	}
}

// Every refusal names the variable, so an operator knows what to fix.
func TestLoadConfig_RefusesBadValuesNamingTheVariable(t *testing.T) {
	base := map[string]string{"ROLLGATE_ISSUER": "https://issuer.example.com", "ROLLGATE_AUDIENCES": "orders"}
	for _, tc := range []struct{ key, value string }{
		{"ROLLGATE_ISSUER", ""},
		{"ROLLGATE_ISSUER", "issuer.example.com"},
		{"ROLLGATE_AUDIENCES", ""},
		{"ROLLGATE_AUDIENCES", "orders,,billing"},
		{"ROLLGATE_JWKS_URL", "file:///etc/jwks.json"},
		{"ROLLGATE_DENYLIST_REFRESH", "soon"},
		{"ROLLGATE_DENYLIST_REFRESH", "0s"},
		{"ROLLGATE_DENYLIST_MAX_STALENESS", "500ms"}, // below the 1 s refresh interval
		{"ROLLGATE_LEEWAY", "1h"},
		{"ROLLGATE_DENYLIST_FAIL_OPEN", "maybe"},
		{"ROLLGATE_RELEASE_VARIABLE", "rollgate-release"},
		{"ROLLGATE_RELEASE_HEADER", "X Release"},
		{"ROLLGATE_JWKS_CACHE_TTL", "0s"},
	} {
		env := map[string]string{}
		for k, v := range base {
			env[k] = v
		}
		env[tc.key] = tc.value
		_, err := loadConfig(context.Background(), envconfig.MapLookuper(env))
		if err == nil || !strings.Contains(err.Error(), tc.key) {
			t.Errorf("%s=%q: error %v does not name the variable", tc.key, tc.value, err)
		}
	}
}

// A deploy spec refuses a release label this authorizer would count as invalid: one rule for both.
func TestReleaseLabels_SameRuleAsTheSpec(t *testing.T) {
	if releaseID.String() != spec.ReleaseLabelPattern {
		t.Fatalf("the authorizer counts releases matching %s; a spec accepts labels matching %s", releaseID, spec.ReleaseLabelPattern)
	}
}

func TestReleaseLabels_AreBounded(t *testing.T) {
	r := newReleaseLabels()
	for raw, want := range map[string]string{
		"": labelUnknown, "a1b2c3d4e5": "a1b2c3d4e5", "v2.3.1-rc.1": "v2.3.1-rc.1",
		"-leading": labelInvalid, "has space": labelInvalid, strings.Repeat("a", 65): labelInvalid, "x\ny": labelInvalid,
	} {
		if got := r.label(raw); got != want {
			t.Errorf("label(%q) = %q, want %q", raw, got, want)
		}
	}
	for i := range 100 {
		r.label("release" + strings.Repeat("x", i%60) + string(rune('a'+i%26)))
	}
	if got := r.label("a-new-release"); got != labelOther {
		t.Errorf("a release beyond the first %d is %q, want %q", maxReleases, got, labelOther)
	}
	if got := r.label("a1b2c3d4e5"); got != "a1b2c3d4e5" {
		t.Errorf("a release seen first lost its label: %q", got)
	}
}

func TestStageWideARN(t *testing.T) {
	for in, want := range map[string]string{
		"arn:aws:execute-api:us-east-1:123456789012:abcdef123/prod/GET/orders/42": "arn:aws:execute-api:us-east-1:123456789012:abcdef123/prod/*/*",
		"arn:aws-cn:execute-api:cn-north-1:123456789012:abcdef123/prod/POST/":     "arn:aws-cn:execute-api:cn-north-1:123456789012:abcdef123/prod/*/*",
		"arn:aws:execute-api:us-east-1:123456789012:abcdef123/$default/GET/":      "arn:aws:execute-api:us-east-1:123456789012:abcdef123/$default/*/*",
		"arn:aws:execute-api:us-east-1:123456789012:abcdef123/prod":               "",
		"arn:aws:lambda:us-east-1:123456789012:abcdef123/prod/GET/":               "",
		"arn:aws:execute-api:us-east-1:123456789012:*/prod/GET/":                  "",
		"arn:aws:execute-api:us-east-1::abcdef123/prod/GET/":                      "",
		"": "",
	} {
		got, ok := stageWideARN(in)
		if got != want || ok != (want != "") {
			t.Errorf("stageWideARN(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
}

// A long-running authorizer (serve mode) sees release after release: a release that has served
// nothing for releaseIdle frees its label, and its series, for the next, so that a release
// after the first maxReleases is still counted under its own label (the token monitor links
// rejections to a release by it); at most maxReleases labels live at once.
func TestReleaseLabels_AReleaseIdleLongEnoughFreesItsLabel(t *testing.T) {
	r := newReleaseLabels()
	now := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	r.now = func() time.Time { return now }
	var forgotten []string
	r.forget = func(label string) { forgotten = append(forgotten, label) }
	for i := range maxReleases {
		r.label(fmt.Sprintf("release-%02d", i))
	}
	now = now.Add(releaseIdle / 2)
	if got := r.label("release-31"); got != "release-31" { // the live release keeps serving
		t.Fatalf("label(release-31) = %q", got)
	}
	if got := r.label("release-32"); got != labelOther {
		t.Fatalf("a release beyond %d while all are recent: %q, want %q", maxReleases, got, labelOther)
	}
	now = now.Add(releaseIdle/2 + time.Second)
	if got := r.label("release-32"); got != "release-32" {
		t.Fatalf("a new release once the old ones idled for %s: %q, want its own label", releaseIdle, got)
	}
	if got := r.label("release-31"); got != "release-31" {
		t.Fatalf("the release that kept serving lost its label: %q", got)
	}
	if len(forgotten) != maxReleases-1 || slices.Contains(forgotten, "release-31") {
		t.Fatalf("forgotten %v, want the %d idle releases", forgotten, maxReleases-1)
	}
}

// A release label given up takes its series with it: the series stay as bounded as the labels.
func TestPromRecorder_ForgetReleaseDropsItsSeries(t *testing.T) {
	reg := prometheus.NewRegistry()
	r := newPromRecorder(reg, "https://issuer.example.com/orders")
	r.verified(verification{Release: "release-01", KID: "k-v1", Reason: reasonNone})
	r.verified(verification{Release: "release-01", KID: labelUnknown, Reason: "unknown_kid"})
	r.verified(verification{Release: "release-02", KID: "k-v1", Reason: reasonNone})
	r.forgetRelease("release-01")
	if n := testutil.CollectAndCount(r.verifications); n != 1 {
		t.Fatalf("%d series after forgetting release-01, want release-02's only", n)
	}
}
