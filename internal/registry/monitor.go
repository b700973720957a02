package registry

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Read helpers for the token monitor. They only read, and every one of them is bounded: the
// monitor calls them every interval, forever.

// SubjectUses is the uses of one subject's revoked tokens: the clients and addresses that
// presented them (each at most MaxUseAddresses, sorted) and how often.
type SubjectUses struct {
	Subject   string
	Clients   []string
	Addresses []string
	// Tokens are the jtis presented (at most MaxUseAddresses, sorted); JTIs counts them all.
	Tokens []string `json:",omitempty"`
	JTIs   int
	Count  int
	First  time.Time
	Last   time.Time
}

// GroupUsesBySubject groups the uses of an issuer's revoked tokens by subject, ordered by
// subject. Uses recorded for another issuer are left out; an empty issuer keeps every use.
func GroupUsesBySubject(uses []RevokedUse, issuer string) []SubjectUses {
	groups := groupUses(uses, issuer, func(u RevokedUse) string { return u.Subject })
	out := make([]SubjectUses, len(groups))
	for i, g := range groups {
		out[i] = SubjectUses{Subject: g.key, Clients: g.clients, Addresses: g.addresses, Tokens: g.tokens, JTIs: g.jtis, Count: g.count, First: g.first, Last: g.last}
	}
	return out
}

// ClientUses is the uses of one client's expired tokens: the tokens (the latest presented, by its
// last use), the addresses (at most MaxUseAddresses, sorted) and how often.
type ClientUses struct {
	Client    string
	Subject   string // the latest token's subject
	LatestJTI string // the token presented last
	Addresses []string
	JTIs      int
	Count     int
	First     time.Time
	Last      time.Time
}

// GroupUsesByClient groups the uses of an issuer's tokens by client, ordered by client. Uses
// recorded for another issuer are left out; an empty issuer keeps every use.
func GroupUsesByClient(uses []RevokedUse, issuer string) []ClientUses {
	groups := groupUses(uses, issuer, func(u RevokedUse) string { return u.ClientID })
	out := make([]ClientUses, len(groups))
	for i, g := range groups {
		out[i] = ClientUses{Client: g.key, Subject: g.latest.Subject, LatestJTI: g.latest.JTI, Addresses: g.addresses, JTIs: g.jtis, Count: g.count, First: g.first, Last: g.last}
	}
	return out
}

// useGroup is the uses of one key (subject or client).
type useGroup struct {
	key                string
	clients, addresses []string // each bounded and sorted
	tokens             []string // the jtis, bounded and sorted
	jtis, count        int
	first, last        time.Time
	latest             RevokedUse // the token last presented
}

// groupUses groups an issuer's uses by key, ordered by key.
func groupUses(uses []RevokedUse, issuer string, key func(RevokedUse) string) []useGroup {
	by := map[string]*useGroup{}
	var keys []string
	for _, u := range uses {
		if issuer != "" && u.Issuer != issuer {
			continue
		}
		k := key(u)
		g := by[k]
		if g == nil {
			g = &useGroup{key: k, first: u.First, last: u.Last, latest: u}
			by[k] = g
			keys = append(keys, k)
		}
		g.clients = addBounded(g.clients, u.ClientID)
		g.tokens = addBounded(g.tokens, u.JTI)
		for _, a := range u.Addresses {
			g.addresses = addBounded(g.addresses, a)
		}
		g.jtis++
		g.count += u.Count
		if u.First.Before(g.first) {
			g.first = u.First
		}
		if u.Last.After(g.last) {
			g.last, g.latest = u.Last, u
		}
	}
	slices.Sort(keys)
	out := make([]useGroup, len(keys))
	for i, k := range keys {
		out[i] = *by[k]
	}
	return out
}

// addBounded adds v to the sorted set unless it is there or the set holds MaxUseAddresses.
func addBounded(set []string, v string) []string {
	i, found := slices.BinarySearch(set, v)
	if found || v == "" || len(set) >= MaxUseAddresses {
		return set
	}
	return slices.Insert(set, i, v)
}

// ExpiringActive lists active tokens of the kids, issued at or after issuedAfter, that expire in
// (from, to], at most limit of them (truncated says there were more). It queries the by-kid index
// (kid, iat) once per kid, reading only tokens issued since issuedAfter: the worker may not scan
// the table, and a token issued before now minus the longest lifetime has expired anyway.
func (r *Registry) ExpiringActive(ctx context.Context, kids []string, issuedAfter, from, to time.Time, limit int) (recs []Record, truncated bool, err error) {
	for _, kid := range kids {
		p := dynamodb.NewQueryPaginator(r.DB, &dynamodb.QueryInput{
			TableName: aws.String(r.tokensTable()), IndexName: aws.String("by-kid"),
			KeyConditionExpression:   aws.String("kid = :kid AND iat >= :after"),
			FilterExpression:         aws.String("#s = :active AND #e > :from AND #e <= :to"),
			ExpressionAttributeNames: map[string]string{"#s": "status", "#e": "exp"},
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":kid": str(kid), ":after": num(issuedAfter.Unix()), ":active": str(string(Active)), ":from": num(from.Unix()), ":to": num(to.Unix()),
			},
		})
		if recs, truncated, err = appendBounded(ctx, p, recs, limit); err != nil || truncated {
			return recs, truncated, wrapQuery(err, "expiring tokens of "+kid)
		}
	}
	return recs, false, nil
}

// IssuedBetween lists the tokens of the kids issued in [since, until), at most limit of them
// (truncated says there were more), one by-kid index query per kid.
func (r *Registry) IssuedBetween(ctx context.Context, kids []string, since, until time.Time, limit int) (recs []Record, truncated bool, err error) {
	for _, kid := range kids {
		p := dynamodb.NewQueryPaginator(r.DB, &dynamodb.QueryInput{
			TableName: aws.String(r.tokensTable()), IndexName: aws.String("by-kid"),
			KeyConditionExpression: aws.String("kid = :kid AND iat BETWEEN :since AND :last"),
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":kid": str(kid), ":since": num(since.Unix()), ":last": num(until.Unix() - 1),
			},
		})
		if recs, truncated, err = appendBounded(ctx, p, recs, limit); err != nil || truncated {
			return recs, truncated, wrapQuery(err, "tokens issued of "+kid)
		}
	}
	return recs, false, nil
}

// appendBounded appends the records a query pages through to recs, at most limit in all;
// truncated says the query held more.
func appendBounded(ctx context.Context, p *dynamodb.QueryPaginator, recs []Record, limit int) ([]Record, bool, error) {
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, false, err
		}
		for _, item := range page.Items {
			if len(recs) == limit {
				return recs, true, nil
			}
			recs = append(recs, fromItem(item))
		}
	}
	return recs, false, nil
}

// wrapQuery names what a failed query read; nil stays nil.
func wrapQuery(err error, what string) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("query %s: %w", what, err)
}

// MaxFamily bounds how many reissues Family follows from one token.
const MaxFamily = 32

// Family is the tokens that replaced jti, then replaced those, in order (reissues, renewals,
// rollbacks record ReplacedBy), at most MaxFamily of them; not jti itself.
func (r *Registry) Family(ctx context.Context, jti string) ([]Record, error) {
	var out []Record
	seen := map[string]bool{jti: true}
	rec, err := r.Get(ctx, jti)
	for err == nil && rec.ReplacedBy != "" && !seen[rec.ReplacedBy] && len(out) < MaxFamily {
		seen[rec.ReplacedBy] = true
		if rec, err = r.Get(ctx, rec.ReplacedBy); err == nil {
			out = append(out, rec)
		}
	}
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	return out, nil
}

// Successor is the longest-lived other active token of rec's subject and client, of a key whose
// kid starts with kidPrefix, that lives at least as long as rec, if any: the token rec's client renews to. Expiry has a resolution of a
// second, so a renewal within the second of issuance expires with it.
func (r *Registry) Successor(ctx context.Context, rec Record, kidPrefix string) (Record, bool, error) {
	recs, err := r.BySubject(ctx, rec.Subject)
	if err != nil {
		return Record{}, false, err
	}
	var best Record
	found := false
	for _, o := range recs {
		if o.JTI == rec.JTI || o.ClientID != rec.ClientID || o.Status != Active || o.ExpiresAt.Before(rec.ExpiresAt) || !strings.HasPrefix(o.KID, kidPrefix) {
			continue
		}
		if !found || o.ExpiresAt.After(best.ExpiresAt) {
			best, found = o, true
		}
	}
	return best, found, nil
}
