package cloudwatchemu

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/aws/smithy-go/encoding/cbor"
)

// CloudWatch also answers the AWS JSON 1.0 protocol (POST /, X-Amz-Target:
// GraniteServiceVersion20100801.<Op>, Content-Type application/x-amz-json-1.0), which other
// SDKs and CLIs speak: the same members, timestamps as epoch seconds, errors as {"__type",
// "message"} with X-Amzn-Query-Error. The bed serves it from the same operations.
const (
	jsonContentType  = "application/x-amz-json-1.0"
	jsonTargetPrefix = "GraniteServiceVersion20100801."
)

func isAWSJSON(r *http.Request) bool {
	return r.Method == http.MethodPost && r.URL.Path == "/" && strings.HasPrefix(r.Header.Get("X-Amz-Target"), jsonTargetPrefix)
}

func (s *Server) serveAWSJSON(w http.ResponseWriter, r *http.Request) {
	op := strings.TrimPrefix(r.Header.Get("X-Amz-Target"), jsonTargetPrefix)
	in, err := readJSONInput(r)
	if err != nil {
		writeJSONError(w, &apiError{"SerializationException", "SerializationException", 400, err.Error()})
		return
	}
	out, err := s.operation(op, in)
	if err != nil {
		writeJSONError(w, err)
		return
	}
	b, err := json.Marshal(toJSON(out))
	if err != nil {
		writeJSONError(w, err)
		return
	}
	w.Header().Set("Content-Type", jsonContentType)
	_, _ = w.Write(b)
}

func readJSONInput(r *http.Request) (cbor.Map, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxRequestBytes+1))
	if err != nil {
		return nil, err
	}
	if len(body) > maxRequestBytes {
		return nil, errors.New("request body too large")
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return cbor.Map{}, nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("decode JSON body: %w", err)
	}
	m, ok := fromJSON(doc).(cbor.Map)
	if !ok {
		return nil, errors.New("the body is not a JSON object")
	}
	// The only timestamp members of the supported inputs: epoch seconds in JSON, tag 1 in CBOR.
	for _, k := range []string{"StartTime", "EndTime"} {
		if v, ok := m[k]; ok {
			m[k] = &cbor.Tag{ID: 1, Value: v}
		}
	}
	return m, nil
}

// fromJSON turns a decoded JSON document into the CBOR values the operations read.
func fromJSON(v any) cbor.Value {
	switch x := v.(type) {
	case map[string]any:
		m := cbor.Map{}
		for k, e := range x {
			m[k] = fromJSON(e)
		}
		return m
	case []any:
		l := cbor.List{}
		for _, e := range x {
			l = append(l, fromJSON(e))
		}
		return l
	case string:
		return cbor.String(x)
	case bool:
		return cbor.Bool(x)
	case json.Number:
		if n, err := strconv.ParseInt(string(x), 10, 64); err == nil {
			if n < 0 {
				return cbor.NegInt(uint64(-n))
			}
			return cbor.Uint(uint64(n))
		}
		f, _ := x.Float64()
		return cbor.Float64(f)
	default:
		return &cbor.Nil{}
	}
}

// toJSON turns an operation's CBOR output into its JSON document (a timestamp, tag 1, becomes
// its epoch seconds).
func toJSON(v cbor.Value) any {
	switch x := v.(type) {
	case cbor.Map:
		m := map[string]any{}
		for k, e := range x {
			m[k] = toJSON(e)
		}
		return m
	case cbor.List:
		l := make([]any, 0, len(x))
		for _, e := range x {
			l = append(l, toJSON(e))
		}
		return l
	case cbor.String:
		return string(x)
	case cbor.Float64:
		return float64(x)
	case cbor.Bool:
		return bool(x)
	case *cbor.Tag:
		return toJSON(x.Value)
	default:
		return nil
	}
}

func writeJSONError(w http.ResponseWriter, err error) {
	ae := asServiceError(err)
	w.Header().Set("Content-Type", jsonContentType)
	w.Header().Set("X-Amzn-Query-Error", ae.queryCode+";"+ae.fault())
	w.WriteHeader(ae.status)
	b, _ := json.Marshal(map[string]string{"__type": errorNamespace + ae.shape, ae.messageMember(): ae.message})
	_, _ = w.Write(b)
}
