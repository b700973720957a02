package registry

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Refused tokens still presented: a verifier that refuses a token because it is revoked, or
// because it expired (its signature verified, so its claims are the issuer's), records the use,
// so that the token monitor can tell a stolen token being replayed, or a client that does not
// renew. Uses table (partition key hour "2006-01-02T15" UTC, sort key jti, "expired#<jti>" for an
// expired token's uses): per token, kind and hour, the subject, client, issuer, first and last
// use, a count and up to MaxUseAddresses source addresses; expires_at (the table's TTL attribute)
// a week later.

// Kinds of use recorded.
const (
	UseRevoked = "revoked" // a revoked token presented (items without a kind)
	UseExpired = "expired" // an expired token presented
)

// RevokedUseActions lists the IAM actions of the calls RecordRevokedUse makes, on the uses
// table: what a verifier's role needs beside DenyListActions to record revoked tokens presented.
var RevokedUseActions = []string{"dynamodb:UpdateItem"}

// MaxUseAddresses bounds the addresses kept per token and hour: an attacker rotating addresses
// cannot grow an item.
const MaxUseAddresses = 16

// UseRetention is how long a use is kept.
const UseRetention = 7 * 24 * time.Hour

// UseEvent is one presentation of a refused token.
type UseEvent struct {
	Kind                           string // UseRevoked ("") or UseExpired
	JTI, Subject, ClientID, Issuer string
	Address                        string // the source address as the gateway reports it
	At                             time.Time
}

// RevokedUse is the uses of one refused token, of one kind, within one hour.
type RevokedUse struct {
	Kind                           string
	JTI, Subject, ClientID, Issuer string
	Addresses                      []string
	Count                          int
	First, Last                    time.Time
}

// RevokedUsesTableName is the uses table's name, its default when unset.
func (r *Registry) RevokedUsesTableName() string {
	if r.RevokedUsesTable == "" {
		return "rollgate-revoked-uses"
	}
	return r.RevokedUsesTable
}

func hourBucket(t time.Time) string { return t.UTC().Format("2006-01-02T15") }

// RecordRevokedUse counts one presentation of a revoked token. Values a client chose (subject,
// client, address) are clipped; the address set stays within MaxUseAddresses.
func (r *Registry) RecordRevokedUse(ctx context.Context, e UseEvent) error {
	if e.JTI == "" {
		return errors.New("record revoked use: no jti")
	}
	if e.At.IsZero() {
		e.At = r.now()
	}
	sortKey := clip(e.JTI, 256)
	switch e.Kind {
	case "", UseRevoked:
	case UseExpired:
		sortKey = expiredPrefix + sortKey
	default:
		return fmt.Errorf("record use: kind %q: allowed %s, %s", e.Kind, UseRevoked, UseExpired)
	}
	key := map[string]types.AttributeValue{
		"hour": &types.AttributeValueMemberS{Value: hourBucket(e.At)},
		"jti":  &types.AttributeValueMemberS{Value: sortKey},
	}
	values := map[string]types.AttributeValue{
		":one": &types.AttributeValueMemberN{Value: "1"},
		":sub": &types.AttributeValueMemberS{Value: clip(orDash(e.Subject), 256)},
		":cid": &types.AttributeValueMemberS{Value: clip(orDash(e.ClientID), 256)},
		":iss": &types.AttributeValueMemberS{Value: clip(orDash(e.Issuer), 512)},
		":at":  &types.AttributeValueMemberN{Value: strconv.FormatInt(e.At.UnixMilli(), 10)},
		":exp": &types.AttributeValueMemberN{Value: strconv.FormatInt(e.At.Add(UseRetention).Unix(), 10)},
	}
	update := "SET subject = if_not_exists(subject, :sub), client_id = if_not_exists(client_id, :cid), " +
		"issuer = if_not_exists(issuer, :iss), first_at = if_not_exists(first_at, :at), last_at = :at, expires_at = :exp ADD use_count :one"
	in := &dynamodb.UpdateItemInput{TableName: aws.String(r.RevokedUsesTableName()), Key: key, UpdateExpression: &update, ExpressionAttributeValues: values}
	if e.Address != "" {
		// The address joins the set while the set is not full; a full set only counts the use.
		withAddr := *in
		withAddr.UpdateExpression = aws.String(update + ", addresses :ip")
		withAddr.ConditionExpression = aws.String("attribute_not_exists(addresses) OR size(addresses) < :max OR contains(addresses, :addr)")
		withAddr.ExpressionAttributeValues = map[string]types.AttributeValue{
			":ip":   &types.AttributeValueMemberSS{Value: []string{clip(e.Address, 64)}},
			":addr": &types.AttributeValueMemberS{Value: clip(e.Address, 64)},
			":max":  &types.AttributeValueMemberN{Value: strconv.Itoa(MaxUseAddresses)},
		}
		for k, v := range values {
			withAddr.ExpressionAttributeValues[k] = v
		}
		_, err := r.DB.UpdateItem(ctx, &withAddr)
		var full *types.ConditionalCheckFailedException
		if !errors.As(err, &full) {
			if err != nil {
				return fmt.Errorf("record revoked use: %w", err)
			}
			return nil
		}
	}
	if _, err := r.DB.UpdateItem(ctx, in); err != nil {
		return fmt.Errorf("record revoked use: %w", err)
	}
	return nil
}

// expiredPrefix marks an expired token's uses in the sort key, apart from its uses once revoked.
const expiredPrefix = "expired#"

// RevokedUses reads the uses of revoked tokens last seen at or after since, hour by hour up to
// now, at most limit of them (truncated says there were more).
func (r *Registry) RevokedUses(ctx context.Context, since time.Time, limit int) (uses []RevokedUse, truncated bool, err error) {
	return r.Uses(ctx, UseRevoked, since, limit)
}

// Uses reads the uses of one kind last seen at or after since, hour by hour up to now, at most
// limit of them (truncated says there were more).
func (r *Registry) Uses(ctx context.Context, kind string, since time.Time, limit int) (uses []RevokedUse, truncated bool, err error) {
	if kind != UseRevoked && kind != UseExpired {
		return nil, false, fmt.Errorf("uses: kind %q: allowed %s, %s", kind, UseRevoked, UseExpired)
	}
	now := r.now()
	if since.After(now) || now.Sub(since) > UseRetention {
		return nil, false, fmt.Errorf("revoked uses since %s: allowed within the last %s", since.UTC().Format(time.RFC3339), UseRetention)
	}
	for h := since.UTC().Truncate(time.Hour); !h.After(now); h = h.Add(time.Hour) {
		p := dynamodb.NewQueryPaginator(r.DB, &dynamodb.QueryInput{
			TableName:                aws.String(r.RevokedUsesTableName()),
			KeyConditionExpression:   aws.String("#h = :h"),
			FilterExpression:         aws.String("last_at >= :since"),
			ExpressionAttributeNames: map[string]string{"#h": "hour"},
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":h":     &types.AttributeValueMemberS{Value: hourBucket(h)},
				":since": &types.AttributeValueMemberN{Value: strconv.FormatInt(since.UnixMilli(), 10)},
			},
		})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				return nil, false, fmt.Errorf("read revoked uses: %w", err)
			}
			for _, item := range page.Items {
				u := useOf(item)
				if u.Kind != kind {
					continue
				}
				if len(uses) == limit {
					return uses, true, nil
				}
				uses = append(uses, u)
			}
		}
	}
	return uses, false, nil
}

func useOf(item map[string]types.AttributeValue) RevokedUse {
	str := func(k string) string {
		if v, ok := item[k].(*types.AttributeValueMemberS); ok {
			return v.Value
		}
		return ""
	}
	num := func(k string) int64 {
		if v, ok := item[k].(*types.AttributeValueMemberN); ok {
			n, _ := strconv.ParseInt(v.Value, 10, 64)
			return n
		}
		return 0
	}
	u := RevokedUse{Kind: UseRevoked, JTI: str("jti"), Subject: str("subject"), ClientID: str("client_id"), Issuer: str("issuer"), Count: int(num("use_count")),
		First: time.UnixMilli(num("first_at")).UTC(), Last: time.UnixMilli(num("last_at")).UTC()}
	if v, ok := item["addresses"].(*types.AttributeValueMemberSS); ok {
		u.Addresses = v.Value
	}
	if jti, ok := strings.CutPrefix(u.JTI, expiredPrefix); ok {
		u.Kind, u.JTI = UseExpired, jti
	}
	return u
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
