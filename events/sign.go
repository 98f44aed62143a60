package events

import (
	"crypto/md5"
	"crypto/sha512"
	"encoding/hex"
	"net/url"
	"strconv"
)

// SignA computes formula A, PAYCOMET's NotificationHash for amount-bearing
// types, over the raw strings. It exists for tests, `send` and `loadgen`, the
// way stripe-go's webhook package ships a signed-payload helper: producing
// valid notifications must not require reimplementing the formula.
func SignA(merchantCode, terminal, transactionType, order, amount, currency, password, bankDateTime, response string) string {
	return sha512hex(merchantCode + terminal + transactionType + order + amount + currency + md5hex(password) + bankDateTime + response)
}

// SignB computes formula B, the card registration (107) NotificationHash.
func SignB(merchantCode, terminal, transactionType, order, dateTime, password string) string {
	return sha512hex(merchantCode + terminal + transactionType + order + dateTime + md5hex(password))
}

// Sign sets form's NotificationHash with the formula its TransactionType uses
// (B for 107, A for every other type, including a signed 108), taking the
// terminal from TpvID (Terminal on 108) and every other input from form.
func Sign(form url.Values, merchantCode, password string) {
	tt := form.Get(fTransactionType)
	terminalField := fTpvID
	if tt == strconv.Itoa(TypeCardExpiry) {
		terminalField = fTerminal
	}
	terminal := form.Get(terminalField)
	var h string
	if tt == strconv.Itoa(TypeCardRegistration) {
		h = SignB(merchantCode, terminal, tt, form.Get(fOrder), form.Get(fDateTime), password)
	} else {
		h = SignA(merchantCode, terminal, tt, form.Get(fOrder), form.Get(fAmount), form.Get(fCurrency),
			password, form.Get(fBankDateTime), form.Get(fResponse))
	}
	form.Set(fNotificationHash, h)
}

func md5hex(s string) string {
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

func sha512hex(s string) string {
	sum := sha512.Sum512([]byte(s))
	return hex.EncodeToString(sum[:])
}
