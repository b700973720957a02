package main

import (
	"context"
	"encoding/json"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/sethvargo/go-envconfig"
	"golang.org/x/mod/modfile"

	"github.com/rollgate/rollgate/internal/config"
	"github.com/rollgate/rollgate/workflows"
)

// No Docker engine runs where the tests run, so the compose file is checked the way Compose reads
// it (compose-go) against the worker's own configuration.
func TestCompose_ServicesPortsAndVariablesMatchTheWorker(t *testing.T) {
	opts, err := cli.NewProjectOptions([]string{"../docker-compose.yml"}, cli.WithWorkingDirectory(".."), cli.WithName("rollgate"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("compose-go refuses docker-compose.yml: %v", err)
	}
	if got := p.ServiceNames(); !slices.Equal(sorted(got), []string{"moto", "temporal", "vault", "vault-init", "worker"}) {
		t.Fatalf("services %v", got)
	}
	published := func(svc string) []uint32 {
		var ports []uint32
		for _, pc := range p.Services[svc].Ports {
			ports = append(ports, pc.Target)
			if pc.Published != itoa(pc.Target) {
				t.Errorf("%s: port %d is published as %q; the README and the starter expect the same number on the host", svc, pc.Target, pc.Published)
			}
		}
		return ports
	}
	for svc, want := range map[string][]uint32{"temporal": {7233, 8233}, "vault": {8200}, "moto": {5000}, "worker": {9090}} {
		if got := published(svc); !slices.Equal(got, want) {
			t.Errorf("%s publishes %v, want %v", svc, got, want)
		}
	}
	temporal := strings.Join(p.Services["temporal"].Command, " ")
	for _, attr := range []string{workflows.ServiceAttr.GetName(), workflows.StageAttr.GetName(), workflows.PhaseAttr.GetName()} {
		if !strings.Contains(temporal, "--search-attribute="+attr+"=Keyword") {
			t.Errorf("the Temporal dev server does not register %s", attr)
		}
	}

	w := p.Services["worker"]
	if w.Build == nil || filepath.Clean(w.Build.Context) != filepath.Clean(mustAbs(t, "..")) {
		t.Fatalf("the worker is not built from the repository: %+v", w.Build)
	}
	for _, dep := range []string{"temporal", "vault-init", "moto"} {
		if _, ok := w.DependsOn[dep]; !ok {
			t.Errorf("the worker does not wait for %s", dep)
		}
	}
	if w.DependsOn["vault-init"].Condition != types.ServiceConditionCompletedSuccessfully {
		t.Errorf("the worker must wait until transit is mounted, not just started")
	}
	env := map[string]string{}
	for k, v := range w.Environment {
		if v == nil {
			t.Errorf("worker variable %s has no value", k)
			continue
		}
		env[k] = *v
	}

	// Every ROLLGATE_ variable is one the worker reads, and the worker's configuration loads.
	known := envNames(reflect.TypeOf(config.Worker{}))
	for k := range env {
		if strings.HasPrefix(k, "ROLLGATE_") && !known[k] {
			t.Errorf("worker variable %s is not part of the worker's configuration", k)
		}
	}
	cfg, err := config.Load(context.Background(), envconfig.MapLookuper(env))
	if err != nil {
		t.Fatalf("the worker's configuration from the compose file: %v", err)
	}
	if _, port, _ := net.SplitHostPort(cfg.MetricsAddr); port != "9090" {
		t.Errorf("metrics on %s, but the compose file publishes 9090", cfg.MetricsAddr)
	}
	if got := cfg.InvokeURLFunc()("abcdefghij", "prod"); got != "http://moto:5000/restapis/abcdefghij/prod/_user_request_" {
		t.Errorf("probes would go to %s", got)
	}

	// Each address names a service and a port that service listens on.
	for variable, svc := range map[string]string{"TEMPORAL_ADDRESS": "temporal", "VAULT_ADDR": "vault", "AWS_ENDPOINT_URL": "moto", "ROLLGATE_GATEWAY_INVOKE_URL": "moto"} {
		addr := env[variable]
		if u, err := url.Parse(addr); err == nil && u.Host != "" {
			addr = u.Host
		}
		host, port, err := net.SplitHostPort(addr)
		if err != nil || host != svc || !slices.ContainsFunc(published(svc), func(p uint32) bool { return port == itoa(p) }) {
			t.Errorf("%s=%s: want %s and one of its ports %v", variable, env[variable], svc, published(svc))
		}
	}
	for _, k := range []string{"VAULT_DEV_ROOT_TOKEN_ID"} {
		if v := p.Services["vault"].Environment[k]; v == nil || *v != env["VAULT_TOKEN"] {
			t.Errorf("the worker's VAULT_TOKEN is not the dev server's root token")
		}
	}

	// The AWS SDK, reading the same variables, sends every service to moto.
	for k, v := range env {
		if strings.HasPrefix(k, "AWS_") {
			t.Setenv(k, v)
		}
	}
	aws, err := awsconfig.LoadDefaultConfig(context.Background())
	if err != nil || aws.BaseEndpoint == nil || *aws.BaseEndpoint != "http://moto:5000" || aws.Region != "us-east-1" {
		t.Fatalf("AWS SDK config from the compose variables: endpoint %q region %s, %v", awssdk.ToString(aws.BaseEndpoint), aws.Region, err)
	}
}

func TestDockerfile_MultiStageStaticNonRoot(t *testing.T) {
	raw, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	df := string(raw)
	mod, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	mf, err := modfile.ParseLax("go.mod", mod, nil)
	if err != nil {
		t.Fatal(err)
	}
	goMinor := strings.Join(strings.Split(mf.Go.Version, ".")[:2], ".")
	froms := regexp.MustCompile(`(?m)^FROM\s+(\S+)`).FindAllStringSubmatch(df, -1)
	if len(froms) != 2 || !strings.HasPrefix(froms[0][1], "golang:"+goMinor) {
		t.Fatalf("want a golang:%s build stage and a runtime stage, got %v", goMinor, froms)
	}
	users := regexp.MustCompile(`(?m)^USER\s+(\S+)`).FindAllStringSubmatch(df, -1)
	if len(users) == 0 || strings.HasPrefix(users[len(users)-1][1], "0") || strings.HasPrefix(users[len(users)-1][1], "root") {
		t.Fatalf("the image must run as a non-root user, got %v", users)
	}
	for _, want := range []string{"CGO_ENABLED=0", "./worker", "ENTRYPOINT"} {
		if !strings.Contains(df, want) {
			t.Errorf("Dockerfile lacks %s", want)
		}
	}
}

// envNames lists the env tags of a configuration struct, nested structs included.
func envNames(t reflect.Type) map[string]bool {
	names := map[string]bool{}
	for f := range t.Fields() {
		if tag, ok := f.Tag.Lookup("env"); ok {
			names[strings.TrimSpace(strings.Split(tag, ",")[0])] = true
		} else if f.Type.Kind() == reflect.Struct {
			for k := range envNames(f.Type) {
				names[k] = true
			}
		}
	}
	return names
}

func sorted(s []string) []string { s = slices.Clone(s); slices.Sort(s); return s }

func itoa(p uint32) string { return strconv.FormatUint(uint64(p), 10) }

func mustAbs(t *testing.T, p string) string {
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// The documented IAM policy is valid JSON, allows only, and grants no wildcard action or resource.
func TestIAMPolicy_LeastPrivilegeShape(t *testing.T) {
	raw, err := os.ReadFile("../deploy/iam-policy.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Version   string
		Statement []struct {
			Sid, Effect      string
			Action, Resource any
			Condition        map[string]map[string]string
		}
	}
	if err := json.Unmarshal(raw, &doc); err != nil || doc.Version != "2012-10-17" || len(doc.Statement) == 0 {
		t.Fatalf("policy: %v", err)
	}
	list := func(v any) []string {
		switch x := v.(type) {
		case string:
			return []string{x}
		case []any:
			var out []string
			for _, e := range x {
				s, _ := e.(string)
				out = append(out, s)
			}
			return out
		}
		return nil
	}
	grants := func(action, resource string) (conditions []map[string]map[string]string) {
		for _, st := range doc.Statement {
			if slices.Contains(list(st.Action), action) && slices.ContainsFunc(list(st.Resource), func(r string) bool {
				return r == resource || strings.HasSuffix(r, "*") && strings.HasPrefix(resource, strings.TrimSuffix(r, "*"))
			}) {
				conditions = append(conditions, st.Condition)
			}
		}
		return conditions
	}
	const table = "arn:aws:dynamodb:us-east-1:111122223333:table/"
	for _, c := range []struct {
		what           string
		action, on     string
		want, withCond bool
	}{
		// Without ListBucket, S3 answers 403 instead of 404 for a missing object, so the first
		// publication of an issuer's JWKS fails.
		{"tell a missing JWKS from a denied one", "s3:ListBucket", "arn:aws:s3:::example-issuer", true, true},
		{"trim the release history", "dynamodb:DeleteItem", table + "rollgate-releases", true, false},
		{"delete registry rows (the code never does)", "dynamodb:DeleteItem", table + "rollgate-tokens", false, false},
		{"delete revocations (the code never does)", "dynamodb:DeleteItem", table + "rollgate-revocations", false, false},
		{"scan the registry (only the starter's reports do)", "dynamodb:Scan", table + "rollgate-tokens", false, false},
		{"enable and disable API keys, only those tagged for rollgate", "apigateway:PATCH", "arn:aws:apigateway:us-east-1::/apikeys/abc123", true, true},
		// A revocation reaches a Lambda authorizer's cached Allow only through a flush.
		{"flush a REST stage's authorizer cache", "apigateway:DELETE", "arn:aws:apigateway:us-east-1::/restapis/a1b2c3d4e5/stages/prod/cache/authorizers", true, false},
		{"reset an HTTP API stage's authorizer cache", "apigateway:DELETE", "arn:aws:apigateway:us-east-1::/apis/f6g7h8i9j0/stages/$default/cache/authorizers", true, false},
		{"delete a stage (the code never does)", "apigateway:DELETE", "arn:aws:apigateway:us-east-1::/apis/f6g7h8i9j0/stages/$default", false, false},
	} {
		got := grants(c.action, c.on)
		switch {
		case c.want && len(got) == 0:
			t.Errorf("the worker cannot %s: no %s on %s", c.what, c.action, c.on)
		case !c.want && len(got) > 0:
			t.Errorf("the policy lets the worker %s: %s on %s", c.what, c.action, c.on)
		case c.withCond && slices.ContainsFunc(got, func(m map[string]map[string]string) bool { return len(m) == 0 }):
			t.Errorf("%s on %s is granted without a condition", c.action, c.on)
		}
	}
	for _, st := range doc.Statement {
		if st.Effect != "Allow" || st.Sid == "" {
			t.Errorf("statement %q: effect %q", st.Sid, st.Effect)
		}
		for _, a := range list(st.Action) {
			if strings.Contains(a, "*") {
				t.Errorf("statement %s allows %s", st.Sid, a)
			}
		}
		for _, r := range list(st.Resource) {
			if r == "*" || strings.HasSuffix(r, ":*") {
				t.Errorf("statement %s applies to %s", st.Sid, r)
			}
		}
	}
}
