package gatewayemu_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/rollgate/rollgate/testsuite/gatewayemu"
)

// awsCLI runs the AWS CLI against the emulator's control plane.
type awsCLI struct {
	t        *testing.T
	endpoint string
}

// run runs one command and decodes its JSON answer; it fails the test if the command fails.
func (c awsCLI) run(args ...string) map[string]any {
	c.t.Helper()
	out, stderr, err := c.exec(args...)
	if err != nil {
		c.t.Fatalf("aws %s: %v\n%s", strings.Join(args, " "), err, stderr)
	}
	var doc map[string]any
	if len(bytes.TrimSpace(out)) > 0 && json.Unmarshal(out, &doc) != nil {
		c.t.Fatalf("aws %s: answer is not JSON: %s", strings.Join(args, " "), out)
	}
	return doc
}

// fails runs a command that must fail and returns its error output.
func (c awsCLI) fails(args ...string) string {
	c.t.Helper()
	_, stderr, err := c.exec(args...)
	if err == nil {
		c.t.Fatalf("aws %s succeeded, want a failure", strings.Join(args, " "))
	}
	return string(stderr)
}

func (c awsCLI) exec(args ...string) ([]byte, []byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "aws", append(args, "--endpoint-url", c.endpoint, "--output", "json")...)
	cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test", "AWS_DEFAULT_REGION=us-east-1",
		"AWS_REGION=us-east-1", "AWS_PAGER=", "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null")
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	err := cmd.Run()
	return out.Bytes(), stderr.Bytes(), err
}

// An independent client, the AWS CLI, sets up a REST API as one does on AWS (resource, method,
// HTTP_PROXY integration with a mapped greedy path, deployment with a stage variable) and reads it
// back: every answer parses and carries AWS's fields; errors carry AWS's types.
func TestAWSCLI_ScriptOfCallsParsesAndMatches(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the AWS CLI")
	}
	if _, err := exec.LookPath("aws"); err != nil {
		t.Fatal("the AWS CLI is needed (Debian's awscli): ", err)
	}
	emu, _, _ := startEmulator(t, gatewayemu.Options{})
	cli := awsCLI{t: t, endpoint: emu.ControlURL}

	api := cli.run("apigateway", "create-rest-api", "--name", "cli")
	id, root := api["id"].(string), api["rootResourceId"].(string)
	if types := api["endpointConfiguration"].(map[string]any)["types"].([]any); len(types) != 1 || types[0] != "EDGE" {
		t.Fatalf("create-rest-api: %v", api)
	}
	proxy := cli.run("apigateway", "create-resource", "--rest-api-id", id, "--parent-id", root, "--path-part", "{proxy+}")["id"].(string)
	cli.run("apigateway", "put-method", "--rest-api-id", id, "--resource-id", proxy, "--http-method", "ANY",
		"--authorization-type", "NONE", "--request-parameters", "method.request.path.proxy=true")
	integ := cli.run("apigateway", "put-integration", "--rest-api-id", id, "--resource-id", proxy, "--http-method", "ANY",
		"--type", "HTTP_PROXY", "--integration-http-method", "ANY", "--uri", "http://${stageVariables.backendUrl}/{proxy}",
		"--request-parameters", "integration.request.path.proxy=method.request.path.proxy")
	if integ["timeoutInMillis"] != float64(29000) || integ["passthroughBehavior"] != "WHEN_NO_MATCH" {
		t.Fatalf("put-integration: %v", integ)
	}
	backendHost := echoBackend(t, "cli")
	cli.run("apigateway", "create-deployment", "--rest-api-id", id, "--stage-name", "prod", "--variables", "backendUrl="+backendHost)
	st := cli.run("apigateway", "get-stage", "--rest-api-id", id, "--stage-name", "prod")
	if st["cacheClusterStatus"] != "NOT_AVAILABLE" || st["variables"].(map[string]any)["backendUrl"] != backendHost {
		t.Fatalf("get-stage: %v", st)
	}
	if items := cli.run("apigateway", "get-stages", "--rest-api-id", id)["item"].([]any); len(items) != 1 {
		t.Fatalf("get-stages: %v", items)
	}
	if status, path := routed(t, "GET", emu.InvokeURL(id, "prod")+"/orders/1"); status != 200 || path != "/orders/1" {
		t.Fatalf("the deployed stage: %d %q", status, path)
	}
	h := cli.run("apigatewayv2", "create-api", "--name", "cli-http", "--protocol-type", "HTTP")
	if h["ApiKeySelectionExpression"] != "$request.header.x-api-key" { // the CLI names apigatewayv2 fields in PascalCase
		t.Fatalf("apigatewayv2 create-api: %v", h)
	}

	if msg := cli.fails("apigateway", "get-rest-api", "--rest-api-id", "nosuch"); !strings.Contains(msg, "NotFoundException") {
		t.Fatalf("get-rest-api of an unknown API: %s", msg)
	}
	if msg := cli.fails("apigateway", "create-deployment", "--rest-api-id", cli.run("apigateway", "create-rest-api", "--name", "bare")["id"].(string)); !strings.Contains(msg, "BadRequestException") {
		t.Fatalf("create-deployment without methods: %s", msg)
	}
	if msg := cli.fails("apigateway", "delete-rest-api", "--rest-api-id", id); !strings.Contains(msg, "InvalidAction") {
		t.Fatalf("an unsupported operation: %s", msg)
	}
}
