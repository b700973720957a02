package registry

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Scope is what a not-before rule applies to.
type Scope string

const (
	BySubject Scope = "subject"
	ByKID     Scope = "kid"
	ByIssuer  Scope = "issuer"
)

// Forever is the not-before of a rule that revokes every token of its scope, past and future
// (a kid revoked for good).
var Forever = time.Unix(0, math.MaxInt64)

// seq orders revocation entries by write time; zero-padded so that string order is time order.
func seq(t time.Time, id string) string { return fmt.Sprintf("%020d#%s", t.UnixNano(), id) }

// seqTime is the write time (epoch nanoseconds) a seq starts with.
func seqTime(s string) (int64, error) {
	n, _, _ := strings.Cut(s, "#")
	return strconv.ParseInt(n, 10, 64)
}

// seqFloor is a seq that sorts before every entry written at or after t (epoch nanoseconds).
func seqFloor(t int64) string { return fmt.Sprintf("%020d", max(t, 0)) }

// RevokeJTIs puts each jti on the deny list and marks its registry row revoked. It works in
// chunks from index start and reports progress after each, so a heartbeating activity can resume
// after a crash from the last reported index without repeating work; repeating a chunk is
// harmless. It returns the number of jtis done.
func (r *Registry) RevokeJTIs(ctx context.Context, jtis []string, reason string, start int, progress func(done int)) (int, error) {
	const chunk = 100 // BatchGetItem's limit
	for i := start; i < len(jtis); i += chunk {
		part := jtis[i:min(i+chunk, len(jtis))]
		rows, err := r.batchGet(ctx, part)
		if err != nil {
			return i, err
		}
		now := r.now()
		deny := make([]types.WriteRequest, 0, len(part))
		var marks []types.WriteRequest
		for _, jti := range part {
			rec, known := rows[jti]
			exp := now.Add(rowTTL) // an unknown jti stays denied for a day
			if known {
				exp = rec.ExpiresAt
			}
			deny = append(deny, types.WriteRequest{PutRequest: &types.PutRequest{Item: map[string]types.AttributeValue{
				"id": str("jti#" + jti), "kind": str("jti"), "seq": str(seq(now, jti)), "jti": str(jti),
				"exp": num(exp.Unix()), "reason": str(reason), "expires_at": num(exp.Add(rowTTL).Unix()),
			}}})
			if known && rec.Status != Revoked {
				rec.Status, rec.Reason = Revoked, reason
				marks = append(marks, types.WriteRequest{PutRequest: &types.PutRequest{Item: toItem(rec)}})
				if r.Metrics != nil {
					r.Metrics.Revoked.WithLabelValues(rec.KID, "jti").Inc()
				}
			}
		}
		if err := r.batchWrite(ctx, r.revocationsTable(), deny, nil); err != nil {
			return i, err
		}
		if err := r.batchWrite(ctx, r.tokensTable(), marks, nil); err != nil {
			return i, err
		}
		if progress != nil {
			progress(i + len(part))
		}
	}
	return len(jtis), nil
}

func (r *Registry) batchGet(ctx context.Context, jtis []string) (map[string]Record, error) {
	out := map[string]Record{}
	keys := make([]map[string]types.AttributeValue, 0, len(jtis))
	seen := map[string]bool{}
	for _, j := range jtis {
		if !seen[j] {
			seen[j] = true
			keys = append(keys, jtiKey(j))
		}
	}
	table := r.tokensTable()
	for attempt := 0; len(keys) > 0; attempt++ {
		if attempt > 0 {
			time.Sleep(min(time.Duration(attempt)*50*time.Millisecond, 2*time.Second))
		}
		res, err := r.DB.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: map[string]types.KeysAndAttributes{table: {Keys: keys}}})
		if err != nil {
			return nil, fmt.Errorf("batch get %s: %w", table, err)
		}
		for _, item := range res.Responses[table] {
			rec := fromItem(item)
			out[rec.JTI] = rec
		}
		keys = res.UnprocessedKeys[table].Keys
	}
	return out, nil
}

// RevokeBefore revokes, in one write, every token of the scope's value issued before t: a
// subject's tokens (by subject), a key version's (by kid, usually with Forever), or an issuer's
// (mass revocation). A later rule for the same scope and value only ever moves the time forward.
func (r *Registry) RevokeBefore(ctx context.Context, scope Scope, value string, t time.Time, reason string) error {
	switch scope {
	case BySubject, ByKID, ByIssuer:
	default:
		return fmt.Errorf("revocation scope %q: allowed subject, kid, issuer", scope)
	}
	if value == "" {
		return fmt.Errorf("revocation by %s needs a value", scope)
	}
	id := "rule#" + string(scope) + "#" + value
	_, err := r.DB.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(r.revocationsTable()), Key: map[string]types.AttributeValue{"id": str(id)},
		UpdateExpression:         aws.String("SET kind = :rule, seq = :seq, #scope = :scope, #value = :value, not_before = :t, reason = :why"),
		ConditionExpression:      aws.String("attribute_not_exists(not_before) OR not_before < :t"),
		ExpressionAttributeNames: map[string]string{"#scope": "scope", "#value": "value"},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":rule": str("rule"), ":seq": str(seq(r.now(), id)), ":scope": str(string(scope)), ":value": str(value),
			":t": num(t.UnixNano()), ":why": str(reason),
		},
	})
	var cond *types.ConditionalCheckFailedException
	if errors.As(err, &cond) {
		return nil // an equal or later rule is already in place
	}
	if err != nil {
		return fmt.Errorf("revoke by %s %s: %w", scope, value, err)
	}
	if r.Metrics != nil {
		kid := ""
		if scope == ByKID {
			kid = value
		}
		r.Metrics.Revoked.WithLabelValues(kid, string(scope)).Inc()
	}
	return nil
}

// revocationEntry is one row of the revocations table, as a DenyList reads it.
type revocationEntry struct {
	kind, seq, jti, scope, value string
	exp, notBefore               int64
}

// revocationsSince lists entries of a kind written after the given seq, in write order.
func (r *Registry) revocationsSince(ctx context.Context, kind, after string) ([]revocationEntry, error) {
	var out []revocationEntry
	p := dynamodb.NewQueryPaginator(r.DB, &dynamodb.QueryInput{
		TableName: aws.String(r.revocationsTable()), IndexName: aws.String(DenyListIndex),
		KeyConditionExpression:    aws.String("kind = :k AND seq > :after"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":k": str(kind), ":after": str(after)},
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("read revocations: %w", err)
		}
		for _, item := range page.Items {
			e := revocationEntry{kind: kind}
			for k, dst := range map[string]*string{"seq": &e.seq, "jti": &e.jti, "scope": &e.scope, "value": &e.value} {
				if v, ok := item[k].(*types.AttributeValueMemberS); ok {
					*dst = v.Value
				}
			}
			for k, dst := range map[string]*int64{"exp": &e.exp, "not_before": &e.notBefore} {
				if v, ok := item[k].(*types.AttributeValueMemberN); ok {
					*dst, _ = strconv.ParseInt(v.Value, 10, 64)
				}
			}
			out = append(out, e)
		}
	}
	return out, nil
}
