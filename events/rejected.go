package events

import (
	"crypto/rand"
	"encoding/hex"
	"strings"
	"time"
	"unicode/utf8"
)

// RejectedRequest is the request as it arrived, kept so that `quarantine
// replay` can run it again: data.request of a rejected event.
type RejectedRequest struct {
	// Body is the body's bytes (base64 in JSON), at most MAX_BODY_BYTES.
	Body []byte `json:"body"`
	// Truncated is true when the body was longer than MAX_BODY_BYTES and
	// Body holds only its first MAX_BODY_BYTES bytes.
	Truncated bool `json:"truncated"`
	// Query is the raw query string (URL.RawQuery); bytes that are not
	// valid UTF-8 are written as %XX, which means the same in a URL.
	Query string `json:"query"`
	// ContentType is the Content-Type header as sent (invalid UTF-8 as %XX).
	ContentType string `json:"content_type"`
	// URLTokenPath is true when the request came through the URL_TOKEN path.
	URLTokenPath bool `json:"url_token_path"`
}

// RejectedInput is what Rejected records about one refused request.
type RejectedInput struct {
	Reason     string // a Reason* code
	Detail     string // the sentence a person reads (the 4xx body); Reason when empty
	Status     int    // the HTTP status answered
	Form       Form   // the decoded fields; zero when the body could not be decoded
	Request    RejectedRequest
	Source     string // the client's address (no port)
	ReceivedAt time.Time
	Terminal   string // the terminal the request named or authenticated as, if known
	EventID    string // id of the accepted event it copies, for conflicting_copy
}

// Rejected builds the quarantine event (type "paycomet.rejected", subject
// "<prefix>.rejected") of one refused request, so that nothing PAYCOMET sent
// is lost silently and it can be replayed. Its id is random (128 bits):
// every rejected request is its own message, never merged with another
// (ten different 415 bodies are ten messages). Its source is
// "/paycomet/notifications": the terminal a rejected request names is
// unproven, so it does not get a terminal's source. Its subject is the
// Order, percent-encoded as in data.raw when not valid UTF-8.
func Rejected(in RejectedInput) Event {
	fields, enc := in.Form.fields()
	subject := ""
	if vs := in.Form.values[fOrder]; len(vs) > 0 {
		subject = vs[0]
		if w := in.Form.wire[fOrder]; w != nil {
			subject = w.values[0]
		}
	}
	req := in.Request
	if req.Body == nil {
		req.Body = []byte{}
	}
	req.Query = validText(req.Query)
	req.ContentType = validText(req.ContentType)
	detail := in.Detail
	if detail == "" {
		detail = in.Reason
	}
	return Event{
		ID:         randomID(),
		Source:     "/paycomet/notifications",
		Type:       EventTypeRejected,
		Subject:    subject,
		Time:       in.ReceivedAt,
		DataSchema: "schemas/rejected.v1.json",
		Data: Rejection{
			Reason:            in.Reason,
			Detail:            validText(detail),
			Status:            in.Status,
			Source:            in.Source,
			ReceivedAt:        in.ReceivedAt,
			Terminal:          validText(in.Terminal),
			EventID:           in.EventID,
			Fields:            fields,
			RawPercentEncoded: enc,
			Request:           req,
		},
		Operation: OperationRejected,
	}
}

// randomID is 32 lower-case hex digits from crypto/rand, the shape of every
// event id.
func randomID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand documents it)
	return hex.EncodeToString(b[:])
}

// validText writes the bytes of s that are not valid UTF-8 as %XX, so JSON
// keeps them instead of replacing them with U+FFFD.
func validText(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b.WriteByte('%')
			b.WriteByte(upperHex[s[i]>>4])
			b.WriteByte(upperHex[s[i]&0xF])
		} else {
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

const upperHex = "0123456789ABCDEF"
