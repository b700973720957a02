package testsuite

import (
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
)

// cloudWatchListDelay is how late the bed's ListMetrics lists a new metric: the most AWS
// documents ("allow up to 15 minutes for the metric to appear").
const cloudWatchListDelay = 15 * time.Minute

// CloudWatchClient is a CloudWatch client pointed at the bed's CloudWatch, which answers
// GetMetricData and ListMetrics for what the gateway's data plane and the authorizer's EMF
// lines published.
func (b *Bed) CloudWatchClient(cfg aws.Config) *cloudwatch.Client {
	return cloudwatch.NewFromConfig(cfg, func(o *cloudwatch.Options) { o.BaseEndpoint = aws.String(b.CloudWatch.URL) })
}
