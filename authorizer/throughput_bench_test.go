package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Serve mode on one core beside the in-process Verify of the same token, checked in full each
// time. Serve runs as deployed (the verified-token cache on: a token presented again skips its
// signature check) and with the cache off (every request checked in full). The built binary runs
// with GOMAXPROCS=1 pinned to CPU 0, the load generator (wrk when installed, else a Go loop) on
// CPU 1, so the figure is the authorizer's own cost per request (HTTP included), not the
// generator's. The in-process loops run on CPU 0 too. The machine is shared, so the phases
// alternate in short windows and each keeps its best window: the capacity, not the neighbours.
// Not in CI: `go test -run '^$' -bench ServeThroughput -benchtime 1x ./authorizer`.
func BenchmarkServeThroughput_OneCore(b *testing.B) {
	const rounds, window = 5, 2 * time.Second
	iss := newTestIssuer(b, true)
	m := iss.mint(b, "billing")[0]
	reg := prometheus.NewRegistry()
	// The in-process baseline checks the token in full each time: no verified-token cache.
	u := iss.start(b, false, func(cfg Config, _ *syncBuffer) recorder { return newPromRecorder(reg, cfg.Issuer) },
		map[string]string{"ROLLGATE_DENYLIST_REFRESH": "1s", "ROLLGATE_VERIFIED_CACHE_SIZE": "0"})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go u.a.fresh.run(ctx) // as serve runs it
	bin := buildAuthorizer(b)
	// As deployed (the verified-token cache on, so a client's token presented again skips its
	// signature check), and with the cache off (every request checked in full).
	srv := iss.startServeBinary(b, bin, map[string]string{"ROLLGATE_DENYLIST_REFRESH": "1s", "GOMAXPROCS": "1"})
	pin(b, "0", srv.cmd.Process.Pid)
	url := "http://" + srv.addr + "/auth"
	waitAccepted(b, url, m.Token)
	full := iss.startServeBinary(b, bin, map[string]string{"ROLLGATE_DENYLIST_REFRESH": "1s", "GOMAXPROCS": "1", "ROLLGATE_VERIFIED_CACHE_SIZE": "0"})
	pin(b, "0", full.cmd.Process.Pid)
	fullURL := "http://" + full.addr + "/auth"
	waitAccepted(b, fullURL, m.Token)
	load, generator := goLoad, "go"
	if _, err := exec.LookPath("wrk"); err == nil {
		load, generator = wrkLoad, "wrk"
	}
	// The forward-auth handler in process: the check, the metrics and the headers, no network.
	h, req := u.a.forwardAuth(reg), httptest.NewRequest("GET", "/auth", nil)
	req.Header.Set("Authorization", "Bearer "+m.Token)
	phases := []struct {
		name string
		run  func() float64
	}{
		{"verify/s", func() float64 {
			return inProcess(b, window, func() {
				if _, err := u.a.verifier.Verify(ctx, m.Token); err != nil {
					b.Fatal(err)
				}
			})
		}},
		{"handler/s", func() float64 {
			return inProcess(b, window, func() {
				w := httptest.NewRecorder()
				if h.ServeHTTP(w, req); w.Code != http.StatusOK {
					b.Fatalf("handler: %d", w.Code)
				}
			})
		}},
		{"serve-req/s", func() float64 { return load(b, url, m.Token, window) }},
		{"serve-uncached-req/s", func() float64 { return load(b, fullURL, m.Token, window) }},
		// The HTTP floor: the same server, connections and generator, answering without a check.
		{"healthz-req/s", func() float64 { return load(b, "http://"+srv.addr+"/healthz", m.Token, window) }},
	}

	for b.Loop() {
		load(b, url, m.Token, time.Second) // warm up: connections, JWKS, deny list
		load(b, fullURL, m.Token, time.Second)
		best := map[string]float64{}
		for range rounds {
			for _, p := range phases {
				best[p.name] = max(best[p.name], p.run())
			}
		}
		b.Logf("load generator %s, best of %d windows of %s: serve %.0f req/s, every request checked in full %.0f req/s (HTTP floor /healthz %.0f req/s); in process, checked in full: Verify %.0f/s, handler %.0f/s",
			generator, rounds, window, best["serve-req/s"], best["serve-uncached-req/s"], best["healthz-req/s"], best["verify/s"], best["handler/s"])
		for _, p := range phases {
			b.ReportMetric(best[p.name], p.name)
		}
		b.ReportMetric(100*best["serve-req/s"]/best["verify/s"], "%-of-verify")
		b.ReportMetric(100*best["serve-uncached-req/s"]/best["verify/s"], "uncached-%-of-verify")
	}
}

// inProcess runs op in a loop on CPU 0 alone for the window and returns how many ran per second.
func inProcess(b *testing.B, window time.Duration, op func()) float64 {
	pin(b, "0", os.Getpid())
	defer pin(b, "0-"+strconv.Itoa(runtime.NumCPU()-1), os.Getpid())
	return rate(window, op)
}

// rate runs op in a loop on one core for the window and returns how many ran per second.
func rate(window time.Duration, op func()) float64 {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	n, start := 0, time.Now()
	for time.Since(start) < window {
		op()
		n++
	}
	return float64(n) / time.Since(start).Seconds()
}

// pin binds every thread of pid to the CPUs listed.
func pin(b *testing.B, cpus string, pid int) {
	if out, err := exec.Command("taskset", "-a", "-cp", cpus, strconv.Itoa(pid)).CombinedOutput(); err != nil {
		b.Fatalf("taskset: %v\n%s", err, out)
	}
}

func waitAccepted(b *testing.B, url, token string) {
	deadline := time.Now().Add(60 * time.Second)
	for statusWith(http.DefaultClient, url, token) != http.StatusOK {
		if time.Now().After(deadline) {
			b.Fatal("the served authorizer never accepted the token")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func statusWith(client *http.Client, url, token string) int {
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := client.Do(req)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body) // so the connection is reused
	resp.Body.Close()
	return resp.StatusCode
}

// connections is enough concurrency to keep one core busy through the loopback round trips.
const connections = 16

var (
	wrkRate    = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	wrkNon2xx  = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`)
	wrkSockErr = regexp.MustCompile(`Socket errors: .*`)
)

// wrkLoad runs wrk on CPU 1; the token goes in a script file, not on a command line.
func wrkLoad(b *testing.B, url, token string, d time.Duration) float64 {
	script := filepath.Join(b.TempDir(), "auth.lua")
	if err := os.WriteFile(script, []byte(fmt.Sprintf("wrk.headers[\"Authorization\"] = %q\n", "Bearer "+token)), 0o600); err != nil {
		b.Fatal(err)
	}
	out, err := exec.Command("taskset", "-c", "1", "wrk", "-t1", "-c"+strconv.Itoa(connections), "-d"+d.String(), "-s", script, url).CombinedOutput()
	if err != nil {
		b.Fatalf("wrk: %v\n%s", err, out)
	}
	if m := wrkNon2xx.FindSubmatch(out); m != nil {
		b.Fatalf("wrk: %s answers were not 200", m[1])
	}
	if m := wrkSockErr.Find(out); m != nil {
		b.Logf("wrk: %s", m)
	}
	m := wrkRate.FindSubmatch(out)
	if m == nil {
		b.Fatalf("wrk printed no rate:\n%s", out)
	}
	rate, _ := strconv.ParseFloat(string(m[1]), 64)
	return rate
}

// goLoad is the fallback generator: keep-alive clients in a loop, counting 200s, with this
// process moved to CPU 1.
func goLoad(b *testing.B, url, token string, d time.Duration) float64 {
	pin(b, "1", os.Getpid())
	defer pin(b, "0-"+strconv.Itoa(runtime.NumCPU()-1), os.Getpid())
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: connections}}
	defer client.CloseIdleConnections()
	var ok, bad atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range connections {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Since(start) < d {
				if statusWith(client, url, token) == http.StatusOK {
					ok.Add(1)
				} else {
					bad.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if bad.Load() > 0 {
		b.Fatalf("%d answers were not 200", bad.Load())
	}
	return float64(ok.Load()) / time.Since(start).Seconds()
}
