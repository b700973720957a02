// Package codec encrypts Temporal payloads with AES-256-GCM, so workflow histories at rest hold no
// readable release data (API ids, stages, clients, reasons). The worker and the starter use the
// same codec; `starter codec-server` serves it to the Temporal Web UI.
//
// An encrypted payload has metadata encoding "binary/encrypted" and "encryption-key-id" naming
// the key it was sealed with; its data is a random 12-byte nonce followed by the sealed payload
// (the original payload, metadata and all, in protobuf form), authenticated with the key id as
// additional data. Keys rotate by adding a new current key and keeping the old ones for
// decoding until no open history needs them.
package codec

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"sort"
	"strings"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"google.golang.org/protobuf/proto"
)

const (
	// Encoding marks an encrypted payload.
	Encoding = "binary/encrypted"
	// KeyIDKey is the metadata key naming the encryption key.
	KeyIDKey = "encryption-key-id"

	keySize   = 32
	nonceSize = 12
)

// Codec is a converter.PayloadCodec sealing with one current key and opening with any known key.
type Codec struct {
	current   string
	aeads     map[string]cipher.AEAD
	plaintext bool // Decode passes unencrypted payloads through
}

var _ converter.PayloadCodec = (*Codec)(nil)

// New returns a codec that encrypts with keys[current]. Every key must be 32 bytes (AES-256).
func New(current string, keys map[string][]byte) (*Codec, error) {
	if current == "" {
		return nil, fmt.Errorf("codec: the current key id is empty")
	}
	if _, ok := keys[current]; !ok {
		return nil, fmt.Errorf("codec: no key with the current id %q", current)
	}
	c := &Codec{current: current, aeads: make(map[string]cipher.AEAD, len(keys))}
	for id, k := range keys {
		if len(k) != keySize {
			return nil, fmt.Errorf("codec: key %q is %d bytes; AES-256 needs %d", id, len(k), keySize)
		}
		block, err := aes.NewCipher(k)
		if err != nil {
			return nil, fmt.Errorf("codec: key %q: %w", id, err)
		}
		if c.aeads[id], err = cipher.NewGCM(block); err != nil {
			return nil, fmt.Errorf("codec: key %q: %w", id, err)
		}
	}
	return c, nil
}

// KeyID is the id of the key new payloads are sealed with.
func (c *Codec) KeyID() string { return c.current }

// KeyIDs lists every key the codec can open, sorted.
func (c *Codec) KeyIDs() []string {
	ids := make([]string, 0, len(c.aeads))
	for id := range c.aeads {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// Encode seals each payload with the current key.
func (c *Codec) Encode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	aead := c.aeads[c.current]
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		plain, err := proto.Marshal(p)
		if err != nil {
			return nil, fmt.Errorf("codec: marshal payload: %w", err)
		}
		sealed := make([]byte, nonceSize, nonceSize+len(plain)+aead.Overhead())
		if _, err := rand.Read(sealed); err != nil {
			return nil, fmt.Errorf("codec: nonce: %w", err)
		}
		out[i] = &commonpb.Payload{
			Metadata: map[string][]byte{converter.MetadataEncoding: []byte(Encoding), KeyIDKey: []byte(c.current)},
			Data:     aead.Seal(sealed, sealed, plain, []byte(c.current)),
		}
	}
	return out, nil
}

// ReadingPlaintext is c with Decode passing unencrypted payloads through, for histories written
// before encryption was turned on (ROLLGATE_CODEC_ALLOW_PLAINTEXT).
func (c *Codec) ReadingPlaintext() *Codec {
	d := *c
	d.plaintext = true
	return &d
}

// ErrPlaintext is returned by Decode for an unencrypted payload when plaintext is not allowed.
var ErrPlaintext = errors.New("codec: refusing an unencrypted payload (written before encryption was turned on, or by a client without the key); set ROLLGATE_CODEC_ALLOW_PLAINTEXT=true to read histories from before encryption")

// Decode opens each encrypted payload. An unencrypted one is refused unless c reads plaintext:
// otherwise anyone with access to Temporal could hand a worker an input it takes as sealed.
func (c *Codec) Decode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		if string(p.GetMetadata()[converter.MetadataEncoding]) != Encoding {
			if !c.plaintext {
				return nil, ErrPlaintext
			}
			out[i] = p
			continue
		}
		id := string(p.GetMetadata()[KeyIDKey])
		aead, ok := c.aeads[id]
		if !ok {
			return nil, fmt.Errorf("codec: payload sealed with key %q, which this process does not have (it has %s)", id, strings.Join(c.KeyIDs(), ", "))
		}
		if len(p.GetData()) < nonceSize+aead.Overhead() {
			return nil, fmt.Errorf("codec: encrypted payload is %d bytes, too short", len(p.GetData()))
		}
		plain, err := aead.Open(nil, p.Data[:nonceSize], p.Data[nonceSize:], []byte(id))
		if err != nil {
			return nil, fmt.Errorf("codec: payload sealed with key %q does not authenticate (wrong key material or tampered data)", id)
		}
		var d commonpb.Payload
		if err := proto.Unmarshal(plain, &d); err != nil {
			return nil, fmt.Errorf("codec: unmarshal payload: %w", err)
		}
		out[i] = &d
	}
	return out, nil
}

// DataConverter wraps Temporal's default data converter with c.
func DataConverter(c *Codec) converter.DataConverter {
	return converter.NewCodecDataConverter(converter.GetDefaultDataConverter(), c)
}

// FailureConverter encodes failure messages and stack traces with the data converter too, so
// error texts (which can name stages and reasons) are not readable in history either.
func FailureConverter(dc converter.DataConverter) converter.FailureConverter {
	return temporal.NewDefaultFailureConverter(temporal.DefaultFailureConverterOptions{DataConverter: dc, EncodeCommonAttributes: true})
}

// ParseKey decodes a base64 (standard or URL alphabet, padded or not) AES-256 key.
func ParseKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if k, err := enc.DecodeString(s); err == nil {
			if len(k) != keySize {
				return nil, fmt.Errorf("the key is %d bytes; AES-256 needs %d (make one with: head -c 32 /dev/urandom | base64)", len(k), keySize)
			}
			return k, nil
		}
	}
	return nil, fmt.Errorf("the key is not base64 (make one with: head -c 32 /dev/urandom | base64)")
}
