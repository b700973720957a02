package codec_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"os"
	"strings"
	"testing"

	vault "github.com/hashicorp/vault/api"
	"github.com/sethvargo/go-envconfig"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"

	"github.com/rollgate/rollgate/internal/codec"
	"github.com/rollgate/rollgate/testsuite"
)

var shared testsuite.Shared

func TestMain(m *testing.M) { os.Exit(shared.Run(m)) }

func newKey(t *testing.T) []byte {
	t.Helper()
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}

type release struct {
	APIID, Stage, Reason string
}

func TestCodec_SealsWithTheCurrentKeyAndOpensWithAnyKnownKey(t *testing.T) {
	k1, k2 := newKey(t), newKey(t)
	old, err := codec.New("k1", map[string][]byte{"k1": k1})
	if err != nil {
		t.Fatal(err)
	}
	rotated, err := codec.New("k2", map[string][]byte{"k1": k1, "k2": k2})
	if err != nil {
		t.Fatal(err)
	}
	in := release{APIID: "a1b2c3d4e5", Stage: "prod", Reason: "p99 latency regression on /orders"}

	p, err := codec.DataConverter(old).ToPayload(in)
	if err != nil {
		t.Fatal(err)
	}
	if string(p.Metadata["encoding"]) != codec.Encoding || string(p.Metadata[codec.KeyIDKey]) != "k1" {
		t.Fatalf("metadata %q", p.Metadata)
	}
	for _, s := range []string{in.APIID, in.Stage, in.Reason, "json/plain"} {
		if bytes.Contains(p.Data, []byte(s)) {
			t.Fatalf("payload data holds %q in clear", s)
		}
	}
	var out release
	if err := codec.DataConverter(rotated).FromPayload(p, &out); err != nil || out != in {
		t.Fatalf("a rotated codec reads what the old key sealed: %+v, %v", out, err)
	}
	p2, _ := codec.DataConverter(rotated).ToPayload(in)
	if string(p2.Metadata[codec.KeyIDKey]) != "k2" {
		t.Fatalf("new payloads use the current key, got %q", p2.Metadata[codec.KeyIDKey])
	}
	if err := codec.DataConverter(old).FromPayload(p2, &out); err == nil || !strings.Contains(err.Error(), `key "k2"`) {
		t.Fatalf("a codec without k2 must say so, got %v", err)
	}
	// Two seals of the same value differ (random nonce).
	p3, _ := codec.DataConverter(rotated).ToPayload(in)
	if bytes.Equal(p2.Data, p3.Data) {
		t.Fatal("nonce reused")
	}
}

func TestCodec_RejectsTamperingAndWrongKeys(t *testing.T) {
	c, _ := codec.New("k1", map[string][]byte{"k1": newKey(t)})
	sealed, err := c.Encode([]*commonpb.Payload{{Metadata: map[string][]byte{"encoding": []byte("json/plain")}, Data: []byte(`"x"`)}})
	if err != nil {
		t.Fatal(err)
	}
	flipped := &commonpb.Payload{Metadata: sealed[0].Metadata, Data: bytes.Clone(sealed[0].Data)}
	flipped.Data[len(flipped.Data)-1] ^= 1
	if _, err := c.Decode([]*commonpb.Payload{flipped}); err == nil || !strings.Contains(err.Error(), "does not authenticate") {
		t.Fatalf("tampered data: %v", err)
	}
	other, _ := codec.New("k1", map[string][]byte{"k1": newKey(t)})
	if _, err := other.Decode(sealed); err == nil {
		t.Fatal("opened with the wrong key material")
	}
	// The key id is authenticated: a payload relabelled to another id fails even when both ids
	// hold the same key material.
	same := newKey(t)
	twin, _ := codec.New("k1", map[string][]byte{"k1": same, "k2": same})
	sealedK1, err := twin.Encode([]*commonpb.Payload{{Metadata: map[string][]byte{"encoding": []byte("json/plain")}, Data: []byte(`"x"`)}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := twin.Decode(sealedK1); err != nil {
		t.Fatalf("the twin codec cannot open its own payload: %v", err)
	}
	relabelled := &commonpb.Payload{Metadata: map[string][]byte{"encoding": []byte(codec.Encoding), codec.KeyIDKey: []byte("k2")}, Data: sealedK1[0].Data}
	if _, err := twin.Decode([]*commonpb.Payload{relabelled}); err == nil {
		t.Fatal("a payload relabelled to another key id opened")
	}
	short := &commonpb.Payload{Metadata: sealed[0].Metadata, Data: sealed[0].Data[:5]}
	if _, err := c.Decode([]*commonpb.Payload{short}); err == nil {
		t.Fatal("a truncated payload opened")
	}
	if _, err := codec.New("k1", map[string][]byte{"k1": []byte("short")}); err == nil || !strings.Contains(err.Error(), "AES-256") {
		t.Fatalf("short key: %v", err)
	}
	if _, err := codec.New("k9", map[string][]byte{"k1": newKey(t)}); err == nil {
		t.Fatal("a current id without a key was accepted")
	}
}

// An unencrypted payload is refused, with the setting that allows it named, unless reading
// plaintext (histories from before encryption) was asked for.
func TestCodec_RefusesPlaintextUnlessAllowed(t *testing.T) {
	key := base64.StdEncoding.EncodeToString(newKey(t))
	plain := &commonpb.Payload{Metadata: map[string][]byte{"encoding": []byte("json/plain")}, Data: []byte(`{"Stage":"prod"}`)}
	for _, allow := range []string{"", "false", "true"} {
		env := map[string]string{"ROLLGATE_CODEC_KEY": key}
		if allow != "" {
			env["ROLLGATE_CODEC_ALLOW_PLAINTEXT"] = allow
		}
		var cfg codec.Config
		if err := envconfig.ProcessWith(context.Background(), &envconfig.Config{Target: &cfg, Lookuper: envconfig.MapLookuper(env)}); err != nil {
			t.Fatal(err)
		}
		c, err := cfg.Load(context.Background(), nil)
		if err != nil {
			t.Fatal(err)
		}
		sealed, _ := c.Encode([]*commonpb.Payload{plain})
		got, err := c.Decode([]*commonpb.Payload{sealed[0], plain})
		if allow == "true" {
			if err != nil || got[1] != plain {
				t.Fatalf("plaintext allowed: %v", err)
			}
			continue
		}
		if !errors.Is(err, codec.ErrPlaintext) || !strings.Contains(err.Error(), "ROLLGATE_CODEC_ALLOW_PLAINTEXT=true") {
			t.Fatalf("ROLLGATE_CODEC_ALLOW_PLAINTEXT=%q: got %v, want a refusal naming the setting", allow, err)
		}
		// Through the data converter too: a worker cannot be handed a plaintext input.
		var out release
		if err := codec.DataConverter(c).FromPayload(plain, &out); !errors.Is(err, codec.ErrPlaintext) {
			t.Fatalf("data converter: %v (%+v)", err, out)
		}
	}
}

func TestCodec_FailureMessagesAreEncryptedToo(t *testing.T) {
	c, _ := codec.New("k1", map[string][]byte{"k1": newKey(t)})
	fc := codec.FailureConverter(codec.DataConverter(c))
	f := fc.ErrorToFailure(errString("rollback of a1b2c3d4e5/prod: verification failed"))
	if strings.Contains(f.GetMessage(), "a1b2c3d4e5") || f.GetEncodedAttributes() == nil {
		t.Fatalf("failure message in clear: %q", f.GetMessage())
	}
	if got := fc.FailureToError(f).Error(); !strings.Contains(got, "a1b2c3d4e5/prod") {
		t.Fatalf("decoded failure %q", got)
	}
}

type errString string

func (e errString) Error() string { return string(e) }

func TestConfig_FromTheEnvironment(t *testing.T) {
	k1, k2 := base64.StdEncoding.EncodeToString(newKey(t)), base64.RawURLEncoding.EncodeToString(newKey(t))
	load := func(env map[string]string) (*codec.Codec, error) {
		var cfg codec.Config
		if err := envconfig.ProcessWith(context.Background(), &envconfig.Config{Target: &cfg, Lookuper: envconfig.MapLookuper(env)}); err != nil {
			t.Fatal(err)
		}
		return cfg.Load(context.Background(), nil)
	}
	if c, err := load(map[string]string{}); c != nil || err != nil {
		t.Fatalf("no key configured means no codec: %v, %v", c, err)
	}
	c, err := load(map[string]string{"ROLLGATE_CODEC_KEY": k2, "ROLLGATE_CODEC_KEY_ID": "2026-11", "ROLLGATE_CODEC_PREVIOUS_KEYS": "2026-05=" + k1})
	if err != nil || c.KeyID() != "2026-11" || strings.Join(c.KeyIDs(), ",") != "2026-05,2026-11" {
		t.Fatalf("keys %v, %v", c, err)
	}
	for env, want := range map[string]map[string]string{
		"not base64":    {"ROLLGATE_CODEC_KEY": "not base64!"},
		"16 bytes":      {"ROLLGATE_CODEC_KEY": base64.StdEncoding.EncodeToString(make([]byte, 16))},
		"not both":      {"ROLLGATE_CODEC_KEY": k1, "ROLLGATE_CODEC_VAULT_SECRET": "secret/x"},
		"repeats":       {"ROLLGATE_CODEC_KEY": k1, "ROLLGATE_CODEC_PREVIOUS_KEYS": "k1=" + k2},
		"<kv-v2 mount>": {"ROLLGATE_CODEC_VAULT_SECRET": "secret"},
	} {
		if _, err := load(want); err == nil || !strings.Contains(err.Error(), env) {
			t.Errorf("%v: got %v, want an error saying %q", want, err, env)
		}
	}
	// No error message ever repeats key material.
	if _, err := load(map[string]string{"ROLLGATE_CODEC_KEY": k1[:20]}); err == nil || strings.Contains(err.Error(), k1[:20]) {
		t.Fatalf("error %v", err)
	}
}

func TestConfig_FromVault(t *testing.T) {
	b := shared.Bed(t)
	vc, err := b.Vault.Client()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	k1, k2 := base64.StdEncoding.EncodeToString(newKey(t)), base64.StdEncoding.EncodeToString(newKey(t))
	if _, err := vc.KVv2("secret").Put(ctx, "rollgate/codec-test", map[string]any{"current": "k2", "k1": k1, "k2": k2}); err != nil {
		t.Fatal(err)
	}
	cfg := codec.Config{VaultSecret: "secret/rollgate/codec-test"}
	c, err := cfg.Load(ctx, func(context.Context) (*vault.Client, error) { return vc, nil })
	if err != nil || c.KeyID() != "k2" || len(c.KeyIDs()) != 2 {
		t.Fatalf("from Vault: %v, %v", c, err)
	}
	if _, err := vc.KVv2("secret").Put(ctx, "rollgate/codec-bad", map[string]any{"k1": k1}); err != nil {
		t.Fatal(err)
	}
	cfg.VaultSecret = "secret/rollgate/codec-bad"
	if _, err := cfg.Load(ctx, func(context.Context) (*vault.Client, error) { return vc, nil }); err == nil || !strings.Contains(err.Error(), `"current"`) {
		t.Fatalf("missing current: %v", err)
	}
	cfg.VaultSecret = "secret/rollgate/absent"
	if _, err := cfg.Load(ctx, func(context.Context) (*vault.Client, error) { return vc, nil }); err == nil {
		t.Fatal("a missing secret loaded")
	}
}

var _ converter.PayloadCodec = (*codec.Codec)(nil)
