package events

import (
	"crypto/sha256"
	"encoding/hex"
	"net/url"
	"strconv"
)

// Idempotency keys (scheme "v2"). Event.ID is the first 32 hex digits (128
// bits) of SHA-256 over the key parts below, each written length-prefixed so
// that no two lists of parts encode alike. Fixed-length lower-case hex is
// safe as a NATS KV key and as Nats-Msg-Id.
//
//	signed, formula A:  "v2" | "signed" | terminal | terminal‖TransactionType‖Order‖Amount‖Currency | BankDateTime‖Response
//	signed, formula B:  "v2" | "signed" | terminal | terminal‖TransactionType‖Order‖DateTime | ""
//	card expiry (108):  "v2" | "card_expiry" | terminal | IdUser | MonthsToExpire
//	rejected:           random, see Rejected
//
// A signed key is the string the NotificationHash covers, in two parts cut
// where md5hex(Password) sits, without the merchant code and the password
// (configuration, and the password secret); the values are the received
// bytes; terminal is the one the signature was checked with (TpvID, or the
// single configured terminal when TpvID is absent, which gives the same
// hash). The key is that string, not the fields one by one, because the
// signature does not see where one field ends: Order "PN-11" with Amount
// "000" is signed exactly like Order "PN-1" with Amount "1000", and a key
// of separate fields would give such an edited replay a new id. For the same
// reason the key does not say which formula matched: types that try A and
// then B (106, operation_N) can be edited so that the other formula's
// string is the one signed (a B-signed notice with Amount set to its
// DateTime and Currency, BankDateTime and Response emptied verifies with A),
// and such a copy keeps its id.
//
// Why signed fields only: the signature covers its formula's fields and
// nothing else, and every published event's raw carries its hash. When the
// id also read AuthCode, ErrorID, IdUser, TokenUser or (for operation_N)
// every field, anyone who had seen one notification could replay it with
// such a field edited, get 200 and mint a new "signed" event (issue 8: a
// replayed payment with another TokenUser re-taught the refresher a token).
// Now a copy whose signed fields equal an accepted notification's has its
// id, so it is a duplicate whatever else it says; the receiver compares
// Fingerprint to tell an identical copy from a conflicting one.
//
// Known limit, accepted because it is what the signature allows: two
// operations whose signed fields are all equal share an id, and the second
// is taken for a copy of the first. Example: two partial refunds of one
// Order, for the same Amount and Currency, with BankDateTime equal to the
// second (formula A), or two card registrations (107) of one Order in the
// same second (formula B) that gave different IdUser. PAYCOMET itself
// cannot tell such notifications apart by their signature; a merchant that
// issues them learns the second from PAYCOMET's REST info (reconcile).
//
// A 108 is accepted only through its channel (URL_TOKEN or ALLOWED_IPS),
// which vouches for the whole notice, so its key reads its fields;
// successive expiry notices of one card differ in MonthsToExpire.
//
// Upgrading from "v1" (which read AuthCode, ErrorID, IdUser and all fields
// of operation_N) changes every id: a PAYCOMET retry that spans the upgrade
// is published once more under its v2 id (see CHANGELOG.md).
const keyScheme = "v2"

// ID hashes key parts into an event ID: the first 32 hex digits of SHA-256
// over the length-prefixed parts, so ("ab","c") and ("a","bc") differ. Every
// event id of the project comes from it, the refresher's outputs too, so ids
// have one shape and one collision argument; callers start their parts with
// a scheme tag of their own.
func ID(parts ...string) string {
	var buf [256]byte
	b := buf[:0]
	for _, p := range parts {
		b = appendPart(b, p)
	}
	return idOf(b)
}

// appendPart writes one key part, length-prefixed.
func appendPart[S string | []byte](b []byte, p S) []byte {
	b = strconv.AppendInt(b, int64(len(p)), 10)
	b = append(b, ':')
	return append(b, p...)
}

// idOf is the id of an encoded list of parts.
func idOf(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}

// signedKey is the id of a signature-authenticated notification: the
// string its formula hashed (form's decoded bytes), split at the password.
func signedKey(formula, terminal string, form url.Values) string {
	get := func(name string) string {
		if vs := form[name]; len(vs) > 0 {
			return vs[0] // Authenticate refused conflicting repeats
		}
		return ""
	}
	var buf [hashBufSize]byte
	head := append(buf[:0], terminal...)
	head = append(head, get(fTransactionType)...)
	head = append(head, get(fOrder)...)
	var tail []byte
	if formula == "B" {
		head = append(head, get(fDateTime)...)
	} else {
		head = append(head, get(fAmount)...)
		head = append(head, get(fCurrency)...)
		n := len(head)
		head = append(head, get(fBankDateTime)...)
		head = append(head, get(fResponse)...)
		head, tail = head[:n], head[n:]
	}
	var kbuf [hashBufSize + 64]byte
	k := appendPart(kbuf[:0], keyScheme)
	k = appendPart(k, "signed")
	k = appendPart(k, terminal)
	k = appendPart(k, head)
	k = appendPart(k, tail)
	return idOf(k) // = ID(keyScheme, "signed", terminal, string(head), string(tail))
}

func cardExpiryKey(terminal string, idUser int64, monthsToExpire int) string {
	return ID(keyScheme, "card_expiry", terminal, strconv.FormatInt(idUser, 10), strconv.Itoa(monthsToExpire))
}
