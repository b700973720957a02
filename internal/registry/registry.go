// Package registry records every token rollgate issues in DynamoDB and keeps the revocation
// state: a deny list of jtis and not-before rules by subject, kid or issuer. Verifiers consult it
// from memory through a DenyList that follows the table incrementally.
package registry

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/rollgate/rollgate/internal/tokens"
)

// Status is a token's lifecycle state in the registry.
type Status string

const (
	Active     Status = "active"
	Superseded Status = "superseded"
	Revoked    Status = "revoked"
	Expired    Status = "expired"
)

// DB is the part of the DynamoDB client the registry uses.
type DB interface {
	CreateTable(context.Context, *dynamodb.CreateTableInput, ...func(*dynamodb.Options)) (*dynamodb.CreateTableOutput, error)
	DescribeTable(context.Context, *dynamodb.DescribeTableInput, ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error)
	PutItem(context.Context, *dynamodb.PutItemInput, ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	GetItem(context.Context, *dynamodb.GetItemInput, ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	UpdateItem(context.Context, *dynamodb.UpdateItemInput, ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	Query(context.Context, *dynamodb.QueryInput, ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
	Scan(context.Context, *dynamodb.ScanInput, ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error)
	BatchWriteItem(context.Context, *dynamodb.BatchWriteItemInput, ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error)
	BatchGetItem(context.Context, *dynamodb.BatchGetItemInput, ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error)
}

// Registry is the token registry over two DynamoDB tables.
//
// Tokens table (partition key jti): subject, client_id, kid, iat, exp (epoch seconds), status,
// reason, replaced_by, and expires_at, the table's TTL attribute (exp plus a day), so rows age
// out. Indexes by-subject (subject, iat) and by-kid (kid, iat).
//
// Revocations table (partition key id): "jti#<jti>" deny entries and "rule#<scope>#<value>"
// not-before rules (scope subject, kid or issuer; not_before in epoch nanoseconds: tokens issued
// before it are revoked). Index by-seq (kind, seq) lists entries in the order they were written,
// which is how a DenyList follows the table incrementally.
type Registry struct {
	DB               DB
	TokensTable      string // default "rollgate-tokens"
	RevocationsTable string // default "rollgate-revocations"
	RevokedUsesTable string // default "rollgate-revoked-uses" (uses.go)
	Now              func() time.Time
	Metrics          *tokens.Metrics // optional lifecycle counters
}

// Record is one token's registry row.
type Record struct {
	JTI        string
	Subject    string
	ClientID   string
	KID        string
	IssuedAt   time.Time
	ExpiresAt  time.Time
	Status     Status
	Reason     string
	ReplacedBy string
}

func (r *Registry) tokensTable() string {
	if r.TokensTable == "" {
		return "rollgate-tokens"
	}
	return r.TokensTable
}

// RevocationsTableName is the revocations table's name, its default when unset: what a verifier
// reading the deny list (the authorizer's ROLLGATE_REVOCATIONS_TABLE) is configured with.
func (r *Registry) RevocationsTableName() string { return r.revocationsTable() }

func (r *Registry) revocationsTable() string {
	if r.RevocationsTable == "" {
		return "rollgate-revocations"
	}
	return r.RevocationsTable
}

func (r *Registry) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// rowTTL keeps a row a day past its token's expiry, then DynamoDB's TTL removes it.
const rowTTL = 24 * time.Hour

// CreateTables creates both tables if they do not exist and waits until they are active.
func (r *Registry) CreateTables(ctx context.Context) error {
	s := func(name string) types.AttributeDefinition {
		return types.AttributeDefinition{AttributeName: aws.String(name), AttributeType: types.ScalarAttributeTypeS}
	}
	n := func(name string) types.AttributeDefinition {
		return types.AttributeDefinition{AttributeName: aws.String(name), AttributeType: types.ScalarAttributeTypeN}
	}
	key := func(hash, rng string) []types.KeySchemaElement {
		k := []types.KeySchemaElement{{AttributeName: aws.String(hash), KeyType: types.KeyTypeHash}}
		if rng != "" {
			k = append(k, types.KeySchemaElement{AttributeName: aws.String(rng), KeyType: types.KeyTypeRange})
		}
		return k
	}
	index := func(name, hash, rng string) types.GlobalSecondaryIndex {
		return types.GlobalSecondaryIndex{IndexName: aws.String(name), KeySchema: key(hash, rng), Projection: &types.Projection{ProjectionType: types.ProjectionTypeAll}}
	}
	tables := []*dynamodb.CreateTableInput{
		{
			TableName: aws.String(r.tokensTable()), BillingMode: types.BillingModePayPerRequest,
			AttributeDefinitions:   []types.AttributeDefinition{s("jti"), s("subject"), s("kid"), n("iat")},
			KeySchema:              key("jti", ""),
			GlobalSecondaryIndexes: []types.GlobalSecondaryIndex{index("by-subject", "subject", "iat"), index("by-kid", "kid", "iat")},
		},
		{
			TableName: aws.String(r.revocationsTable()), BillingMode: types.BillingModePayPerRequest,
			AttributeDefinitions:   []types.AttributeDefinition{s("id"), s("kind"), s("seq")},
			KeySchema:              key("id", ""),
			GlobalSecondaryIndexes: []types.GlobalSecondaryIndex{index(DenyListIndex, "kind", "seq")},
		},
		{
			TableName: aws.String(r.RevokedUsesTableName()), BillingMode: types.BillingModePayPerRequest,
			AttributeDefinitions: []types.AttributeDefinition{s("hour"), s("jti")},
			KeySchema:            key("hour", "jti"),
		},
	}
	for _, in := range tables {
		if _, err := r.DB.CreateTable(ctx, in); err != nil {
			var inUse *types.ResourceInUseException
			if !errors.As(err, &inUse) {
				return fmt.Errorf("create table %s: %w", *in.TableName, err)
			}
		}
		if err := dynamodb.NewTableExistsWaiter(r.DB).Wait(ctx, &dynamodb.DescribeTableInput{TableName: in.TableName}, 2*time.Minute,
			func(o *dynamodb.TableExistsWaiterOptions) {
				o.MinDelay, o.MaxDelay = 100*time.Millisecond, 2*time.Second
			}); err != nil {
			return fmt.Errorf("wait for table %s: %w", *in.TableName, err)
		}
	}
	return nil
}

// RecordIssued writes an active row for each minted token (never the token itself).
func (r *Registry) RecordIssued(ctx context.Context, minted []tokens.Minted) error {
	writes := make([]types.WriteRequest, len(minted))
	for i, m := range minted {
		writes[i] = types.WriteRequest{PutRequest: &types.PutRequest{Item: toItem(Record{
			JTI: m.JTI, Subject: m.Subject, ClientID: m.ClientID, KID: m.KID, IssuedAt: m.IssuedAt, ExpiresAt: m.ExpiresAt, Status: Active,
		})}}
	}
	if err := r.batchWrite(ctx, r.tokensTable(), writes, nil); err != nil {
		return err
	}
	if r.Metrics != nil {
		for _, m := range minted {
			r.Metrics.Issued.WithLabelValues(m.KID).Inc()
		}
	}
	return nil
}

// Get reads one token's row.
func (r *Registry) Get(ctx context.Context, jti string) (Record, error) {
	out, err := r.DB.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(r.tokensTable()), Key: jtiKey(jti), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return Record{}, fmt.Errorf("get token %s: %w", jti, err)
	}
	if out.Item == nil {
		return Record{}, fmt.Errorf("token %s: %w", jti, ErrNotFound)
	}
	return fromItem(out.Item), nil
}

// ErrNotFound marks a jti the registry does not know.
var ErrNotFound = errors.New("not found")

// Supersede records that a reissue replaced a token. An active token becomes superseded. A token
// already out of service keeps its status, which says more, and only records its replacement: a
// rollback revokes a release's tokens before it reissues the previous key's, so the token being
// replaced is often revoked by then. Recording the same replacement twice is a no-op; a token
// already replaced by another is an error.
func (r *Registry) Supersede(ctx context.Context, jti, replacedBy, reason string) error {
	const attempts = 3 // the row changed between the read and the conditional write: read again
	for range attempts - 1 {
		if err := r.supersede(ctx, jti, replacedBy, reason); !isConditionFailed(err) {
			return err
		}
	}
	return r.supersede(ctx, jti, replacedBy, reason)
}

func (r *Registry) supersede(ctx context.Context, jti, replacedBy, reason string) error {
	rec, err := r.Get(ctx, jti)
	if err != nil {
		return err
	}
	switch {
	case rec.ReplacedBy == replacedBy:
		return nil
	case rec.ReplacedBy != "":
		return fmt.Errorf("supersede %s by %s: already replaced by %s", jti, replacedBy, rec.ReplacedBy)
	}
	in := &dynamodb.UpdateItemInput{
		TableName: aws.String(r.tokensTable()), Key: jtiKey(jti),
		UpdateExpression:         aws.String("SET replaced_by = :by"),
		ConditionExpression:      aws.String("#s = :seen AND attribute_not_exists(replaced_by)"),
		ExpressionAttributeNames: map[string]string{"#s": "status"},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":by": str(replacedBy), ":seen": str(string(rec.Status)),
		},
	}
	if rec.Status == Active {
		in.UpdateExpression = aws.String("SET #s = :sup, replaced_by = :by, reason = :why")
		in.ExpressionAttributeValues[":sup"], in.ExpressionAttributeValues[":why"] = str(string(Superseded)), str(reason)
	}
	if _, err := r.DB.UpdateItem(ctx, in); err != nil {
		return fmt.Errorf("supersede %s (%s): %w", jti, rec.Status, err)
	}
	if r.Metrics != nil && rec.Status == Active {
		r.Metrics.Superseded.WithLabelValues(rec.KID).Inc()
	}
	return nil
}

func isConditionFailed(err error) bool {
	var cond *types.ConditionalCheckFailedException
	return errors.As(err, &cond)
}

// BySubject lists a subject's tokens, oldest first.
func (r *Registry) BySubject(ctx context.Context, subject string) ([]Record, error) {
	return r.queryIndex(ctx, "by-subject", "subject", subject)
}

// ByKID lists the tokens one key version signed, oldest first.
func (r *Registry) ByKID(ctx context.Context, kid string) ([]Record, error) {
	return r.queryIndex(ctx, "by-kid", "kid", kid)
}

func (r *Registry) queryIndex(ctx context.Context, index, attr, value string) ([]Record, error) {
	var out []Record
	p := dynamodb.NewQueryPaginator(r.DB, &dynamodb.QueryInput{
		TableName: aws.String(r.tokensTable()), IndexName: aws.String(index),
		KeyConditionExpression:    aws.String("#k = :v"),
		ExpressionAttributeNames:  map[string]string{"#k": attr},
		ExpressionAttributeValues: map[string]types.AttributeValue{":v": str(value)},
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("query %s %s: %w", index, value, err)
		}
		for _, item := range page.Items {
			out = append(out, fromItem(item))
		}
	}
	return out, nil
}

func toItem(rec Record) map[string]types.AttributeValue {
	item := map[string]types.AttributeValue{
		"jti": str(rec.JTI), "subject": str(rec.Subject), "kid": str(rec.KID),
		"iat": num(rec.IssuedAt.Unix()), "exp": num(rec.ExpiresAt.Unix()),
		"status": str(string(rec.Status)), "expires_at": num(rec.ExpiresAt.Add(rowTTL).Unix()),
	}
	for k, v := range map[string]string{"client_id": rec.ClientID, "reason": rec.Reason, "replaced_by": rec.ReplacedBy} {
		if v != "" {
			item[k] = str(v)
		}
	}
	return item
}

func fromItem(item map[string]types.AttributeValue) Record {
	s := func(k string) string {
		if v, ok := item[k].(*types.AttributeValueMemberS); ok {
			return v.Value
		}
		return ""
	}
	n := func(k string) int64 {
		if v, ok := item[k].(*types.AttributeValueMemberN); ok {
			i, _ := strconv.ParseInt(v.Value, 10, 64)
			return i
		}
		return 0
	}
	return Record{
		JTI: s("jti"), Subject: s("subject"), ClientID: s("client_id"), KID: s("kid"),
		IssuedAt: time.Unix(n("iat"), 0), ExpiresAt: time.Unix(n("exp"), 0),
		Status: Status(s("status")), Reason: s("reason"), ReplacedBy: s("replaced_by"),
	}
}

func jtiKey(jti string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{"jti": str(jti)}
}

func str(s string) types.AttributeValue { return &types.AttributeValueMemberS{Value: s} }
func num(n int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
}

// batchWrite writes in chunks of 25 (BatchWriteItem's limit), resubmitting unprocessed items
// with backoff, and reports how many items are done after each chunk.
func (r *Registry) batchWrite(ctx context.Context, table string, writes []types.WriteRequest, progress func(done int)) error {
	for start := 0; start < len(writes); start += 25 {
		pending := writes[start:min(start+25, len(writes))]
		for attempt := 0; len(pending) > 0; attempt++ {
			if attempt > 0 {
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(min(time.Duration(attempt)*50*time.Millisecond, 2*time.Second)):
				}
			}
			out, err := r.DB.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: map[string][]types.WriteRequest{table: pending}})
			if err != nil {
				return fmt.Errorf("batch write %s: %w", table, err)
			}
			pending = out.UnprocessedItems[table]
		}
		if progress != nil {
			progress(min(start+25, len(writes)))
		}
	}
	return nil
}

// Sweep marks active tokens past their expiry as expired and counts them, so the lifecycle
// metrics show expiry per kid. It scans the tokens table; run it periodically, not per request.
func (r *Registry) Sweep(ctx context.Context) (int, error) {
	now := r.now().Unix()
	p := dynamodb.NewScanPaginator(r.DB, &dynamodb.ScanInput{
		TableName:                 aws.String(r.tokensTable()),
		FilterExpression:          aws.String("#s = :active AND #e < :now"),
		ExpressionAttributeNames:  map[string]string{"#s": "status", "#e": "exp"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":active": str(string(Active)), ":now": num(now)},
	})
	swept := 0
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return swept, fmt.Errorf("sweep %s: %w", r.tokensTable(), err)
		}
		for _, item := range page.Items {
			rec := fromItem(item)
			_, err := r.DB.UpdateItem(ctx, &dynamodb.UpdateItemInput{
				TableName: aws.String(r.tokensTable()), Key: jtiKey(rec.JTI),
				UpdateExpression:          aws.String("SET #s = :expired"),
				ConditionExpression:       aws.String("#s = :active"),
				ExpressionAttributeNames:  map[string]string{"#s": "status"},
				ExpressionAttributeValues: map[string]types.AttributeValue{":expired": str(string(Expired)), ":active": str(string(Active))},
			})
			var cond *types.ConditionalCheckFailedException
			if errors.As(err, &cond) {
				continue // revoked or superseded meanwhile
			}
			if err != nil {
				return swept, fmt.Errorf("sweep %s: %w", rec.JTI, err)
			}
			swept++
			if r.Metrics != nil {
				r.Metrics.Expired.WithLabelValues(rec.KID).Inc()
			}
		}
	}
	return swept, nil
}

// KIDSummary counts one key version's tokens by lifecycle state. Active tokens past their expiry
// count as expired even before a sweep marks them.
type KIDSummary struct {
	KID        string
	Issued     int
	Active     int
	Superseded int
	Revoked    int
	Expired    int
}

// Summary counts the registry's tokens per kid, ordered by kid. It scans the tokens table: an
// operator's report, not a hot path.
func (r *Registry) Summary(ctx context.Context) ([]KIDSummary, error) {
	now := r.now()
	by := map[string]*KIDSummary{}
	p := dynamodb.NewScanPaginator(r.DB, &dynamodb.ScanInput{TableName: aws.String(r.tokensTable())})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("scan %s: %w", r.tokensTable(), err)
		}
		for _, item := range page.Items {
			rec := fromItem(item)
			s := by[rec.KID]
			if s == nil {
				s = &KIDSummary{KID: rec.KID}
				by[rec.KID] = s
			}
			s.Issued++
			switch {
			case rec.Status == Revoked:
				s.Revoked++
			case rec.Status == Superseded:
				s.Superseded++
			case rec.Status == Expired || rec.ExpiresAt.Before(now):
				s.Expired++
			default:
				s.Active++
			}
		}
	}
	out := make([]KIDSummary, 0, len(by))
	for _, s := range by {
		out = append(out, *s)
	}
	slices.SortFunc(out, func(a, b KIDSummary) int { return strings.Compare(a.KID, b.KID) })
	return out, nil
}
