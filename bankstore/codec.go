package bankstore

import (
	"encoding"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/paycomet-notify/paycomet-notify/secret"
)

// The codec moves values between the typed request and response structs and
// the element text of the wire, driven by the `bankstore` struct tags (see
// types.go). One codec serves the typed calls, the command line's JSON and the
// responses, so an element is written and read the same way everywhere.

type field struct {
	name     string
	index    int
	required bool // Obligatorio: must be given
	always   bool // sent even when zero
	auto     bool // DS_ORIGINAL_IP: filled by the client when zero
	format   string
	xsd      string
}

var fieldCache sync.Map // reflect.Type -> []field

func fieldsOf(t reflect.Type) []field {
	if v, ok := fieldCache.Load(t); ok {
		return v.([]field)
	}
	var fs []field
	for i := range t.NumField() {
		tag := t.Field(i).Tag.Get("bankstore")
		if tag == "" {
			continue
		}
		parts := strings.Split(tag, ",")
		f := field{name: parts[0], index: i, format: parts[0], xsd: "string"}
		for _, p := range parts[1:] {
			switch {
			case p == "required":
				f.required, f.always = true, true
			case p == "always":
				f.always = true
			case p == "auto":
				f.auto = true
			case p == "integer":
				f.xsd = "integer"
			case strings.HasPrefix(p, "format="):
				f.format = strings.TrimPrefix(p, "format=")
			default:
				panic(fmt.Sprintf("bankstore: %s: bad tag option %q", t, p))
			}
		}
		fs = append(fs, f)
	}
	fieldCache.Store(t, fs)
	return fs
}

var (
	secretType = reflect.TypeFor[secret.Value]()
	addrType   = reflect.TypeFor[netip.Addr]()
)

// formatValue is the wire text of v; callers leave out zero values the seed
// does not require. A nil pointer gives "", a zero Date "", false "0".
func formatValue(v reflect.Value) (string, error) {
	switch v.Type() {
	case secretType:
		return v.Interface().(secret.Value).Reveal(), nil
	case addrType:
		if a := v.Interface().(netip.Addr); a.IsValid() {
			return a.String(), nil
		}
		return "", nil
	}
	if m, ok := v.Interface().(encoding.TextMarshaler); ok {
		b, err := m.MarshalText()
		return string(b), err
	}
	switch v.Kind() {
	case reflect.String:
		return v.String(), nil
	case reflect.Int, reflect.Int64:
		return strconv.FormatInt(v.Int(), 10), nil
	case reflect.Bool:
		if v.Bool() {
			return "1", nil
		}
		return "0", nil
	case reflect.Pointer:
		if v.IsNil() {
			return "", nil
		}
		return formatValue(v.Elem())
	}
	panic(fmt.Sprintf("bankstore: no wire form for %s", v.Type()))
}

// parseValue sets v from wire text s; "" leaves the zero value. Its errors
// describe the expected form and never quote s.
func parseValue(v reflect.Value, s string) error {
	if s == "" {
		v.SetZero()
		return nil
	}
	switch v.Type() {
	case secretType:
		v.Set(reflect.ValueOf(secret.New(s)))
		return nil
	case addrType:
		a, err := netip.ParseAddr(s)
		if err != nil {
			return errors.New("not an IP address")
		}
		v.Set(reflect.ValueOf(a))
		return nil
	}
	if u, ok := v.Addr().Interface().(encoding.TextUnmarshaler); ok {
		return u.UnmarshalText([]byte(s))
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
		return nil
	case reflect.Int, reflect.Int64:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || !isDigits(strings.TrimPrefix(s, "-")) {
			return errors.New("not a whole number")
		}
		v.SetInt(n)
		return nil
	case reflect.Bool:
		switch s {
		case "1":
			v.SetBool(true)
		case "0":
			v.SetBool(false)
		default:
			return errors.New("not 0 or 1")
		}
		return nil
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		if err := parseValue(p.Elem(), s); err != nil {
			return err
		}
		v.Set(p)
		return nil
	}
	panic(fmt.Sprintf("bankstore: no wire form for %s", v.Type()))
}

// element is one request element as sent.
type element struct {
	name, value, xsd string
}

// encodeRequest turns a request struct into its elements, in order, leaving
// out the client's own (merchant code, terminal, signature). It checks each
// against the seed's formats; an auto element left empty is kept, empty, for
// the client to fill. The secret values (PAN, CVV2) come back separately so
// that text from the server can be scrubbed of them.
func encodeRequest(op Operation, req reflect.Value) (elems []element, secrets []string, problems []error) {
	for _, f := range fieldsOf(req.Type()) {
		fv := req.Field(f.index)
		// A bool the seed requires is always given: false is a value.
		given := !fv.IsZero() || (fv.Kind() == reflect.Bool && f.always)
		switch {
		case !given && f.auto:
			elems = append(elems, element{name: f.name, xsd: f.xsd})
			continue
		case !given && f.required:
			problems = append(problems, inputError(op, f.name, "required"))
			continue
		case !given && !f.always:
			continue
		}
		text, err := formatValue(fv)
		if err == nil && given {
			err = checkFormat(f.format, text)
		}
		if err != nil {
			problems = append(problems, inputError(op, f.name, err.Error()))
			continue
		}
		if fv.Type() == secretType {
			secrets = append(secrets, text)
		}
		elems = append(elems, element{name: f.name, value: text, xsd: f.xsd})
	}
	return elems, secrets, problems
}

// decodeResponse fills a response struct from the answer's elements. Unknown
// elements are ignored; a known one that does not parse is a malformed
// answer.
func decodeResponse(op Operation, elems map[string]string, resp reflect.Value) error {
	var problems []error
	for _, f := range fieldsOf(resp.Type()) {
		if err := parseValue(resp.Field(f.index), elems[f.name]); err != nil {
			problems = append(problems, fmt.Errorf("%s: %w", f.name, err))
		}
	}
	if err := errors.Join(problems...); err != nil {
		return fmt.Errorf("bankstore: %s: %w: %w", op, ErrMalformedResponse, err)
	}
	return nil
}

// decodeRequest fills a request struct from element text keyed by element
// name, the command line's form. Every key must be one of op's elements,
// every required element must be there, and each value must parse.
func decodeRequest(op Operation, elems map[string]string, req reflect.Value) error {
	fields := fieldsOf(req.Type())
	byName := make(map[string]field, len(fields))
	for _, f := range fields {
		byName[f.name] = f
	}
	var problems []error
	for _, name := range slices.Sorted(maps.Keys(elems)) {
		switch name {
		case elemMerchantCode, elemTerminal:
			problems = append(problems, inputError(op, name, "comes from the configuration (PAYCOMET_MERCHANT_CODE, PAYCOMET_TERMINALS); leave it out"))
			continue
		case elemSignature:
			problems = append(problems, inputError(op, name, "is computed by the client; leave it out"))
			continue
		}
		f, ok := byName[name]
		if !ok {
			problems = append(problems, inputError(op, name, "is not an element of "+string(op)))
			continue
		}
		if err := parseValue(req.Field(f.index), elems[name]); err != nil {
			problems = append(problems, inputError(op, name, err.Error()))
		}
	}
	for _, f := range fields {
		if f.required && elems[f.name] == "" {
			problems = append(problems, inputError(op, f.name, "required"))
		}
	}
	return errors.Join(problems...)
}
