package testsuite

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rollgate/rollgate/internal/registry"
	"github.com/rollgate/rollgate/testsuite/gatewayemu"
)

// TrafficOptions say where a traffic generator sends requests, as whom and how fast.
type TrafficOptions struct {
	// URL is the stage's URL with a path: https://<api>.execute-api…/prod/orders.
	URL string
	// Clients present the tokens rollgate delivered to them in Vault KV (Delivery), as a real
	// client does; a client re-reads its token when the gateway rejects it (a reissue).
	Clients  []string
	Delivery *registry.Delivery
	// Rate is requests per second in all (default 20); Workers send them in parallel (default 4).
	Rate    float64
	Workers int
}

// Traffic drives a stage with its clients' real tokens at a steady rate and counts the answers,
// by side (the emulator's canary header) and status class.
type Traffic struct {
	opts   TrafficOptions
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	counts TrafficCounts
	tokens map[string]string
	reread map[string]time.Time
}

// TrafficCounts are the answers so far.
type TrafficCounts struct {
	Requests int
	// ByClass counts answers by status class ("2xx", "4xx", "5xx") and "error" (no answer).
	ByClass map[string]int
	// Canary and CanaryErrors count the answers the canary served, and its 5xx.
	Canary, CanaryErrors int
}

// StartTraffic starts sending requests until Stop.
func StartTraffic(ctx context.Context, opts TrafficOptions) (*Traffic, error) {
	if opts.Rate <= 0 {
		opts.Rate = 20
	}
	if opts.Workers <= 0 {
		opts.Workers = 4
	}
	if len(opts.Clients) == 0 || opts.Delivery == nil || opts.URL == "" {
		return nil, fmt.Errorf("traffic: a URL, clients and their delivery are required")
	}
	t := &Traffic{opts: opts, counts: TrafficCounts{ByClass: map[string]int{}}, tokens: map[string]string{}, reread: map[string]time.Time{}}
	for _, c := range opts.Clients {
		tok, err := opts.Delivery.Token(ctx, c)
		if err != nil {
			return nil, fmt.Errorf("traffic: client %s's delivered token: %w", c, err)
		}
		t.tokens[c] = tok
	}
	ctx, t.cancel = context.WithCancel(context.WithoutCancel(ctx))
	ticks := make(chan string, opts.Workers)
	t.wg.Add(1 + opts.Workers)
	go t.pace(ctx, ticks)
	client := &http.Client{Timeout: 10 * time.Second}
	for range opts.Workers {
		go func() {
			defer t.wg.Done()
			for c := range ticks {
				t.send(ctx, client, c)
			}
		}()
	}
	return t, nil
}

// pace hands out one request per 1/Rate, round-robin over the clients; a slow stage makes it
// skip requests rather than burst later.
func (t *Traffic) pace(ctx context.Context, ticks chan<- string) {
	defer t.wg.Done()
	defer close(ticks)
	every := time.Duration(math.Max(float64(time.Second)/t.opts.Rate, float64(time.Millisecond)))
	tick := time.NewTicker(every)
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		select {
		case ticks <- t.opts.Clients[i%len(t.opts.Clients)]:
		default:
		}
	}
}

func (t *Traffic) send(ctx context.Context, hc *http.Client, clientName string) {
	t.mu.Lock()
	tok := t.tokens[clientName]
	t.mu.Unlock()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.opts.URL, nil)
	if err != nil {
		return
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := hc.Do(req)
	if ctx.Err() != nil {
		return // stopped: not an answer
	}
	class, canary := "error", false
	if err == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		class = fmt.Sprintf("%dxx", resp.StatusCode/100)
		canary = resp.Header.Get(gatewayemu.CanaryHeader) == "true"
		if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
			t.refresh(ctx, clientName)
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.counts.Requests++
	t.counts.ByClass[class]++
	if canary {
		t.counts.Canary++
		if class == "5xx" {
			t.counts.CanaryErrors++
		}
	}
}

// refresh re-reads a rejected client's delivered token, at most twice a second.
func (t *Traffic) refresh(ctx context.Context, clientName string) {
	t.mu.Lock()
	if time.Since(t.reread[clientName]) < 500*time.Millisecond {
		t.mu.Unlock()
		return
	}
	t.reread[clientName] = time.Now()
	t.mu.Unlock()
	if tok, err := t.opts.Delivery.Token(ctx, clientName); err == nil {
		t.mu.Lock()
		t.tokens[clientName] = tok
		t.mu.Unlock()
	}
}

// Counts are the answers so far.
func (t *Traffic) Counts() TrafficCounts {
	t.mu.Lock()
	defer t.mu.Unlock()
	c := t.counts
	c.ByClass = make(map[string]int, len(t.counts.ByClass))
	for k, v := range t.counts.ByClass {
		c.ByClass[k] = v
	}
	return c
}

// Stop stops sending and waits for requests in flight.
func (t *Traffic) Stop() {
	t.cancel()
	t.wg.Wait()
}

// StartTraffic drives the bed's stage (path /orders) with its clients' delivered tokens at rate
// requests per second.
func (r *ReleaseBed) StartTraffic(ctx context.Context, rate float64) (*Traffic, error) {
	return StartTraffic(ctx, TrafficOptions{
		URL: r.Bed.Gateway.InvokeURL(r.APIID, r.Stage) + "/orders", Clients: r.Clients, Delivery: r.Activity.Health.Delivery, Rate: rate,
	})
}

// FlakyBackend is a backend that fails (500) a ratio of the requests it serves, evenly spread
// (request n fails when ⌊n·ratio⌋ grows), so that any window of traffic sees the ratio; it
// answers with its version otherwise. The ratio can change while it serves (a release that starts
// failing after promotion).
type FlakyBackend struct {
	URL    string
	ratio  atomic.Uint64 // math.Float64bits
	served atomic.Int64
	srv    *httptest.Server
}

// StartFlakyBackend starts a backend failing ratio of its requests.
func StartFlakyBackend(version string, ratio float64) *FlakyBackend {
	b := &FlakyBackend{}
	b.SetRatio(ratio)
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		n, r := b.served.Add(1), math.Float64frombits(b.ratio.Load())
		w.Header().Set("X-Backend-Version", version)
		if math.Floor(float64(n)*r) > math.Floor(float64(n-1)*r) {
			http.Error(w, version+" failed", http.StatusInternalServerError)
			return
		}
		fmt.Fprintln(w, version)
	}))
	b.URL = b.srv.URL
	return b
}

// SetRatio changes the ratio of requests that fail from now on.
func (b *FlakyBackend) SetRatio(ratio float64) { b.ratio.Store(math.Float64bits(ratio)) }

// Close stops the backend.
func (b *FlakyBackend) Close() { b.srv.Close() }
