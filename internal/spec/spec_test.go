package spec_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rollgate/rollgate/internal/spec"
)

func validSpec() spec.DeploySpec {
	s := spec.DeploySpec{
		Service: "orders",
		Gateway: spec.Gateway{Kind: "rest", APIID: "abcdefghij", Stage: "prod"},
		Release: spec.Release{Variables: map[string]string{"backendUrl": "http://127.0.0.1:8080/v2"}},
		Auth: spec.Auth{
			AuthorizerID: "auth01", Issuer: "https://issuer.example.com", Audiences: []string{"orders"},
			JWKSBucket: "issuer", TransitKey: "orders-issuer", RotateKey: true,
			TokenTTL: spec.Duration(time.Hour), VerifierCacheTTL: spec.Duration(5 * time.Minute), Clients: []string{"billing"},
		},
		Canary: spec.Canary{
			Steps:         []spec.Step{{Weight: 10, Bake: spec.Duration(5 * time.Minute)}, {Weight: 50, Bake: spec.Duration(10 * time.Minute)}},
			ProbeInterval: spec.Duration(10 * time.Second), MaxRejectionRatio: 0.01, Max5xxRatio: 0.01, MinProbes: 5, AutoRollback: true,
		},
	}
	s.Normalize()
	return s
}

func TestValidate_AcceptsAGoodSpecAndFillsDefaults(t *testing.T) {
	s := validSpec()
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	if s.Auth.KeyType != "rsa-2048" || s.Auth.Algorithm != "RS256" || s.Auth.OnRollback != "revoke" {
		t.Fatalf("defaults: %+v", s.Auth)
	}
	if s.WorkflowID() != "deploy/abcdefghij/prod" {
		t.Fatal(s.WorkflowID())
	}
}

func TestValidate_NamesTheFieldAndTheAllowedRange(t *testing.T) {
	cases := []struct {
		name   string
		change func(*spec.DeploySpec)
		field  string
		says   string
	}{
		{"no service", func(s *spec.DeploySpec) { s.Service = "" }, "service", "letters"},
		{"gateway kind", func(s *spec.DeploySpec) { s.Gateway.Kind = "websocket" }, "gateway.kind", "allowed rest, http"},
		{"api id", func(s *spec.DeploySpec) { s.Gateway.APIID = "x" }, "gateway.apiId", "10-character"},
		{"stage", func(s *spec.DeploySpec) { s.Gateway.Stage = "a b" }, "gateway.stage", "A-Za-z0-9_-"},
		{"region", func(s *spec.DeploySpec) { s.Gateway.Region = "mars" }, "gateway.region", "region"},
		{"canary on an HTTP API", func(s *spec.DeploySpec) { s.Gateway.Kind = "http" }, "canary.steps", "HTTP APIs have no canary"},
		{"variable value", func(s *spec.DeploySpec) { s.Release.Variables["backendUrl"] = "a b" }, "release.variables.backendUrl", "characters"},
		{"release variable", func(s *spec.DeploySpec) { s.Gateway.ReleaseVariable = "rollgate-release" }, "gateway.releaseVariable", "[A-Za-z0-9_]{1,64}"},
		// The authorizer would count it as "invalid" (or "unknown" when empty): the canary's
		// verifications would be counted under no release.
		{"release label the authorizer refuses", func(s *spec.DeploySpec) { s.Release.Variables["rollgateRelease"] = "v2/../stable" }, "release.variables.rollgateRelease", "[A-Za-z0-9][A-Za-z0-9._:-]{0,63}"},
		{"empty release label", func(s *spec.DeploySpec) { s.Release.Variables["rollgateRelease"] = "" }, "release.variables.rollgateRelease", "[A-Za-z0-9][A-Za-z0-9._:-]{0,63}"},
		{"release label too long", func(s *spec.DeploySpec) {
			s.Gateway.ReleaseVariable = "release"
			s.Release.Variables["release"] = strings.Repeat("a", 65)
		}, "release.variables.release", "[A-Za-z0-9][A-Za-z0-9._:-]{0,63}"},
		{"authorizer", func(s *spec.DeploySpec) { s.Auth.AuthorizerID = "" }, "auth.authorizerId", "required"},
		{"plain http issuer", func(s *spec.DeploySpec) { s.Auth.Issuer = "http://issuer.example.com" }, "auth.issuer", "https"},
		{"no audience", func(s *spec.DeploySpec) { s.Auth.Audiences = nil }, "auth.audiences", "at least one"},
		{"key type", func(s *spec.DeploySpec) { s.Auth.KeyType = "aes256-gcm96" }, "auth.keyType", "allowed rsa-2048"},
		{"algorithm for the key", func(s *spec.DeploySpec) { s.Auth.Algorithm = "ES256" }, "auth.algorithm", "cannot be signed"},
		{"token ttl", func(s *spec.DeploySpec) { s.Auth.TokenTTL = spec.Duration(48 * time.Hour) }, "auth.tokenTtl", "allowed 1m to 24h"},
		{"cache ttl", func(s *spec.DeploySpec) { s.Auth.VerifierCacheTTL = spec.Duration(-time.Second) }, "auth.verifierCacheTtl", "allowed 0"},
		{"duplicate client", func(s *spec.DeploySpec) { s.Auth.Clients = []string{"a", "a"} }, "auth.clients[1]", "unique"},
		{"rollback policy", func(s *spec.DeploySpec) { s.Auth.OnRollback = "delete" }, "auth.onRollback", "allowed keep, revoke"},
		{"authorizer patch", func(s *spec.DeploySpec) { s.Auth.AuthorizerPatch = map[string]string{"/name": "x"} }, "auth.authorizerPatch./name", "allowed"},
		{"no steps", func(s *spec.DeploySpec) { s.Canary.Steps = nil }, "canary.steps", "allowed 1 to 10"},
		{"weight over 100", func(s *spec.DeploySpec) { s.Canary.Steps[1].Weight = 150 }, "canary.steps[1].weight", "0 < weight ≤ 100"},
		{"weights going down", func(s *spec.DeploySpec) { s.Canary.Steps[1].Weight = 5 }, "canary.steps[1].weight", "must increase"},
		{"bake too short", func(s *spec.DeploySpec) { s.Canary.Steps[0].Bake = spec.Duration(time.Second) }, "canary.steps[0].bake", "allowed 10s to 24h"},
		{"probe interval", func(s *spec.DeploySpec) { s.Canary.ProbeInterval = 0 }, "canary.probeInterval", "allowed 1s to 10m"},
		{"rejection ratio", func(s *spec.DeploySpec) { s.Canary.MaxRejectionRatio = 1.5 }, "canary.maxRejectionRatio", "0 ≤ ratio < 1"},
		{"min probes", func(s *spec.DeploySpec) { s.Canary.MinProbes = 0 }, "canary.minProbes", "allowed 1 to 10000"},
		{"webhook", func(s *spec.DeploySpec) { s.Notify.Webhook = "https://hooks.example.com/x" }, "notify.webhook", "not a URL"},
		{"http issuer on a host named like loopback", func(s *spec.DeploySpec) { s.Auth.Issuer = "http://127.attacker.example/orders" }, "auth.issuer", "http only on loopback"},
		{"http issuer on localhost lookalike", func(s *spec.DeploySpec) { s.Auth.Issuer = "http://localhost.attacker.example" }, "auth.issuer", "http only on loopback"},
		{"issuer with a query", func(s *spec.DeploySpec) { s.Auth.Issuer = "https://issuer.example.com/?x=1" }, "auth.issuer", "no user info, query or fragment"},
		{"issuer with user info", func(s *spec.DeploySpec) { s.Auth.Issuer = "https://me:pw@issuer.example.com" }, "auth.issuer", "no user info"},
		{"description too long", func(s *spec.DeploySpec) { s.Release.Description = strings.Repeat("é", 1025) }, "release.description", "allowed at most 1024"},
		{"reason too long", func(s *spec.DeploySpec) { s.Reason = strings.Repeat("x", 1025) }, "reason", "allowed at most 1024"},
		{"escape sequence in the reason", func(s *spec.DeploySpec) { s.Reason = "ok\x1b[2J" }, "reason", "no control characters"},
		{"actor too long", func(s *spec.DeploySpec) { s.Actor = strings.Repeat("a", 257) }, "actor", "allowed at most 256"},
		{"step timeout shorter than a bake", func(s *spec.DeploySpec) { s.Canary.StepTimeout = spec.Duration(5 * time.Minute) }, "canary.stepTimeout", "longer than the longest bake (10m0s)"},
		{"step timeout too long", func(s *spec.DeploySpec) { s.Canary.StepTimeout = spec.Duration(48 * time.Hour) }, "canary.stepTimeout", "up to 25h0m0s"},
		{"negative step timeout", func(s *spec.DeploySpec) { s.Canary.StepTimeout = spec.Duration(-time.Second) }, "canary.stepTimeout", "allowed 0"},
		{"authorizer id shape", func(s *spec.DeploySpec) { s.Auth.AuthorizerID = "a/../b" }, "auth.authorizerId", "letters and digits"},
		{"bucket name", func(s *spec.DeploySpec) { s.Auth.JWKSBucket = "My_Bucket" }, "auth.jwksBucket", "S3 bucket name"},
		{"prefix escaping upwards", func(s *spec.DeploySpec) { s.Auth.JWKSPrefix = "../other/" }, "auth.jwksPrefix", "no '..'"},
		{"empty audience", func(s *spec.DeploySpec) { s.Auth.Audiences = []string{"orders", " "} }, "auth.audiences[1]", "printable"},
		{"authorizer patch value", func(s *spec.DeploySpec) {
			s.Auth.AuthorizerPatch = map[string]string{"/authorizerUri": strings.Repeat("x", 2000)}
		}, "auth.authorizerPatch./authorizerUri", "allowed at most 1024"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := validSpec()
			tc.change(&s)
			v, ok := spec.AsValidation(s.Validate())
			if !ok {
				t.Fatal("accepted")
			}
			for _, p := range v.Problems {
				if p.Field == tc.field && strings.Contains(p.Problem, tc.says) {
					return
				}
			}
			t.Fatalf("problems %v do not name %s with %q", v.Problems, tc.field, tc.says)
		})
	}
}

func TestValidate_ReportsEveryProblemAtOnce(t *testing.T) {
	var s spec.DeploySpec
	v, ok := spec.AsValidation(s.Validate())
	if !ok || len(v.Problems) < 10 {
		t.Fatalf("an empty spec reported %v", v)
	}
}

func TestDuration_ReadsHumanDurations(t *testing.T) {
	var c spec.Canary
	if err := json.Unmarshal([]byte(`{"probeInterval":"1m30s"}`), &c); err != nil || c.ProbeInterval.D() != 90*time.Second {
		t.Fatalf("%v, %v", c.ProbeInterval.D(), err)
	}
	if err := json.Unmarshal([]byte(`{"probeInterval":90}`), &c); err == nil {
		t.Fatal("a bare number was accepted as a duration")
	}
}

func TestValidate_AcceptsLoopbackIssuersOverHTTP(t *testing.T) {
	for _, issuer := range []string{"http://127.0.0.1:8080/orders", "http://127.5.6.7", "http://localhost:9000", "http://LOCALHOST", "http://[::1]:8080/x", "https://issuer.example.com/orders"} {
		s := validSpec()
		s.Auth.Issuer = issuer
		if err := s.Validate(); err != nil {
			t.Errorf("%s: %v", issuer, err)
		}
	}
}

func TestValidate_StepTimeoutLongerThanEveryBakeIsAccepted(t *testing.T) {
	s := validSpec()
	s.Canary.StepTimeout = spec.Duration(11 * time.Minute)
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
}

// A deployment started before the bounds existed replays with the rules it ran under.
func TestValidateWith_OriginalRulesStillAcceptWhatTheyAccepted(t *testing.T) {
	s := validSpec()
	s.Auth.Issuer = "http://127.attacker.example"
	s.Release.Description = strings.Repeat("x", 5000)
	s.Canary.StepTimeout = spec.Duration(time.Minute)
	if err := s.ValidateWith(spec.RulesOriginal); err != nil {
		t.Fatalf("original rules: %v", err)
	}
	v, ok := spec.AsValidation(s.Validate())
	if !ok || len(v.Problems) != 3 {
		t.Fatalf("latest rules: %v", v)
	}
}

// A deployment started before the release label was checked replays with the rules it ran under.
func TestValidateWith_BoundedRulesStillAcceptAnyReleaseLabel(t *testing.T) {
	s := validSpec()
	s.Release.Variables["rollgateRelease"] = "a/b"
	if err := s.ValidateWith(spec.RulesBounded); err != nil {
		t.Fatalf("bounded rules: %v", err)
	}
	s.Release.Variables["rollgateRelease"] = "v2.1:canary-7"
	if err := s.Validate(); err != nil {
		t.Fatalf("a label the authorizer counts: %v", err)
	}
}

// The error text is part of a workflow's failure: the same spec must always get the same text.
func TestValidate_ErrorTextIsTheSameEveryTime(t *testing.T) {
	s := validSpec()
	s.Release.Variables = map[string]string{}
	s.Auth.AuthorizerPatch = map[string]string{}
	for i := range 20 {
		s.Release.Variables[fmt.Sprintf("bad name %d", i)] = "v"
		s.Auth.AuthorizerPatch[fmt.Sprintf("/not%d", i)] = "v"
	}
	first := s.Validate().Error()
	for range 50 {
		if got := s.Validate().Error(); got != first {
			t.Fatalf("error text changed between runs:\n%s\n%s", first, got)
		}
	}
	if !strings.Contains(first, "release.variables.bad name 0: name must match") || strings.Index(first, "bad name 0:") > strings.Index(first, "bad name 1:") {
		t.Fatalf("not in sorted order: %s", first)
	}
}

// Webhook URLs and issuer passwords are secrets: a refusal must not repeat them (it is recorded
// in workflow history and printed by the starter).
func TestValidate_RefusalsDoNotRepeatSecrets(t *testing.T) {
	s := validSpec()
	s.Notify.Webhook = "https://hooks.slack.com/services/T000/B000/XXXXsecretXXXX"
	s.Auth.Issuer = "https://admin:hunter2@issuer.example.com"
	err := s.Validate()
	if err == nil || strings.Contains(err.Error(), "XXXXsecretXXXX") || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("%v", err)
	}
	s.Auth.Issuer = "ftp://admin:hunter2@issuer.example.com"
	if err := s.Validate(); err == nil || strings.Contains(err.Error(), "hunter2") || !strings.Contains(err.Error(), "auth.issuer") {
		t.Fatalf("%v", err)
	}
}
