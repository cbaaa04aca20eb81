// Package openapitest is test support: it loads one of ECB's OpenAPI
// documents (api/*.yaml) into a validator, so that tests check requests and
// answers against the published contract rather than against themselves.
package openapitest

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	"github.com/pb33f/libopenapi-validator/config"
	verrors "github.com/pb33f/libopenapi-validator/errors"
)

// Load reads api/<name> of this repository (found from this file, so tests
// run from any directory), checks that it is a valid OpenAPI document and
// returns its validator. Format assertions make "format: date-time" a check,
// not a comment.
func Load(name string) (validator.Validator, error) {
	_, file, _, _ := runtime.Caller(0)
	spec, err := os.ReadFile(filepath.Join(filepath.Dir(file), "..", "..", "api", name))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	doc, err := libopenapi.NewDocument(spec)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", name, err)
	}
	v, errs := validator.NewValidator(doc, config.WithFormatAssertions())
	if len(errs) > 0 {
		return nil, fmt.Errorf("build the validator of %s: %v", name, errs)
	}
	if ok, verrs := v.ValidateDocument(); !ok {
		return nil, fmt.Errorf("api/%s is not a valid OpenAPI document: %s", name, Describe(verrs))
	}
	return v, nil
}

// Describe lists validation errors, one per line, with the failing fields.
func Describe(errs []*verrors.ValidationError) string {
	var b strings.Builder
	for _, e := range errs {
		fmt.Fprintf(&b, "\n  - %s: %s", e.Message, e.Reason)
		for _, f := range e.SchemaValidationErrors {
			fmt.Fprintf(&b, "\n      %s at %s", f.Reason, f.FieldPath)
		}
	}
	return b.String()
}
