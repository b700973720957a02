package testsuite

import (
	"net/http"
	"reflect"
	"testing"
	"time"

	"github.com/rollgate/rollgate/testsuite/gatewayemu"
)

// A REST authorizer's answer judged as API Gateway judges it, against the method ARN.
func TestJudgeRESTAnswer_EvaluatesThePolicyAgainstTheMethodARN(t *testing.T) {
	const arn = "arn:aws:execute-api:us-east-1:000000000000:k3q9x2m7pa/prod/GET/orders/42"
	policy := func(effect, action, resource string) string {
		return `{"principalId":"alice","policyDocument":{"Version":"2012-10-17","Statement":[{"Effect":"` + effect +
			`","Action":` + action + `,"Resource":` + resource + `}]},"context":{"sub":"alice"}}`
	}
	for _, tc := range []struct {
		name, answer string
		want         gatewayemu.Effect
		fails        bool
	}{
		{"allow the whole stage", policy("Allow", `["execute-api:Invoke"]`, `["arn:aws:execute-api:us-east-1:000000000000:k3q9x2m7pa/prod/*/*"]`), gatewayemu.Allow, false},
		{"allow as strings, any action", policy("Allow", `"execute-api:*"`, `"arn:aws:execute-api:*:*:k3q9x2m7pa/prod/GET/*"`), gatewayemu.Allow, false},
		{"allow another stage only", policy("Allow", `["execute-api:Invoke"]`, `["arn:aws:execute-api:us-east-1:000000000000:k3q9x2m7pa/beta/*/*"]`), gatewayemu.Deny, false},
		{"allow another method only", policy("Allow", `["execute-api:Invoke"]`, `["arn:aws:execute-api:us-east-1:000000000000:k3q9x2m7pa/prod/POST/*"]`), gatewayemu.Deny, false},
		{"resource case matters", policy("Allow", `["execute-api:Invoke"]`, `["arn:aws:execute-api:us-east-1:000000000000:K3Q9X2M7PA/prod/*/*"]`), gatewayemu.Deny, false},
		{"explicit deny", policy("Deny", `["execute-api:Invoke"]`, `["*"]`), gatewayemu.Deny, false},
		{"Unauthorized", `{"errorMessage":"Unauthorized","errorType":"errorString"}`, gatewayemu.Unauthorized, false},
		{"another error is a failed invocation", `{"errorMessage":"boom","errorType":"errorString"}`, 0, true},
		{"no policy", `{"principalId":"alice"}`, 0, true},
		{"not JSON", `Task timed out`, 0, true},
	} {
		got, err := judgeRESTAnswer([]byte(tc.answer), arn)
		if (err != nil) != tc.fails || (err == nil && got.Effect != tc.want) {
			t.Errorf("%s: %v, %v; want %v (fails %v)", tc.name, got.Effect, err, tc.want, tc.fails)
		}
		if err == nil && tc.want != gatewayemu.Unauthorized && (got.PrincipalID != "alice" || got.Context["sub"] != "alice") {
			t.Errorf("%s: principalId %q, context %v; want alice's", tc.name, got.PrincipalID, got.Context)
		}
	}
}

// An HTTP API authorizer's answer: a simple response decides alone; an IAM policy is evaluated
// against the route ARN and kept to be evaluated again for another route.
func TestJudgeHTTPAnswer_SimpleResponsesAndPoliciesAsAPIGatewayJudgesThem(t *testing.T) {
	const arn = "arn:aws:execute-api:us-east-1:000000000000:k3q9x2m7pa/prod/GET/orders/42"
	const otherRoute = "arn:aws:execute-api:us-east-1:000000000000:k3q9x2m7pa/prod/POST/orders/42"
	getOnly := `{"principalId":"alice","policyDocument":{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"execute-api:Invoke",` +
		`"Resource":"arn:aws:execute-api:us-east-1:000000000000:k3q9x2m7pa/prod/GET/*"}]},"context":{"sub":"alice"}}`
	for _, tc := range []struct {
		name, answer      string
		simple            bool
		want, wantOther   gatewayemu.Effect
		fails, hasContext bool
	}{
		{"authorized", `{"isAuthorized":true,"context":{"sub":"alice"}}`, true, gatewayemu.Allow, gatewayemu.Allow, false, true},
		{"not authorized", `{"isAuthorized":false}`, true, gatewayemu.Deny, gatewayemu.Deny, false, false},
		{"isAuthorized not a boolean", `{"isAuthorized":"true"}`, true, 0, 0, true, false},
		{"no isAuthorized", `{"context":{"sub":"alice"}}`, true, 0, 0, true, false},
		{"Unauthorized error", `{"errorMessage":"Unauthorized","errorType":"errorString"}`, true, gatewayemu.Unauthorized, gatewayemu.Unauthorized, false, false},
		{"another error", `{"errorMessage":"boom","errorType":"errorString"}`, true, 0, 0, true, false},
		{"policy without simple responses", getOnly, false, gatewayemu.Allow, gatewayemu.Deny, false, true},
		{"simple answer where a policy is expected", `{"isAuthorized":true}`, false, 0, 0, true, false},
		{"not JSON", `Task timed out`, false, 0, 0, true, false},
	} {
		d, err := judgeHTTPAnswer([]byte(tc.answer), arn, tc.simple)
		if (err != nil) != tc.fails {
			t.Errorf("%s: error %v, want failure %v", tc.name, err, tc.fails)
			continue
		}
		if err != nil {
			continue
		}
		other := d.Effect // a simple response covers every route
		if d.Policy != nil {
			other = d.Policy(otherRoute)
		}
		if d.Effect != tc.want || other != tc.wantOther || (d.Context["sub"] == "alice") != tc.hasContext {
			t.Errorf("%s: %v (other route %v), context %v; want %v (%v), context %v", tc.name, d.Effect, other, d.Context, tc.want, tc.wantOther, tc.hasContext)
		}
	}
}

// The payload format 2.0 event as API Gateway posts it for a request.
func TestHTTPAuthorizerEventV2_LowersHeaderNamesJoinsValuesAndSeparatesCookies(t *testing.T) {
	req := gatewayemu.HTTPAuthorizerRequest{
		PayloadFormatVersion: "2.0", RouteArn: "arn:aws:execute-api:us-east-1:000000000000:k3q9x2m7pa/prod/GET/orders/42",
		RouteKey: "ANY /{proxy+}", IdentitySource: []string{"Bearer abc"}, Method: "GET", RawPath: "/prod/orders/42", Path: "/orders/42",
		RawQueryString: "a=1&a=2&b=3",
		Headers:        http.Header{"Authorization": {"Bearer abc"}, "X-Trace": {"t1", "t2"}, "Cookie": {"session=s1; theme=dark"}},
		PathParameters: map[string]string{"proxy": "orders/42"}, StageVariables: map[string]string{"rollgateRelease": "r1"},
		AccountID: "000000000000", APIID: "k3q9x2m7pa", Stage: "prod", DomainName: "k3q9x2m7pa.execute-api.us-east-1.amazonaws.com",
		RequestID: "r-1", Protocol: "HTTP/1.1", SourceIP: "192.0.2.7", UserAgent: "curl/8", Time: time.Date(2020, 3, 12, 19, 3, 58, 390e6, time.UTC),
	}
	ev := httpAuthorizerEventV2(req)
	if ev.Version != "2.0" || ev.Type != "REQUEST" || ev.Headers["authorization"] != "Bearer abc" || ev.Headers["x-trace"] != "t1,t2" ||
		ev.Headers["cookie"] != "" || !reflect.DeepEqual(ev.Cookies, []string{"session=s1", "theme=dark"}) ||
		ev.QueryStringParameters["a"] != "1,2" || ev.QueryStringParameters["b"] != "3" || ev.RawQueryString != "a=1&a=2&b=3" {
		t.Fatalf("event %+v", ev)
	}
	rc := ev.RequestContext
	if rc.HTTP.Path != "/prod/orders/42" || rc.HTTP.Method != "GET" || rc.HTTP.SourceIP != "192.0.2.7" || rc.DomainPrefix != "k3q9x2m7pa" ||
		rc.Time != "12/Mar/2020:19:03:58 +0000" || rc.TimeEpoch != 1584039838390 || rc.Stage != "prod" || rc.RouteKey != "ANY /{proxy+}" {
		t.Fatalf("request context %+v", rc)
	}
}
