package testsuite_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	vault "github.com/hashicorp/vault/api"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/rollgate/rollgate/testsuite"
)

// shared is the bed of this package's tests, started by the first test that needs it (none under
// -short, where every test here skips and says so).
var shared testsuite.Shared

func TestMain(m *testing.M) { os.Exit(shared.Run(m)) }

func greet(ctx workflow.Context, name string) (string, error) {
	return "hello " + name, nil
}

func TestTemporal_WorkflowRunsToCompletionOnTheDevServer(t *testing.T) {
	c, err := shared.Bed(t).Temporal.Client()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	w := worker.New(c, "bed-smoke", worker.Options{})
	w.RegisterWorkflow(greet)
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer w.Stop()

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "bed-smoke-" + t.Name(), TaskQueue: "bed-smoke"}, greet, "rollgate")
	if err != nil {
		t.Fatal(err)
	}
	var got string
	if err := run.Get(ctx, &got); err != nil || got != "hello rollgate" {
		t.Fatalf("workflow result %q, %v", got, err)
	}

	attrs, err := c.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: shared.Bed(t).Temporal.Namespace})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"RollgateService", "RollgateStage", "RollgatePhase"} {
		if _, ok := attrs.CustomAttributes[name]; !ok {
			t.Errorf("search attribute %s is not registered: %v", name, attrs.CustomAttributes)
		}
	}
}

func TestVault_TransitSignsWithAnExplicitVersionAndPublishesPublicKeys(t *testing.T) {
	c, err := shared.Bed(t).Vault.Client()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := c.Logical().WriteWithContext(ctx, "transit/keys/issuer-a", map[string]any{"type": "rsa-2048"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Logical().WriteWithContext(ctx, "transit/keys/issuer-a/rotate", nil); err != nil {
		t.Fatal(err)
	}
	key, err := c.Logical().ReadWithContext(ctx, "transit/keys/issuer-a")
	if err != nil {
		t.Fatal(err)
	}
	if v := fmt.Sprint(key.Data["latest_version"]); v != "2" {
		t.Fatalf("latest_version %s after one rotation, want 2", v)
	}
	pubs := map[string]*rsa.PublicKey{}
	for version, k := range key.Data["keys"].(map[string]any) {
		block, _ := pem.Decode([]byte(k.(map[string]any)["public_key"].(string)))
		pub, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		pubs[version] = pub.(*rsa.PublicKey)
	}
	msg := []byte("header.payload")
	digest := sha256.Sum256(msg)
	for _, version := range []int{1, 2} {
		sig, err := c.Logical().WriteWithContext(ctx, "transit/sign/issuer-a/sha2-256", map[string]any{
			"input": base64.StdEncoding.EncodeToString(msg), "key_version": version, "signature_algorithm": "pkcs1v15",
		})
		if err != nil {
			t.Fatal(err)
		}
		s := sig.Data["signature"].(string)
		prefix := fmt.Sprintf("vault:v%d:", version)
		if !strings.HasPrefix(s, prefix) {
			t.Fatalf("signature %q does not name version %d", s, version)
		}
		raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(s, prefix))
		if err != nil {
			t.Fatal(err)
		}
		if err := rsa.VerifyPKCS1v15(pubs[fmt.Sprint(version)], crypto.SHA256, digest[:], raw); err != nil {
			t.Fatalf("version %d signature does not verify with its public key: %v", version, err)
		}
		other := pubs[fmt.Sprint(3-version)]
		if rsa.VerifyPKCS1v15(other, crypto.SHA256, digest[:], raw) == nil {
			t.Fatalf("version %d signature verifies with the other version's key", version)
		}
	}
}

func TestVault_KVCheckAndSetRefusesAStaleVersion(t *testing.T) {
	c, err := shared.Bed(t).Vault.Client()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	kv := c.KVv2("secret")
	labels := func(current string) map[string]any { return map[string]any{"current": current} }
	if _, err := kv.Put(ctx, "rollgate/labels/issuer-a", labels("v1"), vault.WithCheckAndSet(0)); err != nil {
		t.Fatalf("first write with cas=0: %v", err)
	}
	if _, err := kv.Put(ctx, "rollgate/labels/issuer-a", labels("v9"), vault.WithCheckAndSet(0)); err == nil {
		t.Fatal("a second cas=0 write succeeded")
	}
	if _, err := kv.Put(ctx, "rollgate/labels/issuer-a", labels("v2"), vault.WithCheckAndSet(1)); err != nil {
		t.Fatalf("write with cas=1: %v", err)
	}
	_, err = kv.Put(ctx, "rollgate/labels/issuer-a", labels("v9"), vault.WithCheckAndSet(1))
	if err == nil || !strings.Contains(err.Error(), "check-and-set") {
		t.Fatalf("stale cas=1 write: %v, want a check-and-set error", err)
	}
	got, err := kv.Get(ctx, "rollgate/labels/issuer-a")
	if err != nil || got.Data["current"] != "v2" || got.VersionMetadata.Version != 2 {
		t.Fatalf("labels after a refused write: %+v, %v", got, err)
	}
}

// dynalite exits when a client aborts a request; the bed's shield in front of it must keep it up
// through clients that give up mid-request (a cancelled refresh, a timed-out authorizer).
func TestDynamoDB_ClientsThatGiveUpMidRequestDoNotStopIt(t *testing.T) {
	bed := testsuite.StartForTest(t, testsuite.Options{}) // its own: a failure here kills dynalite
	ctx := context.Background()
	cfg, err := bed.AWSConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	db := bed.DynamoDBClient(cfg)
	aborted := 0
	for i := range 200 {
		rctx, cancel := context.WithTimeout(ctx, time.Duration(200+i*20)*time.Microsecond)
		if _, err := db.ListTables(rctx, &dynamodb.ListTablesInput{}); err != nil {
			aborted++
		}
		cancel()
	}
	if aborted == 0 {
		t.Fatal("no request was given up: the test proves nothing")
	}
	// dynalite would be gone by now; wait for an answer with a deadline far above a busy machine's.
	var last error
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if _, last = db.ListTables(ctx, &dynamodb.ListTablesInput{}); last == nil {
			return
		}
	}
	t.Fatalf("after %d requests given up, DynamoDB no longer answers: %v", aborted, last)
}

func TestDynamoDB_TableRoundTripsThroughTheSDK(t *testing.T) {
	ctx := context.Background()
	cfg, err := shared.Bed(t).AWSConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	db := shared.Bed(t).DynamoDBClient(cfg)
	table := aws.String("tokens-" + strconv.FormatInt(time.Now().UnixNano(), 36))
	_, err = db.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:   table,
		BillingMode: ddbtypes.BillingModePayPerRequest,
		AttributeDefinitions: []ddbtypes.AttributeDefinition{
			{AttributeName: aws.String("jti"), AttributeType: ddbtypes.ScalarAttributeTypeS},
			{AttributeName: aws.String("subject"), AttributeType: ddbtypes.ScalarAttributeTypeS},
		},
		KeySchema: []ddbtypes.KeySchemaElement{{AttributeName: aws.String("jti"), KeyType: ddbtypes.KeyTypeHash}},
		GlobalSecondaryIndexes: []ddbtypes.GlobalSecondaryIndex{{
			IndexName:  aws.String("by-subject"),
			KeySchema:  []ddbtypes.KeySchemaElement{{AttributeName: aws.String("subject"), KeyType: ddbtypes.KeyTypeHash}},
			Projection: &ddbtypes.Projection{ProjectionType: ddbtypes.ProjectionTypeAll},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := dynamodb.NewTableExistsWaiter(db).Wait(ctx, &dynamodb.DescribeTableInput{TableName: table}, 30*time.Second,
		func(o *dynamodb.TableExistsWaiterOptions) {
			o.MinDelay = 100 * time.Millisecond
			o.MaxDelay = time.Second
		}); err != nil {
		t.Fatal(err)
	}
	item := func(jti, subject string) map[string]ddbtypes.AttributeValue {
		return map[string]ddbtypes.AttributeValue{"jti": &ddbtypes.AttributeValueMemberS{Value: jti}, "subject": &ddbtypes.AttributeValueMemberS{Value: subject}}
	}
	if _, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: table, Item: item("j-0", "alice")}); err != nil {
		t.Fatal(err)
	}
	got, err := db.GetItem(ctx, &dynamodb.GetItemInput{TableName: table, Key: map[string]ddbtypes.AttributeValue{"jti": &ddbtypes.AttributeValueMemberS{Value: "j-0"}}})
	if err != nil || got.Item["subject"].(*ddbtypes.AttributeValueMemberS).Value != "alice" {
		t.Fatalf("GetItem = %+v, %v", got, err)
	}
	var writes []ddbtypes.WriteRequest
	for i := 1; i <= 25; i++ { // BatchWriteItem's maximum
		writes = append(writes, ddbtypes.WriteRequest{PutRequest: &ddbtypes.PutRequest{Item: item(fmt.Sprintf("j-%d", i), "bob")}})
	}
	out, err := db.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: map[string][]ddbtypes.WriteRequest{*table: writes}})
	if err != nil || len(out.UnprocessedItems) != 0 {
		t.Fatalf("BatchWriteItem = %+v, %v", out, err)
	}
	q, err := db.Query(ctx, &dynamodb.QueryInput{
		TableName: table, IndexName: aws.String("by-subject"),
		KeyConditionExpression:    aws.String("subject = :s"),
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":s": &ddbtypes.AttributeValueMemberS{Value: "bob"}},
	})
	if err != nil || q.Count != 25 {
		t.Fatalf("Query by subject: count %d, %v", q.Count, err)
	}
}

func TestS3_ObjectKeepsCacheControlAndIsReadableOverPlainHTTP(t *testing.T) {
	ctx := context.Background()
	cfg, err := shared.Bed(t).AWSConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s := shared.Bed(t).S3Client(cfg)
	if _, err := s.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("issuer")}); err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"keys":[]}`)
	if _, err := s.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String("issuer"), Key: aws.String(".well-known/jwks.json"), Body: bytes.NewReader(body),
		ContentType: aws.String("application/json"), CacheControl: aws.String("public, max-age=300"),
	}); err != nil {
		t.Fatal(err)
	}
	head, err := s.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("issuer"), Key: aws.String(".well-known/jwks.json")})
	if err != nil || aws.ToString(head.CacheControl) != "public, max-age=300" {
		t.Fatalf("HeadObject Cache-Control %q, %v", aws.ToString(head.CacheControl), err)
	}
	resp, err := http.Get(shared.Bed(t).S3.URL + "/issuer/.well-known/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !bytes.Equal(got, body) || resp.Header.Get("Cache-Control") != "public, max-age=300" || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("plain GET: %d %q, Cache-Control %q, Content-Type %q", resp.StatusCode, got, resp.Header.Get("Cache-Control"), resp.Header.Get("Content-Type"))
	}
}

// A second bed in the same run must be warm: nothing rebuilt, nothing downloaded.
func TestBed_SecondStartIsWarm(t *testing.T) {
	var progress bytes.Buffer
	start := time.Now()
	second := testsuite.StartForTest(t, testsuite.Options{Progress: &progress})
	elapsed := time.Since(start)
	if progress.Len() != 0 {
		t.Fatalf("a second start built or installed something:\n%s", progress.String())
	}
	if second.Vault.Addr == shared.Bed(t).Vault.Addr || second.Temporal.HostPort == shared.Bed(t).Temporal.HostPort {
		t.Fatal("the second bed reused the first bed's ports")
	}
	t.Logf("warm start of the whole bed: %s", elapsed.Round(time.Millisecond))
}

// The smoke scenario drives every server together: Vault-signed tokens checked by the gateway
// against a JWKS on S3, a REST canary split, and a workflow.
func TestSmoke_EveryServerWorksTogether(t *testing.T) {
	var out bytes.Buffer
	rep, err := testsuite.RunSmoke(context.Background(), shared.Bed(t), &out)
	t.Logf("timeline:\n%s", out.String())
	if err != nil {
		t.Fatal(err)
	}
	if rep.CanaryShare < 6 || rep.CanaryShare > 14 { // 10% of 1,000: ±4 points is 4.2 sigma
		t.Fatalf("canary share %.1f%%, want about 10%%", rep.CanaryShare)
	}
	if rep.WorkflowResult != "hello rollgate" {
		t.Fatalf("workflow result %q", rep.WorkflowResult)
	}
}

// BenchmarkBed_WarmStart measures a full start and stop of the bed on a machine that has built
// the servers once, next to the 10-second target.
func BenchmarkBed_WarmStart(b *testing.B) {
	for b.Loop() {
		second, err := testsuite.Start(context.Background(), testsuite.Options{Progress: io.Discard})
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		second.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "start-ms")
	b.ReportMetric(10000, "target-ms")
}

// The bed's exports serve every AWS client: the SDKs read AWS_REGION, the AWS CLI v1 (botocore)
// only AWS_DEFAULT_REGION; an SDK left with the latter must find the bed's region.
func TestBed_EnvNamesTheRegionForClientsThatReadOnlyAWSDefaultRegion(t *testing.T) {
	for _, kv := range shared.Bed(t).Env() {
		t.Setenv(kv[0], kv[1])
	}
	t.Setenv("AWS_REGION", "")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_CONFIG_FILE", t.TempDir()+"/none") // no region from this machine's AWS config
	cfg, err := config.LoadDefaultConfig(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Region != testsuite.Region {
		t.Fatalf("region %q from the bed's exports without AWS_REGION, want %q", cfg.Region, testsuite.Region)
	}
}
