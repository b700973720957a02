package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/rollgate/rollgate/internal/registry"
)

const stageARN = "arn:aws:execute-api:us-east-1:123456789012:k3q9x2m7pa/prod/*/*"

// policyOf reads an IAM policy answer: principalId, the single statement, and the context.
func policyOf(t *testing.T, resp map[string]any) (principal, effect, action, resource string, ctx map[string]any) {
	t.Helper()
	var p struct {
		PrincipalID    string `json:"principalId"`
		PolicyDocument struct {
			Version   string
			Statement []struct {
				Action   []string
				Effect   string
				Resource []string
			}
		} `json:"policyDocument"`
		Context map[string]any `json:"context"`
	}
	b, _ := json.Marshal(resp)
	if err := json.Unmarshal(b, &p); err != nil || p.PolicyDocument.Version != "2012-10-17" || len(p.PolicyDocument.Statement) != 1 {
		t.Fatalf("not an IAM policy answer: %s", b)
	}
	s := p.PolicyDocument.Statement[0]
	if len(s.Action) != 1 || len(s.Resource) != 1 {
		t.Fatalf("statement %+v", s)
	}
	return p.PrincipalID, s.Effect, s.Action[0], s.Resource[0], p.Context
}

// lines returns the EMF documents written so far with the given metric.
func lines(t *testing.T, u *underTest, metric string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, d := range checkEMF(t, u.emf.Bytes()) {
		if _, ok := d[metric]; ok {
			out = append(out, d)
		}
	}
	return out
}

func TestLambda_RESTRequest_GoodToken_AllowsTheWholeStageWithTheIdentityInContext(t *testing.T) {
	iss := newTestIssuer(t, true)
	m := iss.mint(t, "billing")[0]
	u := iss.startLambda(t, nil)

	resp, err := u.invoke(t, event(t, "rest-request", m.Token, "a1b2c3d4e5"))
	if err != nil {
		t.Fatalf("good token refused: %v", err)
	}
	principal, effect, action, resource, ctx := policyOf(t, resp)
	if principal != "billing" || effect != "Allow" || action != "execute-api:Invoke" || resource != stageARN {
		t.Fatalf("policy %s %s %s for %s; want Allow execute-api:Invoke on %s for billing", effect, action, resource, principal, stageARN)
	}
	want := map[string]any{"sub": "billing", "client_id": "billing-client", "kid": iss.kid, "jti": m.JTI, "scope": ""}
	if fmt.Sprint(ctx) != fmt.Sprint(want) {
		t.Fatalf("context %v, want %v", ctx, want)
	}
	got := lines(t, u, "Verifications")
	if len(got) != 1 || got[0]["Release"] != "a1b2c3d4e5" || got[0]["Outcome"] != "accepted" || got[0]["Reason"] != "none" || got[0]["Kid"] != iss.kid {
		t.Fatalf("EMF %v", got)
	}

	// A TOKEN authorizer sees no stage variables: same answer, release unknown.
	resp, err = u.invoke(t, event(t, "rest-token", m.Token, ""))
	if err != nil {
		t.Fatalf("TOKEN event refused: %v", err)
	}
	if principal, effect, _, resource, _ := policyOf(t, resp); principal != "billing" || effect != "Allow" || resource != stageARN {
		t.Fatalf("TOKEN policy %s on %s for %s", effect, resource, principal)
	}
	if got := lines(t, u, "Verifications"); len(got) != 2 || got[1]["Release"] != "unknown" {
		t.Fatalf("TOKEN EMF %v", got)
	}
}

func TestLambda_BadTokens_AreUnauthorizedWithOneLogLineEach(t *testing.T) {
	iss := newTestIssuer(t, true)
	m := iss.mint(t, "billing")[0]
	u := iss.startLambda(t, nil)
	tampered := m.Token[:len(m.Token)-4] + "AAAA"
	iss.secrets.add(tampered)
	for _, tc := range []struct{ name, token, reason string }{
		{"no token", "", "malformed"},
		{"garbage", "not-a-jwt", "malformed"},
		{"bad signature", tampered, "bad_signature"},
	} {
		if _, err := u.invoke(t, event(t, "rest-request", tc.token, "a1b2c3d4e5")); err == nil || err.Error() != "Unauthorized" {
			t.Fatalf("%s: %v, want the error Unauthorized", tc.name, err)
		}
	}
	got := lines(t, u, "Verifications")
	if len(got) != 3 || got[0]["Reason"] != "malformed" || got[2]["Reason"] != "bad_signature" || got[2]["Kid"] != iss.kid {
		t.Fatalf("EMF %v", got)
	}
	var rejections []map[string]any
	for line := range strings.Lines(string(u.logs.Bytes())) {
		var l map[string]any
		if json.Unmarshal([]byte(line), &l) == nil && l["msg"] == "token rejected" {
			rejections = append(rejections, l)
		}
	}
	if len(rejections) != 3 {
		t.Fatalf("%d rejection log lines, want 3:\n%s", len(rejections), u.logs.Bytes())
	}
	if l := rejections[2]; l["reason"] != "bad_signature" || l["kid"] != iss.kid || l["jti"] != m.JTI || l["sub"] != "billing" ||
		l["release"] != "a1b2c3d4e5" || l["source_ip"] != "198.51.100.23" {
		t.Fatalf("rejection log line %v", l)
	}
}

func TestLambda_RevokedJTIAndSubject_AreUnauthorizedAfterTheNextRefresh(t *testing.T) {
	ctx := context.Background()
	iss := newTestIssuer(t, true)
	ms := iss.mint(t, "alice", "bob", "carol")
	u := iss.startLambda(t, nil)
	for _, m := range ms {
		if _, err := u.invoke(t, event(t, "rest-request", m.Token, "stable")); err != nil {
			t.Fatalf("%s refused before any revocation: %v", m.Subject, err)
		}
	}
	if _, err := iss.reg.RevokeJTIs(ctx, []string{ms[0].JTI}, "laptop stolen", 0, nil); err != nil {
		t.Fatal(err)
	}
	if err := iss.reg.RevokeBefore(ctx, registry.BySubject, "bob", time.Now().Add(time.Second), "left the company"); err != nil {
		t.Fatal(err)
	}
	for _, m := range ms[:2] {
		eventually(t, m.Subject+"'s revoked token is still accepted", func() bool {
			_, err := u.invoke(t, event(t, "rest-request", m.Token, "stable"))
			return err != nil && err.Error() == "Unauthorized"
		})
	}
	if _, err := u.invoke(t, event(t, "rest-request", ms[2].Token, "stable")); err != nil {
		t.Fatalf("an unrevoked token is refused: %v", err)
	}
	revoked := 0
	for _, d := range lines(t, u, "Verifications") {
		if d["Reason"] == "revoked" {
			revoked++
		}
	}
	if revoked != 2 {
		t.Fatalf("%d EMF lines with reason revoked, want 2", revoked)
	}
}

// forged is a token naming a kid the issuer never published; its signature is never checked.
func forged(kid string) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"RS256","typ":"at+jwt","kid":"`+kid+`"}`)) + "." + enc([]byte(`{"sub":"mallory","jti":"x"}`)) + "." + enc([]byte("sig"))
}

func TestLambda_UnknownKID_IsUnauthorizedAndCountedAsUnknown(t *testing.T) {
	iss := newTestIssuer(t, true)
	u := iss.startLambda(t, nil)
	for n := range 1000 {
		if _, err := u.invoke(t, event(t, "rest-request", forged(fmt.Sprintf("forged-%d", n)), "a1b2c3d4e5")); err == nil || err.Error() != "Unauthorized" {
			t.Fatalf("forged kid: %v", err)
		}
	}
	got := lines(t, u, "Verifications")
	for _, d := range got {
		if d["Kid"] != "unknown" || d["Reason"] != "unknown_kid" {
			t.Fatalf("EMF line %v: a kid outside the key set must be unknown", d)
		}
	}
	if len(got) != 1000 {
		t.Fatalf("%d EMF lines for 1,000 verifications", len(got))
	}
}

func TestLambda_HTTPAPIPayload2_SimpleResponses(t *testing.T) {
	iss := newTestIssuer(t, true)
	m := iss.mint(t, "billing")[0]
	u := iss.startLambda(t, nil)
	resp, err := u.invoke(t, event(t, "http-v2", m.Token, "canary-7"))
	if err != nil || resp["isAuthorized"] != true {
		t.Fatalf("good token: %v, %v", resp, err)
	}
	if c, _ := resp["context"].(map[string]any); c["sub"] != "billing" || c["jti"] != m.JTI || c["kid"] != iss.kid {
		t.Fatalf("context %v", resp["context"])
	}
	resp, err = u.invoke(t, event(t, "http-v2", forged("nope"), "canary-7"))
	if err != nil || resp["isAuthorized"] != false || resp["context"] != nil {
		t.Fatalf("forged token: %v, %v; want isAuthorized false and no context", resp, err)
	}
	got := lines(t, u, "Verifications")
	if len(got) != 2 || got[0]["Release"] != "canary-7" || got[1]["Outcome"] != "rejected" {
		t.Fatalf("EMF %v", got)
	}
}

// staleSetup accepts a token, then deletes the revocations table so that every later refresh
// fails, as when DynamoDB or the authorizer's access to it goes away.
func staleSetup(t *testing.T, failOpen bool) (*testIssuer, *underTest, string) {
	iss := newTestIssuer(t, true)
	m := iss.mint(t, "billing")[0]
	u := iss.startLambda(t, map[string]string{"ROLLGATE_DENYLIST_MAX_STALENESS": "300ms", "ROLLGATE_DENYLIST_FAIL_OPEN": fmt.Sprint(failOpen)})
	if _, err := u.invoke(t, event(t, "rest-request", m.Token, "stable")); err != nil {
		t.Fatalf("refused while fresh: %v", err)
	}
	if _, err := iss.db.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(iss.reg.RevocationsTable)}); err != nil {
		t.Fatal(err)
	}
	return iss, u, m.Token
}

func TestLambda_StaleDenyList_FailsClosed(t *testing.T) {
	_, u, token := staleSetup(t, false)
	eventually(t, "a good token is still accepted with a deny list that cannot be refreshed", func() bool {
		_, err := u.invoke(t, event(t, "rest-request", token, "stable"))
		return err != nil && err.Error() == "Unauthorized"
	})
	last := lines(t, u, "Verifications")
	if d := last[len(last)-1]; d["Reason"] != "denylist_stale" || d["Outcome"] != "rejected" {
		t.Fatalf("last EMF line %v", d)
	}
	if st := lines(t, u, "DenyListStale"); len(st) == 0 || st[0]["Mode"] != "closed" {
		t.Fatalf("staleness not counted: %v", st)
	}
	if n := strings.Count(string(u.logs.Bytes()), "deny list is stale"); n != 1 {
		t.Fatalf("%d staleness log lines within one period, want 1", n)
	}
}

func TestLambda_StaleDenyList_FailsOpenWhenConfigured(t *testing.T) {
	_, u, token := staleSetup(t, true)
	eventually(t, "staleness is never counted", func() bool {
		if _, err := u.invoke(t, event(t, "rest-request", token, "stable")); err != nil {
			t.Fatalf("fail-open refused a good token: %v", err)
		}
		return len(lines(t, u, "DenyListStale")) > 0
	})
	if st := lines(t, u, "DenyListStale"); st[0]["Mode"] != "open" {
		t.Fatalf("staleness line %v", st[0])
	}
	if !strings.Contains(string(u.logs.Bytes()), "failing open") {
		t.Fatalf("fail-open not logged:\n%s", u.logs.Bytes())
	}
}

func TestLambda_MissingJWKSAtStart_RefusesEveryTokenThenRecovers(t *testing.T) {
	iss := newTestIssuer(t, false)
	m := iss.mint(t, "billing")[0]
	u := iss.startLambda(t, nil) // must not fail: a crash loop would be worse than refusing
	for range 5 {
		if _, err := u.invoke(t, event(t, "rest-request", m.Token, "stable")); err == nil || err.Error() != "Unauthorized" {
			t.Fatalf("no JWKS, yet: %v", err)
		}
	}
	if got := lines(t, u, "Verifications"); len(got) != 5 || got[0]["Reason"] != "jwks_unavailable" {
		t.Fatalf("EMF %v", got)
	}
	if n := strings.Count(string(u.logs.Bytes()), "JWKS unavailable"); n != 1 {
		t.Fatalf("%d log lines about the missing JWKS, want 1:\n%s", n, u.logs.Bytes())
	}
	iss.publish(t)
	eventually(t, "the authorizer never picks up the JWKS published after its start", func() bool {
		_, err := u.invoke(t, event(t, "rest-request", m.Token, "stable"))
		return err == nil
	})
}

// API Gateway puts the last of two Authorization headers in headers and both in
// multiValueHeaders, which the backend also receives: a REQUEST authorizer refuses the request,
// as the backend could read the one it did not check (a forged token first, a good one last).
func TestLambda_RESTRequest_TwoAuthorizationHeaders_Unauthorized(t *testing.T) {
	iss := newTestIssuer(t, true)
	m := iss.mint(t, "billing")[0]
	u := iss.startLambda(t, nil)
	forged := m.Token[:strings.LastIndex(m.Token, ".")] + ".AAAA"
	iss.secrets.add(forged)
	var ev map[string]any
	if err := json.Unmarshal(event(t, "rest-request", m.Token, "a1b2c3d4e5"), &ev); err != nil {
		t.Fatal(err)
	}
	ev["multiValueHeaders"].(map[string]any)["Authorization"] = []string{"Bearer " + forged, "Bearer " + m.Token}
	raw, _ := json.Marshal(ev)
	if _, err := u.invoke(t, raw); err == nil || err.Error() != "Unauthorized" {
		t.Fatalf("two Authorization headers: %v, want the error Unauthorized", err)
	}
	if _, err := u.invoke(t, event(t, "rest-request", m.Token, "a1b2c3d4e5")); err != nil {
		t.Fatalf("the good token alone: %v", err)
	}
}
