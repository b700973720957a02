package main_test

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/rollgate/rollgate/internal/codec"
	"github.com/rollgate/rollgate/testsuite"
	"github.com/rollgate/rollgate/workflows"
)

// During a bake, status and watch show the bake's own probe counters as they grow, read from its
// heartbeats; with payload encryption on, through the codec.
func TestStatusAndWatch_DuringABake_ShowTheBakesLiveProbeCounts(t *testing.T) {
	b := shared.Bed(t)
	raw := make([]byte, 32)
	_, _ = rand.Read(raw)
	cdc, err := codec.New("k1", map[string][]byte{"k1": raw})
	if err != nil {
		t.Fatal(err)
	}
	r := provisionUnique(t, b, "clilive", testsuite.WithClientOptions(func(o *client.Options) { codec.Apply(o, cdc) }))
	plain := bedCLI(t, b)
	keyed := cli{bin: plain.bin, env: append(append([]string{}, plain.env...), "ROLLGATE_CODEC_KEY="+base64.StdEncoding.EncodeToString(raw))}
	target := r.APIID + "/" + r.Stage

	// A bake long enough for several heartbeats; it is ended early by a promote below.
	if code, _, stderr := keyed.run(t, "deploy", "-f", writeSpec(t, r.Spec("v2", 2*time.Minute))); code != 0 {
		t.Fatalf("deploy: exit %d\n%s", code, stderr)
	}
	watch := exec.Command(keyed.bin, "watch", target)
	watch.Env = append(os.Environ(), keyed.env...)
	var watchOut, watchErr bytes.Buffer
	watch.Stdout, watch.Stderr = &watchOut, &watchErr
	if err := watch.Start(); err != nil {
		t.Fatal(err)
	}
	watched := false
	defer func() {
		if !watched {
			_ = watch.Process.Kill()
			_ = watch.Wait()
		}
	}()

	var counts []int // the probe counts status showed during the first bake, each larger than the last
	for deadline := time.Now().Add(90 * time.Second); len(counts) < 3 && time.Now().Before(deadline); time.Sleep(300 * time.Millisecond) {
		code, out, stderr := keyed.run(t, "status", target, "--output", "json")
		var st workflows.Status
		if code != 0 || json.Unmarshal([]byte(out), &st) != nil {
			t.Fatalf("status: exit %d\n%s\n%s", code, out, stderr)
		}
		if st.Phase != workflows.PhaseBaking || st.Step != 1 {
			continue
		}
		if n := st.Probes.Probes; n > 0 && (len(counts) == 0 || n > counts[len(counts)-1]) {
			counts = append(counts, n)
		}
	}
	if len(counts) < 3 {
		t.Fatalf("status during the bake showed probe counts %v: not the bake's growing counters", counts)
	}
	if code, _, stderr := keyed.run(t, "promote", target, "--reason", "live counters seen"); code != 0 {
		t.Fatalf("promote: exit %d\n%s", code, stderr)
	}
	err = watch.Wait()
	watched = true
	if err != nil {
		t.Fatalf("watch: %v\nstdout %s\nstderr %s", err, watchOut.String(), watchErr.String())
	}
	shown := map[int]bool{}
	for _, m := range regexp.MustCompile(`baking at 20%: (\d+) probes`).FindAllStringSubmatch(watchErr.String(), -1) {
		n, _ := strconv.Atoi(m[1])
		shown[n] = true
	}
	if len(shown) < 2 {
		t.Fatalf("watch showed the bake's probe counts %v: not live\n%s", shown, watchErr.String())
	}
	t.Logf("status showed %v probes during the bake; watch showed %d different counts", counts, len(shown))
}
