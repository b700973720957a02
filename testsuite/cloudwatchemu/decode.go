package cloudwatchemu

import (
	"fmt"
	"time"

	"github.com/aws/smithy-go/encoding/cbor"
)

// The helpers below read members of a decoded CBOR map; a member of the wrong CBOR type is a
// serialization error, as the service's deserializer reports it.

func serializationError(path, want string, v cbor.Value) error {
	return &apiError{"SerializationException", "SerializationException", 400, fmt.Sprintf("%s: expected %s, got %T", path, want, v)}
}

func getString(m cbor.Map, key, path string) (string, bool, error) {
	v, ok := m[key]
	if !ok || isNil(v) {
		return "", false, nil
	}
	s, ok := v.(cbor.String)
	if !ok {
		return "", false, serializationError(path+key, "a string", v)
	}
	return string(s), true, nil
}

func getInt(m cbor.Map, key, path string) (int64, bool, error) {
	v, ok := m[key]
	if !ok || isNil(v) {
		return 0, false, nil
	}
	n, err := cbor.AsInt64(v)
	if err != nil {
		return 0, false, serializationError(path+key, "an integer", v)
	}
	return n, true, nil
}

func getBool(m cbor.Map, key, path string) (bool, bool, error) {
	v, ok := m[key]
	if !ok || isNil(v) {
		return false, false, nil
	}
	b, ok := v.(cbor.Bool)
	if !ok {
		return false, false, serializationError(path+key, "a boolean", v)
	}
	return bool(b), true, nil
}

func getTime(m cbor.Map, key, path string) (time.Time, bool, error) {
	v, ok := m[key]
	if !ok || isNil(v) {
		return time.Time{}, false, nil
	}
	t, err := cbor.AsTime(v)
	if err != nil {
		return time.Time{}, false, serializationError(path+key, "an epoch-seconds timestamp (tag 1)", v)
	}
	return t, true, nil
}

func getMap(m cbor.Map, key, path string) (cbor.Map, bool, error) {
	v, ok := m[key]
	if !ok || isNil(v) {
		return nil, false, nil
	}
	mm, ok := v.(cbor.Map)
	if !ok {
		return nil, false, serializationError(path+key, "a structure", v)
	}
	return mm, true, nil
}

func getList(m cbor.Map, key, path string) (cbor.List, bool, error) {
	v, ok := m[key]
	if !ok || isNil(v) {
		return nil, false, nil
	}
	l, ok := v.(cbor.List)
	if !ok {
		return nil, false, serializationError(path+key, "a list", v)
	}
	return l, true, nil
}

func isNil(v cbor.Value) bool {
	switch v.(type) {
	case *cbor.Nil, *cbor.Undefined:
		return true
	}
	return false
}

// getDimensions reads a list of {Name, Value} structures (Value optional when optional is set:
// ListMetrics's DimensionFilter).
func getDimensions(m cbor.Map, key, path string, optional bool) ([]Dimension, error) {
	l, _, err := getList(m, key, path)
	if err != nil {
		return nil, err
	}
	if len(l) > 30 {
		return nil, invalidValue("The collection %s%s must not have more than 30 members.", path, key)
	}
	dims := make([]Dimension, 0, len(l))
	for i, v := range l {
		p := fmt.Sprintf("%s%s.member.%d.", path, key, i+1)
		dm, ok := v.(cbor.Map)
		if !ok {
			return nil, serializationError(p, "a structure", v)
		}
		name, okName, err := getString(dm, "Name", p)
		if err != nil {
			return nil, err
		}
		value, okValue, err := getString(dm, "Value", p)
		if err != nil {
			return nil, err
		}
		if !okName || name == "" {
			return nil, missingParameter(p + "Name")
		}
		if !okValue && !optional {
			return nil, missingParameter(p + "Value")
		}
		if len(name) > 255 || len(value) > 1024 {
			return nil, invalidValue("The dimension %s is longer than CloudWatch allows (name 255, value 1024 characters).", p)
		}
		dims = append(dims, Dimension{name, value})
	}
	return dims, nil
}
