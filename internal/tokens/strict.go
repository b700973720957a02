package tokens

import (
	"bytes"
	stdjson "encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// The strict pre-parse of a compact JWS. Decoders are lenient in ways an attacker can use to make
// two different byte strings mean the same token, or one token mean two things to two parsers:
// Go's base64 skips \r and \n, encoding/json (and goccy/go-json) match member names without regard
// to case, keep the last of duplicate members and take a quoted number for a NumericDate. The
// checks here run before the verifier decodes anything, so what it decodes has one reading.
//
// The JSON check is a hand-written single pass rather than encoding/json's token stream: it
// allocates nothing on a well-formed token, which keeps the verify path near the raw signature
// check (see the verify benchmark in internal/registry).

// maxJSONDepth bounds nesting so a hostile token cannot make the check recurse deeply.
const maxJSONDepth = 32

// Member names the verifier decodes: a name that matches one of these only without regard to case
// would be decoded into it, so it is refused.
var (
	headerNames = []string{"alg", "kid", "typ", "crit"}
	claimNames  = []string{"iss", "sub", "aud", "exp", "nbf", "iat", "jti", "client_id"}
)

// decodeSegment decodes one base64url segment, refusing every character outside the alphabet.
// The strict decoder already refuses padding, '+', '/' and non-zero trailing bits, but skips
// '\r' and '\n' anywhere in the input.
func decodeSegment(s string) ([]byte, bool) {
	if strings.IndexByte(s, '\n') >= 0 || strings.IndexByte(s, '\r') >= 0 {
		return nil, false
	}
	b, err := strict.DecodeString(s)
	return b, err == nil
}

// checkHeader checks a decoded JWS header: one JSON object, no duplicate names at any depth, no
// case-variant of a name the verifier reads, and no crit, which this verifier never understands
// (RFC 7515 §4.1.11 forbids an empty one and requires refusing one it does not understand).
func checkHeader(b []byte) error {
	return checkObject(b, func(name []byte, value []byte) error {
		switch string(name) {
		case "alg", "kid", "typ":
			return nil
		case "crit":
			return errors.New("crit header present: no critical extension is understood")
		}
		return notCaseVariant(name, headerNames, "header parameter")
	})
}

// checkClaims checks decoded claims like checkHeader, and that exp, nbf and iat are JSON numbers.
func checkClaims(b []byte) error {
	return checkObject(b, func(name []byte, value []byte) error {
		switch string(name) {
		case "iss", "sub", "aud", "jti", "client_id":
			return nil
		case "exp", "nbf", "iat":
			if value[0] != '-' && (value[0] < '0' || value[0] > '9') {
				return fmt.Errorf("claim %s is not a JSON number", name)
			}
			return nil
		}
		return notCaseVariant(name, claimNames, "claim")
	})
}

// notCaseVariant refuses a name that equals a known one only without regard to case; the
// callers have already let the exact names through.
func notCaseVariant(name []byte, known []string, what string) error {
	for _, k := range known {
		if bytes.EqualFold(name, []byte(k)) {
			return fmt.Errorf("%s %s differs from %s only in case", what, quoteShort(string(name)), k)
		}
	}
	return nil
}

// quoteShort quotes a value taken from a token for an error message, cut to a length that keeps
// a hostile token from filling logs.
func quoteShort(s string) string {
	const limit = 40
	if len(s) > limit {
		return fmt.Sprintf("%q…", s[:limit])
	}
	return fmt.Sprintf("%q", s)
}

// checkObject checks that b is exactly one JSON object (RFC 8259, UTF-8) with no duplicate member
// names in it or in any object nested in it, and calls member with each top-level member's
// unescaped name and raw value.
func checkObject(b []byte, member func(name, value []byte) error) error {
	s := scanner{b: b}
	s.space()
	if s.i >= len(b) || b[s.i] != '{' {
		return errors.New("not a JSON object")
	}
	if err := s.object(0, member); err != nil {
		return err
	}
	if s.space(); s.i != len(b) {
		return errors.New("data after the JSON object")
	}
	return nil
}

type scanner struct {
	b []byte
	i int
}

var errJSON = errors.New("not valid JSON")

func (s *scanner) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// value scans one JSON value at s.i (after white space).
func (s *scanner) value(depth int) error {
	if s.i >= len(s.b) {
		return errJSON
	}
	switch c := s.b[s.i]; {
	case c == '{':
		return s.object(depth+1, nil)
	case c == '[':
		return s.array(depth + 1)
	case c == '"':
		_, err := s.str()
		return err
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	case c == '-' || c >= '0' && c <= '9':
		return s.number()
	}
	return errJSON
}

func (s *scanner) literal(lit string) error {
	if !bytes.HasPrefix(s.b[s.i:], []byte(lit)) {
		return errJSON
	}
	s.i += len(lit)
	return nil
}

// object scans an object at s.i ('{'); member, if not nil, sees each member.
func (s *scanner) object(depth int, member func(name, value []byte) error) error {
	if depth > maxJSONDepth {
		return errors.New("JSON nested too deeply")
	}
	s.i++
	var seen names
	s.space()
	if s.i < len(s.b) && s.b[s.i] == '}' {
		s.i++
		return nil
	}
	for {
		s.space()
		if s.i >= len(s.b) || s.b[s.i] != '"' {
			return errJSON
		}
		name, err := s.str()
		if err != nil {
			return err
		}
		if name, err = unescapeName(name); err != nil {
			return err
		}
		if !seen.add(name) {
			return fmt.Errorf("duplicate member %s", quoteShort(string(name)))
		}
		if s.space(); s.i >= len(s.b) || s.b[s.i] != ':' {
			return errJSON
		}
		s.i++
		s.space()
		start := s.i
		if err := s.value(depth); err != nil {
			return err
		}
		if member != nil {
			if err := member(name, s.b[start:s.i]); err != nil {
				return err
			}
		}
		if done, err := s.next('}'); done || err != nil {
			return err
		}
	}
}

// next reads what follows a member or an element: a comma (another follows) or close (the end).
func (s *scanner) next(close byte) (done bool, err error) {
	if s.space(); s.i >= len(s.b) {
		return false, errJSON
	}
	switch s.b[s.i] {
	case ',':
		s.i++
		return false, nil
	case close:
		s.i++
		return true, nil
	}
	return false, errJSON
}

func (s *scanner) array(depth int) error {
	if depth > maxJSONDepth {
		return errors.New("JSON nested too deeply")
	}
	s.i++
	if s.space(); s.i < len(s.b) && s.b[s.i] == ']' {
		s.i++
		return nil
	}
	for {
		s.space()
		if err := s.value(depth); err != nil {
			return err
		}
		if done, err := s.next(']'); done || err != nil {
			return err
		}
	}
}

// str scans a string at s.i ('"') and returns it with its quotes, escapes unresolved.
func (s *scanner) str() ([]byte, error) {
	start := s.i
	s.i++
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			return s.b[start:s.i], nil
		case c == '\\':
			if s.i+1 >= len(s.b) {
				return nil, errJSON
			}
			switch s.b[s.i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.i += 2
			case 'u':
				if s.i+6 > len(s.b) || !isHex4(s.b[s.i+2:s.i+6]) {
					return nil, errJSON
				}
				s.i += 6
			default:
				return nil, errJSON
			}
		case c < 0x20:
			return nil, errJSON
		case c < utf8.RuneSelf:
			s.i++
		default:
			r, n := utf8.DecodeRune(s.b[s.i:])
			if r == utf8.RuneError && n <= 1 {
				return nil, errors.New("JSON string is not UTF-8")
			}
			s.i += n
		}
	}
	return nil, errJSON
}

func isHex4(b []byte) bool {
	for _, c := range b {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

func (s *scanner) number() error {
	b, i := s.b, s.i
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		i = digits(b, i)
	default:
		return errJSON
	}
	if i < len(b) && b[i] == '.' {
		if j := digits(b, i+1); j > i+1 {
			i = j
		} else {
			return errJSON
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := digits(b, i)
		if j == i {
			return errJSON
		}
		i = j
	}
	s.i = i
	return nil
}

func digits(b []byte, i int) int {
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	return i
}

// unescapeName turns a quoted member name into its value. Names with escapes are rare and go
// through encoding/json, which resolves \u escapes and surrogate pairs as every decoder does.
func unescapeName(quoted []byte) ([]byte, error) {
	if bytes.IndexByte(quoted, '\\') < 0 {
		return quoted[1 : len(quoted)-1], nil
	}
	var name string
	if err := stdjson.Unmarshal(quoted, &name); err != nil {
		return nil, errJSON
	}
	return []byte(name), nil
}

// names are the member names of one object; linear search while few, a set beyond.
type names struct {
	few  [16][]byte
	n    int
	many map[string]bool
}

func (ns *names) add(name []byte) bool {
	if ns.many != nil {
		if ns.many[string(name)] {
			return false
		}
		ns.many[string(name)] = true
		return true
	}
	for _, seen := range ns.few[:ns.n] {
		if bytes.Equal(seen, name) {
			return false
		}
	}
	if ns.n < len(ns.few) {
		ns.few[ns.n] = name
		ns.n++
		return true
	}
	ns.many = make(map[string]bool, 2*len(ns.few))
	for _, seen := range ns.few {
		ns.many[string(seen)] = true
	}
	ns.many[string(name)] = true
	return true
}
