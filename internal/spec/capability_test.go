package spec_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/rollgate/rollgate/internal/gateway"
	"github.com/rollgate/rollgate/internal/keys"
	"github.com/rollgate/rollgate/internal/spec"
)

// The spec's kind-dependent checks follow what internal/gateway says each kind can do.
func TestValidate_ChecksWhatTheGatewayKindCanDo(t *testing.T) {
	oneStep := []spec.Step{{Weight: 100, Bake: spec.Duration(5 * time.Minute)}}
	cases := []struct {
		name   string
		kind   gateway.Kind
		change func(*spec.DeploySpec)
		field  string // "" when the spec is valid
		says   string
	}{
		{"REST canary steps", gateway.KindREST, func(*spec.DeploySpec) {}, "", ""},
		{"HTTP canary steps", gateway.KindHTTP, func(*spec.DeploySpec) {}, "canary.steps", "HTTP APIs have no canary: use a single step of weight 100"},
		{"HTTP single step below 100", gateway.KindHTTP, func(s *spec.DeploySpec) { s.Canary.Steps = []spec.Step{{Weight: 50, Bake: oneStep[0].Bake}} }, "canary.steps", "a single step of weight 100"},
		{"HTTP single step of 100", gateway.KindHTTP, func(s *spec.DeploySpec) { s.Canary.Steps = oneStep }, "", ""},
		{"REST ECDSA key", gateway.KindREST, func(s *spec.DeploySpec) { s.Auth.KeyType, s.Auth.Algorithm = keys.ECDSAP256, "ES256" }, "", ""},
		{"HTTP ECDSA key", gateway.KindHTTP, func(s *spec.DeploySpec) {
			s.Canary.Steps, s.Auth.KeyType, s.Auth.Algorithm = oneStep, keys.ECDSAP256, "ES256"
		}, "auth.keyType", "HTTP API JWT authorizers accept RSA keys only"},
		{"REST authorizer setting", gateway.KindREST, func(s *spec.DeploySpec) {
			s.Auth.AuthorizerPatch = map[string]string{"/identitySource": "method.request.header.Authorization"}
		}, "", ""},
		{"JWT setting on a REST API", gateway.KindREST, func(s *spec.DeploySpec) {
			s.Auth.AuthorizerPatch = map[string]string{gateway.JWTAudiencePath: "orders"}
		},
			"auth.authorizerPatch./jwtConfiguration/audience", "not a rest API authorizer setting rollgate changes: allowed [/authorizerUri"},
		{"JWT setting on an HTTP API", gateway.KindHTTP, func(s *spec.DeploySpec) {
			s.Canary.Steps, s.Auth.AuthorizerPatch = oneStep, map[string]string{gateway.JWTAudiencePath: "orders,orders-v2"}
		}, "", ""},
		{"REST setting on an HTTP API", gateway.KindHTTP, func(s *spec.DeploySpec) {
			s.Canary.Steps, s.Auth.AuthorizerPatch = oneStep, map[string]string{"/authorizerUri": "arn:aws:lambda:v2"}
		}, "auth.authorizerPatch./authorizerUri", "not a http API authorizer setting rollgate changes: allowed [/jwtConfiguration/issuer /jwtConfiguration/audience]"},
		{"unsupported kind", "websocket", func(*spec.DeploySpec) {}, "gateway.kind", `"websocket": allowed rest, http`},
		{"empty kind", "", func(*spec.DeploySpec) {}, "gateway.kind", `"": allowed rest, http`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := validSpec()
			s.Gateway.Kind = c.kind
			c.change(&s)
			err := s.Validate()
			if c.field == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var ve *spec.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("error %v, want a *spec.ValidationError", err)
			}
			if !strings.Contains(err.Error(), c.field+": ") || !strings.Contains(err.Error(), c.says) {
				t.Fatalf("error %q, want %s: ...%s...", err, c.field, c.says)
			}
		})
	}
}

// An unsupported kind is reported, and the rest of the spec is still checked by REST's rules.
func TestValidate_UnsupportedKindStillChecksTheRest(t *testing.T) {
	s := validSpec()
	s.Gateway.Kind = "websocket"
	s.Auth.AuthorizerPatch = map[string]string{gateway.JWTIssuerPath: "https://issuer.example.com"}
	err := s.Validate()
	for _, want := range []string{"gateway.kind", "auth.authorizerPatch./jwtConfiguration/issuer: not a websocket API authorizer setting"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("error %v, want it to name %s", err, want)
		}
	}
	if strings.Contains(err.Error(), "canary.steps") {
		t.Fatalf("an unsupported kind refused canary steps: %v", err)
	}
}

// Every authorizer setting a kind lists is one a spec may change on that kind.
func TestValidate_AcceptsEveryAuthorizerSettingTheKindLists(t *testing.T) {
	for _, k := range []gateway.Kind{gateway.KindREST, gateway.KindHTTP} {
		d, _ := gateway.Describe(k)
		for _, path := range d.AuthorizerSettings {
			s := validSpec()
			s.Gateway.Kind = k
			if !d.NativeCanary {
				s.Canary.Steps = []spec.Step{{Weight: 100, Bake: spec.Duration(5 * time.Minute)}}
			}
			s.Auth.AuthorizerPatch = map[string]string{path: "orders"}
			if err := s.Validate(); err != nil {
				t.Errorf("%s %s: %v", k, path, err)
			}
		}
	}
}
