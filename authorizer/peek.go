package main

import (
	"encoding/base64"
	"strings"

	json "github.com/goccy/go-json"
)

// maxTokenBytes bounds what the authorizer parses at all; rollgate's tokens are well under 2 KB
// and API Gateway refuses larger headers than this anyway.
const maxTokenBytes = 8 << 10

// peeked is what a rejected token claims to be, for the rejection's log line.
type peeked struct {
	KID      string
	JTI      string
	Sub      string
	ClientID string
}

// peek decodes a token's header and payload without checking anything: the values are whatever
// the sender wrote, good for a log line (truncated) and nothing else. (An accepted token's kid
// and scope come from the verifier.)
func peek(raw string) peeked {
	var p peeked
	if len(raw) > maxTokenBytes {
		return p
	}
	h64, rest, _ := strings.Cut(raw, ".")
	p64, _, _ := strings.Cut(rest, ".")
	var hdr struct {
		Kid string `json:"kid"`
	}
	if b, err := base64.RawURLEncoding.DecodeString(h64); err == nil && json.Unmarshal(b, &hdr) == nil {
		p.KID = hdr.Kid
	}
	var claims struct {
		JTI      string `json:"jti"`
		Sub      string `json:"sub"`
		ClientID string `json:"client_id"`
	}
	if b, err := base64.RawURLEncoding.DecodeString(p64); err == nil && json.Unmarshal(b, &claims) == nil {
		p.JTI, p.Sub, p.ClientID = claims.JTI, claims.Sub, claims.ClientID
	}
	return p
}

// clip keeps a sender-chosen value short enough for a log line.
func clip(s string) string {
	const max = 128
	if len(s) > max {
		return s[:max] + "…"
	}
	return s
}
