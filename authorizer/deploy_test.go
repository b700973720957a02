package main

import (
	"archive/zip"
	"bytes"
	"context"
	"debug/elf"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/awslabs/goformation/v7"
	"github.com/awslabs/goformation/v7/cloudformation"
	"github.com/awslabs/goformation/v7/cloudformation/serverless"
	"github.com/awslabs/goformation/v7/intrinsics"
	"github.com/sethvargo/go-envconfig"

	"github.com/rollgate/rollgate/internal/registry"
	"github.com/rollgate/rollgate/testsuite"
)

// The SAM template operators deploy the authorizer with, and its resources' logical ids.
const (
	templateFile = "../deploy/authorizer.yaml"
	fnID         = "AuthorizerFunction"
	roleID       = "AuthorizerRole"
	logGroupID   = "AuthorizerLogGroup"
	permissionID = "ApiGatewayInvokePermission"
)

// lambdaLogActions are what the Lambda service does with the execution role to ship a
// function's stdout and stderr into its (existing) log group; the authorizer's code calls none.
var lambdaLogActions = []string{"logs:CreateLogStream", "logs:PutLogEvents"}

// requiredParameters are the template's parameters without a default.
var requiredParameters = map[string]any{
	"CodeBucket": "rollgate-artifacts", "ApiId": "a1b2c3d4e5", "Issuer": "https://issuer.example.com", "Audiences": "orders,billing",
}

// loadTemplate parses the template as CloudFormation resolves it in us-east-1 of account
// 123456789012, with each parameter's default unless params overrides it. A reference to a
// resource stays visible as ref(Name) or getatt(Name.Attribute), so tests can see what points where.
func loadTemplate(t *testing.T, params map[string]any) *cloudformation.Template {
	t.Helper()
	overrides := map[string]any{}
	for k, v := range requiredParameters {
		overrides[k] = v
	}
	for k, v := range params {
		overrides[k] = v
	}
	tmpl, err := goformation.OpenWithOptions(templateFile, &intrinsics.ProcessorOptions{
		ParameterOverrides: overrides, EvaluateConditions: true,
		IntrinsicHandlerOverrides: map[string]intrinsics.IntrinsicHandler{"Ref": ref, "Fn::Sub": sub, "Fn::GetAtt": getAtt},
	})
	if err != nil {
		t.Fatalf("%s: %v", templateFile, err)
	}
	return tmpl
}

// ref resolves what goformation's Ref leaves out: the partition, and other resources.
func ref(_ string, in, tmpl any) any {
	name, _ := in.(string)
	switch name {
	case "AWS::Partition":
		return "aws"
	case "AWS::NoValue":
		return nil
	}
	if v := intrinsics.Ref("Ref", name, tmpl); v != nil {
		return v
	}
	return "ref(" + name + ")"
}

func getAtt(_ string, in, _ any) any {
	switch v := in.(type) {
	case string:
		return "getatt(" + v + ")"
	case []any:
		parts := make([]string, len(v))
		for i, p := range v {
			parts[i], _ = p.(string)
		}
		return "getatt(" + strings.Join(parts, ".") + ")"
	}
	return nil
}

var subVariable = regexp.MustCompile(`\$\{([^}]+)\}`)

// sub is Fn::Sub's one-argument form through ref and getAtt (goformation's own drops what its
// Ref cannot resolve, the partition included).
func sub(_ string, in, tmpl any) any {
	s, ok := in.(string)
	if !ok {
		return nil
	}
	return subVariable.ReplaceAllStringFunc(s, func(m string) string {
		name := m[2 : len(m)-1]
		if strings.Contains(name, ".") {
			return getAtt("", name, tmpl).(string)
		}
		v, _ := ref("", name, tmpl).(string)
		return v
	})
}

func TestDeployTemplate_DeclaresTheFunctionItsRoleLogGroupAndInvokePermission(t *testing.T) {
	tmpl := loadTemplate(t, nil)
	want := map[string]string{
		fnID: "AWS::Serverless::Function", roleID: "AWS::IAM::Role", logGroupID: "AWS::Logs::LogGroup", permissionID: "AWS::Lambda::Permission",
	}
	got := map[string]string{}
	for id, r := range tmpl.Resources {
		got[id] = r.AWSCloudFormationType()
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("resources %v, want %v", got, want)
	}
	if tr := tmpl.Transform; tr == nil || tr.String == nil || *tr.String != "AWS::Serverless-2016-10-31" {
		t.Errorf("transform %v, want AWS::Serverless-2016-10-31", tr)
	}
	fn := serverlessFunction(t, tmpl)
	if deref(fn.Runtime) != "provided.al2023" || deref(fn.Handler) != "bootstrap" {
		t.Errorf("runtime %q handler %q, want provided.al2023 and bootstrap (the binary's name in the zip)", deref(fn.Runtime), deref(fn.Handler))
	}
	if deref(fn.Role) != "getatt("+roleID+".Arn)" {
		t.Errorf("role %q, want the template's own role", deref(fn.Role))
	}
	arch := tmpl.Parameters["Architecture"]
	if !reflect.DeepEqual(arch.AllowedValues, []any{"arm64", "x86_64"}) {
		t.Errorf("Architecture allows %v, want arm64 and x86_64 (Lambda's names)", arch.AllowedValues)
	}
	for _, a := range []string{"arm64", "x86_64"} {
		fn := serverlessFunction(t, loadTemplate(t, map[string]any{"Architecture": a, "CodeKeyPrefix": "v7/"}))
		var code *serverless.Function_S3Location
		if fn.CodeUri != nil {
			code = fn.CodeUri.S3Location
		}
		if !slices.Equal(fn.Architectures, []string{a}) || code == nil || code.Bucket != "rollgate-artifacts" || code.Key != "v7/"+a+".zip" {
			t.Errorf("Architecture %s: architectures %v, code %+v; want [%s] and the zip make builds for it, v7/%s.zip", a, fn.Architectures, code, a, a)
		}
	}
	lg, err := tmpl.GetLogsLogGroupWithName(logGroupID)
	if err != nil {
		t.Fatal(err)
	}
	if deref(lg.LogGroupName) != "/aws/lambda/rollgate-authorizer" || lg.RetentionInDays == nil {
		t.Errorf("log group %q retention %v: want the function's default log group, with a retention", deref(lg.LogGroupName), lg.RetentionInDays)
	}
}

func serverlessFunction(t *testing.T, tmpl *cloudformation.Template) *serverless.Function {
	t.Helper()
	fn, err := tmpl.GetServerlessFunctionWithName(fnID)
	if err != nil {
		t.Fatal(err)
	}
	return fn
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// statement is an IAM policy statement; decoding refuses what a least-privilege check would
// have to reason about instead (NotAction, NotResource, conditions).
type statement struct {
	Sid       string
	Effect    string
	Principal map[string]stringList `json:",omitempty"`
	Action    stringList
	Resource  stringList `json:",omitempty"`
}

// stringList is IAM's "one string or a list of strings".
type stringList []string

func (l *stringList) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*l = []string{one}
		return nil
	}
	return json.Unmarshal(b, (*[]string)(l))
}

func statements(t *testing.T, doc any) []statement {
	t.Helper()
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Version   string
		Statement []statement
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("policy document %s: %v", b, err)
	}
	return d.Statement
}

// The role grants exactly the DynamoDB actions the deny list calls, on the revocations table's
// index and nothing wider, and the log actions Lambda needs on the function's own log group:
// a call added to the deny list without a policy change fails here.
func TestDeployTemplate_RoleGrantsExactlyWhatTheAuthorizerCalls(t *testing.T) {
	tmpl := loadTemplate(t, map[string]any{"RevocationsTable": "registry-revocations", "RevokedUsesTable": "registry-uses"})
	role, err := tmpl.GetIAMRoleWithName(roleID)
	if err != nil {
		t.Fatal(err)
	}
	trust := statements(t, role.AssumeRolePolicyDocument)
	if len(trust) != 1 || !slices.Equal(trust[0].Principal["Service"], []string{"lambda.amazonaws.com"}) || !slices.Equal(trust[0].Action, []string{"sts:AssumeRole"}) {
		t.Errorf("trust policy %+v: want only lambda.amazonaws.com to assume the role", trust)
	}
	if len(role.ManagedPolicyArns) > 0 || role.PermissionsBoundary != nil {
		t.Errorf("managed policies %v: the role's grants must all be in the template", role.ManagedPolicyArns)
	}
	index := "arn:aws:dynamodb:us-east-1:123456789012:table/registry-revocations/index/" + registry.DenyListIndex
	want := map[string][]string{}
	for _, a := range registry.DenyListActions {
		want[a] = []string{index}
	}
	for _, a := range registry.RevokedUseActions {
		want[a] = append(want[a], "arn:aws:dynamodb:us-east-1:123456789012:table/registry-uses")
	}
	for _, a := range lambdaLogActions {
		want[a] = []string{"getatt(" + logGroupID + ".Arn)"}
	}
	if got := grants(t, tmpl); !reflect.DeepEqual(got, want) {
		t.Errorf("the role grants %v;\nthe authorizer calls %v", got, want)
	}
}

// grants is what the template's role allows, action by action; a Deny or a wildcard resource
// fails the test (the role is a short allow list, nothing to reason about).
func grants(t *testing.T, tmpl *cloudformation.Template) map[string][]string {
	t.Helper()
	role, err := tmpl.GetIAMRoleWithName(roleID)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{}
	for _, p := range role.Policies {
		for _, s := range statements(t, p.PolicyDocument) {
			if s.Effect != "Allow" {
				t.Errorf("statement %s: effect %q", s.Sid, s.Effect)
			}
			for _, a := range s.Action {
				got[a] = append(got[a], s.Resource...)
			}
			for _, r := range s.Resource {
				if strings.Contains(r, "*") {
					t.Errorf("statement %s: resource %q is a wildcard", s.Sid, r)
				}
			}
		}
	}
	return got
}

// Every variable the template sets is one the authorizer reads, every one the Lambda mode reads
// can be set, and with the parameters' defaults the function runs with the binary's defaults.
func TestDeployTemplate_EnvironmentIsTheAuthorizersConfiguration(t *testing.T) {
	read := map[string]bool{}
	for f := range reflect.TypeFor[Config]().Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("env"), ",")
		read[name] = true
	}
	serveOnly := map[string]bool{"ROLLGATE_RELEASE_HEADER": true}
	vars := environment(t, loadTemplate(t, map[string]any{"JWKSURL": "https://keys.example.com/jwks.json"}))
	for name := range vars {
		if !read[name] || serveOnly[name] {
			t.Errorf("the template sets %s, which the authorizer's Lambda mode does not read", name)
		}
	}
	for name := range read {
		if _, ok := vars[name]; !ok && !serveOnly[name] {
			t.Errorf("the template cannot set %s", name)
		}
	}

	vars = environment(t, loadTemplate(t, nil))
	if _, ok := vars["ROLLGATE_JWKS_URL"]; ok {
		t.Errorf("ROLLGATE_JWKS_URL set without a JWKSURL parameter: the discovery document's jwks_uri must apply")
	}
	fromTemplate, err := loadConfig(context.Background(), envconfig.MapLookuper(vars))
	if err != nil {
		t.Fatalf("the template's defaults: %v", err)
	}
	defaults, err := loadConfig(context.Background(), envconfig.MapLookuper(map[string]string{
		"ROLLGATE_ISSUER": vars["ROLLGATE_ISSUER"], "ROLLGATE_AUDIENCES": vars["ROLLGATE_AUDIENCES"],
	}))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(fromTemplate, defaults) {
		t.Errorf("the template's defaults configure\n%+v\nthe authorizer's own defaults are\n%+v", fromTemplate, defaults)
	}
}

// environment is the function's variables as Lambda sets them (a NoValue drops the variable).
func environment(t *testing.T, tmpl *cloudformation.Template) map[string]string {
	t.Helper()
	fn := serverlessFunction(t, tmpl)
	if fn.Environment == nil {
		t.Fatal("the function has no environment")
	}
	vars := map[string]string{}
	for k, v := range fn.Environment.Variables {
		if v != "" {
			vars[k] = v
		}
	}
	return vars
}

func TestDeployTemplate_OnlyTheAPIsAuthorizersMayInvokeTheFunction(t *testing.T) {
	tmpl := loadTemplate(t, nil)
	p, err := tmpl.GetLambdaPermissionWithName(permissionID)
	if err != nil {
		t.Fatal(err)
	}
	if p.Principal != "apigateway.amazonaws.com" || p.Action != "lambda:InvokeFunction" || p.FunctionName != "getatt("+fnID+".Arn)" {
		t.Errorf("permission %s for %s on %s: want lambda:InvokeFunction for apigateway.amazonaws.com on the function", p.Action, p.Principal, p.FunctionName)
	}
	if want := "arn:aws:execute-api:us-east-1:123456789012:a1b2c3d4e5/authorizers/*"; deref(p.SourceArn) != want {
		t.Errorf("source ARN %q, want %q (the API's authorizers only)", deref(p.SourceArn), want)
	}
	if deref(p.SourceAccount) != "123456789012" {
		t.Errorf("source account %q, want the stack's", deref(p.SourceAccount))
	}
	uri, _ := tmpl.Outputs["AuthorizerUri"].Value.(string)
	if want := "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/getatt(" + fnID + ".Arn)/invocations"; uri != want {
		t.Errorf("output AuthorizerUri %q, want %q", uri, want)
	}
	if arn, _ := tmpl.Outputs["FunctionArn"].Value.(string); arn != "getatt("+fnID+".Arn)" {
		t.Errorf("output FunctionArn %q", arn)
	}
}

// `make authorizer` leaves, per Lambda architecture, the zip the template names: bootstrap at
// its root, executable, a static Linux binary for that architecture.
func TestMakeAuthorizer_ZipsAnExecutableBootstrapPerLambdaArchitecture(t *testing.T) {
	if testing.Short() {
		t.Skip("cross-compiles the authorizer for amd64 and arm64 (minutes on a cold build cache); runs without -short")
	}
	out := t.TempDir()
	cmd := exec.Command("make", "--no-print-directory", "-C", "..", "authorizer", "AUTHORIZER_OUT="+out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make authorizer: %v\n%s", err, b)
	}
	for arch, machine := range map[string]elf.Machine{"x86_64": elf.EM_X86_64, "arm64": elf.EM_AARCH64} {
		z, err := zip.OpenReader(filepath.Join(out, arch+".zip"))
		if err != nil {
			t.Fatalf("%s: %v", arch, err)
		}
		defer z.Close()
		if len(z.File) != 1 || z.File[0].Name != "bootstrap" {
			t.Fatalf("%s.zip holds %d entries, the first %q; want bootstrap alone", arch, len(z.File), z.File[0].Name)
		}
		f := z.File[0]
		if m := f.Mode(); !m.IsRegular() || m.Perm()&0o111 != 0o111 {
			t.Errorf("%s.zip: bootstrap mode %v; Lambda runs it only if executable", arch, m)
		}
		bin := unzipped(t, f)
		e, err := elf.NewFile(bytes.NewReader(bin))
		if err != nil {
			t.Fatalf("%s.zip: bootstrap: %v", arch, err)
		}
		if e.Machine != machine || e.OSABI != elf.ELFOSABI_NONE && e.OSABI != elf.ELFOSABI_LINUX || e.Type != elf.ET_EXEC {
			t.Errorf("%s.zip: bootstrap is %v %v %v; want a Linux executable for %v", arch, e.Machine, e.OSABI, e.Type, machine)
		}
		built, err := os.ReadFile(filepath.Join(out, map[string]string{"x86_64": "amd64", "arm64": "arm64"}[arch], "bootstrap"))
		if err != nil || !bytes.Equal(built, bin) {
			t.Errorf("%s.zip: bootstrap is not the binary make built (%v)", arch, err)
		}
	}
}

func unzipped(t *testing.T, f *zip.File) []byte {
	t.Helper()
	r, err := f.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// awsCalls is a stand-in AWS endpoint in front of dynalite that notes every call the function
// makes, as IAM would authorize it: DynamoDB calls are passed on, any other service's fail.
type awsCalls struct {
	mu    sync.Mutex
	calls map[string]bool // "dynamodb:Query table/<name>/index/<index>"
	other []string
}

func recordAWSCalls(t *testing.T, dynamodb string) (endpoint string, c *awsCalls) {
	t.Helper()
	target, err := url.Parse(dynamodb)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	c = &awsCalls{calls: map[string]bool{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		op, ok := strings.CutPrefix(r.Header.Get("X-Amz-Target"), "DynamoDB_20120810.")
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		var named struct{ TableName, IndexName string }
		if !ok || err != nil || json.Unmarshal(body, &named) != nil {
			c.note("", r.Method+" "+r.Host+r.URL.Path+" "+r.Header.Get("X-Amz-Target"))
			http.Error(w, "not a DynamoDB call", http.StatusBadRequest)
			return
		}
		resource := "table/" + named.TableName
		if named.IndexName != "" {
			resource += "/index/" + named.IndexName
		}
		c.note("dynamodb:"+op+" "+resource, "")
		r.Body = io.NopCloser(bytes.NewReader(body))
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, c
}

func (c *awsCalls) note(call, other string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if call != "" {
		c.calls[call] = true
	}
	if other != "" {
		c.other = append(c.other, other)
	}
}

func (c *awsCalls) seen() (calls map[string]bool, other []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.calls), slices.Clone(c.other)
}

// The real bootstrap, with every AWS endpoint pointed at a recorder, accepts a good token and
// refuses revoked ones (by jti and by subject) in every event format; every AWS call it made on
// the way is one the template's role grants, on a resource it grants it on.
func TestDeployTemplate_RoleGrantsEveryAWSCallOfTheRealBootstrap(t *testing.T) {
	ctx := context.Background()
	iss := newTestIssuer(t, true)
	ms := iss.mint(t, unique("carol"), unique("dave"), unique("erin"))
	endpoint, rec := recordAWSCalls(t, iss.bed.DynamoDB.Endpoint)
	env := iss.env(nil)
	for _, kv := range iss.bed.Env() {
		if kv[0] == "AWS_REGION" || kv[0] == "AWS_ACCESS_KEY_ID" || kv[0] == "AWS_SECRET_ACCESS_KEY" {
			env[kv[0]] = kv[1]
		}
	}
	env["AWS_ENDPOINT_URL"] = endpoint // every service's endpoint, DynamoDB's included
	u := &underRIE{out: &syncBuffer{}}
	fn, err := testsuite.StartLambda(ctx, testsuite.LambdaOptions{Bootstrap: buildBootstrap(t), Env: env, Log: u.out})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fn.Close)
	u.fn = fn
	iss.secrets.watch(u.out)

	if _, err := iss.reg.RevokeJTIs(ctx, []string{ms[1].JTI}, "device lost", 0, nil); err != nil {
		t.Fatal(err)
	}
	if err := iss.reg.RevokeBefore(ctx, registry.BySubject, ms[2].Subject, time.Now().Add(time.Minute), "account closed"); err != nil {
		t.Fatal(err)
	}
	for _, kind := range eventKinds {
		resp, fe := u.invoke(t, event(t, kind, ms[0].Token, "a1b2c3d4e5"))
		checkAllowed(t, kind, resp, fe, ms[0].Subject, ms[0].JTI)
		for _, m := range ms[1:] {
			if resp, fe := u.invoke(t, event(t, kind, m.Token, "a1b2c3d4e5")); !refused(kind, resp, fe) {
				t.Fatalf("%s: revoked token of %s answered %v %q; want a refusal", kind, m.Subject, resp, fe)
			}
		}
	}

	calls, other := rec.seen()
	if len(other) > 0 {
		t.Errorf("calls to AWS services other than DynamoDB, which the role does not grant: %v", other)
	}
	granted := grants(t, loadTemplate(t, map[string]any{"RevocationsTable": iss.reg.RevocationsTable}))
	for call := range calls {
		action, resource, _ := strings.Cut(call, " ")
		if !slices.Contains(granted[action], "arn:aws:dynamodb:us-east-1:123456789012:"+resource) {
			t.Errorf("the function called %s on %s; the role grants %s on %v", action, resource, action, granted[action])
		}
	}
	if len(calls) == 0 {
		t.Errorf("the function read the deny list without a DynamoDB call the recorder saw")
	}
	t.Logf("DynamoDB calls of the bootstrap: %v", slices.Sorted(maps.Keys(calls)))
}
