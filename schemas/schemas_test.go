package schemas

import (
	"encoding/json"
	"errors"
	"io/fs"
	"strings"
	"testing"
)

// authorization is valid authorization data, as the events package produces.
const authorization = `{
  "terminal": "1000", "transaction_type": 1, "order": "PN-1", "response": "OK",
  "amount": 1000, "currency": "EUR", "amount_display": "10.00", "amount_eur": 1000,
  "bank_date_time": "2026-11-24T10:15:00+01:00", "auth_code": "802335/1200",
  "error_id": 0, "id_user": 4823117, "token_user": "tok", "method_id": 1, "secure_payment": true,
  "authenticated_by": "signature", "signature_formula": "A",
  "signed_fields": ["TpvID", "TransactionType", "Order", "Amount", "Currency", "BankDateTime", "Response"],
  "received_at": "2026-11-24T09:15:03Z",
  "raw": {"TransactionType": "1", "Order": "PN-1", "tpvLstr": "notify", "%ff": "%fe"},
  "raw_percent_encoded": ["%ff"]
}`

// edit applies changes to a JSON object: a nil value deletes the member.
func edit(t *testing.T, doc string, changes map[string]any) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(doc), &m); err != nil {
		t.Fatal(err)
	}
	for k, v := range changes {
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestAuthorization(t *testing.T) {
	const s = "schemas/authorization.v1.json"
	if err := Validate(s, []byte(authorization)); err != nil {
		t.Fatalf("Validate(valid) = %v", err)
	}
	bad := []struct {
		name    string
		changes map[string]any
	}{
		{"lower-case currency", map[string]any{"currency": "eur"}},
		{"numeric currency", map[string]any{"currency": "978"}},
		{"missing order", map[string]any{"order": nil}},
		{"empty order", map[string]any{"order": ""}},
		{"missing amount", map[string]any{"amount": nil}},
		{"amount as string", map[string]any{"amount": "1000"}},
		{"fractional amount", map[string]any{"amount": 10.5}},
		{"negative amount", map[string]any{"amount": -1}},
		{"amount_display with comma", map[string]any{"amount_display": "10,00"}},
		{"PAYCOMET timestamp", map[string]any{"bank_date_time": "20261124101500"}},
		{"timestamp without offset", map[string]any{"bank_date_time": "2026-11-24T10:15:00"}},
		{"unknown response", map[string]any{"response": "MAYBE"}},
		{"another type", map[string]any{"transaction_type": 2}},
		{"error_id as string", map[string]any{"error_id": "0"}},
		{"secure_payment as number", map[string]any{"secure_payment": 1}},
		{"id_user as string", map[string]any{"id_user": "4823117"}},
		{"unknown member", map[string]any{"surprise": 1}},
		{"instalment outside subscription", map[string]any{"instalment": map[string]any{"original_order": "a", "id_user": 1, "date": "2026-01-01"}}},
		{"signature without formula", map[string]any{"signature_formula": nil}},
		{"formula without signature", map[string]any{"authenticated_by": "url_token"}},
		{"unknown method", map[string]any{"authenticated_by": "trust_me", "signature_formula": nil}},
		{"raw with a number", map[string]any{"raw": map[string]any{"Amount": 1000}}},
		{"missing raw", map[string]any{"raw": nil}},
		{"missing received_at", map[string]any{"received_at": nil}},
		{"missing signed_fields", map[string]any{"signed_fields": nil}},
		{"null signed_fields", map[string]any{"signed_fields": []any(nil)}},
		{"signed_fields without TransactionType", map[string]any{"signed_fields": []any{"Order"}}},
		{"signed_fields naming an unsigned field", map[string]any{"signed_fields": []any{"TransactionType", "AuthCode"}}},
		{"signed_fields repeated", map[string]any{"signed_fields": []any{"TransactionType", "TransactionType"}}},
		{"signed_fields through a channel", map[string]any{"authenticated_by": "url_token", "signature_formula": nil}},
		{"empty raw_percent_encoded", map[string]any{"raw_percent_encoded": []any{}}},
		{"raw_percent_encoded not a list", map[string]any{"raw_percent_encoded": "%ff"}},
		{"non-numeric terminal", map[string]any{"terminal": "T1"}},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			if err := Validate(s, edit(t, authorization, tc.changes)); err == nil {
				t.Errorf("Validate(%v) = nil, want an error", tc.changes)
			}
		})
	}
}

func TestOtherSchemas(t *testing.T) {
	meta := `"authenticated_by": "signature", "signature_formula": "B", "signed_fields": ["TransactionType", "Order", "DateTime"], "received_at": "2026-11-24T09:15:03Z", "raw": {}`
	channel := `"authenticated_by":"url_token","signed_fields":[],"received_at":"2026-11-24T09:15:03Z","raw":{}`
	req := `"request":{"body":"VHJhbnNhY3Rpb25UeXBlPQ==","truncated":false,"query":"","content_type":"application/x-www-form-urlencoded","url_token_path":false}`
	tests := []struct {
		schema string
		data   string
		valid  bool
	}{
		{"schemas/subscription.v1.json", `{"terminal":"1","transaction_type":9,"order":"S[7]20261224","response":"OK","amount":999,"currency":"EUR","amount_display":"9.99","bank_date_time":"2026-12-24T10:15:00+01:00","instalment":{"original_order":"S","id_user":7,"date":"2026-12-24"},` + meta + `}`, true},
		{"schemas/subscription.v1.json", `{"terminal":"1","transaction_type":9,"order":"S[7]20261224","response":"OK","amount":999,"currency":"EUR","amount_display":"9.99","bank_date_time":"2026-12-24T10:15:00+01:00","instalment":{"original_order":"S","id_user":7,"date":"24/12/2026"},` + meta + `}`, false},
		{"schemas/card_registration.v1.json", `{"terminal":"1","transaction_type":107,"order":"o","response":"OK","date_time":"2026-11-24T10:15:00+01:00","id_user":7,"token_user":"t",` + meta + `}`, true},
		{"schemas/card_registration.v1.json", `{"terminal":"1","transaction_type":107,"order":"o","response":"OK","date_time":"2026-11-24T10:15:00+01:00","id_user":7,` + meta + `}`, false},
		{"schemas/card_registration.v1.json", `{"terminal":"1","transaction_type":107,"order":"o","response":"KO","date_time":"2026-11-24T10:15:00+01:00","error_id":1005,` + meta + `}`, true},
		{"schemas/card_registration.v1.json", `{"terminal":"1","transaction_type":107,"response":"KO","date_time":"2026-11-24T10:15:00+01:00",` + meta + `}`, false},
		{"schemas/card_expiry.v1.json", `{"terminal":"1","transaction_type":108,"id_user":7,"months_to_expire":1,` + channel + `}`, true},
		{"schemas/card_expiry.v1.json", `{"terminal":"1","transaction_type":108,"id_user":7,"months_to_expire":"1",` + channel + `}`, false},
		{"schemas/card_expiry.v1.json", `{"terminal":"1","transaction_type":108,"id_user":7,"months_to_expire":1,"token_user":"t",` + channel + `}`, false},
		{"schemas/operation.v1.json", `{"terminal":"1","transaction_type":200,` + meta + `}`, true},
		{"schemas/operation.v1.json", `{"terminal":"1","transaction_type":1,` + meta + `}`, false},
		{"schemas/operation.v1.json", `{"terminal":"1","transaction_type":200,"amount":5,` + meta + `}`, false},
		{"schemas/operation.v1.json", `{"terminal":"1","transaction_type":200,"amount":5,"currency":"EUR","amount_display":"0.05",` + meta + `}`, true},
		{"schemas/rejected.v1.json", `{"reason":"malformed","detail":"TransactionType: missing","status":400,"source":"192.0.2.1","received_at":"2026-11-24T09:15:03Z","fields":{"Amount":["1","2"]},` + req + `}`, true},
		{"schemas/rejected.v1.json", `{"reason":"too_large","detail":"body over 65536 bytes","status":413,"source":"192.0.2.1","received_at":"2026-11-24T09:15:03Z",` + req + `}`, true},
		{"schemas/rejected.v1.json", `{"reason":"conflicting_copy","detail":"d","status":200,"source":"192.0.2.1","received_at":"2026-11-24T09:15:03Z","terminal":"1000","event_id":"0123456789abcdef0123456789abcdef","fields":{"%ff":["%fe"]},"raw_percent_encoded":["%ff"],` + req + `}`, true},
		{"schemas/rejected.v1.json", `{"reason":"TransactionType: missing","detail":"d","status":400,"source":"192.0.2.1","received_at":"2026-11-24T09:15:03Z",` + req + `}`, false},
		{"schemas/rejected.v1.json", `{"reason":"malformed","detail":"d","status":400,"source":"192.0.2.1","received_at":"2026-11-24T09:15:03Z"}`, false},
		{"schemas/rejected.v1.json", `{"reason":"malformed","detail":"d","status":503,"source":"192.0.2.1","received_at":"2026-11-24T09:15:03Z",` + req + `}`, false},
		{"schemas/rejected.v1.json", `{"reason":"malformed","detail":"d","status":400,"source":"192.0.2.1","received_at":"2026-11-24T09:15:03Z","fields":{"Amount":"1"},` + req + `}`, false},
		{"schemas/rejected.v1.json", `{"reason":"malformed","detail":"d","status":400,"source":"192.0.2.1","received_at":"2026-11-24T09:15:03Z","extra":true,` + req + `}`, false},
		{"schemas/rejected.v1.json", `{"reason":"malformed","detail":"d","status":400,"source":"192.0.2.1","received_at":"2026-11-24T09:15:03Z","request":{"body":"not base64!","truncated":false,"query":"","content_type":"","url_token_path":false}}`, false},
		{"schemas/rejected.v1.json", `{"reason":"malformed","detail":"d","status":400,"source":"192.0.2.1","received_at":"2026-11-24T09:15:03Z","request":{"body":"","truncated":false,"query":"","content_type":"","url_token_path":false,"extra":1}}`, false},
		{"schemas/rejected.v1.json", `{"reason":"malformed","detail":"d","status":400,"source":"192.0.2.1","received_at":"2026-11-24T09:15:03Z","event_id":"x",` + req + `}`, false},
	}
	for _, tc := range tests {
		err := Validate(tc.schema, []byte(tc.data))
		if (err == nil) != tc.valid {
			t.Errorf("Validate(%s, %s) = %v, want valid=%v", tc.schema, tc.data, err, tc.valid)
		}
	}
}

func TestEveryFileCompiles(t *testing.T) {
	names, err := fs.Glob(FS, "*.json")
	if err != nil || len(names) < 15 {
		t.Fatalf("embedded schemas: %v, %v", names, err)
	}
	for _, name := range names {
		// An object that no event schema accepts: a compile error would
		// surface here as something other than a validation error.
		err := Validate(Prefix+name, []byte(`{"surprise": true}`))
		if err != nil && (errors.Is(err, ErrUnknownSchema) || strings.Contains(err.Error(), "compile")) {
			t.Errorf("%s: %v", name, err)
		}
		if name != "common.v1.json" && err == nil {
			t.Errorf("%s accepts an arbitrary object", name)
		}
	}
}

func TestValidateInputs(t *testing.T) {
	for _, s := range []string{"schemas/nope.v1.json", "", "schemas/../schemas.go", "https://example.com/authorization.v1.json"} {
		if err := Validate(s, []byte(`{}`)); !errors.Is(err, ErrUnknownSchema) {
			t.Errorf("Validate(%q) = %v, want %v", s, err, ErrUnknownSchema)
		}
	}
	if err := Validate("authorization.v1.json", []byte(authorization)); err != nil {
		t.Errorf("Validate(bare file name) = %v", err)
	}
	if err := Validate("schemas/authorization.v1.json", []byte(`{"terminal":`)); err == nil {
		t.Error("Validate(truncated JSON) = nil")
	}
}

func TestValidateEvent(t *testing.T) {
	event := func(data string) []byte {
		return []byte(`{"specversion":"1.0","id":"x","type":"paycomet.authorization.ok","dataschema":"schemas/authorization.v1.json","data":` + data + `}`)
	}
	if err := ValidateEvent(event(authorization)); err != nil {
		t.Fatalf("ValidateEvent(valid authorization) = %v", err)
	}
	if err := ValidateEvent(event(`{"terminal": "1000"}`)); err == nil {
		t.Error("ValidateEvent(data missing its required members) = nil, want an error")
	}
	if err := ValidateEvent([]byte(`{"dataschema":"schemas/nope.v1.json","data":{}}`)); !errors.Is(err, ErrUnknownSchema) {
		t.Errorf("ValidateEvent(unknown schema) = %v, want ErrUnknownSchema", err)
	}
	if err := ValidateEvent([]byte(`not json`)); err == nil {
		t.Error("ValidateEvent(not JSON) = nil, want an error")
	}
}
