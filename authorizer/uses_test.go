package main

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/rollgate/rollgate/internal/registry"
)

// usesDB counts the uses written, by kind; every other call is unused here.
type usesDB struct {
	registry.DB
	mu      sync.Mutex
	written map[string]int
}

func (d *usesDB) UpdateItem(_ context.Context, in *dynamodb.UpdateItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	kind := registry.UseRevoked
	if strings.HasPrefix(in.Key["jti"].(*types.AttributeValueMemberS).Value, "expired#") {
		kind = registry.UseExpired
	}
	d.written[kind]++
	return &dynamodb.UpdateItemOutput{}, nil
}

// Expired tokens presented from many addresses (anyone can replay one: it is no longer a secret)
// spend their own write budget, not the revoked tokens': a stolen revoked token presented next is
// still recorded for the token monitor.
func TestRevokedUses_ExpiredTokensCannotSpendTheRevokedTokensBudget(t *testing.T) {
	db := &usesDB{written: map[string]int{}}
	u := newRevokedUses(&registry.Registry{DB: db}, Config{Issuer: "https://issuer.test", RevokedUsesTable: "uses", RevokedUsesPerSecond: 1},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx := context.Background()
	for i := range 20 {
		u.record(ctx, registry.UseExpired, peeked{JTI: "old", Sub: "alice", ClientID: "billing"}, "198.51.100."+string(rune('a'+i)))
	}
	u.record(ctx, registry.UseRevoked, peeked{JTI: "stolen", Sub: "bob", ClientID: "reports"}, "203.0.113.9")
	if db.written[registry.UseExpired] != 1 || db.written[registry.UseRevoked] != 1 {
		t.Fatalf("written %v: want the expired uses limited to 1 and the revoked use recorded", db.written)
	}
}
