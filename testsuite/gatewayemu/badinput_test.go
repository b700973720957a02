package gatewayemu_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rollgate/rollgate/testsuite/gatewayemu"
)

var rawClient = &http.Client{Timeout: 5 * time.Second}

// raw sends a request straight to the control plane, bypassing the SDK's own validation.
func raw(t testing.TB, method, url, body string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := rawClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

func TestControlPlane_BadInputGetsAWSShaped400s(t *testing.T) {
	emu, c, v2 := startEmulator(t, gatewayemu.Options{})
	f := newRESTFixture(t, emu, c, backend(t, "stable"))
	h := newHTTPFixture(t, v2, newIssuer(t), backend(t, "stable"))
	base := emu.ControlURL
	stage := base + "/restapis/" + f.api + "/stages/" + f.stage
	cases := []struct {
		name, method, url, body string
	}{
		{"malformed JSON create api", "POST", base + "/restapis", `{"name": `},
		{"malformed JSON update stage", "PATCH", stage, `{"patchOperations": [`},
		{"wrong JSON type", "PATCH", stage, `{"patchOperations": "replace"}`},
		{"unknown op", "PATCH", stage, `{"patchOperations": [{"op": "frobnicate", "path": "/deploymentId"}]}`},
		{"unknown path", "PATCH", stage, `{"patchOperations": [{"op": "replace", "path": "/cacheClusterSize", "value": "0.5"}]}`},
		{"percent not a number", "PATCH", stage, `{"patchOperations": [{"op": "replace", "path": "/canarySettings/percentTraffic", "value": "ten"}]}`},
		{"negative percent", "PATCH", stage, `{"patchOperations": [{"op": "replace", "path": "/canarySettings/percentTraffic", "value": "-1"}]}`},
		{"remove absent canary", "PATCH", stage, `{"patchOperations": [{"op": "remove", "path": "/canarySettings"}]}`},
		{"bad authorizer ttl", "PATCH", base + "/restapis/" + f.api + "/authorizers/" + f.authorizer, `{"patchOperations": [{"op": "replace", "path": "/authorizerResultTtlInSeconds", "value": "x"}]}`},
		{"authorizer unknown path", "PATCH", base + "/restapis/" + f.api + "/authorizers/" + f.authorizer, `{"patchOperations": [{"op": "replace", "path": "/id", "value": "x"}]}`},
		{"authorizer bad type", "POST", base + "/restapis/" + f.api + "/authorizers", `{"name": "a", "type": "MAGIC"}`},
		// AWS refuses them: cached under no identity source, one decision would answer every request.
		{"request authorizer cached without identity source", "POST", base + "/restapis/" + f.api + "/authorizers", `{"name": "a", "type": "REQUEST", "authorizerUri": "u"}`},
		{"request authorizer identity source the data plane cannot read", "POST", base + "/restapis/" + f.api + "/authorizers", `{"name": "a", "type": "REQUEST", "authorizerUri": "u", "identitySource": "method.request.header.Authorization, context.identity.sourceIp"}`},
		{"request authorizer identity source not an expression", "POST", base + "/restapis/" + f.api + "/authorizers", `{"name": "a", "type": "REQUEST", "authorizerUri": "u", "identitySource": "Authorization"}`},
		{"request authorizer identity source without a name", "POST", base + "/restapis/" + f.api + "/authorizers", `{"name": "a", "type": "REQUEST", "authorizerUri": "u", "identitySource": "method.request.header."}`},
		{"request authorizer cached with an empty identity source", "POST", base + "/restapis/" + f.api + "/authorizers", `{"name": "a", "type": "REQUEST", "authorizerUri": "u", "identitySource": " ", "authorizerResultTtlInSeconds": 60}`},
		{"deployment bad canary", "POST", base + "/restapis/" + f.api + "/deployments", `{"stageName": "prod", "canarySettings": {"percentTraffic": 101}}`},
		{"api key too short", "POST", base + "/apikeys", `{"name": "k", "value": "short"}`},
		{"usage plan key type", "POST", base + "/usageplans/x/keys", `{"keyId": "k", "keyType": "OTHER"}`},
		{"v2 malformed", "PATCH", base + "/v2/apis/" + h.api + "/authorizers/" + h.authorizer, `{"jwtConfiguration": {"audience": "x"`},
		{"v2 authorizer no audience", "PATCH", base + "/v2/apis/" + h.api + "/authorizers/" + h.authorizer, `{"jwtConfiguration": {"audience": []}}`},
		{"v2 route key", "POST", base + "/v2/apis/" + h.api + "/routes", `{"routeKey": "FETCH orders"}`},
		{"v2 stage variable", "PATCH", base + "/v2/apis/" + h.api + "/stages/prod", `{"stageVariables": {"bad name": "x"}}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, header, body := raw(t, tc.method, tc.url, tc.body)
			var msg struct {
				Message string `json:"message"`
			}
			if status != http.StatusBadRequest || header.Get("X-Amzn-ErrorType") != "BadRequestException" ||
				json.Unmarshal([]byte(body), &msg) != nil || msg.Message == "" {
				t.Fatalf("got %d %q %s; want 400 BadRequestException with a message", status, header.Get("X-Amzn-ErrorType"), body)
			}
		})
	}
	// The sources the data plane reads are accepted together.
	if status, _, body := raw(t, "POST", base+"/restapis/"+f.api+"/authorizers", `{"name": "a", "type": "REQUEST", "authorizerUri": "u", "identitySource": "method.request.header.Authorization, stageVariables.rollgateRelease,method.request.querystring.v, context.httpMethod"}`); status != http.StatusCreated {
		t.Fatalf("a REQUEST authorizer with every kind of identity source: %d %s", status, body)
	}
	// Without caching, a REQUEST authorizer may have no identity source.
	if status, _, body := raw(t, "POST", base+"/restapis/"+f.api+"/authorizers", `{"name": "a", "type": "REQUEST", "authorizerUri": "u", "authorizerResultTtlInSeconds": 0}`); status != http.StatusCreated {
		t.Fatalf("an uncached REQUEST authorizer without identity source: %d %s", status, body)
	}
	// Nothing above changed the stage.
	status, _, body := raw(t, "GET", stage, "")
	if status != http.StatusOK || strings.Contains(body, "canarySettings") || !strings.Contains(body, f.deployment) {
		t.Fatalf("stage after refused requests: %d %s", status, body)
	}
	// An operation the emulator does not implement says so in AWS's error shape, not as a 404.
	status, header, _ := raw(t, "DELETE", base+"/restapis/"+f.api, "")
	if status != http.StatusBadRequest || header.Get("X-Amzn-ErrorType") != "InvalidAction" {
		t.Fatalf("unknown operation: %d %q", status, header.Get("X-Amzn-ErrorType"))
	}
}

// FuzzControlPlane_NeverFailsWith5xx sends arbitrary bodies to the patch and create operations:
// the emulator must answer every one with a 2xx or an AWS-shaped 4xx, never panic or 500.
func FuzzControlPlane_NeverFailsWith5xx(f *testing.F) {
	f.Add("PATCH", `{"patchOperations":[{"op":"replace","path":"/canarySettings/percentTraffic","value":"10"}]}`)
	f.Add("PATCH", `{"patchOperations":[{"op":"copy","from":"/canarySettings/deploymentId","path":"/deploymentId"}]}`)
	f.Add("PATCH", `{"patchOperations":[{"op":"remove","path":"/variables/x"}]}`)
	f.Add("POST", `{"stageName":"prod","canarySettings":{"percentTraffic":5}}`)
	f.Add("POST", `{"name":"a","type":"TOKEN","authorizerUri":"u","identityValidationExpression":"("}`)
	f.Add("PATCH", `null`)
	f.Add("PUT", `{"type":"HTTP_PROXY","httpMethod":"ANY","uri":"http://${stageVariables.backendUrl}/{proxy}","requestParameters":{"integration.request.path.proxy":"method.request.path.proxy"}}`)
	emu, c, _ := startEmulator(f, gatewayemu.Options{})
	fx := newRESTFixture(f, emu, c, "http://127.0.0.1:1")
	targets := map[string][]string{
		"PATCH": {"/restapis/" + fx.api + "/stages/" + fx.stage, "/restapis/" + fx.api + "/authorizers/" + fx.authorizer},
		"POST":  {"/restapis/" + fx.api + "/deployments", "/restapis/" + fx.api + "/authorizers", "/restapis/" + fx.api + "/stages", "/apikeys"},
		"PUT":   {"/restapis/" + fx.api + "/resources/" + fx.rootID + "/methods/ANY/integration"},
	}
	f.Fuzz(func(t *testing.T, method, body string) {
		paths, ok := targets[method]
		if !ok {
			return
		}
		for _, p := range paths {
			status, header, _ := raw(t, method, emu.ControlURL+p, body)
			if status >= 500 {
				t.Fatalf("%s %s with %q: status %d", method, p, body, status)
			}
			if status >= 400 && header.Get("X-Amzn-ErrorType") == "" {
				t.Fatalf("%s %s with %q: %d without x-amzn-ErrorType", method, p, body, status)
			}
		}
	})
}
