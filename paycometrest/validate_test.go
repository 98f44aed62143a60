package paycometrest_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/paycomet-notify/paycomet-notify/paycometrest"
)

// TestBoundsRefusedBeforeSending: every bound of the seed is refused with
// its element named, and nothing reaches the server.
func TestBoundsRefusedBeforeSending(t *testing.T) {
	cases := []struct {
		name    string
		edit    func(*paycometrest.SessionRequest)
		element string
	}{
		{"terminal zero", func(r *paycometrest.SessionRequest) { r.Terminal = 0 }, "IVR_MERCHANT_TERMINAL"},
		{"terminal of 6 digits", func(r *paycometrest.SessionRequest) { r.Terminal = 100000 }, "IVR_MERCHANT_TERMINAL"},
		{"provider missing", func(r *paycometrest.SessionRequest) { r.ProviderID = 0 }, "IVR_PROVIDER_ID"},
		{"provider of 7 digits", func(r *paycometrest.SessionRequest) { r.ProviderID = 1000000 }, "IVR_PROVIDER_ID"},
		{"station missing", func(r *paycometrest.SessionRequest) { r.StationID = "" }, "IVR_STATION_ID"},
		{"station with a space", func(r *paycometrest.SessionRequest) { r.StationID = "desk 1" }, "IVR_STATION_ID"},
		{"station of 256", func(r *paycometrest.SessionRequest) { r.StationID = strings.Repeat("a", 256) }, "IVR_STATION_ID"},
		{"amount negative", func(r *paycometrest.SessionRequest) { r.Amount = -1 }, "IVR_MERCHANT_AMOUNT"},
		{"amount of 9 digits", func(r *paycometrest.SessionRequest) { r.Amount = 100000000 }, "IVR_MERCHANT_AMOUNT"},
		{"amount on a 107", func(r *paycometrest.SessionRequest) { r.Type, r.Amount = paycometrest.TypeCardRegistration, 1 }, "IVR_MERCHANT_AMOUNT"},
		{"currency lower case", func(r *paycometrest.SessionRequest) { r.Currency = "eur" }, "IVR_MERCHANT_CURRENCY"},
		{"currency missing", func(r *paycometrest.SessionRequest) { r.Currency = "" }, "IVR_MERCHANT_CURRENCY"},
		{"order missing", func(r *paycometrest.SessionRequest) { r.Order = "" }, "IVR_MERCHANT_ORDER"},
		{"order of 21", func(r *paycometrest.SessionRequest) { r.Order = strings.Repeat("A", 21) }, "IVR_MERCHANT_ORDER"},
		{"order with a dash", func(r *paycometrest.SessionRequest) { r.Order = "A-1" }, "IVR_MERCHANT_ORDER"},
		{"subscription order with brackets", func(r *paycometrest.SessionRequest) {
			*r = subscription()
			r.Order = "SUB[1]"
		}, "IVR_MERCHANT_ORDER"},
		{"language of 3", func(r *paycometrest.SessionRequest) { r.Language = "ESP" }, "IVR_MERCHANT_LANGUAGE"},
		{"type 2", func(r *paycometrest.SessionRequest) { r.Type = "2" }, "IVR_TRANSACTION_TYPE"},
		{"type missing", func(r *paycometrest.SessionRequest) { r.Type = "" }, "IVR_TRANSACTION_TYPE"},
		{"concept of 256", func(r *paycometrest.SessionRequest) { r.Concept = strings.Repeat("c", 256) }, "IVR_MERCHANT_CONCEPT"},
		{"concept with a newline", func(r *paycometrest.SessionRequest) { r.Concept = "a\nb" }, "IVR_MERCHANT_CONCEPT"},
		{"max retries 10", func(r *paycometrest.SessionRequest) { r.MaxRetries = ptr(10) }, "IVR_MAX_RETRIES"},
		{"session timeout 1000", func(r *paycometrest.SessionRequest) { r.SessionTimeout = ptr(1000) }, "IVR_SESSION_TIMEOUT"},
		{"callback with a control character", func(r *paycometrest.SessionRequest) { r.CallbackStationOK = "\x00" }, "IVR_CALLBACK_STATION_OK"},
		{"caller number too long", func(r *paycometrest.SessionRequest) { r.CallerPhoneNumber = strings.Repeat("1", 256) }, "IVR_CALLER_PHONE_NUMBER"},
		{"subscription without schedule", func(r *paycometrest.SessionRequest) { r.Type = paycometrest.TypeSubscription }, "IVR_SUBSCRIPTION_STARTDATE"},
		{"schedule on an authorisation", func(r *paycometrest.SessionRequest) {
			r.Subscription = subscription().Subscription
		}, "IVR_SUBSCRIPTION_STARTDATE"},
		{"start not a date", func(r *paycometrest.SessionRequest) { *r = subscription(); r.Subscription.Start = "01/02/2026" }, "IVR_SUBSCRIPTION_STARTDATE"},
		{"start 31 February", func(r *paycometrest.SessionRequest) { *r = subscription(); r.Subscription.Start = "2026-02-31" }, "IVR_SUBSCRIPTION_STARTDATE"},
		{"end not a date", func(r *paycometrest.SessionRequest) { *r = subscription(); r.Subscription.End = "2027" }, "IVR_SUBSCRIPTION_ENDDATE"},
		{"end equal to start", func(r *paycometrest.SessionRequest) { *r = subscription(); r.Subscription.End = "2026-02-01" }, "IVR_SUBSCRIPTION_ENDDATE"},
		{"end before start", func(r *paycometrest.SessionRequest) { *r = subscription(); r.Subscription.End = "2026-01-31" }, "IVR_SUBSCRIPTION_ENDDATE"},
		{"end 5 years and a day", func(r *paycometrest.SessionRequest) { *r = subscription(); r.Subscription.End = "2031-02-02" }, "IVR_SUBSCRIPTION_ENDDATE"},
		{"periodicity 0", func(r *paycometrest.SessionRequest) { *r = subscription(); r.Subscription.PeriodicityDays = 0 }, "IVR_SUBSCRIPTION_PERIODICITY"},
		{"periodicity 366", func(r *paycometrest.SessionRequest) { *r = subscription(); r.Subscription.PeriodicityDays = 366 }, "IVR_SUBSCRIPTION_PERIODICITY"},
	}
	rc, c := newRecorder(t, 200, `{"errorCode":0,"ivrResponse":true}`)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := authorization()
			tc.edit(&r)
			_, err := c.GetSession(context.Background(), r)
			var in *paycometrest.InputError
			if !errors.As(err, &in) || !strings.Contains(err.Error(), tc.element) {
				t.Fatalf("GetSession = %v, want an *InputError naming %s", err, tc.element)
			}
		})
	}
	for _, tc := range []struct {
		name    string
		ref     paycometrest.SessionRef
		element string
	}{
		{"state: no terminal", paycometrest.SessionRef{ProviderID: 1, Order: "A"}, "IVR_MERCHANT_TERMINAL"},
		{"state: no provider", paycometrest.SessionRef{Terminal: 1, Order: "A"}, "IVR_PROVIDER_ID"},
		{"state: bad order", paycometrest.SessionRef{Terminal: 1, ProviderID: 1, Order: "A B"}, "IVR_MERCHANT_ORDER"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err1 := c.SessionState(context.Background(), tc.ref)
			_, err2 := c.SessionCancel(context.Background(), tc.ref)
			for _, err := range []error{err1, err2} {
				var in *paycometrest.InputError
				if !errors.As(err, &in) || in.Element != tc.element {
					t.Errorf("= %v, want an *InputError for %s", err, tc.element)
				}
			}
		})
	}
	if n := len(rc.requests()); n != 0 {
		t.Fatalf("the server received %d requests; bad input must never be sent", n)
	}
	// The edges themselves are accepted, and are sent.
	edges := []func(*paycometrest.SessionRequest){
		func(r *paycometrest.SessionRequest) {
			r.Amount, r.Order, r.Terminal, r.ProviderID = 99999999, strings.Repeat("Z", 20), 99999, 999999
		},
		func(r *paycometrest.SessionRequest) { r.Type, r.Amount = paycometrest.TypeCardRegistration, 0 },
		func(r *paycometrest.SessionRequest) {
			*r = subscription()
			r.Subscription.End = "2031-02-01"
			r.Subscription.PeriodicityDays = 365
		},
		func(r *paycometrest.SessionRequest) {
			*r = subscription()
			r.Subscription.End = "2026-02-02"
			r.Subscription.PeriodicityDays = 1
		},
		func(r *paycometrest.SessionRequest) {
			*r = subscription()
			r.Subscription.Start, r.Subscription.End = "2028-02-29", "2033-02-28"
		},
	}
	for i, e := range edges {
		r := authorization()
		e(&r)
		if _, err := c.GetSession(context.Background(), r); err != nil {
			t.Errorf("edge %d refused: %v", i, err)
		}
	}
	if n := len(rc.requests()); n != len(edges) {
		t.Errorf("the server received %d requests, want %d", n, len(edges))
	}
}

// TestInputErrorsDoNotEchoValues: a caller's phone number is personal data.
func TestInputErrorsDoNotEchoValues(t *testing.T) {
	r := authorization()
	r.CallerPhoneNumber = strings.Repeat("6", 300)
	r.Order = "secret order!"
	err := r.Validate()
	if err == nil || strings.Contains(err.Error(), "666666") || strings.Contains(err.Error(), "secret order") {
		t.Fatalf("Validate = %v", err)
	}
}

func TestStatesAndResults(t *testing.T) {
	for s := paycometrest.SessionState(0); s <= 7; s++ {
		if s.Meaning() == "Unknown state" || strings.HasPrefix(s.String(), "state_") {
			t.Errorf("state %d has no name", s)
		}
		want := s >= 2 && s <= 6
		if s.Final() != want {
			t.Errorf("SessionState(%d).Final() = %v, want %v", s, s.Final(), want)
		}
	}
	for r := paycometrest.SessionResult(0); r <= 5; r++ {
		if r.Meaning() == "Unknown result" {
			t.Errorf("result %d has no meaning", r)
		}
	}
	for code, want := range map[int]string{
		1002: "External provider signature error", 1206: "ProviderID not available", 1255: "Call terminated by the client",
		1256: "Call terminated, incorrect attempts exceeded", 1257: "Call terminated, operation attempts exceeded",
		1258: "stationID not available", 1259: "It has not been possible to establish the IVR session", 1001: "User (token) not found",
	} {
		if got := paycometrest.ErrorMeaning(code); got != want {
			t.Errorf("ErrorMeaning(%d) = %q, want %q", code, got, want)
		}
	}
}
