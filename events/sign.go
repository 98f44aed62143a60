package events

import (
	"crypto/md5"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"encoding/hex"
	"net/url"
	"strconv"
	"time"

	"github.com/paycomet-notify/paycomet-notify/config"
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

// SampleOptions describes a sample notification. Zero values take defaults
// that work against `serve --demo`.
type SampleOptions struct {
	Type         int    // TransactionType; default 1
	MerchantCode string // default config.DemoMerchantCode
	Terminal     string // default config.DemoTerminal
	Password     string // default config.DemoPassword
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
		o.Type = TypeAuthorization
	}
	if o.MerchantCode == "" {
		o.MerchantCode = config.DemoMerchantCode
	}
	if o.Terminal == "" {
		o.Terminal = config.DemoTerminal
	}
	if o.Password == "" {
		o.Password = config.DemoPassword
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
	when := o.When.In(madrid())
	if o.Order == "" {
		// yymmddhhmmss plus milliseconds, like the order in PAYCOMET's
		// e-mail sample (2010102711053676).
		o.Order = when.Format("060102150405") + strconv.Itoa(1000 + when.Nanosecond()/1e6)[1:]
	}
	ok := o.Response == "OK"
	if o.IdUser == 0 && (o.Type == TypeCardExpiry || (o.Type == TypeCardRegistration && ok) || (o.Type == TypeSubscription && o.Instalment)) {
		o.IdUser = 1_000_000 + int64(seed(o.Order, "iduser")%9_000_000)
	}
	if o.TokenUser == "" && o.IdUser != 0 {
		o.TokenUser = tokenFor(o.IdUser)
	}
	stamp := when.Format(stampLayout)
	tt := strconv.Itoa(o.Type)
	f := url.Values{}
	f.Set(fTransactionType, tt)
	f.Set(fTransactionName, transactionName(o.Type))

	switch o.Type {
	case TypeCardExpiry:
		f.Set(fIDUser, strconv.FormatInt(o.IdUser, 10))
		f.Set(fTerminal, o.Terminal)
		f.Set(fName, "Demo shop")
		f.Set(fDomain, "shop.example.com")
		f.Set(fMonthsToExpire, strconv.Itoa(o.MonthsToExpire))
		addExtra(f, o.Extra)
		if o.Signed && !o.Unsigned {
			Sign(f, o.MerchantCode, o.Password)
		}
		return f

	case TypeCardRegistration:
		f.Set(fOrder, o.Order)
		f.Set(fResponse, o.Response)
		f.Set(fDateTime, stamp)
		f.Set(fTpvID, o.Terminal)
		f.Set(fAccountCode, o.MerchantCode)
		if ok {
			f.Set(fErrorID, "0")
			f.Set(fIDUser, strconv.FormatInt(o.IdUser, 10))
			f.Set(fTokenUser, o.TokenUser)
			f.Set(fCardBrand, "VISA")
			f.Set(fCardCountry, "ES")
		} else {
			f.Set(fErrorID, strconv.Itoa(o.ErrorID))
			f.Set(fErrorDescription, errorDescription(o.ErrorID))
		}
		f.Set(fLanguage, "ES")

	default: // amount-bearing types, 106 and unknown types
		order := o.Order
		if o.Type == TypeSubscription && o.Instalment {
			order += "[" + strconv.FormatInt(o.IdUser, 10) + "]" + when.Format("20060102")
		}
		f.Set(fOrder, order)
		f.Set(fResponse, o.Response)
		f.Set(fAmount, strconv.FormatInt(o.Amount, 10))
		f.Set(fCurrency, o.Currency)
		if o.Currency == "EUR" {
			f.Set(fAmountEur, formatMinor(o.Amount, "EUR"))
		}
		f.Set(fBankDateTime, stamp)
		f.Set(fDateTime, stamp)
		f.Set(fTpvID, o.Terminal)
		f.Set(fAccountCode, o.MerchantCode)
		if ok {
			authCode := o.AuthCode
			if authCode == "" {
				authCode = authCodeFor(order, tt, o.Amount, stamp)
			}
			f.Set(fAuthCode, authCode)
			f.Set(fErrorID, "0")
		} else {
			f.Set(fErrorID, strconv.Itoa(o.ErrorID))
			f.Set(fErrorDescription, errorDescription(o.ErrorID))
		}
		if o.IdUser != 0 {
			f.Set(fIDUser, strconv.FormatInt(o.IdUser, 10))
			f.Set(fTokenUser, o.TokenUser)
		}
		f.Set(fMethodID, strconv.Itoa(o.MethodID))
		f.Set(fMethodName, methodName(o.MethodID))
		if o.MethodID == 1 {
			f.Set(fCardBrand, "VISA")
			f.Set(fCardCountry, "ES")
			f.Set(fBicCode, "BSABESBBXXX")
			f.Set(fSecurePayment, "1")
		}
		f.Set(fLanguage, "ES")
	}
	addExtra(f, o.Extra)
	if !o.Unsigned {
		Sign(f, o.MerchantCode, o.Password)
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
	case TypeAuthorization:
		return "Autorización"
	case TypeRefund:
		return "Devolución"
	case TypePreauthorization:
		return "Preautorización"
	case TypePreauthorizationCancel:
		return "Cancelación de preautorización"
	case TypePreauthorizationConfirm:
		return "Confirmación de preautorización"
	case TypeSubscription:
		return "Suscripción"
	case TypeDeferredPreauthorization:
		return "Preautorización diferida"
	case TypeDeferredPreauthorizationCancel:
		return "Cancelación de preautorización diferida"
	case TypeDeferredPreauthorizationConfirm:
		return "Confirmación de preautorización diferida"
	case TypeChargeback:
		return "Retroceso"
	case TypeCardRegistration:
		return "Alta de usuario"
	case TypeCardExpiry:
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
