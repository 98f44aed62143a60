package events

import (
	"strconv"
	"time"
)

// The event types of the hot path are encoded here by hand, byte for byte
// as encoding/json encodes them (field order, omitempty and omitzero,
// escaping, time format): at 32 connections encoding/json's reflection was
// 12% of the receiver's CPU (pprof). Any data type not listed in appendData
// (Rejection, a future type) still goes through encoding/json, and the tests
// hold both paths to the same bytes (TestFastEncodingMatchesEncodingJSON,
// FuzzNotification), so a field added to a data type without being added
// here fails the suite instead of vanishing from events.

// jsonObject appends one JSON object's members.
type jsonObject struct {
	b  []byte
	n  int  // members written
	ok bool // false once a value needs encoding/json (it then encodes the whole event)
}

func (o *jsonObject) open()  { o.b = append(o.b, '{') }
func (o *jsonObject) close() { o.b = append(o.b, '}') }

// key writes a member name; names are constant ASCII identifiers, which JSON
// writes as they are.
func (o *jsonObject) key(k string) {
	if o.n > 0 {
		o.b = append(o.b, ',')
	}
	o.n++
	o.b = append(o.b, '"')
	o.b = append(o.b, k...)
	o.b = append(o.b, '"', ':')
}

func (o *jsonObject) str(k, v string) {
	o.key(k)
	o.b = appendJSONString(o.b, v)
}

func (o *jsonObject) strOmitEmpty(k, v string) {
	if v != "" {
		o.str(k, v)
	}
}

func (o *jsonObject) int(k string, v int64) {
	o.key(k)
	o.b = strconv.AppendInt(o.b, v, 10)
}

func (o *jsonObject) intPtr(k string, v *int) {
	if v != nil {
		o.int(k, int64(*v))
	}
}

func (o *jsonObject) int64Ptr(k string, v *int64) {
	if v != nil {
		o.int(k, *v)
	}
}

func (o *jsonObject) boolPtr(k string, v *bool) {
	if v != nil {
		o.key(k)
		o.b = strconv.AppendBool(o.b, *v)
	}
}

// time writes t the way encoding/json does, through time's own MarshalJSON
// (RFC 3339 with nanoseconds, refusing years outside 0-9999).
func (o *jsonObject) time(k string, t time.Time) {
	v, err := t.MarshalJSON()
	if err != nil {
		o.ok = false
		return
	}
	o.key(k)
	o.b = append(o.b, v...)
}

func (o *jsonObject) timeOmitZero(k string, t time.Time) {
	if !t.IsZero() {
		o.time(k, t)
	}
}

func (o *jsonObject) details(d *Details) {
	o.strOmitEmpty("transaction_name", d.TransactionName)
	o.strOmitEmpty("account_code", d.AccountCode)
	o.intPtr("error_id", d.ErrorID)
	o.strOmitEmpty("error_description", d.ErrorDescription)
	o.int64Ptr("id_user", d.IDUser)
	o.strOmitEmpty("token_user", d.TokenUser)
	o.intPtr("method_id", d.MethodID)
	o.strOmitEmpty("method_name", d.MethodName)
	o.strOmitEmpty("card_brand", d.CardBrand)
	o.strOmitEmpty("card_country", d.CardCountry)
	o.strOmitEmpty("bic_code", d.BICCode)
	o.boolPtr("secure_payment", d.SecurePayment)
	o.strOmitEmpty("language", d.Language)
}

// strings writes a []string as encoding/json does: null when nil.
func (o *jsonObject) strings(k string, v []string) {
	o.key(k)
	if v == nil {
		o.b = append(o.b, "null"...)
		return
	}
	o.b = append(o.b, '[')
	for i, s := range v {
		if i > 0 {
			o.b = append(o.b, ',')
		}
		o.b = appendJSONString(o.b, s)
	}
	o.b = append(o.b, ']')
}

func (o *jsonObject) stringsOmitEmpty(k string, v []string) {
	if len(v) > 0 {
		o.strings(k, v)
	}
}

func (o *jsonObject) meta(m *Meta) {
	o.str("authenticated_by", string(m.AuthenticatedBy))
	o.strOmitEmpty("signature_formula", m.SignatureFormula)
	o.strings("signed_fields", m.SignedFields)
	o.time("received_at", m.ReceivedAt)
	o.key("raw")
	o.b = m.Raw.appendJSON(o.b)
	o.stringsOmitEmpty("raw_percent_encoded", m.RawPercentEncoded)
}

// payment writes a Payment's members, without the braces, so Subscription
// can add its own.
func (o *jsonObject) payment(p *Payment) {
	o.str("terminal", p.Terminal)
	o.int("transaction_type", int64(p.TransactionType))
	o.str("order", p.Order)
	o.str("response", p.Response)
	o.int("amount", p.Amount)
	o.str("currency", p.Currency)
	o.str("amount_display", p.AmountDisplay)
	o.int64Ptr("amount_eur", p.AmountEUR)
	o.time("bank_date_time", p.BankDateTime)
	o.timeOmitZero("date_time", p.DateTime)
	o.strOmitEmpty("auth_code", p.AuthCode)
	o.details(&p.Details)
	o.meta(&p.Meta)
}

// appendData appends data's JSON, or reports false for a type (or a value)
// it leaves to encoding/json.
func appendData(b []byte, data any) ([]byte, bool) {
	o := jsonObject{b: b, ok: true}
	o.open()
	switch d := data.(type) {
	case Authorization:
		o.payment(&d.Payment)
	case Refund:
		o.payment(&d.Payment)
	case Preauthorization:
		o.payment(&d.Payment)
	case PreauthorizationCancel:
		o.payment(&d.Payment)
	case PreauthorizationConfirm:
		o.payment(&d.Payment)
	case DeferredPreauthorization:
		o.payment(&d.Payment)
	case DeferredPreauthorizationCancel:
		o.payment(&d.Payment)
	case DeferredPreauthorizationConfirm:
		o.payment(&d.Payment)
	case Chargeback:
		o.payment(&d.Payment)
	case Subscription:
		o.payment(&d.Payment)
		if i := d.Instalment; i != nil {
			o.key("instalment")
			io := jsonObject{b: o.b, ok: true}
			io.open()
			io.str("original_order", i.OriginalOrder)
			io.int("id_user", i.IDUser)
			io.str("date", i.Date)
			io.close()
			o.b = io.b
		}
	case CardRegistration:
		o.str("terminal", d.Terminal)
		o.int("transaction_type", int64(d.TransactionType))
		o.str("order", d.Order)
		o.str("response", d.Response)
		o.time("date_time", d.DateTime)
		o.details(&d.Details)
		o.meta(&d.Meta)
	case CardExpiry:
		o.str("terminal", d.Terminal)
		o.int("transaction_type", int64(d.TransactionType))
		o.strOmitEmpty("transaction_name", d.TransactionName)
		o.int("id_user", d.IDUser)
		o.int("months_to_expire", int64(d.MonthsToExpire))
		o.strOmitEmpty("name", d.Name)
		o.strOmitEmpty("domain", d.Domain)
		o.meta(&d.Meta)
	case OtherOperation:
		o.str("terminal", d.Terminal)
		o.int("transaction_type", int64(d.TransactionType))
		o.strOmitEmpty("order", d.Order)
		o.strOmitEmpty("response", d.Response)
		o.int64Ptr("amount", d.Amount)
		o.strOmitEmpty("currency", d.Currency)
		o.strOmitEmpty("amount_display", d.AmountDisplay)
		o.int64Ptr("amount_eur", d.AmountEUR)
		o.timeOmitZero("bank_date_time", d.BankDateTime)
		o.timeOmitZero("date_time", d.DateTime)
		o.strOmitEmpty("auth_code", d.AuthCode)
		o.intPtr("months_to_expire", d.MonthsToExpire)
		o.details(&d.Details)
		o.meta(&d.Meta)
	default:
		return b, false
	}
	o.close()
	return o.b, o.ok
}

// encodeFast is Encode without reflection, for the data types appendData
// knows; ok is false when encoding/json must do it.
func (e Event) encodeFast() ([]byte, bool) {
	o := jsonObject{b: make([]byte, 0, 2048), ok: true} // a type-1 event is about 1.5 KB
	o.open()
	o.str("specversion", "1.0")
	o.str("id", e.ID)
	o.str("source", e.Source)
	o.str("type", e.Type)
	o.strOmitEmpty("subject", e.Subject)
	o.str("time", e.Time.Format(timeLayout))
	o.str("datacontenttype", "application/json")
	o.str("dataschema", e.DataSchema)
	o.strOmitEmpty("traceparent", e.TraceParent)
	o.key("data")
	var ok bool
	if o.b, ok = appendData(o.b, e.Data); !ok {
		return nil, false
	}
	o.close()
	return o.b, true
}
