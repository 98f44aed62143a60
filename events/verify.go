package events

import (
	"crypto/md5"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/hex"
	"log/slog"
	"net/url"
	"slices"
	"strings"

	"github.com/paycomet-notify/paycomet-notify/secret"
)

// Verifier authenticates notifications for one PAYCOMET merchant code and its
// terminals. It is immutable after NewVerifier and safe for concurrent use.
type Verifier struct {
	merchantCode string
	keys         map[string]terminalKey
	single       string // the only configured terminal; "" when there are several
}

// terminalKey is what the formulas need from a password: its lower-case MD5
// hex, computed once instead of on every request.
type terminalKey struct {
	md5hex [md5.Size * 2]byte
}

// NewVerifier precomputes md5hex(password) per terminal once, so the hot path
// only hashes the notification's own fields.
func NewVerifier(merchantCode string, terminals map[string]secret.Value) *Verifier {
	v := &Verifier{merchantCode: merchantCode, keys: make(map[string]terminalKey, len(terminals))}
	for id, pw := range terminals {
		var k terminalKey
		sum := md5.Sum([]byte(pw.Reveal()))
		hex.Encode(k.md5hex[:], sum[:])
		v.keys[id] = k
		if len(terminals) == 1 {
			v.single = id
		}
	}
	return v
}

// String describes the Verifier without its keys: md5hex(password) signs as
// well as the password itself, so it must not reach a log through %v.
func (v Verifier) String() string {
	ids := make([]string, 0, len(v.keys))
	for id := range v.keys {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return "events.Verifier{merchant_code: " + quote(v.merchantCode) + ", terminals: [" + strings.Join(ids, " ") + "]}"
}

// GoString redacts like String, for %#v.
func (v Verifier) GoString() string { return v.String() }

// LogValue redacts like String, for slog.
func (v Verifier) LogValue() slog.Value { return slog.StringValue(v.String()) }

// Channel says how the request reached us; the handler fills it. It matters
// only for the card-expiry notice (108), which PAYCOMET does not sign.
type Channel struct {
	URLToken  bool // came through the secret URL_TOKEN path
	AllowedIP bool // ALLOWED_IPS is configured and the source is in it
}

// AuthMethod is how a notification was authenticated; events carry it as
// data.authenticated_by so consumers can weigh an unsigned notice.
type AuthMethod string

// The authentication methods of contract section 5.
const (
	AuthSignature   AuthMethod = "signature"
	AuthURLToken    AuthMethod = "url_token"
	AuthIPAllowlist AuthMethod = "ip_allowlist"
)

// Auth is the proof Parse needs: which terminal's credentials matched and how.
type Auth struct {
	Terminal string     // TpvID (Terminal on 108); the single configured terminal when TpvID is absent
	Method   AuthMethod // "" unless Authenticate succeeded
	Formula  string     // "A" or "B" when a signature matched, else ""
	Type     int        // parsed TransactionType
	// SignedFields names the received fields whose values went into the
	// matching NotificationHash, in formula order (contract section 5): not
	// NotificationHash itself, not TpvID when it was absent and the single
	// configured terminal was used, not a formula input that was absent.
	// Empty unless Method is AuthSignature: a channel vouches for a whole
	// notice, a signature only for these. Shared between calls: do not
	// modify.
	SignedFields []string
}

// Authenticate checks form before anything is parsed beyond TransactionType
// and the terminal, following contract section 5 and the notifications doc
// section 5: formula A for amount-bearing types, B for 107, A then B for types
// no plugin has observed, and for an unsigned 108 the channel.
//
// A 108 that does carry a NotificationHash is verified like an unknown type,
// as the notifications doc recommends, but neither formula reads a field a
// 108 has: its hash is the same for every notice of a terminal and does not
// protect IdUser or MonthsToExpire. That is why consumers confirm a 108 with
// BankStore info_user whatever authenticated_by says.
//
// On error the returned Auth holds what was learnt before the failure (Type,
// and Terminal when it was resolved) for metrics and logs; its Method is
// empty and it must not be passed to Parse. Errors are *FieldError (400) or
// *AuthError (401).
func (v *Verifier) Authenticate(form url.Values, ch Channel) (Auth, error) {
	var a Auth
	ttRaw, err := value(form, fTransactionType)
	if err != nil {
		return a, err
	}
	if a.Type, err = transactionType(ttRaw); err != nil {
		return a, err
	}

	terminalField := fTpvID
	if a.Type == TypeCardExpiry {
		terminalField = fTerminal
	}
	terminal, err := value(form, terminalField)
	if err != nil {
		return a, err
	}
	if terminal == "" {
		switch {
		case v.single != "":
			terminal = v.single
		case len(v.keys) == 0:
			return a, authError(ErrUnknownTerminal, "no terminal is configured")
		default:
			return a, &FieldError{Field: terminalField, Problem: "missing, and several terminals are configured"}
		}
	}
	key, ok := v.keys[terminal]
	if !ok {
		return a, authError(ErrUnknownTerminal, terminalField+" "+quote(terminal))
	}
	a.Terminal = terminal

	hash, err := value(form, fNotificationHash)
	if err != nil {
		return a, err
	}
	// A 108 is accepted only through the URL token or an allowed source,
	// even when it carries a NotificationHash: neither formula reads a field
	// a 108 has, so such a hash is one constant per terminal that anyone who
	// saw it once could replay with any IdUser (see
	// TestSignedCardExpiryCoversNoField). A hash that is present must still
	// verify; Formula stays empty, since the channel is the proof.
	var channel AuthMethod
	if a.Type == TypeCardExpiry {
		switch {
		case ch.URLToken:
			channel = AuthURLToken
		case ch.AllowedIP:
			channel = AuthIPAllowlist
		default:
			return a, authError(ErrUnsignedNotAllowed, "type 108 is accepted only through URL_TOKEN or ALLOWED_IPS")
		}
		if hash == "" {
			a.Method = channel
			return a, nil
		}
	}
	if hash == "" {
		return a, authError(ErrMissingSignature, "")
	}

	var got [sha512.Size]byte
	if !decodeHex(got[:], hash) {
		return a, authError(ErrBadSignature, "not 128 hexadecimal digits")
	}
	tryA, tryB := formulas(a.Type)
	if tryA {
		want, err := v.formulaA(&key, terminal, ttRaw, form)
		if err != nil {
			return a, err
		}
		if subtle.ConstantTimeCompare(got[:], want[:]) == 1 {
			return signedBy(a, channel, "A", form), nil
		}
	}
	if tryB {
		want, err := v.formulaB(&key, terminal, ttRaw, form)
		if err != nil {
			return a, err
		}
		if subtle.ConstantTimeCompare(got[:], want[:]) == 1 {
			return signedBy(a, channel, "B", form), nil
		}
	}
	return a, authError(ErrBadSignature, "")
}

// signedBy is the Auth of a matching hash: the signature itself, or for a
// 108 the channel it came through.
func signedBy(a Auth, channel AuthMethod, formula string, form url.Values) Auth {
	if channel != "" {
		a.Method, a.Formula = channel, ""
		return a
	}
	a.Method, a.Formula = AuthSignature, formula
	a.SignedFields = signedFields(formula, form)
	return a
}

// The received fields each formula reads, in formula order (the merchant
// code and password are configuration, not fields).
var (
	signedA = []string{fTpvID, fTransactionType, fOrder, fAmount, fCurrency, fBankDateTime, fResponse}
	signedB = []string{fTpvID, fTransactionType, fOrder, fDateTime}
)

// signedFields is Auth.SignedFields: the formula's inputs that form has.
// When all are present (every real notification) it returns the shared list
// without allocating; the slice is clipped, so an append by a caller copies.
func signedFields(formula string, form url.Values) []string {
	all := signedA
	if formula == "B" {
		all = signedB
	}
	n := 0
	for _, k := range all {
		if len(form[k]) > 0 {
			n++
		}
	}
	if n == len(all) {
		return all[:len(all):len(all)]
	}
	out := make([]string, 0, n)
	for _, k := range all {
		if len(form[k]) > 0 {
			out = append(out, k)
		}
	}
	return out
}

// hashBufSize covers a realistic notification's formula input on the stack;
// longer inputs still work, append just moves to the heap.
const hashBufSize = 512

// formulaA is sha512(MerchantCode‖Terminal‖TransactionType‖Order‖Amount‖
// Currency‖md5hex(Password)‖BankDateTime‖Response) over the raw strings.
func (v *Verifier) formulaA(k *terminalKey, terminal, tt string, form url.Values) ([sha512.Size]byte, error) {
	var sum [sha512.Size]byte
	var fields [5]string
	for i, name := range [...]string{fOrder, fAmount, fCurrency, fBankDateTime, fResponse} {
		s, err := value(form, name)
		if err != nil {
			return sum, err
		}
		fields[i] = s
	}
	var buf [hashBufSize]byte
	b := append(buf[:0], v.merchantCode...)
	b = append(b, terminal...)
	b = append(b, tt...)
	b = append(b, fields[0]...)
	b = append(b, fields[1]...)
	b = append(b, fields[2]...)
	b = append(b, k.md5hex[:]...)
	b = append(b, fields[3]...)
	b = append(b, fields[4]...)
	return sha512.Sum512(b), nil
}

// formulaB is sha512(MerchantCode‖Terminal‖TransactionType‖Order‖DateTime‖
// md5hex(Password)), the card registration (107) signature.
func (v *Verifier) formulaB(k *terminalKey, terminal, tt string, form url.Values) ([sha512.Size]byte, error) {
	var sum [sha512.Size]byte
	order, err := value(form, fOrder)
	if err != nil {
		return sum, err
	}
	dateTime, err := value(form, fDateTime)
	if err != nil {
		return sum, err
	}
	var buf [hashBufSize]byte
	b := append(buf[:0], v.merchantCode...)
	b = append(b, terminal...)
	b = append(b, tt...)
	b = append(b, order...)
	b = append(b, dateTime...)
	b = append(b, k.md5hex[:]...)
	return sha512.Sum512(b), nil
}

// decodeHex decodes exactly len(dst)*2 hex digits of either case without
// allocating; PAYCOMET sends lower case (PHP's hash()), but case is not part
// of the signature.
func decodeHex(dst []byte, s string) bool {
	if len(s) != 2*len(dst) {
		return false
	}
	for i := range dst {
		hi, ok1 := unhex(s[2*i])
		lo, ok2 := unhex(s[2*i+1])
		if !ok1 || !ok2 {
			return false
		}
		dst[i] = hi<<4 | lo
	}
	return true
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
