package events

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/url"
	"slices"
	"strconv"
	"time"
)

// ErrStale is wrapped by CheckFresh's *FieldError: a correctly signed
// notification whose signed timestamp lies outside the window in which the
// receiver remembers notifications, so it cannot be told apart from a
// replay (contract section 5).
var ErrStale = errors.New("signed timestamp outside the dedupe window")

// MaxAhead is how far a signed timestamp may be ahead of the receiver's
// clock (PAYCOMET's and ours may drift; more than this is not drift).
const MaxAhead = time.Hour

// CheckFresh refuses a signature-authenticated event whose signed timestamp
// (the formula's: BankDateTime for formula A, DateTime for formula B, read
// in Europe/Madrid) is older than maxAge (DEDUPE_TTL) or more than MaxAhead
// ahead of now. The error is a *FieldError naming that field and wrapping
// ErrStale. Exactly maxAge old, or exactly MaxAhead ahead, is still fresh.
// A timestamp that is missing or not yyyymmddhhmmss (possible for
// operation_N, whose fields are optional) cannot show that the notification
// is recent, so it is refused the same way. Events authenticated by their
// channel (url_token, ip_allowlist) carry no signed time: nil.
func CheckFresh(ev Event, auth Auth, now time.Time, maxAge time.Duration) error {
	if auth.Method != AuthSignature {
		return nil
	}
	field := fBankDateTime
	if auth.Formula == "B" {
		field = fDateTime
	}
	var s string
	if m := metaOf(ev.Data); m != nil {
		s = m.Raw[field]
	}
	t, ok := parseStamp(s)
	if !ok {
		p := "missing"
		if s != "" {
			p = quote(s) + " is not a yyyymmddhhmmss time"
		}
		return &FieldError{Field: field, Problem: p + ", so the notification cannot be shown to be recent", Err: ErrStale}
	}
	switch age := now.Sub(t); {
	case age > maxAge:
		return &FieldError{Field: field, Problem: quote(s) + " (Europe/Madrid) is older than the " + maxAge.String() + " the receiver remembers notifications for", Err: ErrStale}
	case -age > MaxAhead:
		return &FieldError{Field: field, Problem: quote(s) + " (Europe/Madrid) is more than " + MaxAhead.String() + " ahead of the receiver's clock", Err: ErrStale}
	}
	return nil
}

// metaOf is the Meta of a notification's data, nil for other data.
func metaOf(data any) *Meta {
	switch d := data.(type) {
	case Authorization:
		return &d.Meta
	case Refund:
		return &d.Meta
	case Preauthorization:
		return &d.Meta
	case PreauthorizationCancel:
		return &d.Meta
	case PreauthorizationConfirm:
		return &d.Meta
	case Subscription:
		return &d.Meta
	case DeferredPreauthorization:
		return &d.Meta
	case DeferredPreauthorizationCancel:
		return &d.Meta
	case DeferredPreauthorizationConfirm:
		return &d.Meta
	case Chargeback:
		return &d.Meta
	case CardRegistration:
		return &d.Meta
	case CardExpiry:
		return &d.Meta
	case OtherOperation:
		return &d.Meta
	}
	return nil
}

// Fingerprint identifies a copy of a notification by everything it said:
// 32 lower-case hex digits of SHA-256 over its (name, value) pairs, body and
// query merged, as a multiset: the order of fields, and of the values of a
// repeated field, does not count; a pair more or less, or one byte of any
// name or value, does. Two copies with the same event id and equal
// fingerprints are identical; different fingerprints make the later one a
// conflicting copy (contract section 5).
func Fingerprint(v url.Values) string {
	var nbuf [48]string
	names := nbuf[:0]
	for k := range v {
		names = append(names, k)
	}
	slices.Sort(names)
	var buf [2048]byte // a notification's pairs fit; larger forms move to the heap
	b := buf[:0]
	var vbuf [4]string
	for _, k := range names {
		vs := v[k]
		if len(vs) > 1 && !slices.IsSorted(vs) {
			vs = append(vbuf[:0], vs...)
			slices.Sort(vs)
		}
		for _, s := range vs {
			b = strconv.AppendInt(b, int64(len(k)), 10)
			b = append(b, ':')
			b = append(b, k...)
			b = strconv.AppendInt(b, int64(len(s)), 10)
			b = append(b, ':')
			b = append(b, s...)
		}
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}
