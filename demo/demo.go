// Package demo holds the public demo credentials and the sample
// notification generator: what `serve --demo`, `send`, `loadgen`,
// `paycomet-fake` and tests use to produce notifications PAYCOMET would
// post. It is not the domain (package events is): nothing here may protect
// real money, and nothing in the receiver's path depends on it except
// config.ApplyDemo.
package demo

import (
	"crypto/sha256"
	"encoding/binary"
	"net/url"
	"strconv"
	"time"

	"github.com/paycomet-notify/paycomet-notify/events"
)

// Demo credentials used by `serve --demo`, `send --demo`, the refresher's demo
// and the BankStore fake's defaults. They are public on purpose: the demo
// prints them with a warning, and they must never protect real money.
const (
	MerchantCode = "DEMO0001"
	Terminal     = "1000"
	Password     = "demo-password-not-a-secret"
	URLToken     = "demo-url-token-0123456789abcdef"

	// The demo card: `send --demo` registers it (107) and announces its
	// expiry (108), and `paycomet-fake` knows it, so the refresher's whole
	// flow runs without flags. It expires in December 2026.
	IDUser     int64 = 4242
	TokenUser        = "DEMOtoken4242"
	CardPAN          = "4548812049400004"
	CardExpiry       = "1226"
)

// stampLayout is PAYCOMET's yyyymmddhhmmss, written in Europe/Madrid.
const stampLayout = "20060102150405"

// euros renders euro cents as PAYCOMET's AmountEur ("10.00").
func euros(cents int64) string {
	s := strconv.FormatInt(cents, 10)
	for len(s) < 3 {
		s = "0" + s
	}
	return s[:len(s)-2] + "." + s[len(s)-2:]
}

// SampleOptions describes a sample notification. Zero values take defaults
// that work against `serve --demo`.
type SampleOptions struct {
	Type         int    // TransactionType; default 1
	MerchantCode string // default MerchantCode
	Terminal     string // default Terminal
	Password     string // default Password
	Order        string // default derived from When, unique per millisecond
	Response     string // "OK" (default) or "KO"; anything else is sent as given
	Amount       int64  // minor units; default 1000
	Currency     string // default "EUR"
	IdUser       int64  // BankStore user; default derived from Order on 107 OK and 108, else none
	TokenUser    string // default derived from IdUser when IdUser is set
	// MonthsToExpire is the 108 notice's value; default 1.
	MonthsToExpire int
	// ErrorID is the KO's error code; default 105 (insufficient funds).
	ErrorID int
	// AuthCode overrides the AuthCode of an OK; default derived from Order,
	// Type, Amount and When, so a given sample always has the same
	// idempotency key.
	AuthCode string
	// Instalment makes a subscription (9) Order PAYCOMET's instalment form
	// "<Order>[<IdUser>]<yyyymmdd>".
	Instalment bool
	// MethodID is the payment method; default 1 (card).
	MethodID int
	// When is the bank's time, written in Europe/Madrid; default now.
	When time.Time
	// Extra fields are added as given, after the rest and before signing:
	// the way to add a merchant query parameter or override a field.
	Extra url.Values
	// Unsigned leaves NotificationHash out. A 108 is always unsigned unless
	// Signed is set.
	Unsigned bool
	// Signed signs a 108 as well (with formula A), as a future PAYCOMET might.
	Signed bool
}

// Sample produces a realistic, correctly signed notification of any type,
// with the fields the notifications doc (sections 2 and 4) lists for it, so
// `send`, `loadgen` and tests exercise what PAYCOMET really posts.
// Sample(SampleOptions{Type: 1}) is accepted by `serve --demo`.
func Sample(o SampleOptions) url.Values {
	if o.Type == 0 {
		o.Type = events.TypeAuthorization
	}
	if o.MerchantCode == "" {
		o.MerchantCode = MerchantCode
	}
	if o.Terminal == "" {
		o.Terminal = Terminal
	}
	if o.Password == "" {
		o.Password = Password
	}
	if o.Response == "" {
		o.Response = "OK"
	}
	if o.Amount == 0 {
		o.Amount = 1000
	}
	if o.Currency == "" {
		o.Currency = "EUR"
	}
	if o.MonthsToExpire == 0 {
		o.MonthsToExpire = 1
	}
	if o.ErrorID == 0 {
		o.ErrorID = 105
	}
	if o.MethodID == 0 {
		o.MethodID = 1
	}
	if o.When.IsZero() {
		o.When = time.Now()
	}
	when := o.When.In(events.Madrid())
	if o.Order == "" {
		// yymmddhhmmss plus milliseconds, like the order in PAYCOMET's
		// e-mail sample (2010102711053676).
		o.Order = when.Format("060102150405") + strconv.Itoa(1000 + when.Nanosecond()/1e6)[1:]
	}
	ok := o.Response == "OK"
	if o.IdUser == 0 && (o.Type == events.TypeCardExpiry || (o.Type == events.TypeCardRegistration && ok) || (o.Type == events.TypeSubscription && o.Instalment)) {
		o.IdUser = 1_000_000 + int64(seed(o.Order, "iduser")%9_000_000)
	}
	if o.TokenUser == "" && o.IdUser != 0 {
		o.TokenUser = tokenFor(o.IdUser)
	}
	stamp := when.Format(stampLayout)
	tt := strconv.Itoa(o.Type)
	f := url.Values{}
	f.Set("TransactionType", tt)
	f.Set("TransactionName", transactionName(o.Type))

	switch o.Type {
	case events.TypeCardExpiry:
		f.Set("IdUser", strconv.FormatInt(o.IdUser, 10))
		f.Set("Terminal", o.Terminal)
		f.Set("Name", "Demo shop")
		f.Set("Domain", "shop.example.com")
		f.Set("MonthsToExpire", strconv.Itoa(o.MonthsToExpire))
		addExtra(f, o.Extra)
		if o.Signed && !o.Unsigned {
			events.Sign(f, o.MerchantCode, o.Password)
		}
		return f

	case events.TypeCardRegistration:
		f.Set("Order", o.Order)
		f.Set("Response", o.Response)
		f.Set("DateTime", stamp)
		f.Set("TpvID", o.Terminal)
		f.Set("AccountCode", o.MerchantCode)
		if ok {
			f.Set("ErrorID", "0")
			f.Set("IdUser", strconv.FormatInt(o.IdUser, 10))
			f.Set("TokenUser", o.TokenUser)
			f.Set("CardBrand", "VISA")
			f.Set("CardCountry", "ES")
		} else {
			f.Set("ErrorID", strconv.Itoa(o.ErrorID))
			f.Set("ErrorDescription", errorDescription(o.ErrorID))
		}
		f.Set("Language", "ES")

	default: // amount-bearing types, 106 and unknown types
		order := o.Order
		if o.Type == events.TypeSubscription && o.Instalment {
			order += "[" + strconv.FormatInt(o.IdUser, 10) + "]" + when.Format("20060102")
		}
		f.Set("Order", order)
		f.Set("Response", o.Response)
		f.Set("Amount", strconv.FormatInt(o.Amount, 10))
		f.Set("Currency", o.Currency)
		if o.Currency == "EUR" {
			f.Set("AmountEur", euros(o.Amount))
		}
		f.Set("BankDateTime", stamp)
		f.Set("DateTime", stamp)
		f.Set("TpvID", o.Terminal)
		f.Set("AccountCode", o.MerchantCode)
		if ok {
			authCode := o.AuthCode
			if authCode == "" {
				authCode = authCodeFor(order, tt, o.Amount, stamp)
			}
			f.Set("AuthCode", authCode)
			f.Set("ErrorID", "0")
		} else {
			f.Set("ErrorID", strconv.Itoa(o.ErrorID))
			f.Set("ErrorDescription", errorDescription(o.ErrorID))
		}
		if o.IdUser != 0 {
			f.Set("IdUser", strconv.FormatInt(o.IdUser, 10))
			f.Set("TokenUser", o.TokenUser)
		}
		f.Set("MethodId", strconv.Itoa(o.MethodID))
		f.Set("MethodName", methodName(o.MethodID))
		if o.MethodID == 1 {
			f.Set("CardBrand", "VISA")
			f.Set("CardCountry", "ES")
			f.Set("BicCode", "BSABESBBXXX")
			f.Set("SecurePayment", "1")
		}
		f.Set("Language", "ES")
	}
	addExtra(f, o.Extra)
	if !o.Unsigned {
		events.Sign(f, o.MerchantCode, o.Password)
	}
	return f
}

func addExtra(f, extra url.Values) {
	for k, vs := range extra {
		f[k] = append([]string(nil), vs...)
	}
}

// seed derives a stable number from sample inputs, so a sample's AuthCode,
// IdUser and TokenUser (and therefore its idempotency key) are reproducible.
func seed(parts ...string) uint64 {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return binary.BigEndian.Uint64(h.Sum(nil))
}

// authCodeFor has PAYCOMET's AuthCode shape: six digits, a slash, a long
// number (802335/120098123810102711053606007000 in the docs). Two operations
// on one Order at different times (two partial refunds) get different codes,
// as they do at PAYCOMET.
func authCodeFor(order, tt string, amount int64, stamp string) string {
	s := seed(order, tt, strconv.FormatInt(amount, 10), stamp)
	return strconv.FormatUint(100000+s%900000, 10) + "/" + strconv.FormatUint(1_000_000_000+(s>>20)%9_000_000_000, 10)
}

// tokenFor is a TokenUser-looking alphanumeric string for a user id.
func tokenFor(idUser int64) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	sum := sha256.Sum256([]byte("token:" + strconv.FormatInt(idUser, 10)))
	b := make([]byte, 20) // DS_TOKEN_USER is [A-Za-z0-9]{1,20}
	for i := range b {
		b[i] = alphabet[int(sum[i])%len(alphabet)]
	}
	return string(b)
}

// transactionName is PAYCOMET's Spanish TransactionName; it is not ASCII on
// purpose, so samples exercise form encoding.
func transactionName(t int) string {
	switch t {
	case events.TypeAuthorization:
		return "Autorización"
	case events.TypeRefund:
		return "Devolución"
	case events.TypePreauthorization:
		return "Preautorización"
	case events.TypePreauthorizationCancel:
		return "Cancelación de preautorización"
	case events.TypePreauthorizationConfirm:
		return "Confirmación de preautorización"
	case events.TypeSubscription:
		return "Suscripción"
	case events.TypeDeferredPreauthorization:
		return "Preautorización diferida"
	case events.TypeDeferredPreauthorizationCancel:
		return "Cancelación de preautorización diferida"
	case events.TypeDeferredPreauthorizationConfirm:
		return "Confirmación de preautorización diferida"
	case events.TypeChargeback:
		return "Retroceso"
	case events.TypeCardRegistration:
		return "Alta de usuario"
	case events.TypeCardExpiry:
		return "Caducidad tarjeta"
	}
	return "Operación " + strconv.Itoa(t)
}

func methodName(id int) string {
	switch id {
	case 1:
		return "Tarjeta"
	case 10:
		return "PayPal"
	case 11:
		return "Bizum"
	case 16:
		return "Multibanco"
	case 38:
		return "MB WAY"
	}
	return "Método " + strconv.Itoa(id)
}

func errorDescription(id int) string {
	switch id {
	case 105:
		return "Insufficient funds"
	case 100:
		return "Expired credit card"
	case 184:
		return "3DS authentication cancelled"
	case 1001:
		return "User not found"
	}
	return "Error " + strconv.Itoa(id)
}
