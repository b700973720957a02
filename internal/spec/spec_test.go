package spec_test

import (
	"encoding/json"
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
