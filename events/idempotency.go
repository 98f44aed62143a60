package events

import (
	"crypto/sha256"
	"encoding/hex"
	"net"
	"slices"
	"strconv"
)

// Idempotency keys. Event.ID is the first 32 hex digits (128 bits) of
// SHA-256 over the key parts below, each written length-prefixed so that no
// two lists of parts encode alike. Fixed-length lower-case hex is safe as a
// NATS KV key and as Nats-Msg-Id.
//
// The parts are chosen so that a copy of a notification (a PAYCOMET retry, or
// the same field sent in body and query) gives the same ID, while distinct
// notifications never share one:
//
//	payment OK or SF, with AuthCode:  terminal | type | Order | Response | "auth" | AuthCode
//	payment OK or SF, no AuthCode:    terminal | type | Order | Response | "bank" | BankDateTime | Amount | Currency
//	payment KO:                       terminal | type | Order | "KO" | BankDateTime | ErrorID
//	card registration (107) OK:       terminal | Order | "OK" | IdUser
//	card registration (107) KO or SF: terminal | Order | Response | DateTime | ErrorID | IdUser
//	card expiry (108):                terminal | IdUser | MonthsToExpire
//	operation_N:                      terminal | type | every field, sorted by name, except the signatures
//	rejected:                         reason | status | every value of every field | remote address without port
//
// Why these: the type separates a refund from the payment it refunds and a
// chargeback from both; Response separates a KO from the later OK of the same
// Order; AuthCode is PAYCOMET's id of the operation, so two partial refunds of
// one Order differ, and it is what the official plugins dedupe on; a KO has
// no AuthCode, so the bank time and error tell two refused attempts apart;
// successive expiry notices of one card differ in MonthsToExpire. The
// signature fields are left out of operation_N keys because they are derived
// from the others. Every key starts with a scheme tag, so changing a scheme
// never collides with an older one.
const keyScheme = "v1"

// ID hashes key parts into an event ID: the first 32 hex digits of SHA-256
// over the length-prefixed parts, so ("ab","c") and ("a","bc") differ. Every
// event id of the project comes from it, the refresher's outputs too, so ids
// have one shape and one collision argument; callers start their parts with
// a scheme tag of their own.
func ID(parts ...string) string {
	n := 0
	for _, p := range parts {
		n += len(p) + 8
	}
	b := make([]byte, 0, n)
	for _, p := range parts {
		b = strconv.AppendInt(b, int64(len(p)), 10)
		b = append(b, ':')
		b = append(b, p...)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}

func paymentKey(terminal string, typ int, order, response, authCode, bankDateTime string, amount int64, currency, errorID string) string {
	t := strconv.Itoa(typ)
	switch {
	case response == "KO":
		return ID(keyScheme, "payment", terminal, t, order, response, bankDateTime, errorID)
	case authCode != "":
		return ID(keyScheme, "payment", terminal, t, order, response, "auth", authCode)
	default:
		return ID(keyScheme, "payment", terminal, t, order, response, "bank", bankDateTime, strconv.FormatInt(amount, 10), currency)
	}
}

func cardRegistrationKey(terminal, order, response, idUser, dateTime, errorID string) string {
	if response == "OK" {
		return ID(keyScheme, "card_registration", terminal, order, response, idUser)
	}
	return ID(keyScheme, "card_registration", terminal, order, response, dateTime, errorID, idUser)
}

func cardExpiryKey(terminal string, idUser int64, monthsToExpire int) string {
	return ID(keyScheme, "card_expiry", terminal, strconv.FormatInt(idUser, 10), strconv.Itoa(monthsToExpire))
}

// signatureFields are derived from the other fields, so they add nothing to
// an operation_N key; leaving them out keeps the ID stable if PAYCOMET ever
// adds or drops a legacy signature on a retry.
func isSignatureField(name string) bool {
	return name == fNotificationHash || name == fExtendedSig || name == fSignature
}

func otherKey(terminal string, typ int, raw Raw) string {
	names := make([]string, 0, len(raw))
	for k := range raw {
		if !isSignatureField(k) {
			names = append(names, k)
		}
	}
	slices.Sort(names)
	parts := make([]string, 0, 4+2*len(names))
	parts = append(parts, keyScheme, "operation", terminal, strconv.Itoa(typ))
	for _, k := range names {
		parts = append(parts, k, raw[k])
	}
	return ID(parts...)
}

func rejectedKey(reason string, status int, fields map[string][]string, remoteAddr string) string {
	parts := []string{keyScheme, "rejected", reason, strconv.Itoa(status), hostOnly(remoteAddr)}
	if fields == nil {
		parts = append(parts, "no-body")
	} else {
		parts = append(parts, "body")
		names := make([]string, 0, len(fields))
		for k := range fields {
			names = append(names, k)
		}
		slices.Sort(names)
		for _, k := range names {
			parts = append(parts, k, strconv.Itoa(len(fields[k])))
			parts = append(parts, fields[k]...)
		}
	}
	return ID(parts...)
}

// hostOnly drops an ephemeral source port, so that PAYCOMET retrying the same
// bad request from the same host is one quarantined event, not many.
func hostOnly(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}
