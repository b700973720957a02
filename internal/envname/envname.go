// Package envname names the environment variable behind a go-envconfig error.
package envname

import (
	"fmt"
	"reflect"
	"strings"
)

// Named rewrites go-envconfig's error, which names the Go fields on the way to the value
// ("Scale: MaxConcurrentActivities: problem"), into "ROLLGATE_VARIABLE: problem", t being the
// struct it filled: the operator sets variables, not Go fields. An error it cannot follow is
// returned as it is.
func Named(err error, t reflect.Type) error {
	rest := err.Error()
	for t.Kind() == reflect.Struct {
		name, after, ok := strings.Cut(rest, ": ")
		f, found := t.FieldByName(name)
		if !ok || !found {
			break
		}
		if key, _, _ := strings.Cut(f.Tag.Get("env"), ","); key != "" {
			return fmt.Errorf("%s: %s", key, after)
		}
		t, rest = f.Type, after
	}
	return err
}
