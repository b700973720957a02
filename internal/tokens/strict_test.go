package tokens

import (
	"bytes"
	stdjson "encoding/json"
	"testing"
	"unicode/utf8"
)

// FuzzStrictJSON_AgreesWithEncodingJSON: the hand-written JSON check of the pre-parse accepts
// exactly the UTF-8 JSON objects without duplicate member names that encoding/json reads (up to
// the nesting bound), so golang-jwt never decodes what the check did not see.
func FuzzStrictJSON_AgreesWithEncodingJSON(f *testing.F) {
	f.Add([]byte(`{"a":1,"b":[1,2,{"c":"d"}],"e":{"f":null,"g":true,"h":false}}`))
	f.Add([]byte(`{"a":"\u00e9\ud83d\ude00\"\\\/\b\f\n\r\t","b":-1.5e+10,"c":0.0,"d":1E-2}`))
	f.Add([]byte(`{"a":1,"a":2}`))
	f.Add([]byte(`{"x":{"a":1,"\u0061":2}}`))
	f.Add([]byte(" {\t}\r\n"))
	f.Add([]byte(`{"a":01}`))
	f.Add([]byte(`{"a":"\x93"}`))
	f.Add([]byte(`[{"a":1}]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		err := checkObject(b, func(name, value []byte) error { return nil })
		trimmed := bytes.TrimLeft(b, " \t\r\n")
		object := stdjson.Valid(b) && len(trimmed) > 0 && trimmed[0] == '{'
		switch {
		case err == nil && !object:
			t.Fatalf("accepted what is not a JSON object: %q", b)
		case err == nil && !utf8.Valid(b):
			t.Fatalf("accepted invalid UTF-8: %q", b)
		case err == nil && !noDuplicateNames(b):
			t.Fatalf("accepted duplicate names: %q", b)
		case err != nil && object && utf8.Valid(b) && noDuplicateNames(b) && depth(b) <= maxJSONDepth:
			t.Fatalf("refused a valid object: %q: %v", b, err)
		}
	})
}

// noDuplicateNames reads valid JSON with encoding/json's token stream and reports whether no
// object in it repeats a member name.
func noDuplicateNames(b []byte) bool {
	type level struct {
		names    map[string]bool // nil for an array
		wantName bool
	}
	var stack []*level
	d := stdjson.NewDecoder(bytes.NewReader(b))
	for {
		tok, err := d.Token()
		if err != nil {
			return true
		}
		var top *level
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if s, ok := tok.(string); ok && top != nil && top.names != nil && top.wantName {
			if top.names[s] {
				return false
			}
			top.names[s], top.wantName = true, false
			continue
		}
		if delim, ok := tok.(stdjson.Delim); ok && (delim == '}' || delim == ']') {
			stack = stack[:len(stack)-1]
			if len(stack) > 0 && stack[len(stack)-1].names != nil {
				stack[len(stack)-1].wantName = true
			}
			continue
		}
		if top != nil && top.names != nil {
			top.wantName = true // a value ends; the next string is a name
		}
		switch tok {
		case stdjson.Delim('{'):
			stack = append(stack, &level{names: map[string]bool{}, wantName: true})
		case stdjson.Delim('['):
			stack = append(stack, &level{})
		}
	}
}

// depth is the deepest nesting of objects and arrays in valid JSON.
func depth(b []byte) int {
	d := stdjson.NewDecoder(bytes.NewReader(b))
	cur, deepest := 0, 0
	for {
		tok, err := d.Token()
		if err != nil {
			return deepest
		}
		switch tok {
		case stdjson.Delim('{'), stdjson.Delim('['):
			cur++
			deepest = max(deepest, cur)
		case stdjson.Delim('}'), stdjson.Delim(']'):
			cur--
		}
	}
}
