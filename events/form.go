package events

import (
	"bytes"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// MaxFields bounds how many name=value pairs DecodeForm accepts, body and
// query together. A PAYCOMET notification has about 25; the bound keeps an
// attacker's 12,000-field body from costing a map of 12,000 entries (and a
// quarantine message of them) on every request.
const MaxFields = 1000

// Form is a received notification's fields: the body's and then the query
// string's, merged as PAYCOMET's own plugins merge them ($_REQUEST). Values
// holds the decoded bytes exactly (a Go string may hold invalid UTF-8), which
// is what the signature and Fingerprint read; for every field whose name or
// one of whose values is not valid UTF-8, Form also remembers the wire text
// (exactly as received, e.g. "%ff"; a byte that arrived unescaped and is
// not UTF-8 written as %XX, which decodes the same), which is what data.raw
// shows instead of bytes JSON cannot carry. The zero Form has no fields.
type Form struct {
	values url.Values
	// wire is set only for fields with invalid UTF-8 in the name or a value:
	// the field's name and each of its values as they were on the wire.
	wire map[string]*wireField
	// spare backs the first value of every field, one allocation instead
	// of one per field (used while decoding only).
	spare []string
}

type wireField struct {
	name   string
	values []string
}

// DecodeForm decodes an application/x-www-form-urlencoded body and a raw
// query string (URL.RawQuery) with the rules of url.ParseQuery ('&'
// separates pairs, '+' is a space, %XX an escaped byte, a pair without '='
// has an empty value, empty pairs are skipped), keeping every byte. It
// refuses, with a *FieldError whose Field is "body" or "query": an invalid
// %-escape, an unescaped ';' (which url.ParseQuery refuses too), and more
// than MaxFields pairs in all.
func DecodeForm(body []byte, query string) (Form, error) {
	var f Form
	pairs := min(bytes.Count(body, []byte{'&'})+strings.Count(query, "&")+2, MaxFields)
	f.values = make(url.Values, pairs)
	f.spare = make([]string, 0, pairs)
	n := 0
	if err := f.decode(string(body), "body", &n); err != nil {
		return Form{}, err
	}
	if err := f.decode(query, "query", &n); err != nil {
		return Form{}, err
	}
	f.spare = nil
	return f, nil
}

func (f *Form) decode(s, part string, n *int) error {
	for s != "" {
		var pair string
		pair, s, _ = cutByte(s, '&')
		if pair == "" {
			continue
		}
		*n++
		if *n > MaxFields {
			return &FieldError{Field: part, Problem: "more than " + strconv.Itoa(MaxFields) + " fields"}
		}
		wireName, wireValue, _ := cutByte(pair, '=')
		name, ok := unescape(wireName)
		if !ok {
			return &FieldError{Field: part, Problem: "field " + strconv.Itoa(*n) + " has an invalid %-escape in its name " + quote(wireName)}
		}
		value, ok := unescape(wireValue)
		if !ok {
			return &FieldError{Field: part, Problem: "field " + strconv.Itoa(*n) + " has an invalid %-escape in its value"}
		}
		if hasByte(pair, ';') {
			return &FieldError{Field: part, Problem: "field " + strconv.Itoa(*n) + " contains an unescaped ';'"}
		}
		f.add(name, value, wireName, wireValue)
	}
	return nil
}

// add appends one pair; wireName and wireValue are its wire text.
func (f *Form) add(name, value, wireName, wireValue string) {
	if f.values == nil {
		f.values = make(url.Values, 32)
	}
	prev := f.values[name]
	if prev == nil && len(f.spare) < cap(f.spare) {
		// cap 1: a second value of the field appends to a copy
		f.spare = append(f.spare, value)
		f.values[name] = f.spare[len(f.spare)-1 : len(f.spare) : len(f.spare)]
	} else {
		f.values[name] = append(prev, value)
	}
	w := f.wire[name]
	if w == nil && utf8.ValidString(name) && utf8.ValidString(value) {
		return
	}
	if f.wire == nil {
		f.wire = make(map[string]*wireField)
	}
	if w == nil {
		// The field becomes percent-encoded now: its earlier values (valid
		// UTF-8, decoded) are given their canonical escape.
		w = &wireField{name: validText(wireName), values: make([]string, 0, len(prev)+1)}
		for _, v := range prev {
			w.values = append(w.values, url.QueryEscape(v))
		}
		f.wire[name] = w
	}
	w.values = append(w.values, validText(wireValue))
}

// FormFromValues makes a Form of fields that were decoded already (tests,
// loadgen, a form built in code). A name or value that is not valid UTF-8
// gets url.QueryEscape's text as its wire text.
func FormFromValues(v url.Values) Form {
	f := Form{values: v}
	for name, vs := range v {
		bad := !utf8.ValidString(name)
		for _, s := range vs {
			bad = bad || !utf8.ValidString(s)
		}
		if !bad {
			continue
		}
		if f.wire == nil {
			f.wire = make(map[string]*wireField)
		}
		w := &wireField{name: url.QueryEscape(name), values: make([]string, len(vs))}
		for i, s := range vs {
			w.values[i] = url.QueryEscape(s)
		}
		f.wire[name] = w
	}
	return f
}

// Values is the fields with their decoded bytes, what Authenticate and
// Fingerprint read. It is the Form's own map: do not modify it.
func (f Form) Values() url.Values { return f.values }

// Len is the number of distinct field names.
func (f Form) Len() int { return len(f.values) }

// rawName is name as data.raw shows it: as on the wire when the field is
// percent-encoded.
func (f Form) rawName(name string) (string, bool) {
	if w := f.wire[name]; w != nil {
		return w.name, true
	}
	return name, false
}

// raw collapses the Form into data.raw (one value per field, as value
// does) and lists the percent-encoded names (sorted, nil when none). A
// field given percent-encoded whose wire name equals the name of a field
// given as text (the name "%ff" sent as %25ff next to the byte 0xff sent as
// %ff) could not be told apart from it in data.raw and is refused with a
// *FieldError, as is a field given twice with different values.
func (f Form) raw() (Raw, []string, error) {
	raw := make(Raw, len(f.values))
	var bad []string
	for k, vs := range f.values {
		if len(vs) == 0 {
			continue
		}
		v, err := value(f.values, k)
		if err != nil {
			bad = append(bad, k)
			continue
		}
		if f.wire[k] == nil {
			raw[k] = v
		}
	}
	var enc []string
	for k, w := range f.wire {
		if len(w.values) == 0 || slices.Contains(bad, k) {
			continue
		}
		if _, clash := raw[w.name]; clash {
			return nil, nil, &FieldError{Field: w.name, Problem: "given both as text and percent-encoded"}
		}
		raw[w.name] = w.values[0]
		enc = append(enc, w.name)
	}
	if len(bad) > 0 {
		slices.Sort(bad)
		name, _ := f.rawName(bad[0])
		return nil, nil, conflict(name)
	}
	slices.Sort(enc)
	return raw, enc, nil
}

// fields is every field with all its values, as data.fields of a rejected
// request shows them (percent-encoded ones as on the wire), and the sorted
// percent-encoded names. A clash of a wire name with a text name (see raw)
// merges their values: the request's body, kept byte for byte, is the record
// there.
func (f Form) fields() (map[string][]string, []string) {
	if f.values == nil {
		return nil, nil
	}
	out := make(map[string][]string, len(f.values))
	for k, vs := range f.values {
		if f.wire[k] == nil {
			out[k] = append(out[k], vs...)
		}
	}
	var enc []string
	for _, w := range f.wire {
		out[w.name] = append(out[w.name], w.values...)
		enc = append(enc, w.name)
	}
	slices.Sort(enc)
	return out, slices.Compact(enc)
}

// text is name's single value as data shows it (percent-encoded as on the
// wire when not valid UTF-8), "" when absent; call it after raw succeeded.
func (f Form) text(raw Raw, name string) string {
	if w := f.wire[name]; w != nil {
		if len(w.values) == 0 {
			return ""
		}
		return w.values[0]
	}
	return raw[name]
}

// cutByte is strings.Cut for one byte.
func cutByte(s string, c byte) (before, after string, found bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

func hasByte(s string, c byte) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return true
		}
	}
	return false
}

// unescape is url.QueryUnescape without its error value's allocation, and
// without allocating when there is nothing to unescape.
func unescape(s string) (string, bool) {
	n := 0
	plus := false
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '%':
			if i+2 >= len(s) {
				return "", false
			}
			if _, ok := unhex(s[i+1]); !ok {
				return "", false
			}
			if _, ok := unhex(s[i+2]); !ok {
				return "", false
			}
			n++
			i += 2
		case '+':
			plus = true
		}
	}
	if n == 0 && !plus {
		return s, true
	}
	b := make([]byte, 0, len(s)-2*n)
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '%':
			hi, _ := unhex(s[i+1])
			lo, _ := unhex(s[i+2])
			b = append(b, hi<<4|lo)
			i += 2
		case '+':
			b = append(b, ' ')
		default:
			b = append(b, c)
		}
	}
	return string(b), true
}
