package spec

import (
	"bytes"
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
	if err := json.Unmarshal(js, &generic); err != nil {
		return s, &ValidationError{Problems: []FieldError{{"spec", err.Error()}}}
	}
	var p Problems
	unknownFields(&p, generic, reflect.TypeFor[DeploySpec](), "")
	if err := json.NewDecoder(bytes.NewReader(js)).Decode(&s); err != nil {
		p.Add(decodeField(err), "%s", decodeProblem(err))
		return s, p.Err("")
	}
	s.Normalize()
	if err := s.Validate(); err != nil {
		v, _ := AsValidation(err)
		p.list = append(p.list, v.Problems...)
	}
	return s, p.Err("")
}

// unknownFields adds a problem for every key of v that the type t has no field for, walking
// nested objects and lists. Keys are visited in sorted order so the report is stable.
func unknownFields(p *Problems, v any, t reflect.Type, path string) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		obj, ok := v.(map[string]any)
		if !ok {
			return // a type error: the typed decoding reports it
		}
		fields := jsonFields(t)
		for _, k := range slices.Sorted(maps.Keys(obj)) {
			ft, known := fields[k]
			if !known {
				p.Add(join(path, k), "unknown field (allowed: %s)", strings.Join(slices.Sorted(maps.Keys(fields)), ", "))
				continue
			}
			unknownFields(p, obj[k], ft, join(path, k))
		}
	case reflect.Slice:
		if list, ok := v.([]any); ok {
			for i, e := range list {
				unknownFields(p, e, t.Elem(), fmt.Sprintf("%s[%d]", path, i))
			}
		}
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
