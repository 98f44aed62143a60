package bankstoretest

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/paycomet-notify/paycomet-notify/bankstore"
)

// The fake's view of a terminal: what PAYCOMET would remember.

var (
	panRE      = regexp.MustCompile(`^[0-9]{16,19}$`)
	cvvRE      = regexp.MustCompile(`^[0-9]{3,4}$`)
	tokenRE    = regexp.MustCompile(`^[A-Za-z0-9]{1,20}$`)
	orderRE    = regexp.MustCompile(`^[A-Za-z0-9]{1,20}$`)
	longRE     = regexp.MustCompile(`^[A-Za-z0-9]{1,70}$`)
	subOrderRE = regexp.MustCompile(`^[A-Za-z0-9_]{1,20}$`)
	amountRE   = regexp.MustCompile(`^[0-9]{1,8}$`)
	currencyRE = regexp.MustCompile(`^[A-Z]{3}$`)
	jetTokenRE = regexp.MustCompile(`^[a-z0-9]{64}$`)
	jetIDRE    = regexp.MustCompile(`^[a-z0-9]{32}$`)
	rtokenRE   = regexp.MustCompile(`^[a-z0-9]{40}$`)
)

const (
	// productCurrency is the currency of the fake terminal's product, the one
	// DCC converts from.
	productCurrency = "EUR"
	// The DCC offer: every card is a US dollar card at this rate.
	dccCurrency, dccCurrencyISO3, dccRate = "USD", "840", 1.0850
	// jetCard is the card any JET token stands for (PAYCOMET's test Visa).
	jetCard = "4548812049400004"

	upperDigits = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	alnum       = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
)

type user struct {
	id       int64
	token    string
	masked   string
	brand    string
	cardHash string
	expiry   bankstore.YearMonth
}

func newUser(id int64, token, pan string, expiry bankstore.YearMonth) *user {
	h := sha256.Sum256([]byte(pan))
	return &user{
		id:       id,
		token:    token,
		masked:   strings.Repeat("X", len(pan)-4) + pan[len(pan)-4:],
		brand:    brand(pan),
		cardHash: hex.EncodeToString(h[:]),
		expiry:   expiry,
	}
}

func brand(pan string) string {
	switch {
	case pan[0] == '4':
		return "VISA"
	case pan[0] == '5' && pan[1] >= '1' && pan[1] <= '5', pan[0] == '2':
		return "MASTERCARD"
	case strings.HasPrefix(pan, "34"), strings.HasPrefix(pan, "37"):
		return "AMERICAN EXPRESS"
	}
	return ""
}

type kind int

const (
	kindPurchase kind = iota + 1
	kindPreauth
	kindDeferred
	kindDCC
)

type status int

const (
	statusPending   status = iota + 1 // held, or a DCC offer awaiting confirmation
	statusCharged                     // money taken; refundable
	statusCancelled                   // released
)

type txn struct {
	kind       kind
	status     status
	idUser     int64
	order      string
	amount     int64
	currency   string
	authCode   string
	refunded   int64
	dccSession string
	dccAmount  int64
}

type subscription struct {
	start, end  bankstore.Date
	periodicity int
	amount      int64
	currency    string
	order       string
}

type state struct {
	users  map[int64]*user
	subs   map[int64]*subscription
	txns   map[string]*txn // by order
	nextID int64
}

func newState() state {
	return state{users: map[int64]*user{}, subs: map[int64]*subscription{}, txns: map[string]*txn{}, nextID: 1}
}

// answer is a successful answer's elements.
type answer = map[string]string

// run carries out one authenticated request. It returns the answer's
// elements and DS_ERROR_ID.
func (st *state) run(op bankstore.Operation, el map[string]string, now time.Time) (answer, int) {
	switch op {
	case bankstore.OpAddUser:
		return st.addUser(el)
	case bankstore.OpInfoUser:
		return st.infoUser(el)
	case bankstore.OpRemoveUser:
		u, code := st.user(el)
		if code != 0 {
			return nil, code
		}
		delete(st.users, u.id)
		delete(st.subs, u.id)
		return answer{"DS_RESPONSE": "1"}, 0
	case bankstore.OpExecutePurchase:
		return st.charge(el, kindPurchase)
	case bankstore.OpCreatePreauthorization:
		return st.charge(el, kindPreauth)
	case bankstore.OpExecutePurchaseDCC:
		return st.purchaseDCC(el)
	case bankstore.OpConfirmPurchaseDCC:
		return st.confirmDCC(el)
	case bankstore.OpExecuteRefund:
		return st.refund(el)
	case bankstore.OpCreateSubscription:
		return st.createSubscription(el, now)
	case bankstore.OpCreateSubscriptionToken:
		return st.createSubscriptionToken(el, now)
	case bankstore.OpEditSubscription:
		return st.editSubscription(el, now)
	case bankstore.OpRemoveSubscription:
		u, code := st.user(el)
		if code != 0 {
			return nil, code
		}
		if _, ok := st.subs[u.id]; !ok {
			return nil, bankstore.CodeUserNotFound
		}
		delete(st.subs, u.id)
		return answer{"DS_RESPONSE": "1"}, 0
	case bankstore.OpPreauthorizationConfirm:
		return st.settle(el, kindPreauth, true)
	case bankstore.OpPreauthorizationCancel:
		return st.settle(el, kindPreauth, false)
	case bankstore.OpDeferredPreauthorizationConfirm:
		return st.settle(el, kindDeferred, true)
	case bankstore.OpDeferredPreauthorizationCancel:
		return st.settle(el, kindDeferred, false)
	case bankstore.OpAddUserToken:
		if !jetTokenRE.MatchString(el["DS_MERCHANT_JETTOKEN"]) || !jetIDRE.MatchString(el["DS_MERCHANT_JETID"]) {
			return nil, bankstore.CodeInvalidParameter
		}
		exp := bankstore.YearMonth{Year: now.Year() + 3, Month: time.December}
		u := st.createUser(jetCard, exp)
		return answer{"DS_IDUSER": itoa(u.id), "DS_TOKEN_USER": u.token}, 0
	case bankstore.OpExecutePurchaseRToken:
		return st.purchaseRToken(el)
	}
	return nil, bankstore.CodeError
}

// user finds the user a request names; a wrong token is as unknown as a
// wrong id.
func (st *state) user(el map[string]string) (*user, int) {
	id, err := strconv.ParseInt(el["DS_IDUSER"], 10, 64)
	u, ok := st.users[id]
	if err != nil || !ok || u.token != el["DS_TOKEN_USER"] {
		return nil, bankstore.CodeUserNotFound
	}
	return u, 0
}

func (st *state) createUser(pan string, expiry bankstore.YearMonth) *user {
	for st.users[st.nextID] != nil {
		st.nextID++
	}
	u := newUser(st.nextID, randomString(alnum, 20), pan, expiry)
	st.users[u.id] = u
	return u
}

// card checks the card elements of add_user and create_subscription.
func card(el map[string]string) (bankstore.YearMonth, int) {
	var exp bankstore.CardExpiry
	switch {
	case !panRE.MatchString(el["DS_MERCHANT_PAN"]):
		return bankstore.YearMonth{}, bankstore.CodeInvalidCardFormat
	case exp.UnmarshalText([]byte(el["DS_MERCHANT_EXPIRYDATE"])) != nil:
		return bankstore.YearMonth{}, bankstore.CodeExpiryError
	case !cvvRE.MatchString(el["DS_MERCHANT_CVV2"]):
		return bankstore.YearMonth{}, bankstore.CodeCVVDataError
	}
	return bankstore.YearMonth(exp), 0
}

func (st *state) addUser(el map[string]string) (answer, int) {
	exp, code := card(el)
	if code != 0 {
		return nil, code
	}
	u := st.createUser(el["DS_MERCHANT_PAN"], exp)
	return answer{"DS_IDUSER": itoa(u.id), "DS_TOKEN_USER": u.token}, 0
}

func (st *state) infoUser(el map[string]string) (answer, int) {
	u, code := st.user(el)
	if code != 0 {
		return nil, code
	}
	return answer{
		"DS_MERCHANT_PAN":        u.masked,
		"DS_CARD_BRAND":          u.brand,
		"DS_CARD_TYPE":           "CREDIT",
		"DS_CARD_I_COUNTRY_ISO3": "ESP",
		"DS_EXPIRYDATE":          u.expiry.String(),
		"DS_CARD_HASH":           u.cardHash,
		"DS_CARD_CATEGORY":       "CONSUMER",
		"DS_SEPA_CARD":           "1",
	}, 0
}

// amount reads a positive amount element.
func amount(el map[string]string, name string) (int64, int) {
	s := el[name]
	n, err := strconv.ParseInt(s, 10, 64)
	if !amountRE.MatchString(s) || err != nil || n <= 0 {
		return 0, bankstore.CodeAmountNotValid
	}
	return n, 0
}

// newOrder checks that order is well formed and unused.
func (st *state) newOrder(order string, re *regexp.Regexp) int {
	if !re.MatchString(order) {
		return bankstore.CodeInvalidParameter
	}
	if _, dup := st.txns[order]; dup {
		return bankstore.CodeDuplicatedReference
	}
	return 0
}

func chargeAnswer(t *txn, amount int64) answer {
	return answer{
		"DS_MERCHANT_AMOUNT":      itoa(amount),
		"DS_MERCHANT_ORDER":       t.order,
		"DS_MERCHANT_CURRENCY":    t.currency,
		"DS_MERCHANT_AUTHCODE":    t.authCode,
		"DS_MERCHANT_CARDCOUNTRY": "724",
		"DS_RESPONSE":             "1",
	}
}

// charge is execute_purchase (money taken) and create_preauthorization
// (money held).
func (st *state) charge(el map[string]string, k kind) (answer, int) {
	u, code := st.user(el)
	if code != 0 {
		return nil, code
	}
	amt, code := amount(el, "DS_MERCHANT_AMOUNT")
	if code != 0 {
		return nil, code
	}
	if code := st.newOrder(el["DS_MERCHANT_ORDER"], orderRE); code != 0 {
		return nil, code
	}
	if !currencyRE.MatchString(el["DS_MERCHANT_CURRENCY"]) {
		return nil, bankstore.CodeInvalidParameter
	}
	t := &txn{kind: k, status: statusCharged, idUser: u.id, order: el["DS_MERCHANT_ORDER"], amount: amt,
		currency: el["DS_MERCHANT_CURRENCY"], authCode: randomString(upperDigits, 6)}
	if k == kindPreauth {
		t.status = statusPending
	}
	st.txns[t.order] = t
	a := chargeAnswer(t, amt)
	a["DS_CHALLENGE_URL"] = ""
	return a, 0
}

func (st *state) purchaseRToken(el map[string]string) (answer, int) {
	amt, code := amount(el, "DS_MERCHANT_AMOUNT")
	if code != 0 {
		return nil, code
	}
	if code := st.newOrder(el["DS_MERCHANT_ORDER"], longRE); code != 0 {
		return nil, code
	}
	if !rtokenRE.MatchString(el["DS_MERCHANT_IDENTIFIER"]) || !currencyRE.MatchString(el["DS_MERCHANT_CURRENCY"]) {
		return nil, bankstore.CodeInvalidParameter
	}
	t := &txn{kind: kindPurchase, status: statusCharged, order: el["DS_MERCHANT_ORDER"], amount: amt,
		currency: el["DS_MERCHANT_CURRENCY"], authCode: randomString(upperDigits, 6)}
	st.txns[t.order] = t
	return chargeAnswer(t, amt), 0
}

func (st *state) purchaseDCC(el map[string]string) (answer, int) {
	u, code := st.user(el)
	if code != 0 {
		return nil, code
	}
	amt, code := amount(el, "DS_MERCHANT_AMOUNT")
	if code != 0 {
		return nil, code
	}
	if code := st.newOrder(el["DS_MERCHANT_ORDER"], orderRE); code != 0 {
		return nil, code
	}
	t := &txn{kind: kindDCC, status: statusPending, idUser: u.id, order: el["DS_MERCHANT_ORDER"], amount: amt,
		currency: productCurrency, dccSession: randomString(alnum, 32), dccAmount: int64(float64(amt)*dccRate + 0.5)}
	st.txns[t.order] = t
	return answer{
		"DS_MERCHANT_AMOUNT":           itoa(amt),
		"DS_MERCHANT_ORDER":            t.order,
		"DS_MERCHANT_CURRENCY":         productCurrency,
		"DS_MERCHANT_DCC_SESSION":      t.dccSession,
		"DS_MERCHANT_DCC_CURRENCY":     dccCurrency,
		"DS_MERCHANT_DCC_CURRENCYISO3": dccCurrencyISO3,
		"DS_MERCHANT_DCC_CURRENCYNAME": "USDollar",
		"DS_MERCHANT_DCC_EXCHANGE":     strconv.FormatFloat(dccRate, 'f', 4, 64),
		"DS_MERCHANT_DCC_AMOUNT":       itoa(t.dccAmount),
		"DS_MERCHANT_DCC_MARKUP":       "0.03",
		"DS_MERCHANT_DCC_CARDCOUNTRY":  dccCurrencyISO3,
		"DS_RESPONSE":                  "1",
	}, 0
}

func (st *state) confirmDCC(el map[string]string) (answer, int) {
	t, ok := st.txns[el["DS_MERCHANT_ORDER"]]
	if !ok || t.kind != kindDCC || t.status != statusPending || t.dccSession != el["DS_MERCHANT_DCC_SESSION"] {
		return nil, bankstore.CodeOriginalNotFound
	}
	switch el["DS_MERCHANT_DCC_CURRENCY"] {
	case productCurrency:
	case dccCurrency:
		t.amount, t.currency = t.dccAmount, dccCurrency
	default:
		return nil, bankstore.CodeInvalidParameter
	}
	t.status, t.authCode = statusCharged, randomString(upperDigits, 6)
	return chargeAnswer(t, t.amount), 0
}

func (st *state) refund(el map[string]string) (answer, int) {
	u, code := st.user(el)
	if code != 0 {
		return nil, code
	}
	t, ok := st.txns[el["DS_MERCHANT_ORDER"]]
	if !ok || t.idUser != u.id || t.status != statusCharged || t.authCode != el["DS_MERCHANT_AUTHCODE"] {
		return nil, bankstore.CodeOriginalNotFound
	}
	if el["DS_MERCHANT_CURRENCY"] != t.currency {
		return nil, bankstore.CodeInvalidParameter
	}
	amt := t.amount - t.refunded
	if el["DS_MERCHANT_AMOUNT"] != "" {
		if amt, code = amount(el, "DS_MERCHANT_AMOUNT"); code != 0 {
			return nil, code
		}
	}
	if amt <= 0 || t.refunded+amt > t.amount {
		return nil, bankstore.CodeRefundsExceedPayment
	}
	t.refunded += amt
	return answer{
		"DS_MERCHANT_ORDER":    t.order,
		"DS_MERCHANT_CURRENCY": t.currency,
		"DS_MERCHANT_AUTHCODE": randomString(upperDigits, 6),
		"DS_RESPONSE":          "1",
	}, 0
}

// settle confirms or cancels a preauthorisation of kind k.
func (st *state) settle(el map[string]string, k kind, confirm bool) (answer, int) {
	u, code := st.user(el)
	if code != 0 {
		return nil, code
	}
	amt, code := amount(el, "DS_MERCHANT_AMOUNT")
	if code != 0 {
		return nil, code
	}
	t, ok := st.txns[el["DS_MERCHANT_ORDER"]]
	switch {
	case !ok || t.kind != k || t.idUser != u.id:
		return nil, bankstore.CodePreauthNotFound
	case t.status == statusCancelled:
		return nil, bankstore.CodeAlreadyCancelled
	case t.status != statusPending:
		return nil, bankstore.CodePreauthNotFound
	}
	if !confirm {
		t.status = statusCancelled
		return chargeAnswer(t, amt), 0
	}
	// A preauthorisation may be confirmed for up to 115% of its amount; a
	// deferred one only for exactly its amount.
	if (k == kindPreauth && amt*100 > t.amount*115) || (k == kindDeferred && amt != t.amount) {
		return nil, bankstore.CodeAmountNotValid
	}
	t.status, t.amount = statusCharged, amt
	return chargeAnswer(t, amt), 0
}

func (st *state) createSubscription(el map[string]string, now time.Time) (answer, int) {
	exp, code := card(el)
	if code != 0 {
		return nil, code
	}
	sub, code := terms(el, exp, now, nil)
	if code != 0 {
		return nil, code // no user either
	}
	u := st.createUser(el["DS_MERCHANT_PAN"], exp)
	return st.store(u, sub, el["DS_EXECUTE"] != "0", now), 0
}

func (st *state) createSubscriptionToken(el map[string]string, now time.Time) (answer, int) {
	u, code := st.user(el)
	if code != 0 {
		return nil, code
	}
	sub, code := terms(el, u.expiry, now, nil)
	if code != 0 {
		return nil, code
	}
	return st.store(u, sub, true, now), 0
}

func (st *state) editSubscription(el map[string]string, now time.Time) (answer, int) {
	u, code := st.user(el)
	if code != 0 {
		return nil, code
	}
	old, ok := st.subs[u.id]
	if !ok {
		return nil, bankstore.CodeUserNotFound
	}
	sub, code := terms(el, u.expiry, now, old)
	if code != 0 {
		return nil, code
	}
	return st.store(u, sub, el["DS_EXECUTE"] == "1", now), 0
}

// terms reads a subscription's terms for a card valid until expiry; edit
// keeps old's order and currency.
func terms(el map[string]string, expiry bankstore.YearMonth, now time.Time, old *subscription) (*subscription, int) {
	sub := &subscription{}
	if old != nil {
		sub.order, sub.currency = old.order, old.currency
	} else {
		sub.order, sub.currency = el["DS_SUBSCRIPTION_ORDER"], el["DS_SUBSCRIPTION_CURRENCY"]
	}
	var err error
	sub.start = bankstore.NewDate(now)
	if s := el["DS_SUBSCRIPTION_STARTDATE"]; s != "" {
		if sub.start, err = bankstore.ParseDate(s); err != nil {
			return nil, bankstore.CodeInvalidParameter
		}
	}
	if sub.end, err = bankstore.ParseDate(el["DS_SUBSCRIPTION_ENDDATE"]); err != nil ||
		sub.end.Before(sub.start) || sub.start.AddDate(5, 0, 0).Before(sub.end) {
		return nil, bankstore.CodeInvalidParameter
	}
	p, err := strconv.Atoi(el["DS_SUBSCRIPTION_PERIODICITY"])
	if err != nil || p < 1 || p > 365 || !subOrderRE.MatchString(sub.order) || !currencyRE.MatchString(sub.currency) {
		return nil, bankstore.CodeInvalidParameter
	}
	sub.periodicity = p
	var code int
	if sub.amount, code = amount(el, "DS_SUBSCRIPTION_AMOUNT"); code != 0 {
		return nil, code
	}
	if expiry.LastDay().Before(sub.end) {
		return nil, bankstore.CodeSubscriptionPastExpiry
	}
	return sub, 0
}

func (st *state) store(u *user, sub *subscription, execute bool, now time.Time) answer {
	st.subs[u.id] = sub
	a := answer{
		"DS_IDUSER":                itoa(u.id),
		"DS_TOKEN_USER":            u.token,
		"DS_SUBSCRIPTION_AMOUNT":   itoa(sub.amount),
		"DS_SUBSCRIPTION_ORDER":    sub.order,
		"DS_SUBSCRIPTION_CURRENCY": sub.currency,
		"DS_MERCHANT_CARDCOUNTRY":  "724",
	}
	if execute {
		// The instalment's reference: order, [DS_IDUSER], date as YYYYMMDD.
		day := sub.start
		if day.Before(bankstore.NewDate(now)) {
			day = bankstore.NewDate(now)
		}
		a["DS_SUBSCRIPTION_ORDER"] = sub.order + "[" + itoa(u.id) + "]" + strings.ReplaceAll(day.String(), "-", "")
		a["DS_MERCHANT_AUTHCODE"] = randomString(upperDigits, 6)
	}
	return a
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// randomString draws n characters of alphabet from crypto/rand.
func randomString(alphabet string, n int) string {
	b := make([]byte, n)
	rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}
