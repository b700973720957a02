package codec_test

import (
	"crypto/rand"
	"testing"
	"time"

	"go.temporal.io/sdk/converter"

	"github.com/rollgate/rollgate/internal/codec"
	"github.com/rollgate/rollgate/internal/spec"
)

// BenchmarkPayload prints the cost of sealing and opening a deploy spec next to the default
// converter's cost for the same value (the baseline), in one run:
//
//	go test -run '^$' -bench Payload ./internal/codec
func BenchmarkPayload(b *testing.B) {
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	c, err := codec.New("k1", map[string][]byte{"k1": key})
	if err != nil {
		b.Fatal(err)
	}
	s := spec.DeploySpec{
		Service: "orders", Gateway: spec.Gateway{Kind: "rest", APIID: "a1b2c3d4e5", Stage: "prod"},
		Release: spec.Release{Variables: map[string]string{"backendUrl": "https://orders-v2.internal.example.com"}},
		Auth: spec.Auth{Issuer: "https://issuer.example.com/orders", Audiences: []string{"orders"}, TransitKey: "orders-issuer",
			Clients: []string{"billing", "shipping", "returns"}, TokenTTL: spec.Duration(time.Hour)},
		Canary: spec.Canary{Steps: []spec.Step{{Weight: 10, Bake: spec.Duration(10 * time.Minute)}, {Weight: 50, Bake: spec.Duration(10 * time.Minute)}}},
		Actor:  "pipeline", Reason: "CHG-1042",
	}
	for _, c := range []struct {
		name string
		dc   converter.DataConverter
	}{{"baseline-default-converter", converter.GetDefaultDataConverter()}, {"aes-256-gcm", codec.DataConverter(c)}} {
		b.Run(c.name, func(b *testing.B) {
			var out spec.DeploySpec
			for b.Loop() {
				p, err := c.dc.ToPayload(s)
				if err != nil {
					b.Fatal(err)
				}
				if err := c.dc.FromPayload(p, &out); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
