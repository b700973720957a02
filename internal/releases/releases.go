// Package releases keeps each stage's release history in DynamoDB: the last releases promoted on
// a stage, each with the snapshot taken before it, so a finished release can be rolled back.
package releases

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Keep is how many releases per stage the history holds.
const Keep = 10

// DB is the part of the DynamoDB client the history uses.
type DB interface {
	CreateTable(context.Context, *dynamodb.CreateTableInput, ...func(*dynamodb.Options)) (*dynamodb.CreateTableOutput, error)
	DescribeTable(context.Context, *dynamodb.DescribeTableInput, ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error)
	PutItem(context.Context, *dynamodb.PutItemInput, ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	Query(context.Context, *dynamodb.QueryInput, ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
	DeleteItem(context.Context, *dynamodb.DeleteItemInput, ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
	Scan(context.Context, *dynamodb.ScanInput, ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error)
}

// History is the releases table: partition key stage ("<apiId>/<stage>"), sort key id
// ("<promoted at, RFC 3339>#<run id>"), and the release as JSON.
type History struct {
	DB    DB
	Table string // default "rollgate-releases"
}

// Entry is one stored release: an opaque JSON record (the workflows define its shape).
type Entry struct {
	Stage  string
	ID     string
	At     time.Time
	Record json.RawMessage
}

// ErrNotFound is a stage or release with no history.
var ErrNotFound = errors.New("not found")

func (h *History) table() string {
	if h.Table == "" {
		return "rollgate-releases"
	}
	return h.Table
}

// CreateTable creates the table if it does not exist and waits until it is active.
func (h *History) CreateTable(ctx context.Context) error {
	_, err := h.DB.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName: aws.String(h.table()), BillingMode: types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{
			{AttributeName: aws.String("stage"), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String("id"), AttributeType: types.ScalarAttributeTypeS},
		},
		KeySchema: []types.KeySchemaElement{
			{AttributeName: aws.String("stage"), KeyType: types.KeyTypeHash},
			{AttributeName: aws.String("id"), KeyType: types.KeyTypeRange},
		},
	})
	var inUse *types.ResourceInUseException
	if err != nil && !errors.As(err, &inUse) {
		return fmt.Errorf("create table %s: %w", h.table(), err)
	}
	return dynamodb.NewTableExistsWaiter(h.DB).Wait(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(h.table())}, 2*time.Minute,
		func(o *dynamodb.TableExistsWaiterOptions) {
			o.MinDelay, o.MaxDelay = 100*time.Millisecond, 2*time.Second
		})
}

// Put records a release (writing the same id twice is harmless) and drops the oldest beyond Keep.
func (h *History) Put(ctx context.Context, e Entry) error {
	if _, err := h.DB.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(h.table()), Item: map[string]types.AttributeValue{
		"stage":  &types.AttributeValueMemberS{Value: e.Stage},
		"id":     &types.AttributeValueMemberS{Value: e.ID},
		"record": &types.AttributeValueMemberS{Value: string(e.Record)},
	}}); err != nil {
		return fmt.Errorf("record release %s of %s: %w", e.ID, e.Stage, err)
	}
	all, err := h.List(ctx, e.Stage, 0)
	if err != nil {
		return err
	}
	for _, old := range all[min(len(all), Keep):] {
		if _, err := h.DB.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(h.table()), Key: map[string]types.AttributeValue{
			"stage": &types.AttributeValueMemberS{Value: old.Stage}, "id": &types.AttributeValueMemberS{Value: old.ID},
		}}); err != nil {
			return fmt.Errorf("trim release history of %s: %w", e.Stage, err)
		}
	}
	return nil
}

// List returns a stage's releases, newest first; limit 0 means all.
func (h *History) List(ctx context.Context, stage string, limit int) ([]Entry, error) {
	in := &dynamodb.QueryInput{
		TableName: aws.String(h.table()), KeyConditionExpression: aws.String("stage = :s"), ScanIndexForward: aws.Bool(false),
		ExpressionAttributeValues: map[string]types.AttributeValue{":s": &types.AttributeValueMemberS{Value: stage}},
	}
	var out []Entry
	p := dynamodb.NewQueryPaginator(h.DB, in)
	for p.HasMorePages() && (limit == 0 || len(out) < limit) {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("read release history of %s: %w", stage, err)
		}
		for _, item := range page.Items {
			e := entryOf(item)
			e.Stage = stage
			out = append(out, e)
		}
	}
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// MaxStages bounds Latest: the history of a few hundred stages is read in seconds, and a
// caller that needs more would need an index, not a longer scan.
const MaxStages = 1000

// ErrTooManyStages is a history of more than MaxStages stages.
var ErrTooManyStages = errors.New("too many stages")

// Latest returns the newest release of every stage in the history, ordered by stage. It scans
// the table (at most Keep releases per stage), so it is for the rare question "which stages"
// (a revocation that must reach every stage an issuer's tokens pass), not for a release's path.
func (h *History) Latest(ctx context.Context) ([]Entry, error) {
	in := &dynamodb.ScanInput{TableName: aws.String(h.table()), ConsistentRead: aws.Bool(true)}
	newest := map[string]Entry{}
	p := dynamodb.NewScanPaginator(h.DB, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("scan release history: %w", err)
		}
		for _, item := range page.Items {
			e := entryOf(item)
			if cur, ok := newest[e.Stage]; !ok || e.ID > cur.ID {
				newest[e.Stage] = e
			}
		}
		if len(newest) > MaxStages {
			return nil, fmt.Errorf("release history of more than %d stages: %w", MaxStages, ErrTooManyStages)
		}
	}
	out := make([]Entry, 0, len(newest))
	for _, e := range newest {
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b Entry) int { return strings.Compare(a.Stage, b.Stage) })
	return out, nil
}

func entryOf(item map[string]types.AttributeValue) Entry {
	var e Entry
	if v, ok := item["stage"].(*types.AttributeValueMemberS); ok {
		e.Stage = v.Value
	}
	if v, ok := item["id"].(*types.AttributeValueMemberS); ok {
		e.ID = v.Value
	}
	if v, ok := item["record"].(*types.AttributeValueMemberS); ok {
		e.Record = json.RawMessage(v.Value)
	}
	return e
}

// ID orders releases by promotion time.
func ID(at time.Time, runID string) string {
	return at.UTC().Format("2006-01-02T15:04:05.000000000Z") + "#" + runID
}
