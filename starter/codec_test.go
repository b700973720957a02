package main_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/rollgate/rollgate/internal/codec"
	"github.com/rollgate/rollgate/testsuite"
)

// An encrypted deployment end to end: worker and starter share a key; the history at rest holds
// no readable release data; the codec server opens it for the Web UI.
func TestStarter_EncryptedHistoryIsReadableOnlyWithTheKey(t *testing.T) {
	b := shared.Bed(t)
	raw := make([]byte, 32)
	_, _ = rand.Read(raw)
	key := base64.StdEncoding.EncodeToString(raw)
	cdc, err := codec.New("k1", map[string][]byte{"k1": raw})
	if err != nil {
		t.Fatal(err)
	}
	r, err := testsuite.ProvisionRelease(context.Background(), b, "clienc", testsuite.WithClientOptions(func(o *client.Options) { codec.Apply(o, cdc) }))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	plain := bedCLI(t, b)
	keyed := cli{bin: plain.bin, env: append(append([]string{}, plain.env...), "ROLLGATE_CODEC_KEY="+key)}
	target := r.APIID + "/" + r.Stage

	// A release steered by operators: paused, resumed, promoted early; every request sealed.
	if code, _, stderr := keyed.run(t, "deploy", "-f", writeSpec(t, r.Spec("v2", 10*time.Second)), "--reason", "CHG-1042", "--actor", "pipeline"); code != 0 {
		t.Fatalf("deploy with the key: exit %d\n%s", code, stderr)
	}
	for _, op := range [][]string{{"pause", "--actor", "alice", "--reason", "hold for the traffic review"}, {"resume", "--actor", "alice", "--reason", "review done"}, {"promote", "--actor", "bob", "--reason", "metrics are clean"}} {
		if code, _, stderr := keyed.run(t, append([]string{op[0], target}, op[1:]...)...); code != 0 {
			t.Fatalf("%s: exit %d\n%s", op[0], code, stderr)
		}
		if op[0] == "pause" { // status without a deployment: a line per running one (visibility may lag a little)
			var out string
			for range 25 {
				if _, out, _ = keyed.run(t, "status"); strings.Contains(out, target) {
					break
				}
				time.Sleep(200 * time.Millisecond)
			}
			if !strings.Contains(out, target) || !strings.Contains(out, "PAUSED") {
				t.Fatalf("status of running deployments:\n%s", out)
			}
		}
	}
	if code, stdout, stderr := keyed.run(t, "watch", target); code != 0 || !strings.Contains(stdout, "outcome: promoted") {
		t.Fatalf("watch with the key: exit %d\nstdout %s\nstderr %s", code, stdout, stderr)
	}
	var trail []struct{ Action, Actor, Reason, Identity, Result string }
	for range 25 { // visibility, which finds the run, may lag a moment behind
		code, out, stderr := keyed.run(t, "audit", target, "--output", "json")
		if code != 0 || json.Unmarshal([]byte(out), &trail) != nil {
			t.Fatalf("audit: exit %d\n%s\n%s", code, out, stderr)
		}
		if len(trail) > 0 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	var got []string
	for _, e := range trail {
		got = append(got, e.Action+"|"+e.Actor+"|"+e.Reason+"|"+e.Result)
	}
	want := []string{"deploy|pipeline|CHG-1042|release of clienc", "pause|alice|hold for the traffic review|done", "resume|alice|review done|done", "promote|bob|metrics are clean|done", "finished|||promoted"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") || !strings.HasPrefix(trail[0].Identity, "rollgate-starter ") {
		t.Fatalf("audit trail:\n%s\nwant:\n%s\n(identity %q)", strings.Join(got, "\n"), strings.Join(want, "\n"), trail[0].Identity)
	}
	if code, out, _ := keyed.run(t, "audit", target); code != 0 || !strings.Contains(out, "hold for the traffic review") {
		t.Fatalf("audit text: exit %d\n%s", code, out)
	}
	if code, stdout, _ := keyed.run(t, "status", target); code != 0 || !strings.Contains(stdout, "promoted") {
		t.Fatalf("status with the key: exit %d\n%s", code, stdout)
	}
	if code, _, stderr := plain.run(t, "status", target); code != 1 || strings.Count(strings.TrimSpace(stderr), "\n") != 0 || !strings.Contains(stderr, "ROLLGATE_CODEC") {
		t.Fatalf("status without the key: exit %d\n%s", code, stderr)
	}

	// The stored history, read without the codec: the issuer URL and the backend (both in the
	// spec, in every activity input) never appear; the payloads are sealed.
	tc, err := b.Temporal.Client()
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	var hist bytes.Buffer
	var sealed []byte
	it := tc.GetWorkflowHistory(context.Background(), "deploy/"+target, "", false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	reasons := []string{"CHG-1042", "hold for the traffic review", "metrics are clean"}
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		// Search attributes (service, stage, phase) stay readable by design: visibility needs them.
		if ev.GetUpsertWorkflowSearchAttributesEventAttributes() != nil {
			continue
		}
		if a := ev.GetWorkflowExecutionStartedEventAttributes(); a != nil {
			sealed, _ = protojson.Marshal(a.GetInput())
			a.SearchAttributes = nil
		}
		j, _ := protojson.Marshal(ev)
		hist.Write(j)
	}
	for _, clear := range append(reasons, r.Issuer, r.Backends["v2"], r.Clients[0], "json/plain") {
		if strings.Contains(hist.String(), clear) || strings.Contains(hist.String(), base64.StdEncoding.EncodeToString([]byte(clear))) {
			t.Fatalf("history holds %q in clear", clear)
		}
	}
	if !strings.Contains(hist.String(), base64.StdEncoding.EncodeToString([]byte(codec.Encoding))) {
		t.Fatal("no encrypted payload in the history")
	}

	// The codec server refuses to start without a way to check its callers (a server that
	// starts anyway is stopped after a minute).
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	noAuth := exec.CommandContext(ctx, keyed.bin, "codec-server", "--listen", "127.0.0.1:0")
	noAuth.Env = append(os.Environ(), keyed.env...)
	out, _ := noAuth.CombinedOutput()
	if code := noAuth.ProcessState.ExitCode(); code != 3 || !strings.Contains(string(out), "ROLLGATE_CODEC_SERVER_TOKEN") {
		t.Fatalf("codec-server without caller authentication: exit %d\n%s", code, out)
	}
	// The codec server opens the start input for a browser at an allowed origin, with the token.
	token := base64.StdEncoding.EncodeToString(raw[:24]) + "-codec-server"
	cmd := exec.Command(keyed.bin, "codec-server", "--listen", "127.0.0.1:0", "--ui-origin", "http://ui.example")
	cmd.Env = append(append([]string{}, keyed.env...), "ROLLGATE_CODEC_SERVER_TOKEN="+token)
	errPipe, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	line, err := bufio.NewReader(errPipe).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "codec server on http://") {
		t.Fatalf("codec server banner %q, %v", line, err)
	}
	base := strings.Fields(strings.TrimPrefix(line, "codec server on "))[0]
	decode := func(authorization, host string) *http.Response {
		req, _ := http.NewRequest(http.MethodPost, base+"/decode", bytes.NewReader(sealed))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Origin", "http://ui.example")
		if authorization != "" {
			req.Header.Set("Authorization", authorization)
		}
		if host != "" {
			req.Host = host
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	for _, c := range []struct {
		authorization, host string
		want                int
	}{{"", "", http.StatusUnauthorized}, {"Bearer " + token, "rebound.example", http.StatusMisdirectedRequest}} {
		resp := decode(c.authorization, c.host)
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Fatalf("decode with a token %v for Host %q: %d, want %d", c.authorization != "", c.host, resp.StatusCode, c.want)
		}
	}
	resp := decode("Bearer "+token, "")
	var opened bytes.Buffer
	_, _ = opened.ReadFrom(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != "http://ui.example" ||
		!strings.Contains(opened.String(), base64.StdEncoding.EncodeToString([]byte("json/plain"))) {
		t.Fatalf("decode: %d %v\n%s", resp.StatusCode, resp.Header, opened.String())
	}
	req, _ := http.NewRequest(http.MethodOptions, base+"/decode", nil)
	req.Header.Set("Origin", "http://evil.example")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("preflight from an unlisted origin: %v %v", resp.Header, err)
	}
	if code, _, stderr := plain.run(t, "codec-server"); code != 3 || !strings.Contains(stderr, "no codec key") {
		t.Fatalf("codec-server without a key: exit %d\n%s", code, stderr)
	}
	// With no worker left to answer queries, status reads the finished deployment's result.
	r.StopWorker()
	if code, stdout, stderr := keyed.run(t, "status", target); code != 0 || !strings.HasPrefix(stdout, "deploy/"+target+": promoted") || !strings.Contains(stdout, "operator promoted early") {
		t.Fatalf("status with no worker: exit %d\n%s\n%s", code, stdout, stderr)
	}
	if code, _, stderr := keyed.run(t, "status", "abcdefghij/nope"); code != 1 || !strings.Contains(stderr, "no deployment deploy/abcdefghij/nope") {
		t.Fatalf("status of an unknown deployment: exit %d\n%s", code, stderr)
	}
}
