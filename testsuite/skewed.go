package testsuite

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"

	"github.com/rollgate/rollgate/internal/analysis"
	"github.com/rollgate/rollgate/internal/tokens"
)

// SkewedClient presents, at a steady rate, tokens of the bed's issuer minted by a clock that runs
// ahead: a client of an issuer with a skewed clock, which a verifier with less leeway than the
// skew refuses (not_yet_valid). Its tokens are minted again every few seconds, so they stay ahead.
type SkewedClient struct {
	sent, refused atomic.Int64
	stop          context.CancelFunc
	done          sync.WaitGroup
	err           atomic.Value // error: the first minting failure
}

// StartSkewedClient presents such tokens, ahead of real time by ahead, rate times a second.
func (r *ReleaseBed) StartSkewedClient(ctx context.Context, ahead time.Duration, rate float64) (*SkewedClient, error) {
	if rate <= 0 || rate > 1000 {
		return nil, fmt.Errorf("skewed client rate %g: allowed more than 0, at most 1000", rate)
	}
	ref := r.IssuerRef()
	labels, err := r.Activity.Keys.ReadLabels(ctx, ref.Key.Name)
	if err != nil {
		return nil, err
	}
	m := &tokens.Minter{Transit: r.Activity.Tokens.Transit, Key: ref.Key.Name, Type: ref.Key.Type, Alg: ref.Algorithm, Issuer: ref.URL,
		Now: func() time.Time { return time.Now().Add(ahead) }}
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	c := &SkewedClient{stop: cancel}
	url := r.Bed.Gateway.InvokeURL(r.APIID, r.Stage) + "/orders"
	client := &http.Client{Timeout: 10 * time.Second}
	c.done.Add(1)
	go func() {
		defer c.done.Done()
		tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
		defer tick.Stop()
		var token string
		var minted time.Time
		for {
			if time.Since(minted) > 3*time.Second {
				out, err := m.Mint(ctx, labels.Current, tokens.MintRequest{Subject: "skewed", ClientID: "skewed", Audience: ref.Audiences, TTL: time.Hour})
				if err != nil {
					if ctx.Err() == nil {
						c.err.CompareAndSwap(nil, err)
					}
					return
				}
				token, minted = out[0].Token, time.Now()
			}
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
			req.Header.Set("Authorization", "Bearer "+token)
			if resp, err := client.Do(req); err == nil {
				resp.Body.Close()
				c.sent.Add(1)
				if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
					c.refused.Add(1)
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return c, nil
}

// Counts are the requests sent and those the gateway refused (401, 403).
func (c *SkewedClient) Counts() (sent, refused int64) { return c.sent.Load(), c.refused.Load() }

// Stop ends the traffic and returns the first minting failure, if any.
func (c *SkewedClient) Stop() error {
	c.stop()
	c.done.Wait()
	if err, ok := c.err.Load().(error); ok {
		return err
	}
	return nil
}

// CloudWatchProvider is the analysis provider over the bed's CloudWatch and API Gateway, as a
// worker builds it from its AWS configuration.
func (b *Bed) CloudWatchProvider(ctx context.Context) (*analysis.CloudWatch, error) {
	cfg, err := b.AWSConfig(ctx)
	if err != nil {
		return nil, err
	}
	return analysis.NewCloudWatch(analysis.CloudWatchConfig{
		Metrics: cloudwatch.NewFromConfig(cfg, func(o *cloudwatch.Options) { o.BaseEndpoint = aws.String(b.CloudWatch.URL) }),
		APIs:    b.APIGateway(cfg),
	})
}
