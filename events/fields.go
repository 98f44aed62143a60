package events

import (
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
	_ "time/tzdata" // Europe/Madrid must resolve in scratch and distroless images too
)

// PAYCOMET's field names (notifications doc section 2), case-sensitive.
const (
	fTransactionType  = "TransactionType"
	fTransactionName  = "TransactionName"
	fOrder            = "Order"
	fResponse         = "Response"
	fErrorID          = "ErrorID"
	fErrorDescription = "ErrorDescription"
	fAuthCode         = "AuthCode"
	fAmount           = "Amount"
	fAmountEur        = "AmountEur"
	fCurrency         = "Currency"
	fBankDateTime     = "BankDateTime"
	fDateTime         = "DateTime"
	fTpvID            = "TpvID"
	fTerminal         = "Terminal"
	fAccountCode      = "AccountCode"
	fNotificationHash = "NotificationHash"
	fExtendedSig      = "ExtendedSignature"
	fSignature        = "Signature"
	fIDUser           = "IdUser"
	fTokenUser        = "TokenUser"
	fMethodID         = "MethodId"
	fMethodName       = "MethodName"
	fCardBrand        = "CardBrand"
	fCardCountry      = "CardCountry"
	fBicCode          = "BicCode"
	fSecurePayment    = "SecurePayment"
	fLanguage         = "Language"
	fMonthsToExpire   = "MonthsToExpire"
	fName             = "Name"
	fDomain           = "Domain"
)

// value is form's single value for name, "" when absent. PAYCOMET's plugins
// read $_REQUEST, which merges body and query; a field that arrives in both
// with the same value is one field, with different values it is ambiguous
// (which one did PAYCOMET sign?) and therefore malformed.
func value(form url.Values, name string) (string, error) {
	vs := form[name]
	if len(vs) == 0 {
		return "", nil
	}
	for _, v := range vs[1:] {
		if v != vs[0] {
			return "", conflict(name)
		}
	}
	return vs[0], nil
}

func conflict(name string) *FieldError {
	return &FieldError{Field: name, Problem: "given more than once with different values"}
}

// isDigits reports a non-empty run of ASCII digits: PAYCOMET's integers have
// no sign, no spaces and no thousands separators.
func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// parseUint parses digits into an int64, refusing signs and overflow.
func parseUint(s string) (int64, bool) {
	if !isDigits(s) {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

// parseInt parses an optionally negative integer (MonthsToExpire).
func parseInt(s string) (int, bool) {
	d := strings.TrimPrefix(s, "-")
	if !isDigits(d) {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	return n, err == nil
}

// transactionType parses the type the whole pipeline depends on.
func transactionType(s string) (int, error) {
	if s == "" {
		return 0, missing(fTransactionType)
	}
	n, ok := parseUint(s)
	if !ok || n > 1<<31-1 {
		return 0, malformed(fTransactionType, s, "a positive integer")
	}
	if n == 0 {
		return 0, malformed(fTransactionType, s, "a positive integer")
	}
	return int(n), nil
}

// madrid is PAYCOMET's clock: BankDateTime and DateTime carry no offset and
// are Spanish local time. Loaded once; the embedded tzdata makes it infallible
// in practice, and UTC+1 is the fallback should it ever fail.
var madrid = sync.OnceValue(func() *time.Location {
	loc, err := time.LoadLocation("Europe/Madrid")
	if err != nil {
		return time.FixedZone("CET", 3600)
	}
	return loc
})

// Madrid returns the Europe/Madrid location, in which PAYCOMET's timestamps
// are read and Sample writes them.
func Madrid() *time.Location { return madrid() }

const stampLayout = "20060102150405"

// parseStamp reads PAYCOMET's yyyymmddhhmmss in Europe/Madrid.
func parseStamp(s string) (time.Time, bool) {
	if len(s) != len(stampLayout) || !isDigits(s) {
		return time.Time{}, false
	}
	t, err := time.ParseInLocation(stampLayout, s, madrid())
	return t, err == nil
}

// parseCurrency accepts an ISO 4217 alpha-3 code, normalised to upper case
// (the signature covers the raw string, so normalising is safe).
func parseCurrency(s string) (string, bool) {
	if len(s) != 3 {
		return "", false
	}
	var b [3]byte
	for i := 0; i < 3; i++ {
		c := s[i]
		switch {
		case c >= 'A' && c <= 'Z':
		case c >= 'a' && c <= 'z':
			c -= 'a' - 'A'
		default:
			return "", false
		}
		b[i] = c
	}
	return string(b[:]), true
}

// exponent is ISO 4217's number of minor-unit digits. PAYCOMET's Amount is in
// minor units, so 1000 JPY is ¥1000 but 1000 EUR is €10.00 and 1000 KWD is
// 1.000 KD; getting this wrong shows customers a price off by 100 or 1000.
func exponent(currency string) int {
	switch currency {
	case "BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF",
		"UGX", "UYI", "VND", "VUV", "XAF", "XOF", "XPF":
		return 0
	case "BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND":
		return 3
	case "CLF", "UYW":
		return 4
	}
	return 2
}

// FormatMinor renders minor units as a major-unit decimal string, for display
// only: "1000" EUR is "10.00", "1000" JPY is "1000", "1000" KWD is "1.000".
func FormatMinor(amount int64, currency string) string {
	exp := exponent(currency)
	s := strconv.FormatInt(amount, 10)
	if exp == 0 {
		return s
	}
	if len(s) <= exp {
		s = strings.Repeat("0", exp-len(s)+1) + s
	}
	return s[:len(s)-exp] + "." + s[len(s)-exp:]
}

// parseEuros reads AmountEur ("10.00", "10.5", "10") into euro cents.
func parseEuros(s string) (int64, bool) {
	whole, frac, _ := strings.Cut(s, ".")
	if !isDigits(whole) || len(frac) > 2 || (frac != "" && !isDigits(frac)) {
		return 0, false
	}
	w, ok := parseUint(whole)
	if !ok || w > (1<<63-1)/100-1 {
		return 0, false
	}
	var f int64
	if frac != "" {
		f, _ = parseUint(frac)
		if len(frac) == 1 {
			f *= 10
		}
	}
	return w*100 + f, true
}

// parseResponse normalises Response and gives the subject's outcome. known is
// false for anything but OK, KO and SF (any case).
func parseResponse(s string) (response, outcome string, known bool) {
	switch strings.ToUpper(s) {
	case "OK":
		return "OK", OutcomeOK, true
	case "KO":
		return "KO", OutcomeKO, true
	case "SF":
		return "SF", OutcomePending, true
	}
	return s, OutcomeNotice, false
}
