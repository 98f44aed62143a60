package bankstore

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// The value types below give the seed's text formats a Go shape, so callers
// handle dates as dates and lists as lists while the wire text stays exactly
// what the seed prescribes. Their parse errors never quote the input: some of
// it is card data.

// Currency is an ISO 4217 alphabetic code such as "EUR"; the seed lists EUR,
// USD, GBP and JPY and points at PAYCOMET's currency table for the rest.
type Currency string

// Date is a calendar day without a time zone, as in DS_SUBSCRIPTION_STARTDATE
// ("YYYY-MM-DD"). The zero Date is sent as an empty element.
type Date struct {
	Year  int
	Month time.Month
	Day   int
}

// NewDate returns the Date of t in t's location.
func NewDate(t time.Time) Date {
	y, m, d := t.Date()
	return Date{Year: y, Month: m, Day: d}
}

// ParseDate reads "YYYY-MM-DD".
func ParseDate(s string) (Date, error) {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil || len(s) != len(time.DateOnly) {
		return Date{}, errors.New("not a date in the form YYYY-MM-DD")
	}
	return NewDate(t), nil
}

// IsZero reports whether d is the zero Date (no date given).
func (d Date) IsZero() bool { return d == Date{} }

// Time is midnight UTC of d, for date arithmetic.
func (d Date) Time() time.Time { return time.Date(d.Year, d.Month, d.Day, 0, 0, 0, 0, time.UTC) }

// AddDate is d moved by years, months and days, normalised like time.AddDate.
func (d Date) AddDate(years, months, days int) Date {
	return NewDate(d.Time().AddDate(years, months, days))
}

// Before reports whether d is earlier than e.
func (d Date) Before(e Date) bool { return d.Time().Before(e.Time()) }

// String is "YYYY-MM-DD", or "" for the zero Date.
func (d Date) String() string {
	if d.IsZero() {
		return ""
	}
	return fmt.Sprintf("%04d-%02d-%02d", d.Year, int(d.Month), d.Day)
}

// MarshalText gives the wire form.
func (d Date) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText reads the wire form.
func (d *Date) UnmarshalText(b []byte) error {
	v, err := ParseDate(string(b))
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// YearMonth is a card's expiry month as info_user reports it in
// DS_EXPIRYDATE ("YYYY/MM"). The card is valid to the end of that month.
type YearMonth struct {
	Year  int
	Month time.Month
}

// IsZero reports whether no month is set.
func (m YearMonth) IsZero() bool { return m == YearMonth{} }

// String is "YYYY/MM", or "" for the zero value.
func (m YearMonth) String() string {
	if m.IsZero() {
		return ""
	}
	return fmt.Sprintf("%04d/%02d", m.Year, int(m.Month))
}

// LastDay is the last day the card can be used.
func (m YearMonth) LastDay() Date {
	return Date{Year: m.Year, Month: m.Month, Day: 1}.AddDate(0, 1, -1)
}

// MarshalText gives the wire form.
func (m YearMonth) MarshalText() ([]byte, error) { return []byte(m.String()), nil }

// UnmarshalText reads "YYYY/MM".
func (m *YearMonth) UnmarshalText(b []byte) error {
	s := string(b)
	y, mo, ok := strings.Cut(s, "/")
	year, err1 := strconv.Atoi(y)
	month, err2 := strconv.Atoi(mo)
	if !ok || len(y) != 4 || len(mo) != 2 || err1 != nil || err2 != nil || month < 1 || month > 12 {
		return errors.New("not a month in the form YYYY/MM")
	}
	*m = YearMonth{Year: year, Month: time.Month(month)}
	return nil
}

// CardExpiry is the expiry month of a card being registered, sent as "mmyy"
// (DS_MERCHANT_EXPIRYDATE). It is the same month YearMonth describes, in the
// request's format.
type CardExpiry YearMonth

// String is "mmyy", or "" for the zero value.
func (e CardExpiry) String() string {
	if (e == CardExpiry{}) {
		return ""
	}
	return fmt.Sprintf("%02d%02d", int(e.Month), e.Year%100)
}

// MarshalText gives the wire form; a year outside 2000-2099 or a month
// outside 1-12 cannot be written as mmyy.
func (e CardExpiry) MarshalText() ([]byte, error) {
	if (e != CardExpiry{}) && (e.Month < 1 || e.Month > 12 || e.Year < 2000 || e.Year > 2099) {
		return nil, errors.New("needs a month 1 to 12 and a year 2000 to 2099 (sent as mmyy)")
	}
	return []byte(e.String()), nil
}

// UnmarshalText reads "mmyy" as a month of 20yy.
func (e *CardExpiry) UnmarshalText(b []byte) error {
	s := string(b)
	mm, err1 := strconv.Atoi(s[:min(2, len(s))])
	yy, err2 := strconv.Atoi(s[min(2, len(s)):])
	if len(s) != 4 || !isDigits(s) || err1 != nil || err2 != nil || mm < 1 || mm > 12 {
		return errors.New("not an expiry in the form mmyy")
	}
	*e = CardExpiry{Year: 2000 + yy, Month: time.Month(mm)}
	return nil
}

// SCAException is DS_MERCHANT_SCA_EXCEPTION: the PSD2 exemption the merchant
// claims for a payment without cardholder authentication.
type SCAException string

// The exemptions the seed lists.
const (
	SCALowValue    SCAException = "LWV" // low-value payment
	SCARiskAnalyze SCAException = "TRA" // transaction risk analysis
	SCAMerchantMIT SCAException = "MIT" // merchant-initiated transaction; needs a TrxType
	SCACorporate   SCAException = "COR" // secure corporate payment
)

// TrxType is DS_MERCHANT_TRX_TYPE, the kind of merchant-initiated transaction;
// required when the SCA exception is MIT. The seed lists I, R, H, E, D, M, N
// and C and refers to PAYCOMET's documentation for their meaning.
type TrxType string

// EscrowTarget is one recipient of an ESCROW payment and its share in minor
// units.
type EscrowTarget struct {
	ID     string
	Amount int64
}

// EscrowTargets is DS_ESCROW_TARGETS. On the wire it is
// urlencode(base64(JSON)) of {"TARGETS":[{"ESCROW_TARGET_ID":..,
// "ESCROW_TARGET_AMOUNT":..}]}, as the seed says. The seed's JSON sample shows
// both members as strings, so the amount is sent as a decimal string.
type EscrowTargets []EscrowTarget

// escrowJSON is the document as read: json.Number takes the amount whether
// it is a string or a number. escrowOutJSON is the document as written, the
// amount quoted like the seed's sample.
type escrowJSON struct {
	Targets []escrowTargetJSON `json:"TARGETS"`
}

type escrowTargetJSON struct {
	ID     string      `json:"ESCROW_TARGET_ID"`
	Amount json.Number `json:"ESCROW_TARGET_AMOUNT"`
}

type escrowOutJSON struct {
	Targets []escrowTargetOutJSON `json:"TARGETS"`
}

type escrowTargetOutJSON struct {
	ID     string `json:"ESCROW_TARGET_ID"`
	Amount string `json:"ESCROW_TARGET_AMOUNT"`
}

// MarshalText encodes JSON, then base64, then URL-encoding.
func (t EscrowTargets) MarshalText() ([]byte, error) {
	if len(t) == 0 {
		return nil, nil
	}
	doc := escrowOutJSON{Targets: make([]escrowTargetOutJSON, len(t))}
	for i, e := range t {
		if e.ID == "" || e.Amount <= 0 {
			return nil, fmt.Errorf("target %d needs an ID and a positive amount", i+1)
		}
		doc.Targets[i] = escrowTargetOutJSON{ID: e.ID, Amount: strconv.FormatInt(e.Amount, 10)}
	}
	j, err := json.Marshal(doc)
	if err != nil {
		return nil, err
	}
	return []byte(url.QueryEscape(base64.StdEncoding.EncodeToString(j))), nil
}

// UnmarshalText reads the wire form. It also takes the plain JSON object (or
// just its TARGETS array), which is how the command line is given escrow
// targets; neither can be mistaken for the encoded form, which never starts
// with '{' or '['.
func (t *EscrowTargets) UnmarshalText(b []byte) error {
	j := b
	if len(b) > 0 && b[0] != '{' && b[0] != '[' {
		s, err := url.QueryUnescape(string(b))
		if err != nil {
			return errors.New("not URL-encoded base64")
		}
		if j, err = base64.StdEncoding.DecodeString(s); err != nil {
			return errors.New("not URL-encoded base64")
		}
	}
	var doc escrowJSON
	if len(j) > 0 && j[0] == '[' {
		if err := json.Unmarshal(j, &doc.Targets); err != nil {
			return errors.New("not a list of ESCROW_TARGET_ID/ESCROW_TARGET_AMOUNT objects")
		}
	} else if err := json.Unmarshal(j, &doc); err != nil {
		return errors.New(`not a {"TARGETS":[...]} JSON object`)
	}
	out := make(EscrowTargets, 0, len(doc.Targets))
	for i, e := range doc.Targets {
		amount, err := strconv.ParseInt(e.Amount.String(), 10, 64)
		if e.ID == "" || err != nil || amount <= 0 {
			return fmt.Errorf("target %d needs an ESCROW_TARGET_ID and a positive whole ESCROW_TARGET_AMOUNT", i+1)
		}
		out = append(out, EscrowTarget{ID: e.ID, Amount: amount})
	}
	if len(out) == 0 {
		return errors.New("no TARGETS")
	}
	*t = out
	return nil
}

// MerchantData is DS_MERCHANT_DATA, the JSON document of cardholder
// information that helps the issuer authorise without a challenge. The seed
// refers elsewhere for its members, so it is kept as raw JSON and only checked
// to be valid JSON.
type MerchantData []byte

// MarshalText returns the JSON, compacted.
func (m MerchantData) MarshalText() ([]byte, error) {
	if len(m) == 0 {
		return nil, nil
	}
	var b bytes.Buffer
	if err := json.Compact(&b, m); err != nil {
		return nil, errors.New("not valid JSON")
	}
	return b.Bytes(), nil
}

// UnmarshalText keeps valid JSON.
func (m *MerchantData) UnmarshalText(b []byte) error {
	if !json.Valid(b) {
		return errors.New("not valid JSON")
	}
	*m = append(MerchantData(nil), b...)
	return nil
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
