package auth

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"

	"github.com/golang-jwt/jwt/v5"
)

// Strict claims (RFC 7519 §4, RFC 8725 §3.11).
//
// encoding/json binds an object member to a struct field whose name matches
// case-insensitively (bytes.EqualFold, Unicode folding included), and the
// last of several matching members wins; jwt.NumericDate decodes through
// json.Number, which also takes a quoted number. Left alone, that made
// {"sub":"alice","SUB":"bob"} a token of bob, "Typ" pass for typ, and
// "exp":"9999999999" an expiry. So the claims set is first walked as JSON
// tokens: every member name appears once (after unescaping, as encoding/json
// sees it), a name that folds to a claim ECB reads must be that claim's exact
// name, and exp, nbf and iat are JSON numbers. Only then is it decoded into
// the struct, where every member that reaches a field has its exact name.
// Claims ECB does not read are still ignored, whatever their case.

// claimKind says how a claim ECB reads must be written.
type claimKind uint8

const (
	anyClaim    claimKind = iota // its type is checked by the struct decoding
	numericDate                  // a JSON number (RFC 7519 §2)
)

// claimNames maps the JSON names of the fields of a claims struct (its
// embedded structs included) to their kind.
func claimNames(t reflect.Type) map[string]claimKind {
	names := map[string]claimKind{}
	dateType := reflect.TypeFor[*jwt.NumericDate]()
	var walk func(reflect.Type)
	walk = func(t reflect.Type) {
		for f := range t.Fields() {
			if f.Anonymous && f.Type.Kind() == reflect.Struct {
				walk(f.Type)
				continue
			}
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "" || name == "-" || !f.IsExported() {
				continue
			}
			kind := anyClaim
			if f.Type == dateType {
				kind = numericDate
			}
			names[name] = kind
		}
	}
	walk(t)
	return names
}

var (
	userClaimNames   = claimNames(reflect.TypeFor[userClaims]())
	threadClaimNames = claimNames(reflect.TypeFor[threadClaims]())
)

// UnmarshalJSON decodes a userToken's claims strictly (see above).
func (c *userClaims) UnmarshalJSON(b []byte) error {
	if err := checkObject(b, userClaimNames); err != nil {
		return err
	}
	type plain userClaims // without this method
	return json.Unmarshal(b, (*plain)(c))
}

// UnmarshalJSON decodes a threadToken's claims strictly (see above).
func (c *threadClaims) UnmarshalJSON(b []byte) error {
	if err := checkObject(b, threadClaimNames); err != nil {
		return err
	}
	type plain threadClaims
	return json.Unmarshal(b, (*plain)(c))
}

var errNotObject = errors.New("not a JSON object")

// checkObject walks the JSON object b: each member name once, a name that
// folds to one of names spelled exactly so, and the numericDate members
// numbers. Its errors name no member and quote nothing of b.
func checkObject(b []byte, names map[string]claimKind) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return errNotObject
	}
	seen := make(map[string]bool, len(names))
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return errNotObject
		}
		name, _ := tok.(string) // a member name is always a string token
		if seen[name] {
			return errors.New("a claim name appears twice")
		}
		seen[name] = true
		kind, known := names[name]
		if !known {
			for n := range names {
				if strings.EqualFold(n, name) {
					return fmt.Errorf("a claim name is %q in another case: claim names are case-sensitive", n)
				}
			}
		}
		var value json.RawMessage
		if err := dec.Decode(&value); err != nil {
			return errNotObject
		}
		if known && kind == numericDate && !isNumber(value) {
			return fmt.Errorf("%s must be a number (NumericDate)", name)
		}
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return errNotObject
	}
	return nil
}

// isNumber reports whether v, a valid JSON value, is a number.
func isNumber(v json.RawMessage) bool {
	return len(v) > 0 && (v[0] == '-' || '0' <= v[0] && v[0] <= '9')
}

// checkHeader refuses a JOSE header with a parameter name twice (RFC 7515
// §4: names must be unique). jwt decodes the header into a map, which
// compares names exactly, so only duplicates are a concern there.
func checkHeader(token string) error {
	head, _, ok := strings.Cut(token, ".")
	if !ok {
		return nil // not a compact JWS: the parser refuses it
	}
	b, err := jwt.NewParser(jwt.WithStrictDecoding()).DecodeSegment(head)
	if err != nil {
		return nil // the parser refuses it
	}
	if err := checkObject(b, nil); err != nil && !errors.Is(err, errNotObject) {
		return err
	}
	return nil
}
