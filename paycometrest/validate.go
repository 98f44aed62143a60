package paycometrest

import (
	"errors"
	"regexp"
	"time"
	"unicode"
)

// The seed's formats (IVR seed, "IVR session request" and "Check of IVR
// session status").
var (
	orderRE    = regexp.MustCompile(`^[A-Za-z0-9]{1,20}$`)
	currencyRE = regexp.MustCompile(`^[A-Z]{3}$`)
	languageRE = regexp.MustCompile(`^[A-Za-z0-9]{2}$`)
	stationRE  = regexp.MustCompile(`^[A-Za-z0-9]{1,255}$`)
	dateRE     = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}$`)
)

// Bounds of the seed's numeric elements.
const (
	MaxTerminal    = 99999    // IVR_MERCHANT_TERMINAL [0-9]{1,5}
	MaxProviderID  = 999999   // IVR_PROVIDER_ID [0-9]{1,6}
	MaxAmount      = 99999999 // IVR_MERCHANT_AMOUNT [0-9]{1,8}
	MaxPeriodicity = 365      // IVR_SUBSCRIPTION_PERIODICITY, days
	MaxRetries     = 9        // IVR_MAX_RETRIES [0-9]{1}
	MaxTimeout     = 999      // IVR_SESSION_TIMEOUT [0-9]{3}, seconds
	maxText        = 255      // free-text elements
)

// The seed's element names with their JSON keys, for errors.
type element struct{ name, key string }

var (
	elTerminal     = element{"IVR_MERCHANT_TERMINAL", "terminal"}
	elProvider     = element{"IVR_PROVIDER_ID", "ivrProviderId"}
	elStation      = element{"IVR_STATION_ID", "ivrStationId"}
	elAmount       = element{"IVR_MERCHANT_AMOUNT", "ivrMerchantAmount"}
	elCurrency     = element{"IVR_MERCHANT_CURRENCY", "ivrMerchantCurrency"}
	elOrder        = element{"IVR_MERCHANT_ORDER", "ivrMerchantOrder"}
	elLanguage     = element{"IVR_MERCHANT_LANGUAGE", "ivrMerchantLanguage"}
	elType         = element{"IVR_TRANSACTION_TYPE", "ivrTransactionType"}
	elConcept      = element{"IVR_MERCHANT_CONCEPT", "ivrMerchantConcept"}
	elStart        = element{"IVR_SUBSCRIPTION_STARTDATE", "ivrSubscriptionStartdate"}
	elEnd          = element{"IVR_SUBSCRIPTION_ENDDATE", "ivrSubscriptionEnddate"}
	elPeriodicity  = element{"IVR_SUBSCRIPTION_PERIODICITY", "ivrSubscriptionPeriodicity"}
	elMaxRetries   = element{"IVR_MAX_RETRIES", "ivrMaxRetries"}
	elTimeout      = element{"IVR_SESSION_TIMEOUT", "ivrSessionTimeout"}
	elCbTimeout    = element{"IVR_CALLBACK_STATION_TIMEOUT", "ivrCallbackStationTimeout"}
	elCbOK         = element{"IVR_CALLBACK_STATION_OK", "ivrCallbackStationOk"}
	elCbKO         = element{"IVR_CALLBACK_STATION_KO", "ivrCallbackStationKo"}
	elCallerNumber = element{"IVR_CALLER_PHONE_NUMBER", "ivrCallerPhoneNumber"}
)

func bad(e element, reason string) error {
	return &InputError{Element: e.name, Key: e.key, Reason: reason}
}

// Validate checks r against the seed's bounds. Of the subscription dates
// only the format and their order are checked, not that they lie ahead.
// Every problem is an *InputError; several are joined.
func (r SessionRequest) Validate() error {
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	add(checkTerminal(r.Terminal))
	add(checkProvider(r.ProviderID))
	if !stationRE.MatchString(r.StationID) {
		add(bad(elStation, "must be 1 to 255 letters or digits"))
	}
	switch {
	case r.Amount < 0 || r.Amount > MaxAmount:
		add(bad(elAmount, "must be 0 to 99999999 (minor units, at most 8 digits)"))
	case r.Type == TypeCardRegistration && r.Amount != 0:
		add(bad(elAmount, "must be 0 for a card registration (IVR_TRANSACTION_TYPE 107)"))
	}
	if !currencyRE.MatchString(r.Currency) {
		add(bad(elCurrency, "must be an ISO 4217 code of three capital letters, such as EUR"))
	}
	add(checkOrder(r.Order))
	if !languageRE.MatchString(r.Language) {
		add(bad(elLanguage, "must be a two-letter ISO 639-1 code, such as ES"))
	}
	if !r.Type.Valid() {
		add(bad(elType, `must be "1" (authorisation), "3" (pre-authorisation), "9" (subscription) or "107" (card registration)`))
	}
	add(checkText(elConcept, r.Concept))
	add(checkText(elCbTimeout, r.CallbackStationTimeout))
	add(checkText(elCbOK, r.CallbackStationOK))
	add(checkText(elCbKO, r.CallbackStationKO))
	add(checkText(elCallerNumber, r.CallerPhoneNumber))
	if r.MaxRetries != nil && (*r.MaxRetries < 0 || *r.MaxRetries > MaxRetries) {
		add(bad(elMaxRetries, "must be 0 to 9"))
	}
	if r.SessionTimeout != nil && (*r.SessionTimeout < 0 || *r.SessionTimeout > MaxTimeout) {
		add(bad(elTimeout, "must be 0 to 999 seconds"))
	}
	switch {
	case r.Type == TypeSubscription && r.Subscription == nil:
		add(bad(elStart, "is required for a subscription (IVR_TRANSACTION_TYPE 9), with IVR_SUBSCRIPTION_ENDDATE and IVR_SUBSCRIPTION_PERIODICITY"))
	case r.Type != TypeSubscription && r.Subscription != nil:
		add(bad(elStart, "is only for a subscription (IVR_TRANSACTION_TYPE 9)"))
	case r.Subscription != nil:
		errs = append(errs, r.Subscription.validate()...)
	}
	return errors.Join(errs...)
}

func (s Subscription) validate() []error {
	var errs []error
	start, err1 := parseDate(s.Start)
	end, err2 := parseDate(s.End)
	if err1 != nil {
		errs = append(errs, bad(elStart, "must be a date YYYY-MM-DD"))
	}
	if err2 != nil {
		errs = append(errs, bad(elEnd, "must be a date YYYY-MM-DD"))
	}
	if err1 == nil && err2 == nil {
		if !end.After(start) {
			errs = append(errs, bad(elEnd, "must be after IVR_SUBSCRIPTION_STARTDATE"))
		} else if end.After(start.AddDate(5, 0, 0)) {
			errs = append(errs, bad(elEnd, "must be at most 5 years after IVR_SUBSCRIPTION_STARTDATE"))
		}
	}
	if s.PeriodicityDays < 1 || s.PeriodicityDays > MaxPeriodicity {
		errs = append(errs, bad(elPeriodicity, "must be 1 to 365 days"))
	}
	return errs
}

func parseDate(s string) (time.Time, error) {
	if !dateRE.MatchString(s) {
		return time.Time{}, errors.New("not YYYY-MM-DD")
	}
	return time.Parse(time.DateOnly, s)
}

// Validate checks a session reference against the seed's bounds.
func (ref SessionRef) Validate() error {
	return errors.Join(checkTerminal(ref.Terminal), checkProvider(ref.ProviderID), checkOrder(ref.Order))
}

func checkTerminal(t int) error {
	if t < 1 || t > MaxTerminal {
		return bad(elTerminal, "must be a terminal number of 1 to 5 digits")
	}
	return nil
}

// checkProvider refuses 0 as well: the seed's [0-9]{1,6} admits it, but a
// provider code is assigned by PAYCOMET and 0 only ever means "not set".
func checkProvider(p int) error {
	if p < 1 || p > MaxProviderID {
		return bad(elProvider, "must be the IVR provider code, 1 to 6 digits (IVR_PROVIDER_ID)")
	}
	return nil
}

// checkOrder is the seed's [A-Za-z0-9]{1,20}, which also keeps out the "["
// and "]" a subscription's order must not hold.
func checkOrder(o string) error {
	if !orderRE.MatchString(o) {
		return bad(elOrder, "must be 1 to 20 letters or digits (no spaces, '[' or ']')")
	}
	return nil
}

// checkText bounds the free-text elements the seed gives no format for:
// at most 255 characters, no control characters.
func checkText(e element, s string) error {
	if len([]rune(s)) > maxText {
		return bad(e, "must be at most 255 characters")
	}
	for _, r := range s {
		if unicode.IsControl(r) || r == unicode.ReplacementChar {
			return bad(e, "must not hold control characters or invalid UTF-8")
		}
	}
	return nil
}
