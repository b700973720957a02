package releases_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/rollgate/rollgate/internal/releases"
	"github.com/rollgate/rollgate/testsuite"
)

var shared testsuite.Shared

func TestMain(m *testing.M) { os.Exit(shared.Run(m)) }

func TestHistory_KeepsTheLastReleasesNewestFirst(t *testing.T) {
	bed := shared.Bed(t)
	ctx := context.Background()
	cfg, err := bed.AWSConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	h := &releases.History{DB: bed.DynamoDBClient(cfg), Table: "releases-test"}
	if err := h.CreateTable(ctx); err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)
	for i := range releases.Keep + 3 {
		rec, _ := json.Marshal(map[string]int{"n": i})
		// Times a second apart and one 100 ms off, so that fixed-width ids must order by time.
		at := start.Add(time.Duration(i)*time.Second + time.Duration(i%2)*100*time.Millisecond)
		if err := h.Put(ctx, releases.Entry{Stage: "abcdefghij/prod", ID: releases.ID(at, fmt.Sprintf("run-%d", i)), Record: rec}); err != nil {
			t.Fatal(err)
		}
	}
	all, err := h.List(ctx, "abcdefghij/prod", 0)
	if err != nil || len(all) != releases.Keep {
		t.Fatalf("history holds %d releases, want %d (%v)", len(all), releases.Keep, err)
	}
	var newest map[string]int
	_ = json.Unmarshal(all[0].Record, &newest)
	if newest["n"] != releases.Keep+2 {
		t.Fatalf("newest release is %v", newest)
	}
	if other, err := h.List(ctx, "abcdefghij/staging", 0); err != nil || len(other) != 0 {
		t.Fatalf("another stage's history: %d, %v", len(other), err)
	}
}

func TestHistory_LatestIsTheNewestReleaseOfEveryStage(t *testing.T) {
	bed := shared.Bed(t)
	ctx := context.Background()
	cfg, err := bed.AWSConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// A table of its own, so that the stages of other tests (and of other -count runs) stay out.
	h := &releases.History{DB: bed.DynamoDBClient(cfg), Table: fmt.Sprintf("releases-latest-%d", time.Now().UnixNano())}
	if err := h.CreateTable(ctx); err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)
	for i, stage := range []string{"bbbbbbbbbb/prod", "aaaaaaaaaa/prod", "bbbbbbbbbb/prod", "aaaaaaaaaa/test", "bbbbbbbbbb/prod"} {
		rec, _ := json.Marshal(map[string]int{"n": i})
		if err := h.Put(ctx, releases.Entry{Stage: stage, ID: releases.ID(start.Add(time.Duration(i)*time.Minute), fmt.Sprintf("run-%d", i)), Record: rec}); err != nil {
			t.Fatal(err)
		}
	}
	latest, err := h.Latest(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range latest {
		var r map[string]int
		_ = json.Unmarshal(e.Record, &r)
		got = append(got, fmt.Sprintf("%s=%d", e.Stage, r["n"]))
	}
	if want := "[aaaaaaaaaa/prod=1 aaaaaaaaaa/test=3 bbbbbbbbbb/prod=4]"; fmt.Sprint(got) != want {
		t.Fatalf("latest releases %v, want %s", got, want)
	}
}
