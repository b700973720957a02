package gateway_test

import (
	"encoding/json"
	"errors"
	"slices"
	"testing"

	"github.com/rollgate/rollgate/internal/gateway"
)

func TestDescribe_SaysWhatEachKindCanDo(t *testing.T) {
	cases := []struct {
		kind                           gateway.Kind
		canary, rsaOnly, denyList      bool
		acceptsSetting, refusesSetting string
	}{
		{gateway.KindREST, true, false, true, "/authorizerUri", gateway.JWTAudiencePath},
		{gateway.KindHTTP, false, true, false, gateway.JWTAudiencePath, "/authorizerUri"},
	}
	for _, c := range cases {
		d, ok := gateway.Describe(c.kind)
		if !ok || d.Kind != c.kind || d.Name == "" {
			t.Fatalf("%s: %+v, %v", c.kind, d, ok)
		}
		if d.NativeCanary != c.canary || d.RSAKeysOnly != c.rsaOnly || d.ConsultsDenyList != c.denyList {
			t.Errorf("%s: %+v", c.kind, d)
		}
		if !slices.Contains(d.AuthorizerSettings, c.acceptsSetting) || slices.Contains(d.AuthorizerSettings, c.refusesSetting) {
			t.Errorf("%s authorizer settings %v", c.kind, d.AuthorizerSettings)
		}
	}
	if d, ok := gateway.Describe("websocket"); ok {
		t.Fatalf("websocket described as %+v", d)
	}
	if gateway.Kinds() != "rest, http" {
		t.Fatalf("kinds %q", gateway.Kinds())
	}
}

func TestTarget_EmptyKindIsARESTAPI(t *testing.T) {
	// Recorded histories name REST stages with an empty kind.
	if k := (gateway.Target{APIID: "abcdefghij", Stage: "prod"}).Describe().Kind; k != gateway.KindREST {
		t.Fatalf("empty kind described as %q", k)
	}
	if k := (gateway.Target{Kind: "websocket"}).Describe().Kind; k != "" {
		t.Fatalf("unsupported kind described as %q", k)
	}
}

func TestSetFor_PicksTheImplementationOfTheTargetsKind(t *testing.T) {
	set := gateway.NewSet(nil, nil)
	for _, k := range []gateway.Kind{"", gateway.KindREST, gateway.KindHTTP} {
		g, err := set.For(gateway.Target{Kind: k})
		if err != nil {
			t.Fatal(err)
		}
		if want := (gateway.Target{Kind: k}).Describe().Kind; g.Describe().Kind != want {
			t.Errorf("kind %q: implementation of %q", k, g.Describe().Kind)
		}
	}
	if _, err := set.For(gateway.Target{Kind: "websocket"}); !errors.Is(err, gateway.ErrInvalid) || err.Error() != `gateway kind "websocket": allowed rest, http: invalid request` {
		t.Fatalf("unsupported kind: %v", err)
	}
}

func TestKind_IsAJSONString(t *testing.T) {
	b, err := json.Marshal(gateway.Target{Kind: gateway.KindHTTP, APIID: "a", Stage: "b"})
	if err != nil || string(b) != `{"Kind":"http","APIID":"a","Stage":"b"}` {
		t.Fatalf("%s, %v", b, err)
	}
}
