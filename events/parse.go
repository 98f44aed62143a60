package events

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ErrNotAuthenticated is returned by Parse when auth does not come from a
// successful Authenticate of the same form. It is a programming error in the
// caller (answer 500), never something PAYCOMET did.
var ErrNotAuthenticated = errors.New("events: parse needs the Auth of a successful Authenticate of the same form")

// Parse builds the typed event; call it only after Authenticate succeeded on
// the same form. It checks the fields the type requires (contract section 4):
//
//	amount-bearing types: Order, Response (OK, KO or SF), Amount (digits), Currency, BankDateTime
//	107: Order, Response, DateTime, and IdUser and TokenUser when Response is OK
//	108: IdUser (digits), Terminal, MonthsToExpire (integer)
//	operation_N: TransactionType only
//
// and returns a *FieldError naming the first one missing or malformed, or a
// field given twice with different values.
//
// The event id of a signed notification derives from its signed fields only
// (idempotency.go); data.signed_fields names them, data.raw keeps every
// field losslessly (form.go), and the typed members read the fields as
// data.raw shows them.
func Parse(f Form, auth Auth, receivedAt time.Time) (Event, error) {
	if auth.Method == "" || !isDigits(auth.Terminal) {
		return Event{}, ErrNotAuthenticated
	}
	raw, enc, err := f.raw()
	if err != nil {
		return Event{}, err
	}
	typ, err := transactionType(f.text(raw, fTransactionType))
	if err != nil {
		return Event{}, err
	}
	if typ != auth.Type {
		return Event{}, fmt.Errorf("%w (auth is for type %d, form is type %d)", ErrNotAuthenticated, auth.Type, typ)
	}
	p := fields{raw: raw, form: f}
	meta := Meta{AuthenticatedBy: auth.Method, SignatureFormula: auth.Formula, SignedFields: noFields,
		ReceivedAt: receivedAt, Raw: raw, RawPercentEncoded: enc}
	if auth.Method == AuthSignature {
		meta.SignedFields = signedFields(auth.Formula, f.values)
	}
	var e Event
	switch kindOf(typ) {
	case kindPayment:
		e, err = p.payment(auth.Terminal, typ, meta)
	case kindCardRegistration:
		e, err = p.cardRegistration(auth.Terminal, meta)
	case kindCardExpiry:
		e, err = p.cardExpiry(auth.Terminal, meta)
	default:
		e = p.other(auth.Terminal, typ, meta, receivedAt)
	}
	if err != nil {
		return Event{}, err
	}
	if auth.Method == AuthSignature {
		e.ID = signedKey(auth.Formula, auth.Terminal, f.values)
	}
	return e, nil
}

// noFields is data.signed_fields when no signature vouches for a field: an
// empty list, never null.
var noFields = []string{}

// fields reads a collapsed form: get(name) is the field's single value as
// data.raw shows it.
type fields struct {
	raw  Raw
	form Form
}

func (p fields) get(name string) string {
	if p.form.wire == nil {
		return p.raw[name]
	}
	return p.form.text(p.raw, name)
}

func (p fields) required(name string) (string, error) {
	v := p.get(name)
	if v == "" {
		return "", missing(name)
	}
	return v, nil
}

func (p fields) optInt(name string) *int {
	n, ok := parseUint(p.get(name))
	if !ok || n > 1<<31-1 {
		return nil
	}
	i := int(n)
	return &i
}

func (p fields) optInt64(name string) *int64 {
	n, ok := parseUint(p.get(name))
	if !ok {
		return nil
	}
	return &n
}

func (p fields) optBool(name string) *bool {
	var b bool
	switch p.get(name) {
	case "1":
		b = true
	case "0":
	default:
		return nil
	}
	return &b
}

func (p fields) optStamp(name string) time.Time {
	t, _ := parseStamp(p.get(name))
	return t
}

func (p fields) details() Details {
	return Details{
		TransactionName:  p.get(fTransactionName),
		AccountCode:      p.get(fAccountCode),
		ErrorID:          p.optInt(fErrorID),
		ErrorDescription: p.get(fErrorDescription),
		IDUser:           p.optInt64(fIDUser),
		TokenUser:        p.get(fTokenUser),
		MethodID:         p.optInt(fMethodID),
		MethodName:       p.get(fMethodName),
		CardBrand:        p.get(fCardBrand),
		CardCountry:      p.get(fCardCountry),
		BICCode:          p.get(fBicCode),
		SecurePayment:    p.optBool(fSecurePayment),
		Language:         p.get(fLanguage),
	}
}

// response reads a required Response: OK, KO or SF, any case.
func (p fields) response() (response, outcome string, err error) {
	s, err := p.required(fResponse)
	if err != nil {
		return "", "", err
	}
	response, outcome, known := parseResponse(s)
	if !known {
		return "", "", malformed(fResponse, s, "OK, KO or SF")
	}
	return response, outcome, nil
}

func (p fields) stamp(name string) (time.Time, error) {
	s, err := p.required(name)
	if err != nil {
		return time.Time{}, err
	}
	t, ok := parseStamp(s)
	if !ok {
		return time.Time{}, malformed(name, s, "a yyyymmddhhmmss time")
	}
	return t, nil
}

func newEvent(terminal, operation, outcome string, k kind) Event {
	return Event{
		Source:     "/paycomet/terminals/" + terminal,
		Type:       "paycomet." + operation + "." + outcome,
		DataSchema: schemaOf(k, operation),
		Terminal:   terminal,
		Operation:  operation,
		Outcome:    outcome,
	}
}

func (p fields) payment(terminal string, typ int, meta Meta) (Event, error) {
	order, err := p.required(fOrder)
	if err != nil {
		return Event{}, err
	}
	response, outcome, err := p.response()
	if err != nil {
		return Event{}, err
	}
	amountRaw, err := p.required(fAmount)
	if err != nil {
		return Event{}, err
	}
	amount, ok := parseUint(amountRaw)
	if !ok {
		return Event{}, malformed(fAmount, amountRaw, "an integer in minor units")
	}
	currencyRaw, err := p.required(fCurrency)
	if err != nil {
		return Event{}, err
	}
	currency, ok := parseCurrency(currencyRaw)
	if !ok {
		return Event{}, malformed(fCurrency, currencyRaw, "an ISO 4217 alphabetic code")
	}
	bankTime, err := p.stamp(fBankDateTime)
	if err != nil {
		return Event{}, err
	}

	pay := Payment{
		Terminal:        terminal,
		TransactionType: typ,
		Order:           order,
		Response:        response,
		Amount:          amount,
		Currency:        currency,
		AmountDisplay:   FormatMinor(amount, currency),
		BankDateTime:    bankTime,
		DateTime:        p.optStamp(fDateTime),
		AuthCode:        p.get(fAuthCode),
		Details:         p.details(),
		Meta:            meta,
	}
	if eur, ok := parseEuros(p.get(fAmountEur)); ok {
		pay.AmountEUR = &eur
	}

	operation, _ := knownOperation(typ)
	e := newEvent(terminal, operation, outcome, kindPayment)
	e.Subject = order
	e.Time = bankTime
	switch typ {
	case TypeAuthorization:
		e.Data = Authorization{pay}
	case TypeRefund:
		e.Data = Refund{pay}
	case TypePreauthorization:
		e.Data = Preauthorization{pay}
	case TypePreauthorizationCancel:
		e.Data = PreauthorizationCancel{pay}
	case TypePreauthorizationConfirm:
		e.Data = PreauthorizationConfirm{pay}
	case TypeSubscription:
		e.Data = Subscription{Payment: pay, Instalment: splitInstalment(order)}
	case TypeDeferredPreauthorization:
		e.Data = DeferredPreauthorization{pay}
	case TypeDeferredPreauthorizationCancel:
		e.Data = DeferredPreauthorizationCancel{pay}
	case TypeDeferredPreauthorizationConfirm:
		e.Data = DeferredPreauthorizationConfirm{pay}
	case TypeChargeback:
		e.Data = Chargeback{pay}
	default:
		return Event{}, fmt.Errorf("events: type %d has no payment data type", typ)
	}
	return e, nil
}

// splitInstalment reads PAYCOMET's instalment Order
// "<original>[<IdUser>]<yyyymmdd>"; nil when Order has another form.
func splitInstalment(order string) *Instalment {
	const dateLen = len("20060102")
	if len(order) < len("x[1]")+dateLen {
		return nil
	}
	date := order[len(order)-dateLen:]
	rest := order[:len(order)-dateLen]
	if !isDigits(date) || !strings.HasSuffix(rest, "]") {
		return nil
	}
	rest = rest[:len(rest)-1]
	i := strings.LastIndexByte(rest, '[')
	if i <= 0 {
		return nil
	}
	idUser, ok := parseUint(rest[i+1:])
	if !ok {
		return nil
	}
	d, err := time.Parse("20060102", date)
	if err != nil {
		return nil
	}
	return &Instalment{OriginalOrder: rest[:i], IDUser: idUser, Date: d.Format(time.DateOnly)}
}

func (p fields) cardRegistration(terminal string, meta Meta) (Event, error) {
	order, err := p.required(fOrder)
	if err != nil {
		return Event{}, err
	}
	response, outcome, err := p.response()
	if err != nil {
		return Event{}, err
	}
	dateTime, err := p.stamp(fDateTime)
	if err != nil {
		return Event{}, err
	}
	d := p.details()
	if response == "OK" {
		idUser, err := p.required(fIDUser)
		if err != nil {
			return Event{}, err
		}
		if d.IDUser == nil {
			return Event{}, malformed(fIDUser, idUser, "a BankStore user id (digits)")
		}
		if _, err := p.required(fTokenUser); err != nil {
			return Event{}, err
		}
	}
	e := newEvent(terminal, "card_registration", outcome, kindCardRegistration)
	e.Subject = order
	e.Time = dateTime
	e.Data = CardRegistration{
		Terminal:        terminal,
		TransactionType: TypeCardRegistration,
		Order:           order,
		Response:        response,
		DateTime:        dateTime,
		Details:         d,
		Meta:            meta,
	}
	return e, nil
}

func (p fields) cardExpiry(terminal string, meta Meta) (Event, error) {
	idUserRaw, err := p.required(fIDUser)
	if err != nil {
		return Event{}, err
	}
	idUser, ok := parseUint(idUserRaw)
	if !ok {
		return Event{}, malformed(fIDUser, idUserRaw, "a BankStore user id (digits)")
	}
	if _, err := p.required(fTerminal); err != nil {
		return Event{}, err
	}
	monthsRaw, err := p.required(fMonthsToExpire)
	if err != nil {
		return Event{}, err
	}
	months, ok := parseInt(monthsRaw)
	if !ok {
		return Event{}, malformed(fMonthsToExpire, monthsRaw, "an integer")
	}
	e := newEvent(terminal, "card_expiry", OutcomeNotice, kindCardExpiry)
	e.ID = cardExpiryKey(terminal, idUser, months)
	e.Subject = strconv.FormatInt(idUser, 10)
	e.Time = meta.ReceivedAt
	e.Data = CardExpiry{
		Terminal:        terminal,
		TransactionType: TypeCardExpiry,
		TransactionName: p.get(fTransactionName),
		IDUser:          idUser,
		MonthsToExpire:  months,
		Name:            p.get(fName),
		Domain:          p.get(fDomain),
		Meta:            meta,
	}
	return e, nil
}

func (p fields) other(terminal string, typ int, meta Meta, receivedAt time.Time) Event {
	d := OtherOperation{
		Terminal:        terminal,
		TransactionType: typ,
		Order:           p.get(fOrder),
		BankDateTime:    p.optStamp(fBankDateTime),
		DateTime:        p.optStamp(fDateTime),
		AuthCode:        p.get(fAuthCode),
		Details:         p.details(),
		Meta:            meta,
	}
	outcome := OutcomeNotice
	if s := p.get(fResponse); s != "" {
		d.Response, outcome, _ = parseResponse(s)
	}
	amount, okAmount := parseUint(p.get(fAmount))
	currency, okCurrency := parseCurrency(p.get(fCurrency))
	if okAmount && okCurrency {
		d.Amount, d.Currency, d.AmountDisplay = &amount, currency, FormatMinor(amount, currency)
	}
	if eur, ok := parseEuros(p.get(fAmountEur)); ok {
		d.AmountEUR = &eur
	}
	if m, ok := parseInt(p.get(fMonthsToExpire)); ok {
		d.MonthsToExpire = &m
	}

	e := newEvent(terminal, OperationName(typ), outcome, kindOther)
	e.Subject = d.Order
	if e.Subject == "" {
		e.Subject = p.get(fIDUser)
	}
	switch {
	case !d.BankDateTime.IsZero():
		e.Time = d.BankDateTime
	case !d.DateTime.IsZero():
		e.Time = d.DateTime
	default:
		e.Time = receivedAt
	}
	e.Data = d
	return e
}
