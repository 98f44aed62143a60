package bankstore

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// FuzzReadAnswer feeds arbitrary bytes to the response path the client uses
// (ReadMessage, then readAnswer into every operation's response type). It
// must never panic, and every failure must be one of the kinds callers branch
// on: a malformed answer, a SOAP fault or a PAYCOMET error.
func FuzzReadAnswer(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.xml"))
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add(b[:len(b)/2]) // truncated
	}
	env := func(body string) []byte {
		return []byte(`<?xml version="1.0" encoding="UTF-8"?><SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/"><SOAP-ENV:Body>` +
			body + `</SOAP-ENV:Body></SOAP-ENV:Envelope>`)
	}
	f.Add(env(`<ns1:info_userResponse xmlns:ns1="urn:x"><DS_MERCHANT_PAN>XXXXXXXXXXXX0004</DS_MERCHANT_PAN><DS_EXPIRYDATE>2026/12</DS_EXPIRYDATE><DS_CARD_BRAND>VISA</DS_CARD_BRAND><DS_SEPA_CARD>1</DS_SEPA_CARD><DS_ERROR_ID>0</DS_ERROR_ID></ns1:info_userResponse>`))
	f.Add(env(`<m:add_userResponse xmlns:m="urn:x"><DS_IDUSER>4242</DS_IDUSER><DS_TOKEN_USER>abc</DS_TOKEN_USER><DS_ERROR_ID></DS_ERROR_ID></m:add_userResponse>`))
	f.Add(env(`<r><DS_ERROR_ID>1001</DS_ERROR_ID></r>`))
	f.Add(env(`<r><DS_MERCHANT_AMOUNT>-5</DS_MERCHANT_AMOUNT><DS_ERROR_ID>x</DS_ERROR_ID></r>`))
	f.Add(env(`<SOAP-ENV:Fault><faultcode>SOAP-ENV:Server</faultcode><faultstring>boom</faultstring></SOAP-ENV:Fault>`))
	f.Add([]byte(`<Envelope><Body></Body></Envelope>`))
	f.Add([]byte(`not xml at all`))

	f.Fuzz(func(t *testing.T, data []byte) {
		msg, err := ReadMessage(bytes.NewReader(data))
		if err != nil {
			var fe *FaultError
			if !errors.Is(err, ErrMalformedResponse) && !errors.As(err, &fe) {
				t.Fatalf("ReadMessage error %v (%T) is neither malformed nor a fault", err, err)
			}
			return
		}
		if msg.Name == "" || msg.Elements == nil {
			t.Fatalf("ReadMessage succeeded with %+v", msg)
		}
		for _, s := range specs {
			resp := reflect.New(s.resp).Elem()
			err := readAnswer(s.op, msg.Elements, resp)
			if err == nil {
				continue
			}
			var pe *Error
			if !errors.Is(err, ErrMalformedResponse) && !errors.As(err, &pe) {
				t.Fatalf("readAnswer(%s) error %v (%T) is neither malformed nor a PAYCOMET error", s.op, err, err)
			}
			if pe != nil && pe.Code == 0 {
				t.Fatalf("readAnswer(%s) returned a PAYCOMET error with code 0", s.op)
			}
		}
	})
}
