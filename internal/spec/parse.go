package spec

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"reflect"
	"slices"
	"strings"

	"sigs.k8s.io/yaml"
)

// MaxSpecBytes bounds a spec file: a real one is a few KiB, and reading /dev/zero or an endless
// pipe must end in a clear refusal, not in running out of memory.
const MaxSpecBytes = 1 << 20

// ErrTooLarge marks a spec over MaxSpecBytes.
var ErrTooLarge = fmt.Errorf("spec is larger than %d bytes (1 MiB)", MaxSpecBytes)

// Read reads at most MaxSpecBytes from r and parses it; see Parse.
func Read(r io.Reader) (DeploySpec, error) {
	raw, err := io.ReadAll(io.LimitReader(r, MaxSpecBytes+1))
	if err != nil {
		return DeploySpec{}, fmt.Errorf("read spec: %w", err)
	}
	return Parse(raw)
}

// Parse reads a YAML or JSON spec, fills its defaults and validates it. It refuses a spec over
// MaxSpecBytes, a duplicate key (YAML would keep the last one silently) and unknown fields; every
// unknown field is listed in one *ValidationError together with every other problem, so that one
// typo does not hide the rest.
func Parse(raw []byte) (DeploySpec, error) {
	var s DeploySpec
	if len(raw) > MaxSpecBytes {
		return s, ErrTooLarge
	}
	js, err := yaml.YAMLToJSONStrict(raw)
	if err != nil {
		return s, &ValidationError{Problems: []FieldError{{"spec", "not YAML or JSON, or a key appears twice: " + err.Error()}}}
	}
	var generic any
	d := json.NewDecoder(bytes.NewReader(js))
	d.UseNumber() // a value is checked again as it was written
	if err := d.Decode(&generic); err != nil {
		return s, &ValidationError{Problems: []FieldError{{"spec", err.Error()}}}
	}
	var p Problems
	fieldProblems(&p, generic, reflect.TypeFor[DeploySpec](), "")
	if err := json.NewDecoder(bytes.NewReader(js)).Decode(&s); err != nil {
		if len(p.list) == 0 {
			p.Add(decodeField(err), "%s", decodeProblem(err))
		}
		return s, p.Err("")
	}
	s.Normalize()
	if err := s.Validate(); err != nil {
		v, _ := AsValidation(err)
		p.list = append(p.list, v.Problems...)
	}
	return s, p.Err("")
}

// fieldProblems adds a problem for every key of v that the type t has no field for and for
// every value that does not decode into its field's type (a word where a number belongs, a
// duration that does not parse), each named by its path, walking nested objects and lists. Keys
// are visited in sorted order so the report is stable.
func fieldProblems(p *Problems, v any, t reflect.Type, path string) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(reflect.TypeFor[json.Unmarshaler]()) || (t.Kind() != reflect.Struct && t.Kind() != reflect.Slice) {
		checkValue(p, v, t, path)
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		obj, ok := v.(map[string]any)
		if !ok {
			if v != nil {
				p.Add(cmp.Or(path, "spec"), "%s where an object was expected", kindOf(v))
			}
			return
		}
		fields := jsonFields(t)
		for _, k := range slices.Sorted(maps.Keys(obj)) {
			ft, known := fields[k]
			if !known {
				p.Add(join(path, k), "unknown field (allowed: %s)", strings.Join(slices.Sorted(maps.Keys(fields)), ", "))
				continue
			}
			fieldProblems(p, obj[k], ft, join(path, k))
		}
	case reflect.Slice:
		list, ok := v.([]any)
		if !ok {
			if v != nil {
				p.Add(path, "%s where a list was expected", kindOf(v))
			}
			return
		}
		for i, e := range list {
			fieldProblems(p, e, t.Elem(), fmt.Sprintf("%s[%d]", path, i))
		}
	}
}

// kindOf names what a spec wrote, as JSON calls it.
func kindOf(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	}
	return "a value"
}

// checkValue adds a problem when v, as the spec wrote it, does not decode into a t.
func checkValue(p *Problems, v any, t reflect.Type, path string) {
	raw, err := json.Marshal(v)
	if err != nil {
		return // the typed decoding reports it
	}
	if err := json.Unmarshal(raw, reflect.New(t).Interface()); err != nil {
		p.Add(cmp.Or(path, "spec"), "%s", decodeProblem(err))
	}
}

// jsonFields maps the JSON names of a struct's fields to their types, as encoding/json names
// them (case-sensitively here: a spec spells fields as documented).
func jsonFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for f := range t.Fields() {
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch name {
		case "-":
			continue
		case "":
			name = f.Name
		}
		out[name] = f.Type
	}
	return out
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// decodeField names the field a typed decoding error is about.
func decodeField(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		return te.Field
	}
	return "spec"
}

func decodeProblem(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("a %s where %s was expected", te.Value, te.Type)
	}
	return err.Error()
}
