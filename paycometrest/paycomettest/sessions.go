package paycomettest

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"net/url"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // Europe/Madrid for the notifications' timestamps

	"github.com/paycomet-notify/paycomet-notify/events"
	"github.com/paycomet-notify/paycomet-notify/paycometrest"
)

// session is one IVR session the fake keeps.
type session struct {
	terminal  string
	req       paycometrest.SessionRequest
	script    Script
	started   time.Time
	timeout   time.Duration
	timer     *time.Timer
	end       *snapshot // set once the session is final
	notifying bool
}

func key(terminal int64, order string) string {
	return strconv.FormatInt(terminal, 10) + "/" + order
}

// getSession checks the request's bounds and the key's rights and starts a
// session.
func (s *Server) getSession(f map[string]any) (map[string]any, []string) {
	str := func(k string) string { v, _ := f[k].(string); return v }
	num := func(k string) (int, bool) { v, ok := f[k].(int64); return int(v), ok }
	terminal, _ := num("terminal")
	provider, _ := num("ivrProviderId")
	amount, _ := f["ivrMerchantAmount"].(int64)
	r := paycometrest.SessionRequest{
		Terminal: terminal, ProviderID: provider, StationID: str("ivrStationId"),
		Amount: amount, Currency: str("ivrMerchantCurrency"), Order: str("ivrMerchantOrder"),
		Language: str("ivrMerchantLanguage"), Type: paycometrest.TransactionType(str("ivrTransactionType")),
		Concept:                str("ivrMerchantConcept"),
		CallbackStationTimeout: str("ivrCallbackStationTimeout"),
		CallbackStationOK:      str("ivrCallbackStationOk"), CallbackStationKO: str("ivrCallbackStationKo"),
		CallerPhoneNumber: str("ivrCallerPhoneNumber"),
	}
	if n, ok := num("ivrMaxRetries"); ok {
		r.MaxRetries = &n
	}
	if n, ok := num("ivrSessionTimeout"); ok {
		r.SessionTimeout = &n
	}
	_, hasStart := f["ivrSubscriptionStartdate"]
	_, hasEnd := f["ivrSubscriptionEnddate"]
	p, hasPeriod := num("ivrSubscriptionPeriodicity")
	if hasStart || hasEnd || hasPeriod {
		r.Subscription = &paycometrest.Subscription{Start: str("ivrSubscriptionStartdate"), End: str("ivrSubscriptionEnddate"), PeriodicityDays: p}
	}
	if err := r.Validate(); err != nil {
		var problems []string
		for _, e := range flatten(err) {
			var in *paycometrest.InputError
			if errors.As(e, &in) {
				problems = append(problems, in.Key+": "+in.Reason)
			}
		}
		return nil, problems
	}
	fail := func(code int) (map[string]any, []string) {
		return map[string]any{"errorCode": code, "ivrResponse": false}, nil
	}
	term := strconv.Itoa(terminal)
	if _, ok := s.cfg.Terminals[term]; !ok {
		return fail(codeNoTerminal)
	}
	if provider != s.cfg.ProviderID {
		return fail(paycometrest.CodeProviderUnavailable)
	}
	if len(s.cfg.Stations) > 0 && !contains(s.cfg.Stations, r.StationID) {
		return fail(paycometrest.CodeStationUnavailable)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	k := key(int64(terminal), r.Order)
	if _, dup := s.sessions[k]; dup {
		return fail(codeDuplicateOrde)
	}
	se := &session{terminal: term, req: r, script: ScriptFor(r.Order), started: time.Now(), timeout: s.cfg.DefaultSessionTimeout}
	if r.SessionTimeout != nil && *r.SessionTimeout > 0 {
		se.timeout = time.Duration(*r.SessionTimeout) * time.Second
	}
	s.sessions[k] = se
	// The session ends by itself even if nobody asks for its state.
	after := se.script.endAfter(s.cfg.Step)
	if after == 0 || after > se.timeout {
		after = se.timeout
	}
	se.timer = time.AfterFunc(after, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.advance(se, time.Now())
	})
	return map[string]any{"errorCode": 0, "ivrResponse": true}, nil
}

func (s *Server) lookup(f map[string]any) *session {
	t, _ := f["terminal"].(int64)
	o, _ := f["ivrMerchantOrder"].(string)
	p, _ := f["ivrProviderId"].(int64)
	se := s.sessions[key(t, o)]
	if se == nil || int(p) != se.req.ProviderID {
		return nil
	}
	return se
}

// sessionState reports a session's current state.
func (s *Server) sessionState(f map[string]any) map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	se := s.lookup(f)
	if se == nil {
		return stateAnswer(false, snapshot{state: paycometrest.StateNotFound})
	}
	return stateAnswer(true, s.advance(se, time.Now()))
}

// sessionCancel ends a session that has not ended yet, as the agent's
// cancel does.
func (s *Server) sessionCancel(f map[string]any) map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	se := s.lookup(f)
	if se == nil {
		return map[string]any{"errorCode": 0, "ivrResponse": false, "ivrSessionState": int(paycometrest.StateNotFound)}
	}
	snap := s.advance(se, time.Now())
	if se.end != nil {
		return map[string]any{"errorCode": 0, "ivrResponse": false, "ivrSessionState": int(se.end.state)}
	}
	snap.state, snap.sessionSeconds = paycometrest.StateCancelled, 0
	se.end = &snap
	se.timer.Stop()
	return map[string]any{"errorCode": 0, "ivrResponse": true, "ivrSessionState": int(paycometrest.StateCancelled)}
}

func stateAnswer(found bool, snap snapshot) map[string]any {
	return map[string]any{
		"errorCode":        snap.errorCode,
		"ivrResponse":      found,
		"ivrSessionState":  int(snap.state),
		"ivrSessionResult": int(snap.result),
		"ivrTimeLeft":      snap.sessionSeconds,
		"ivrDigitPan":      snap.pan,
		"ivrDigitExp":      snap.exp,
		"ivrDigitCvc":      snap.cvc,
	}
}

// advance computes se's state at now and, the first time it is final,
// records it and posts the notification of an OK or KO. Called with s.mu
// held.
func (s *Server) advance(se *session, now time.Time) snapshot {
	if se.end != nil {
		return *se.end
	}
	elapsed := now.Sub(se.started)
	snap, ended := se.script.at(int(elapsed / s.cfg.Step))
	if !ended && elapsed >= se.timeout {
		snap.state, ended = paycometrest.StateTimedOut, true
	}
	if !ended {
		left := se.timeout - elapsed
		snap.sessionSeconds = int((left + time.Second - 1) / time.Second)
		return snap
	}
	snap.sessionSeconds = 0
	se.end = &snap
	if (snap.state == paycometrest.StateOK || snap.state == paycometrest.StateKO) && !se.notifying && !s.closed && s.cfg.NotifyURL != "" {
		se.notifying = true
		form := s.notification(se, snap, now)
		s.wg.Add(1)
		go s.post(form)
	}
	return snap
}

// notification is the form PAYCOMET posts for the session's payment, with
// the fields of paycomet-notifications.md section 4 for its type.
func (s *Server) notification(se *session, snap snapshot, now time.Time) url.Values {
	r := se.req
	ok := snap.state == paycometrest.StateOK
	response := "KO"
	if ok {
		response = "OK"
	}
	when := now.In(madrid())
	stamp := when.Format("20060102150405")
	tt := string(r.Type)
	f := url.Values{}
	f.Set("TransactionType", tt)
	f.Set("TransactionName", r.Type.Meaning())
	f.Set("Response", response)
	f.Set("TpvID", se.terminal)
	f.Set("AccountCode", s.cfg.MerchantCode)
	f.Set("DateTime", stamp)
	f.Set("Language", strings.ToUpper(r.Language))
	idUser := 1_000_000 + int64(digest(se.terminal, r.Order)%9_000_000)
	order := r.Order
	if r.Type == paycometrest.TypeSubscription {
		// PAYCOMET's subscription orders: <order>[<IdUser>]<yyyymmdd>.
		order += "[" + strconv.FormatInt(idUser, 10) + "]" + when.Format("20060102")
	}
	f.Set("Order", order)
	if r.Type != paycometrest.TypeCardRegistration {
		f.Set("Amount", strconv.FormatInt(r.Amount, 10))
		f.Set("Currency", r.Currency)
		f.Set("BankDateTime", stamp)
		f.Set("MethodId", "1")
		f.Set("MethodName", "Card")
		f.Set("CardBrand", "VISA")
		f.Set("CardCountry", "ES")
		f.Set("SecurePayment", "0")
	}
	if ok {
		f.Set("ErrorID", "0")
		if r.Type != paycometrest.TypeCardRegistration {
			f.Set("AuthCode", strconv.FormatUint(digest(stamp, order)%1_000_000, 10))
		}
		if r.Type == paycometrest.TypeCardRegistration || r.Type == paycometrest.TypeSubscription {
			f.Set("IdUser", strconv.FormatInt(idUser, 10))
			f.Set("TokenUser", "IVR"+strconv.FormatUint(digest("token", strconv.FormatInt(idUser, 10))%1e12, 36))
		}
	} else {
		f.Set("ErrorID", strconv.Itoa(snap.errorCode))
		f.Set("ErrorDescription", paycometrest.ErrorMeaning(snap.errorCode))
	}
	events.Sign(f, s.cfg.MerchantCode, s.cfg.Terminals[se.terminal])
	return f
}

// post delivers one notification, trying three times a second apart as long
// as the receiver does not answer 200.
func (s *Server) post(form url.Values) {
	defer s.wg.Done()
	n := Notification{Order: form.Get("Order"), Type: form.Get("TransactionType"), Response: form.Get("Response")}
	for n.Attempts = 1; ; n.Attempts++ {
		n.Status, n.Err = 0, ""
		resp, err := s.hc.PostForm(s.cfg.NotifyURL, form)
		if err != nil {
			n.Err = err.Error()
		} else {
			resp.Body.Close()
			n.Status = resp.StatusCode
		}
		if n.Status == 200 || n.Attempts == 3 {
			break
		}
		select {
		case <-s.quit:
			n.Err = "fake closed before delivery"
		case <-time.After(time.Second):
			continue
		}
		break
	}
	n.At = time.Now()
	s.mu.Lock()
	s.notes = append(s.notes, n)
	s.mu.Unlock()
	if s.cfg.OnNotify != nil {
		s.cfg.OnNotify(n)
	}
}

func madrid() *time.Location {
	loc, err := time.LoadLocation("Europe/Madrid")
	if err != nil {
		return time.FixedZone("CET", 3600)
	}
	return loc
}

func digest(parts ...string) uint64 {
	h := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return binary.BigEndian.Uint64(h[:8])
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// flatten undoes errors.Join.
func flatten(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}
