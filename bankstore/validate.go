package bankstore

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"unicode"
	"unicode/utf8"
)

// InputError is a request element that does not meet the seed's format. It
// is returned before anything is sent. It names the element and never
// contains the value, which may be card data.
type InputError struct {
	Op      Operation
	Element string
	Reason  string
}

func (e *InputError) Error() string {
	return fmt.Sprintf("bankstore: %s: %s: %s", e.Op, e.Element, e.Reason)
}

func inputError(op Operation, element, reason string) error {
	return &InputError{Op: op, Element: element, Reason: reason}
}

// format is one of the seed's "Contenido" columns as a check.
type format struct {
	desc  string
	check func(string) bool
}

func pattern(expr, desc string) format {
	re := regexp.MustCompile(`^(?:` + expr + `)$`)
	return format{desc: desc, check: re.MatchString}
}

func numberIn(lo, hi int, desc string) format {
	return format{desc: desc, check: func(s string) bool {
		n, err := strconv.Atoi(s)
		return err == nil && isDigits(s) && len(s) <= 3 && n >= lo && n <= hi
	}}
}

// freeText covers the descriptive elements. The seed gives them the class
// [a-zA-Z0-9], but its own examples ("Product description", "Card Owner")
// have spaces, so only the length and the absence of control characters are
// checked; XML escaping takes care of the rest.
func freeText(max int) format {
	desc := "text without control characters"
	if max > 0 {
		desc = fmt.Sprintf("1 to %d characters without control characters", max)
	}
	return format{desc: desc, check: func(s string) bool {
		if !utf8.ValidString(s) || (max > 0 && utf8.RuneCountInString(s) > max) {
			return false
		}
		for _, r := range s {
			if unicode.IsControl(r) {
				return false
			}
		}
		return s != ""
	}}
}

var amountFormat = pattern(`[0-9]{1,8}`, "a whole amount in minor units, 1 to 8 digits (4,50 EUR is 450)")
var currencyFormat = pattern(`[A-Z]{3}`, "an ISO 4217 currency code such as EUR")
var dateFormat = format{desc: "a date YYYY-MM-DD", check: func(s string) bool { _, err := ParseDate(s); return err == nil }}

// formats holds the seed's format of every request element, by name (or by
// the tag's format= key where one operation differs).
var formats = map[string]format{
	elemMerchantCode:                 pattern(`[A-Za-z0-9]{1,8}`, "1 to 8 letters or digits"),
	elemTerminal:                     pattern(`[0-9]{1,4}`, "1 to 4 digits"),
	"DS_MERCHANT_PAN":                pattern(`[0-9]{16,19}`, "16 to 19 digits, without spaces or dashes"),
	"DS_MERCHANT_EXPIRYDATE":         pattern(`(0[1-9]|1[0-2])[0-9]{2}`, "the expiry as mmyy"),
	"DS_MERCHANT_CVV2":               pattern(`[0-9]{3,4}`, "3 or 4 digits"),
	elemOriginalIP:                   {desc: "an IPv4 address A.B.C.D", check: isIPv4},
	"DS_MERCHANT_CARDHOLDERNAME":     freeText(0),
	"DS_IDUSER":                      pattern(`[0-9]{1,13}`, "1 to 13 digits"),
	"DS_TOKEN_USER":                  pattern(`[A-Za-z0-9]{1,20}`, "1 to 20 letters or digits"),
	"DS_MERCHANT_AMOUNT":             amountFormat,
	"DS_MERCHANT_ORDER":              pattern(`[A-Za-z0-9]{1,20}`, "1 to 20 letters or digits"),
	"order70":                        pattern(`[A-Za-z0-9]{1,70}`, "1 to 70 letters or digits"),
	"DS_MERCHANT_CURRENCY":           currencyFormat,
	"DS_MERCHANT_PRODUCTDESCRIPTION": freeText(40),
	"DS_MERCHANT_OWNER":              freeText(40),
	"DS_MERCHANT_SCORING":            numberIn(0, 100, "a number from 0 to 100"),
	"DS_MERCHANT_DATA":               {desc: "a JSON document", check: func(s string) bool { return json.Valid([]byte(s)) }},
	// "Sin acentos ni caracteres especiales", but the seed's example has a
	// space: letters, digits and spaces.
	"DS_MERCHANT_MERCHANTDESCRIPTOR": pattern(`[A-Za-z0-9 ]{1,25}`, "1 to 25 letters, digits or spaces, no accents"),
	"DS_MERCHANT_SCA_EXCEPTION":      pattern(`LWV|TRA|MIT|COR`, "one of LWV, TRA, MIT, COR"),
	"DS_MERCHANT_TRX_TYPE":           pattern(`[IRHEDMNC]`, "one of I, R, H, E, D, M, N, C"),
	"DS_ESCROW_TARGETS": {desc: `{"TARGETS":[{"ESCROW_TARGET_ID":..,"ESCROW_TARGET_AMOUNT":..}]} (sent base64 then URL encoded)`,
		check: func(s string) bool { var t EscrowTargets; return t.UnmarshalText([]byte(s)) == nil }},
	"DS_USER_INTERACTION":      pattern(`[01]`, "0 or 1"),
	"DS_EXECUTE":               pattern(`[01]`, "0 or 1"),
	"DS_MERCHANT_AUTHCODE":     pattern(`[A-Za-z0-9]{1,40}`, "1 to 40 letters or digits"),
	"DS_MERCHANT_DCC_CURRENCY": currencyFormat,
	"DS_MERCHANT_DCC_SESSION":  pattern(`[A-Za-z0-9]{1,40}`, "1 to 40 letters or digits"),
	// Empty means today, so the start date may be sent empty.
	"DS_SUBSCRIPTION_STARTDATE": {desc: "a date YYYY-MM-DD, or empty for today", check: func(s string) bool { return s == "" || dateFormat.check(s) }},
	"DS_SUBSCRIPTION_ENDDATE":   dateFormat,
	// The table says [A-Za-z0-9]{1,20} and forbids only '[' and ']' (they
	// mark the user in the answer); its own example is "Luis_3268314", so
	// the underscore is allowed too.
	"DS_SUBSCRIPTION_ORDER":       pattern(`[A-Za-z0-9_]{1,20}`, "1 to 20 letters, digits or underscores"),
	"DS_SUBSCRIPTION_PERIODICITY": numberIn(1, 365, "a number of days from 1 to 365"),
	"DS_SUBSCRIPTION_AMOUNT":      amountFormat,
	"DS_SUBSCRIPTION_CURRENCY":    currencyFormat,
	"DS_MERCHANT_JETTOKEN":        pattern(`[a-z0-9]{64}`, "64 lower-case letters or digits"),
	"DS_MERCHANT_JETID":           pattern(`[a-z0-9]{32}`, "32 lower-case letters or digits"),
	"DS_MERCHANT_IDENTIFIER":      pattern(`[a-z0-9]{40}`, "40 lower-case letters or digits"),
}

func isIPv4(s string) bool {
	a, err := netip.ParseAddr(s)
	return err == nil && a.Is4()
}

func checkFormat(key, text string) error {
	f, ok := formats[key]
	if !ok {
		panic("bankstore: no format for " + key)
	}
	if !f.check(text) {
		return errors.New("must be " + f.desc)
	}
	return nil
}

// crossChecker is a request with rules that span several elements.
type crossChecker interface {
	crossCheck(op Operation, today Date) []error
}

func (r *PurchaseRequest) crossCheck(op Operation, _ Date) []error {
	return checkMIT(op, r.SCAException, r.TrxType)
}

func (r *CreateSubscriptionRequest) crossCheck(op Operation, today Date) []error {
	return append(checkMIT(op, r.SCAException, r.TrxType), checkPeriod(op, r.StartDate, r.EndDate, today)...)
}

func (r *CreateSubscriptionTokenRequest) crossCheck(op Operation, today Date) []error {
	return append(checkMIT(op, r.SCAException, r.TrxType), checkPeriod(op, r.StartDate, r.EndDate, today)...)
}

// edit_subscription's table does not repeat the five-year limit, but a
// subscription cannot be edited into one create_subscription would refuse.
func (r *EditSubscriptionRequest) crossCheck(op Operation, today Date) []error {
	return checkPeriod(op, r.StartDate, r.EndDate, today)
}

func checkMIT(op Operation, sca SCAException, trx TrxType) []error {
	if sca == SCAMerchantMIT && trx == "" {
		return []error{inputError(op, "DS_MERCHANT_TRX_TYPE", "required when DS_MERCHANT_SCA_EXCEPTION is MIT")}
	}
	return nil
}

// checkPeriod: the end may not be before the start nor later than the start
// plus five years; an empty start is today.
func checkPeriod(op Operation, start, end, today Date) []error {
	if end.IsZero() {
		return nil // reported as required
	}
	if start.IsZero() {
		start = today
	}
	switch {
	case end.Before(start):
		return []error{inputError(op, "DS_SUBSCRIPTION_ENDDATE", "must not be before the start date")}
	case start.AddDate(5, 0, 0).Before(end):
		return []error{inputError(op, "DS_SUBSCRIPTION_ENDDATE", "must be no later than the start date plus five years")}
	}
	return nil
}
