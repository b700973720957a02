package codec_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/rollgate/rollgate/internal/codec"
)

// codecBed is a codec server over a fresh key, with a sealed payload to ask it to open.
type codecBed struct {
	url    string
	host   string // the server's host:port, which is allowed
	sealed []byte // /decode request body: one sealed payload
}

const staticToken = "0123456789abcdefghijklmnopqrstuvwxyzABCD"

func newCodecBed(t *testing.T, auth codec.Authenticator, encode bool) *codecBed {
	t.Helper()
	cdc, err := codec.New("k1", map[string][]byte{"k1": newKey(t)})
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := cdc.Encode([]*commonpb.Payload{{Metadata: map[string][]byte{"encoding": []byte("json/plain")}, Data: []byte(`"a1b2c3d4e5/prod"`)}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := protojson.Marshal(&commonpb.Payloads{Payloads: sealed})
	srv := httptest.NewUnstartedServer(nil)
	host := srv.Listener.Addr().String()
	h, err := codec.NewServer(cdc, codec.ServerOptions{Auth: auth, Hosts: []string{host}, Origins: []string{"http://ui.example"}, Encode: encode})
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = h
	srv.Start()
	t.Cleanup(srv.Close)
	return &codecBed{url: srv.URL, host: host, sealed: body}
}

func staticAuth(t *testing.T) codec.Authenticator {
	t.Helper()
	a, err := codec.NewStaticToken(staticToken)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// call sends one request; header pairs are name, value.
func (b *codecBed) call(t *testing.T, method, path string, body io.Reader, header ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, b.url+path, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		if header[i] == "Host" {
			req.Host = header[i+1]
			continue
		}
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp, string(out)
}

// opened says whether a /decode answer holds the payload in clear.
func opened(body string) bool {
	return strings.Contains(body, base64.StdEncoding.EncodeToString([]byte(`"a1b2c3d4e5/prod"`)))
}

func TestCodecServer_DecodesOnlyForABearerOfTheStaticToken(t *testing.T) {
	b := newCodecBed(t, staticAuth(t), false)
	cases := []struct {
		name, authorization string
		want                int
	}{
		{"no header", "", http.StatusUnauthorized},
		{"basic", "Basic " + base64.StdEncoding.EncodeToString([]byte("u:"+staticToken)), http.StatusUnauthorized},
		{"empty bearer", "Bearer ", http.StatusUnauthorized},
		{"wrong token", "Bearer " + strings.ToUpper(staticToken), http.StatusUnauthorized},
		{"a prefix of the token", "Bearer " + staticToken[:20], http.StatusUnauthorized},
		{"the token", "Bearer " + staticToken, http.StatusOK},
		{"the token, scheme in lower case", "bearer " + staticToken, http.StatusOK},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, body := b.call(t, http.MethodPost, "/decode", bytes.NewReader(b.sealed), "Authorization", c.authorization)
			if resp.StatusCode != c.want || opened(body) != (c.want == http.StatusOK) {
				t.Fatalf("status %d (want %d), opened %v", resp.StatusCode, c.want, opened(body))
			}
			if c.want == http.StatusUnauthorized && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Fatalf("401 without a Bearer challenge: %v", resp.Header)
			}
			if strings.Contains(body, staticToken[:20]) {
				t.Fatal("the answer repeats the token")
			}
		})
	}
}

// DNS rebinding: a page at evil.example whose name now resolves to 127.0.0.1 sends its own name
// as Host. It is refused even with a valid token; the listener's own address is served.
func TestCodecServer_RefusesHostsOutsideTheAllowList(t *testing.T) {
	b := newCodecBed(t, staticAuth(t), false)
	_, port, _ := strings.Cut(b.host, ":")
	for _, host := range []string{"evil.example:" + port, "evil.example", "localhost.evil.example:" + port} {
		resp, body := b.call(t, http.MethodPost, "/decode", bytes.NewReader(b.sealed), "Authorization", "Bearer "+staticToken, "Host", host)
		if resp.StatusCode != http.StatusMisdirectedRequest || opened(body) {
			t.Fatalf("Host %s: status %d, opened %v", host, resp.StatusCode, opened(body))
		}
		if resp, _ := b.call(t, http.MethodOptions, "/decode", nil, "Origin", "http://ui.example", "Host", host); resp.StatusCode != http.StatusMisdirectedRequest {
			t.Fatalf("preflight with Host %s: status %d", host, resp.StatusCode)
		}
	}
	if resp, body := b.call(t, http.MethodPost, "/decode", bytes.NewReader(b.sealed), "Authorization", "Bearer "+staticToken); resp.StatusCode != 200 || !opened(body) {
		t.Fatalf("allowed host %s: status %d", b.host, resp.StatusCode)
	}
}

func TestCodecServer_RefusesBodiesOver4MiB(t *testing.T) {
	b := newCodecBed(t, staticAuth(t), false)
	big := bytes.Repeat([]byte(" "), codec.MaxRequestBody+1)
	// With a Content-Length, and streamed (no length: the server finds out while reading).
	for name, body := range map[string]io.Reader{"sized": bytes.NewReader(big), "streamed": io.MultiReader(bytes.NewReader(big))} {
		resp, _ := b.call(t, http.MethodPost, "/decode", body, "Authorization", "Bearer "+staticToken)
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Fatalf("%s body of %d bytes: status %d", name, len(big), resp.StatusCode)
		}
	}
	// Just under the cap is read (and refused as JSON only because it is blank).
	resp, _ := b.call(t, http.MethodPost, "/decode", bytes.NewReader(big[:codec.MaxRequestBody]), "Authorization", "Bearer "+staticToken)
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("body of %d bytes: status %d", codec.MaxRequestBody, resp.StatusCode)
	}
}

// /encode would let any caller seal payloads that workers accept: it is served only when asked.
func TestCodecServer_ServesEncodeOnlyWhenEnabled(t *testing.T) {
	plain := `{"payloads":[{"metadata":{"encoding":"anNvbi9wbGFpbg=="},"data":"InJvbGxiYWNrIg=="}]}`
	for _, enabled := range []bool{false, true} {
		b := newCodecBed(t, staticAuth(t), enabled)
		resp, body := b.call(t, http.MethodPost, "/encode", strings.NewReader(plain), "Authorization", "Bearer "+staticToken)
		sealed := strings.Contains(body, base64.StdEncoding.EncodeToString([]byte(codec.Encoding)))
		if want := map[bool]int{false: http.StatusNotFound, true: http.StatusOK}[enabled]; resp.StatusCode != want || sealed != enabled {
			t.Fatalf("encode enabled %v: status %d (want %d), sealed %v", enabled, resp.StatusCode, want, sealed)
		}
		// Unauthenticated callers cannot even tell whether /encode is served.
		if resp, _ := b.call(t, http.MethodPost, "/encode", strings.NewReader(plain)); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("encode without a token, enabled %v: status %d", enabled, resp.StatusCode)
		}
	}
}

// Browsers send a preflight without credentials: it is answered without the token, with CORS
// headers for a listed origin only, and with nothing else.
func TestCodecServer_PreflightNeedsNoTokenAndAnswersOnlyCORS(t *testing.T) {
	b := newCodecBed(t, staticAuth(t), false)
	resp, body := b.call(t, http.MethodOptions, "/decode", nil, "Origin", "http://ui.example",
		"Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "authorization,content-type,x-namespace")
	allowed := strings.ToLower(resp.Header.Get("Access-Control-Allow-Headers"))
	if resp.StatusCode != http.StatusNoContent || body != "" || resp.Header.Get("Access-Control-Allow-Origin") != "http://ui.example" ||
		!strings.Contains(allowed, "authorization") || !strings.Contains(allowed, "x-namespace") {
		t.Fatalf("preflight: %d %v %q", resp.StatusCode, resp.Header, body)
	}
	resp, body = b.call(t, http.MethodOptions, "/decode", nil, "Origin", "http://evil.example", "Access-Control-Request-Method", "POST")
	if resp.Header.Get("Access-Control-Allow-Origin") != "" || body != "" {
		t.Fatalf("preflight from an unlisted origin: %v %q", resp.Header, body)
	}
	// The real request from the UI: token, namespace header, origin.
	resp, body = b.call(t, http.MethodPost, "/decode", bytes.NewReader(b.sealed), "Authorization", "Bearer "+staticToken, "X-Namespace", "default", "Origin", "http://ui.example")
	if resp.StatusCode != 200 || !opened(body) || resp.Header.Get("Access-Control-Allow-Origin") != "http://ui.example" {
		t.Fatalf("decode from the UI: %d %v", resp.StatusCode, resp.Header)
	}
}

func TestServerConfig_NeedsExactlyOneWayToCheckCallers(t *testing.T) {
	dir := t.TempDir()
	file := dir + "/token"
	if err := os.WriteFile(file, []byte(staticToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	short := dir + "/short"
	if err := os.WriteFile(short, []byte("hunter2"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		cfg  codec.ServerConfig
		want string // "" = accepted
	}{
		{codec.ServerConfig{}, "no caller authentication configured"},
		{codec.ServerConfig{Token: staticToken}, ""},
		{codec.ServerConfig{TokenFile: file}, ""},
		{codec.ServerConfig{Token: "hunter2"}, "ROLLGATE_CODEC_SERVER_TOKEN: the token is 7 characters; at least 32"},
		{codec.ServerConfig{TokenFile: short}, "ROLLGATE_CODEC_SERVER_TOKEN_FILE"},
		{codec.ServerConfig{TokenFile: dir + "/absent"}, "ROLLGATE_CODEC_SERVER_TOKEN_FILE"},
		{codec.ServerConfig{Token: staticToken, TokenFile: file}, "set one of"},
		{codec.ServerConfig{Token: staticToken, Issuer: "https://id.example"}, "set one of"},
		{codec.ServerConfig{Issuer: "https://id.example"}, "ROLLGATE_CODEC_SERVER_OIDC_AUDIENCE is required"},
		{codec.ServerConfig{Issuer: "http://id.example", Audiences: []string{"codec"}}, "https is required"},
		{codec.ServerConfig{Issuer: "http://127.0.0.1.evil.example", Audiences: []string{"codec"}}, "https is required"},
	} {
		a, err := c.cfg.Authenticator(context.Background())
		if c.want == "" && (err != nil || a.Authenticate(context.Background(), staticToken) != nil) {
			t.Errorf("%+v: %v", c.cfg, err)
		}
		if c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%+v: got %v, want an error saying %q", c.cfg, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "hunter2") {
			t.Errorf("the error repeats the token: %v", err)
		}
	}
}
