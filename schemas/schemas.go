// Package schemas holds the JSON Schema (draft 2020-12) of every event's
// data, the files the events' dataschema attribute names, and validates data
// against them. The schemas are the published contract for consumers written
// in any language; the tests of the producers validate every event they
// build, so code and contract cannot drift apart.
//
// The files are embedded, so validation does no I/O. To add a schema, drop
// "<name>.v<N>.json" in this directory; it may $ref the shared definitions in
// common.v1.json by relative reference. Schemas that compose definitions with
// $ref close themselves with unevaluatedProperties: false (draft 2020-12's
// additionalProperties: false that sees through $ref); the others use
// additionalProperties: false.
package schemas

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// FS is the schema files, for serving them or publishing them with a release.
//
//go:embed *.json
var FS embed.FS

// base is the URL the embedded files are registered under. It is never
// fetched: every $ref must resolve to an embedded file.
const base = "https://paycomet-notify.invalid/schemas/"

// Prefix is how an event's dataschema names a file of FS.
const Prefix = "schemas/"

// compiled is every embedded schema, compiled once on first use.
var compiled = sync.OnceValues(compileAll)

func compileAll() (map[string]*jsonschema.Schema, error) {
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	c.UseLoader(noLoader{})
	names, err := fs.Glob(FS, "*.json")
	if err != nil {
		return nil, fmt.Errorf("schemas: %w", err)
	}
	for _, name := range names {
		b, err := FS.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("schemas: %w", err)
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("schemas: %s: %w", name, err)
		}
		if err := c.AddResource(base+name, doc); err != nil {
			return nil, fmt.Errorf("schemas: %s: %w", name, err)
		}
	}
	out := make(map[string]*jsonschema.Schema, len(names))
	for _, name := range names {
		s, err := c.Compile(base + name)
		if err != nil {
			return nil, fmt.Errorf("schemas: compile %s: %w", name, err)
		}
		out[name] = s
	}
	return out, nil
}

// noLoader refuses every URL that is not an embedded file, so a typo in a
// $ref fails at compile time instead of reaching for the network.
type noLoader struct{}

func (noLoader) Load(url string) (any, error) {
	return nil, fmt.Errorf("schemas: %s is not an embedded schema", url)
}

// ErrUnknownSchema is returned by Validate for a dataschema that names no
// embedded file.
var ErrUnknownSchema = errors.New("schemas: unknown schema")

// Validate checks data (an event's data member, JSON) against the schema
// named by dataschema as it appears in the event, e.g.
// "schemas/authorization.v1.json".
func Validate(dataschema string, data []byte) error {
	all, err := compiled()
	if err != nil {
		return err
	}
	name := strings.TrimPrefix(dataschema, Prefix)
	s, ok := all[name]
	if !ok || path.Base(name) != name {
		return fmt.Errorf("%w %q", ErrUnknownSchema, dataschema)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("schemas: %s: data is not JSON: %w", name, err)
	}
	if err := s.Validate(inst); err != nil {
		return fmt.Errorf("schemas: %s: %w", name, err)
	}
	return nil
}

// ValidateEvent checks a whole CloudEvent as published (structured JSON):
// its data member against the schema its dataschema names.
func ValidateEvent(event []byte) error {
	var env struct {
		DataSchema string          `json:"dataschema"`
		Data       json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(event, &env); err != nil {
		return fmt.Errorf("schemas: event is not JSON: %w", err)
	}
	return Validate(env.DataSchema, env.Data)
}
