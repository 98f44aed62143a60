package events

import (
	"bytes"
	"reflect"
	"testing"
	"time"
)

// fill sets every field of v, recursively, to a non-zero value that needs
// escaping where it is a string, so that an encoder skipping or misordering
// any member differs from encoding/json.
func fill(t *testing.T, v reflect.Value) {
	t.Helper()
	switch v.Kind() {
	case reflect.String:
		v.SetString(`x<&>"é` + "\u2028\x01")
	case reflect.Int, reflect.Int64:
		v.SetInt(-42)
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		fill(t, p.Elem())
		v.Set(p)
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		for _, k := range []string{"b", "A", "<a>"} {
			e := reflect.New(v.Type().Elem()).Elem()
			fill(t, e)
			m.SetMapIndex(reflect.ValueOf(k).Convert(v.Type().Key()), e)
		}
		v.Set(m)
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 2, 2)
		fill(t, s.Index(0))
		fill(t, s.Index(1))
		v.Set(s)
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() {
			v.Set(reflect.ValueOf(time.Date(2026, 3, 29, 2, 30, 0, 123456789, Madrid())))
			return
		}
		for i := range v.NumField() {
			fill(t, v.Field(i))
		}
	default:
		t.Fatalf("fill: no value for %s", v.Type())
	}
}

var fastTypes = []any{
	Authorization{}, Refund{}, Preauthorization{}, PreauthorizationCancel{}, PreauthorizationConfirm{},
	Subscription{}, DeferredPreauthorization{}, DeferredPreauthorizationCancel{}, DeferredPreauthorizationConfirm{},
	Chargeback{}, CardRegistration{}, CardExpiry{}, OtherOperation{},
}

func sameEncoding(t *testing.T, name string, e Event) {
	t.Helper()
	fast, ok := e.encodeFast()
	want, err := e.encodeReflect()
	if err != nil {
		t.Fatalf("%s: encoding/json: %v", name, err)
	}
	if !ok {
		t.Fatalf("%s: the fast encoder refused %T", name, e.Data)
	}
	if !bytes.Equal(fast, want) {
		t.Errorf("%s: fast encoding differs from encoding/json:\nfast: %s\njson: %s", name, fast, want)
	}
}

func TestFastEncodingMatchesEncodingJSON(t *testing.T) {
	base := Event{ID: "0123456789abcdef0123456789abcdef", Source: "/paycomet/terminals/1", Type: "paycomet.x.ok",
		Subject: "<&>", Time: receivedAt, DataSchema: "schemas/x.v1.json"}
	for _, zero := range fastTypes {
		typ := reflect.TypeOf(zero)
		full := reflect.New(typ).Elem()
		fill(t, full)
		e := base
		e.Data = full.Interface()
		sameEncoding(t, typ.Name()+" with every field", e)
		e.TraceParent = `00-<&>"` + "\u2028"
		sameEncoding(t, typ.Name()+" with every field and a traceparent", e)
		e.TraceParent = ""
		e.Data = zero
		e.Subject = ""
		sameEncoding(t, typ.Name()+" empty", e)
	}
	v := demoVerifier()
	for _, fx := range loadFixtures(t) {
		a, err := v.Authenticate(fx.form, Channel{URLToken: true})
		if err != nil {
			continue
		}
		e, err := Parse(FormFromValues(fx.form), a, receivedAt)
		if err != nil {
			continue
		}
		sameEncoding(t, fx.name, e)
	}
	if _, ok := (Event{Data: Rejection{}}).encodeFast(); ok {
		t.Error("Rejection is left to encoding/json, yet the fast encoder took it")
	}
	// Years encoding/json refuses make Encode fail the same way.
	e := base
	e.Data = CardExpiry{Meta: Meta{ReceivedAt: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}}
	if _, err := e.Encode(); err == nil {
		t.Error("Encode of a year-10000 time succeeded")
	}
}

func TestEncodeAllocations(t *testing.T) {
	var f map[string][]string
	for _, fx := range loadFixtures(t) {
		if fx.name == "authorization_ok" {
			f = fx.form
		}
	}
	a, err := demoVerifier().Authenticate(f, Channel{})
	if err != nil {
		t.Fatal(err)
	}
	e, err := Parse(FormFromValues(f), a, receivedAt)
	if err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = e.Encode() }); n > 8 {
		t.Errorf("Encode allocates %v times, want at most 8", n)
	}
}
