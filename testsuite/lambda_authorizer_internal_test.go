package testsuite

import (
	"testing"

	"github.com/rollgate/rollgate/testsuite/gatewayemu"
)

// A REST authorizer's answer judged as API Gateway judges it, against the method ARN.
func TestJudgeRESTAnswer_EvaluatesThePolicyAgainstTheMethodARN(t *testing.T) {
	const arn = "arn:aws:execute-api:us-east-1:000000000000:k3q9x2m7pa/prod/GET/orders/42"
	policy := func(effect, action, resource string) string {
		return `{"principalId":"alice","policyDocument":{"Version":"2012-10-17","Statement":[{"Effect":"` + effect +
			`","Action":` + action + `,"Resource":` + resource + `}]}}`
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
		if (err != nil) != tc.fails || (err == nil && got != tc.want) {
			t.Errorf("%s: %v, %v; want %v (fails %v)", tc.name, got, err, tc.want, tc.fails)
		}
	}
}
