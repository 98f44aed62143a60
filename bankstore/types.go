package bankstore

import (
	"net/netip"

	"github.com/paycomet-notify/paycomet-notify/secret"
)

// Request and response types, one per distinct element list of the seed.
// Field order is the seed's element order, which is the order they are sent
// in. The `bankstore` tag names the element and says how it is treated:
//
//	required  the seed marks it Obligatorio; a zero value is refused
//	always    sent even when empty (a zero bool is sent as "0")
//	auto      DS_ORIGINAL_IP: when empty the client fills in this host's address
//	integer   the seed's examples type it xsd:integer rather than xsd:string
//	format=X  checked against format X instead of the element's own
//
// DS_MERCHANT_MERCHANTCODE, DS_MERCHANT_TERMINAL and
// DS_MERCHANT_MERCHANTSIGNATURE are not fields: the client adds them.
// Integer amounts are minor units (4,50 EUR is 450).

// AddUserRequest registers a card as a BankStore user (add_user). PAN and
// CVV2 are secret.Values so that printing a request cannot show them.
type AddUserRequest struct {
	PAN        secret.Value `bankstore:"DS_MERCHANT_PAN,required"`
	Expiry     CardExpiry   `bankstore:"DS_MERCHANT_EXPIRYDATE,required"`
	CVV2       secret.Value `bankstore:"DS_MERCHANT_CVV2,required"`
	OriginalIP netip.Addr   `bankstore:"DS_ORIGINAL_IP,auto"`
	// CardholderName is not in the seed's table but is in its example
	// envelope (and PAYCOMET's WSDL), so it is offered as optional.
	CardholderName string `bankstore:"DS_MERCHANT_CARDHOLDERNAME"`
}

// UserRequest names a registered user: info_user, remove_user and
// remove_subscription take nothing else.
type UserRequest struct {
	IDUser     int64      `bankstore:"DS_IDUSER,required"`
	TokenUser  string     `bankstore:"DS_TOKEN_USER,required"`
	OriginalIP netip.Addr `bankstore:"DS_ORIGINAL_IP,auto"`
}

// PurchaseRequest charges (execute_purchase) or preauthorises
// (create_preauthorization, whose elements the seed says are the same) a
// registered user.
type PurchaseRequest struct {
	IDUser             int64      `bankstore:"DS_IDUSER,required"`
	TokenUser          string     `bankstore:"DS_TOKEN_USER,required"`
	Amount             int64      `bankstore:"DS_MERCHANT_AMOUNT,required"`
	Order              string     `bankstore:"DS_MERCHANT_ORDER,required"`
	Currency           Currency   `bankstore:"DS_MERCHANT_CURRENCY,required"`
	OriginalIP         netip.Addr `bankstore:"DS_ORIGINAL_IP,auto"`
	ProductDescription string     `bankstore:"DS_MERCHANT_PRODUCTDESCRIPTION"`
	Owner              string     `bankstore:"DS_MERCHANT_OWNER"`
	// Scoring is the merchant's risk score, 0 to 100; nil sends none.
	Scoring            *int          `bankstore:"DS_MERCHANT_SCORING,integer"`
	MerchantData       MerchantData  `bankstore:"DS_MERCHANT_DATA"`
	MerchantDescriptor string        `bankstore:"DS_MERCHANT_MERCHANTDESCRIPTOR"`
	SCAException       SCAException  `bankstore:"DS_MERCHANT_SCA_EXCEPTION"`
	TrxType            TrxType       `bankstore:"DS_MERCHANT_TRX_TYPE"`
	EscrowTargets      EscrowTargets `bankstore:"DS_ESCROW_TARGETS"`
	// UserInteraction says the cardholder is present, so PAYCOMET may answer
	// with a DS_CHALLENGE_URL to send them to.
	UserInteraction bool `bankstore:"DS_USER_INTERACTION"`
}

// DCCPurchaseRequest starts a purchase in the card's own currency
// (execute_purchase_dcc); the currency is the product's, so none is sent.
type DCCPurchaseRequest struct {
	IDUser             int64      `bankstore:"DS_IDUSER,required"`
	TokenUser          string     `bankstore:"DS_TOKEN_USER,required"`
	Amount             int64      `bankstore:"DS_MERCHANT_AMOUNT,required"`
	Order              string     `bankstore:"DS_MERCHANT_ORDER,required"`
	OriginalIP         netip.Addr `bankstore:"DS_ORIGINAL_IP,auto"`
	ProductDescription string     `bankstore:"DS_MERCHANT_PRODUCTDESCRIPTION"`
	Owner              string     `bankstore:"DS_MERCHANT_OWNER"`
	MerchantDescriptor string     `bankstore:"DS_MERCHANT_MERCHANTDESCRIPTOR"`
}

// ConfirmDCCRequest completes a DCC purchase in the currency the cardholder
// chose (confirm_purchase_dcc). The seed sends no DS_ORIGINAL_IP here.
type ConfirmDCCRequest struct {
	Order       string   `bankstore:"DS_MERCHANT_ORDER,required"`
	DCCCurrency Currency `bankstore:"DS_MERCHANT_DCC_CURRENCY,required"`
	DCCSession  string   `bankstore:"DS_MERCHANT_DCC_SESSION,required"`
}

// RefundRequest refunds a charge (execute_refund). A zero Amount refunds the
// whole charge; a positive one refunds that part of it.
type RefundRequest struct {
	IDUser             int64      `bankstore:"DS_IDUSER,required"`
	TokenUser          string     `bankstore:"DS_TOKEN_USER,required"`
	AuthCode           string     `bankstore:"DS_MERCHANT_AUTHCODE,required"`
	Order              string     `bankstore:"DS_MERCHANT_ORDER,required"`
	Currency           Currency   `bankstore:"DS_MERCHANT_CURRENCY,required"`
	OriginalIP         netip.Addr `bankstore:"DS_ORIGINAL_IP,auto"`
	Amount             int64      `bankstore:"DS_MERCHANT_AMOUNT"`
	MerchantDescriptor string     `bankstore:"DS_MERCHANT_MERCHANTDESCRIPTOR"`
}

// CreateSubscriptionRequest registers a card and a recurring charge on it
// (create_subscription). A zero StartDate is sent empty, which PAYCOMET reads
// as today; EndDate may be at most five years after the start.
type CreateSubscriptionRequest struct {
	PAN             secret.Value `bankstore:"DS_MERCHANT_PAN,required"`
	Expiry          CardExpiry   `bankstore:"DS_MERCHANT_EXPIRYDATE,required"`
	CVV2            secret.Value `bankstore:"DS_MERCHANT_CVV2,required"`
	StartDate       Date         `bankstore:"DS_SUBSCRIPTION_STARTDATE,always"`
	EndDate         Date         `bankstore:"DS_SUBSCRIPTION_ENDDATE,required"`
	Order           string       `bankstore:"DS_SUBSCRIPTION_ORDER,required"`
	PeriodicityDays int          `bankstore:"DS_SUBSCRIPTION_PERIODICITY,required"`
	Amount          int64        `bankstore:"DS_SUBSCRIPTION_AMOUNT,required"`
	Currency        Currency     `bankstore:"DS_SUBSCRIPTION_CURRENCY,required"`
	OriginalIP      netip.Addr   `bankstore:"DS_ORIGINAL_IP,auto"`
	// Execute and CardholderName are not in the seed's table for this
	// operation but are in its example envelope, right after DS_ORIGINAL_IP.
	// Execute says whether the first instalment is charged now; nil leaves
	// it to PAYCOMET's default (the seed's PHP sample always sends 1).
	Execute         *bool         `bankstore:"DS_EXECUTE,integer"`
	CardholderName  string        `bankstore:"DS_MERCHANT_CARDHOLDERNAME"`
	Scoring         *int          `bankstore:"DS_MERCHANT_SCORING,integer"`
	MerchantData    MerchantData  `bankstore:"DS_MERCHANT_DATA"`
	SCAException    SCAException  `bankstore:"DS_MERCHANT_SCA_EXCEPTION"`
	TrxType         TrxType       `bankstore:"DS_MERCHANT_TRX_TYPE"`
	EscrowTargets   EscrowTargets `bankstore:"DS_ESCROW_TARGETS"`
	UserInteraction bool          `bankstore:"DS_USER_INTERACTION"`
}

// EditSubscriptionRequest changes a subscription's dates, period or amount
// (edit_subscription); currency and card stay. Execute charges the first
// instalment with the new terms and is always sent ("0" when false). In this
// operation alone the signature comes before DS_EXECUTE.
type EditSubscriptionRequest struct {
	IDUser          int64      `bankstore:"DS_IDUSER,required"`
	TokenUser       string     `bankstore:"DS_TOKEN_USER,required"`
	StartDate       Date       `bankstore:"DS_SUBSCRIPTION_STARTDATE,always"`
	EndDate         Date       `bankstore:"DS_SUBSCRIPTION_ENDDATE,required"`
	PeriodicityDays int        `bankstore:"DS_SUBSCRIPTION_PERIODICITY,required"`
	Amount          int64      `bankstore:"DS_SUBSCRIPTION_AMOUNT,required"`
	Execute         bool       `bankstore:"DS_EXECUTE,required,integer"`
	OriginalIP      netip.Addr `bankstore:"DS_ORIGINAL_IP,auto"`
}

// CreateSubscriptionTokenRequest subscribes an already registered user
// (create_subscription_token), so no card data travels.
type CreateSubscriptionTokenRequest struct {
	IDUser          int64         `bankstore:"DS_IDUSER,required"`
	TokenUser       string        `bankstore:"DS_TOKEN_USER,required"`
	StartDate       Date          `bankstore:"DS_SUBSCRIPTION_STARTDATE,always"`
	EndDate         Date          `bankstore:"DS_SUBSCRIPTION_ENDDATE,required"`
	Order           string        `bankstore:"DS_SUBSCRIPTION_ORDER,required"`
	PeriodicityDays int           `bankstore:"DS_SUBSCRIPTION_PERIODICITY,required"`
	Amount          int64         `bankstore:"DS_SUBSCRIPTION_AMOUNT,required"`
	Currency        Currency      `bankstore:"DS_SUBSCRIPTION_CURRENCY,required"`
	OriginalIP      netip.Addr    `bankstore:"DS_ORIGINAL_IP,auto"`
	Scoring         *int          `bankstore:"DS_MERCHANT_SCORING,integer"`
	MerchantData    MerchantData  `bankstore:"DS_MERCHANT_DATA"`
	SCAException    SCAException  `bankstore:"DS_MERCHANT_SCA_EXCEPTION"`
	TrxType         TrxType       `bankstore:"DS_MERCHANT_TRX_TYPE"`
	EscrowTargets   EscrowTargets `bankstore:"DS_ESCROW_TARGETS"`
	UserInteraction bool          `bankstore:"DS_USER_INTERACTION"`
}

// PreauthorizationRequest confirms or cancels a preauthorisation, plain or
// deferred (the seed gives all four operations the same elements). Order is
// the preauthorisation's own.
type PreauthorizationRequest struct {
	IDUser             int64      `bankstore:"DS_IDUSER,required"`
	TokenUser          string     `bankstore:"DS_TOKEN_USER,required"`
	Amount             int64      `bankstore:"DS_MERCHANT_AMOUNT,required"`
	Order              string     `bankstore:"DS_MERCHANT_ORDER,required"`
	OriginalIP         netip.Addr `bankstore:"DS_ORIGINAL_IP,auto"`
	MerchantDescriptor string     `bankstore:"DS_MERCHANT_MERCHANTDESCRIPTOR"`
}

// AddUserTokenRequest registers the card behind a BankStore JET token
// (add_user_token), so the merchant never sees the card number.
type AddUserTokenRequest struct {
	JetToken   string     `bankstore:"DS_MERCHANT_JETTOKEN,required"`
	JetID      string     `bankstore:"DS_MERCHANT_JETID,required"`
	OriginalIP netip.Addr `bankstore:"DS_ORIGINAL_IP,auto"`
}

// RTokenPurchaseRequest charges a card by the identifier of an earlier
// "payment by reference" (execute_purchase_rtoken). The seed does not mark
// amount, identifier and currency Obligatorio, but Anexo I signs the first two
// and a charge needs the third, so all are required. The seed allows a longer
// order here (70 characters) and sends no DS_ORIGINAL_IP; the product
// description is in its example envelope only.
type RTokenPurchaseRequest struct {
	Amount             int64    `bankstore:"DS_MERCHANT_AMOUNT,required"`
	Order              string   `bankstore:"DS_MERCHANT_ORDER,required,format=order70"`
	Identifier         string   `bankstore:"DS_MERCHANT_IDENTIFIER,required"`
	Currency           Currency `bankstore:"DS_MERCHANT_CURRENCY,required"`
	ProductDescription string   `bankstore:"DS_MERCHANT_PRODUCTDESCRIPTION"`
	MerchantDescriptor string   `bankstore:"DS_MERCHANT_MERCHANTDESCRIPTOR"`
}

// UserResponse is a new user's identity (add_user, add_user_token). The
// merchant stores both to charge the card later.
type UserResponse struct {
	IDUser    int64  `bankstore:"DS_IDUSER"`
	TokenUser string `bankstore:"DS_TOKEN_USER"`
}

// InfoUserResponse describes the card behind a user (info_user); the
// refresher reads the expiry from it.
type InfoUserResponse struct {
	// MaskedPAN shows only the last four digits.
	MaskedPAN         string    `bankstore:"DS_MERCHANT_PAN"`
	CardBrand         string    `bankstore:"DS_CARD_BRAND"`
	CardType          string    `bankstore:"DS_CARD_TYPE"`
	IssuerCountryISO3 string    `bankstore:"DS_CARD_I_COUNTRY_ISO3"`
	Expiry            YearMonth `bankstore:"DS_EXPIRYDATE"`
	// CardHash identifies the card without revealing it.
	CardHash     string `bankstore:"DS_CARD_HASH"`
	CardCategory string `bankstore:"DS_CARD_CATEGORY"`
	SEPACard     bool   `bankstore:"DS_SEPA_CARD"`
}

// RemoveResponse answers remove_user and remove_subscription.
type RemoveResponse struct {
	Response bool `bankstore:"DS_RESPONSE"`
}

// ChargeResponse is the outcome of a charge or a change to one:
// confirm_purchase_dcc, the four preauthorisation confirmations and
// cancellations, and execute_purchase_rtoken. AuthCode is needed to refund.
type ChargeResponse struct {
	Amount   int64    `bankstore:"DS_MERCHANT_AMOUNT"`
	Order    string   `bankstore:"DS_MERCHANT_ORDER"`
	Currency Currency `bankstore:"DS_MERCHANT_CURRENCY"`
	AuthCode string   `bankstore:"DS_MERCHANT_AUTHCODE"`
	// CardCountry is the issuer's ISO 3166 numeric code (724 is Spain);
	// text, so leading zeros survive. It may be empty.
	CardCountry string `bankstore:"DS_MERCHANT_CARDCOUNTRY"`
	Response    bool   `bankstore:"DS_RESPONSE"`
}

// PurchaseResponse answers execute_purchase and create_preauthorization.
type PurchaseResponse struct {
	Amount      int64    `bankstore:"DS_MERCHANT_AMOUNT"`
	Order       string   `bankstore:"DS_MERCHANT_ORDER"`
	Currency    Currency `bankstore:"DS_MERCHANT_CURRENCY"`
	AuthCode    string   `bankstore:"DS_MERCHANT_AUTHCODE"`
	CardCountry string   `bankstore:"DS_MERCHANT_CARDCOUNTRY"`
	Response    bool     `bankstore:"DS_RESPONSE"`
	// ChallengeURL is where to send the cardholder when UserInteraction was
	// set and the issuer wants authentication.
	ChallengeURL string `bankstore:"DS_CHALLENGE_URL"`
}

// DCCPurchaseResponse offers the card's currency (execute_purchase_dcc).
// DCCSession must be kept to confirm. Exchange and Markup are decimal text,
// kept as text so no rounding happens before they are shown to the
// cardholder.
type DCCPurchaseResponse struct {
	Amount          int64    `bankstore:"DS_MERCHANT_AMOUNT"`
	Order           string   `bankstore:"DS_MERCHANT_ORDER"`
	Currency        Currency `bankstore:"DS_MERCHANT_CURRENCY"`
	DCCSession      string   `bankstore:"DS_MERCHANT_DCC_SESSION"`
	DCCCurrency     Currency `bankstore:"DS_MERCHANT_DCC_CURRENCY"`
	DCCCurrencyISO3 string   `bankstore:"DS_MERCHANT_DCC_CURRENCYISO3"`
	DCCCurrencyName string   `bankstore:"DS_MERCHANT_DCC_CURRENCYNAME"`
	DCCExchange     string   `bankstore:"DS_MERCHANT_DCC_EXCHANGE"`
	DCCAmount       int64    `bankstore:"DS_MERCHANT_DCC_AMOUNT"`
	DCCMarkup       string   `bankstore:"DS_MERCHANT_DCC_MARKUP"`
	DCCCardCountry  string   `bankstore:"DS_MERCHANT_DCC_CARDCOUNTRY"`
	Response        bool     `bankstore:"DS_RESPONSE"`
}

// RefundResponse answers execute_refund; AuthCode is the refund's own.
type RefundResponse struct {
	Order    string   `bankstore:"DS_MERCHANT_ORDER"`
	Currency Currency `bankstore:"DS_MERCHANT_CURRENCY"`
	AuthCode string   `bankstore:"DS_MERCHANT_AUTHCODE"`
	Response bool     `bankstore:"DS_RESPONSE"`
}

// SubscriptionResponse answers create_subscription, edit_subscription and
// create_subscription_token. Order is the charged instalment's reference:
// the subscription order, "[DS_IDUSER]" and the date as YYYYMMDD.
type SubscriptionResponse struct {
	IDUser      int64    `bankstore:"DS_IDUSER"`
	TokenUser   string   `bankstore:"DS_TOKEN_USER"`
	Amount      int64    `bankstore:"DS_SUBSCRIPTION_AMOUNT"`
	Order       string   `bankstore:"DS_SUBSCRIPTION_ORDER"`
	Currency    Currency `bankstore:"DS_SUBSCRIPTION_CURRENCY"`
	AuthCode    string   `bankstore:"DS_MERCHANT_AUTHCODE"`
	CardCountry string   `bankstore:"DS_MERCHANT_CARDCOUNTRY"`
}
