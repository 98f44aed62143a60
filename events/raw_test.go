package events

import (
	"encoding/json"
	"testing"
)

func TestRawEncodesLikeEncodingJSON(t *testing.T) {
	cases := []Raw{
		nil,
		{},
		{"Order": "PN-1", "TransactionName": "Autorización", "AuthCode": "802335/1200"},
		{"<html>": "a&b>c", `q"uote`: `back\slash`, "ctl": "\x00\x01\b\f\n\r\t\x1f\x7f", "ls": "\u2028\u2029"},
		{"bad utf8": "\xff\xfe", "mixed": "ok\xc3(", "emoji": "💳 café"},
		{"": ""},
	}
	for _, r := range cases {
		got, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		want, err := json.Marshal(map[string]string(r))
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Errorf("json.Marshal(Raw) = %s, want %s", got, want)
		}
	}
}

func FuzzRawEncodesLikeEncodingJSON(f *testing.F) {
	f.Add("Order", "PN-1", "TransactionName", "Autorización")
	f.Add("<", "\xff", "\u2028", "\x00")
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2 string) {
		r := Raw{k1: v1, k2: v2}
		got, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := json.Marshal(map[string]string(r))
		if string(got) != string(want) {
			t.Errorf("json.Marshal(Raw) = %s, want %s", got, want)
		}
	})
}
