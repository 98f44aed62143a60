package bankstore

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"strings"
)

const (
	soapEnvelopeNS = "http://schemas.xmlsoap.org/soap/envelope/"
	soapEncodingNS = "http://schemas.xmlsoap.org/soap/encoding/"
)

// envelopeHead is the seed's example envelope up to the operation element,
// namespace declarations and all.
const envelopeHead = `<?xml version="1.0" encoding="UTF-8"?>
<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/" xmlns:SOAP-ENC="http://schemas.xmlsoap.org/soap/encoding/" xmlns:soap="http://schemas.xmlsoap.org/wsdl/soap/" xmlns:tns="urn:Paytpv_bankStoreGateway" xmlns:wsdl="http://schemas.xmlsoap.org/wsdl/" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <SOAP-ENV:Body>
`

// writeEnvelope builds a SOAP 1.1 rpc/encoded request shaped like the seed's
// examples: the operation element in the "mns" prefix (bound, as in the seed,
// to the envelope namespace, which is also the body namespace of PAYCOMET's
// WSDL) and one child per element with the seed's type="xsd:..." attribute.
// Values are XML-escaped; element names are our own constants.
func writeEnvelope(op Operation, elems []element) []byte {
	var b bytes.Buffer
	b.WriteString(envelopeHead)
	fmt.Fprintf(&b, "    <mns:%s xmlns:mns=%q SOAP-ENV:encodingStyle=%q>\n", op, soapEnvelopeNS, soapEncodingNS)
	for _, e := range elems {
		fmt.Fprintf(&b, "      <%s type=\"xsd:%s\">", e.name, e.xsd)
		xml.EscapeText(&b, []byte(e.value))
		fmt.Fprintf(&b, "</%s>\n", e.name)
	}
	fmt.Fprintf(&b, "    </mns:%s>\n  </SOAP-ENV:Body>\n</SOAP-ENV:Envelope>\n", op)
	return b.Bytes()
}

// soapAction is the SOAPAction header SOAP 1.1 asks for. The seed does not
// give it; this is the value of PAYCOMET's published WSDL binding.
func soapAction(op Operation) string {
	return `"` + soapEnvelopeNS + "#BankStore#" + string(op) + `"`
}

// Message is the content of a SOAP body: the local name of its first element
// (the operation, or "<operation>Response") and that element's leaf elements
// by local name, text trimmed.
type Message struct {
	Name     string
	Elements map[string]string
}

// ReadMessage parses a SOAP 1.1 envelope by local names, whatever prefixes
// and namespaces it uses. A body holding a Fault comes back as a *FaultError
// (its Op empty); anything that is not a complete envelope wraps
// ErrMalformedResponse. The fake server reads requests with it too.
func ReadMessage(r io.Reader) (Message, error) {
	type frame struct {
		name     string
		text     []byte
		hasChild bool
	}
	var (
		d        = xml.NewDecoder(r)
		stack    []frame
		msg      = Message{Elements: map[string]string{}}
		bodySeen bool
		done     bool // the body's first element has ended
	)
	inMessage := func() bool { return len(stack) >= 3 && stack[1].name == "Body" && !done }
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return Message{}, fmt.Errorf("%w: %w", ErrMalformedResponse, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if len(stack) > 0 {
				stack[len(stack)-1].hasChild = true
			}
			stack = append(stack, frame{name: t.Name.Local})
			switch len(stack) {
			case 1:
				if t.Name.Local != "Envelope" {
					return Message{}, fmt.Errorf("%w: root element is %s, not Envelope", ErrMalformedResponse, t.Name.Local)
				}
			case 2:
				bodySeen = bodySeen || t.Name.Local == "Body"
			case 3:
				if stack[1].name == "Body" && msg.Name == "" {
					msg.Name = t.Name.Local
				}
			}
		case xml.CharData:
			if len(stack) > 0 {
				top := &stack[len(stack)-1]
				top.text = append(top.text, t...)
			}
		case xml.EndElement:
			f := stack[len(stack)-1]
			if len(stack) >= 4 && inMessage() && !f.hasChild {
				if _, dup := msg.Elements[f.name]; !dup {
					msg.Elements[f.name] = strings.TrimSpace(string(f.text))
				}
			}
			if len(stack) == 3 && inMessage() {
				done = true
			}
			stack = stack[:len(stack)-1]
		}
	}
	switch {
	case len(stack) > 0 || !bodySeen:
		return Message{}, fmt.Errorf("%w: no SOAP envelope with a Body", ErrMalformedResponse)
	case msg.Name == "":
		return Message{}, fmt.Errorf("%w: empty SOAP Body", ErrMalformedResponse)
	case msg.Name == "Fault":
		return Message{}, &FaultError{Code: msg.Elements["faultcode"], String: msg.Elements["faultstring"]}
	}
	return msg, nil
}
