package config_test

import (
	"context"
	"testing"
	"time"

	"github.com/sethvargo/go-envconfig"

	"github.com/rollgate/rollgate/internal/config"
)

func TestLoad_DefaultsAndOverrides(t *testing.T) {
	c, err := config.Load(context.Background(), envconfig.MapLookuper(map[string]string{}))
	if err != nil {
		t.Fatal(err)
	}
	if c.TaskQueue != "rollgate" || c.Vault.Method != "token" || c.ShutdownTimeout != 30*time.Second || c.TokensTable != "rollgate-tokens" {
		t.Fatalf("defaults %+v", c)
	}
	if got := c.InvokeURLFunc()("abcdefghij", "prod"); got != "https://abcdefghij.execute-api.us-east-1.amazonaws.com/prod" {
		t.Fatal(got)
	}
	c, err = config.Load(context.Background(), envconfig.MapLookuper(map[string]string{
		"ROLLGATE_VAULT_AUTH": "approle", "ROLLGATE_VAULT_ROLE_ID": "r", "ROLLGATE_GATEWAY_INVOKE_URL": "http://127.0.0.1:9/",
		"ROLLGATE_SHUTDOWN_TIMEOUT": "5s",
	}))
	if err != nil || c.Vault.Method != "approle" || c.Vault.RoleID != "r" || c.ShutdownTimeout != 5*time.Second {
		t.Fatalf("overrides %+v, %v", c, err)
	}
	if got := c.InvokeURLFunc()("abcdefghij", "prod"); got != "http://127.0.0.1:9/abcdefghij/prod" {
		t.Fatal(got)
	}
	c, _ = config.Load(context.Background(), envconfig.MapLookuper(map[string]string{"ROLLGATE_GATEWAY_INVOKE_URL": "http://moto:5000/restapis/{apiId}/{stage}/_user_request_"}))
	if got := c.InvokeURLFunc()("abcdefghij", "prod"); got != "http://moto:5000/restapis/abcdefghij/prod/_user_request_" {
		t.Fatal(got)
	}
	if _, err := config.Load(context.Background(), envconfig.MapLookuper(map[string]string{"ROLLGATE_SHUTDOWN_TIMEOUT": "soon"})); err == nil {
		t.Fatal("a bad duration was accepted")
	}
}

func TestLoad_Webhooks(t *testing.T) {
	c, err := config.Load(context.Background(), envconfig.MapLookuper(map[string]string{
		"ROLLGATE_WEBHOOKS": "oncall=https://hooks.example.com/services/T0/B0/x?a=b;ops=http://127.0.0.1:9/h",
	}))
	if err != nil || c.Webhooks["oncall"] != "https://hooks.example.com/services/T0/B0/x?a=b" || c.Webhooks["ops"] != "http://127.0.0.1:9/h" {
		t.Fatalf("webhooks %v, %v", c.Webhooks, err)
	}
}
