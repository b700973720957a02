package tokens_test

import (
	"context"
	"testing"
	"time"

	"github.com/rollgate/rollgate/internal/keys"
	"github.com/rollgate/rollgate/internal/tokens"
)

// BenchmarkMintThroughVault compares signing one token per transit/sign request with signing 100
// per request (batch_input), in tokens per second, for each key type.
func BenchmarkMintThroughVault(b *testing.B) {
	for _, tc := range []struct {
		typ keys.Type
		alg string
	}{{keys.RSA2048, "RS256"}, {keys.ECDSAP256, "ES256"}, {keys.Ed25519, "EdDSA"}} {
		e := newIssuerEnv(b, tc.typ, tc.alg)
		for _, batch := range []int{1, 100} {
			name := tc.alg + "/single"
			if batch > 1 {
				name = tc.alg + "/batch-100"
			}
			b.Run(name, func(b *testing.B) {
				reqs := make([]tokens.MintRequest, batch)
				for i := range reqs {
					reqs[i] = tokens.MintRequest{Subject: "client", Audience: []string{"orders"}, TTL: time.Hour}
				}
				for b.Loop() {
					if _, err := e.minter.Mint(context.Background(), 1, reqs...); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "tokens/s")
			})
		}
	}
}
