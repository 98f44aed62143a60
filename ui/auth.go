package ui

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Sessions are stateless: the cookie is "<expiry>.<nonce>.<mac>", the MAC
// keyed by a key derived from ADMIN_TOKEN, so every replica (and a
// restarted one) accepts it, nothing is stored, and changing ADMIN_TOKEN
// ends every session. The form token of a session is a second MAC over the
// cookie, so a cross-site page can neither read nor forge it.
const (
	cookieName = "paycomet_ui_session"
	sessionTTL = 12 * time.Hour
)

type auth struct {
	tokenSum [sha256.Size]byte
	key      []byte
	enabled  bool
	now      func() time.Time
}

func newAuth(token string, now func() time.Time) *auth {
	a := &auth{enabled: token != "", now: now}
	a.tokenSum = sha256.Sum256([]byte(token))
	k := sha256.Sum256([]byte("paycomet-notify ui session key\x00" + token))
	a.key = k[:]
	return a
}

// tokenOK compares a presented token with ADMIN_TOKEN in constant time
// (fixed-size sums, so not even the length leaks).
func (a *auth) tokenOK(tok string) bool {
	sum := sha256.Sum256([]byte(tok))
	return a.enabled && subtle.ConstantTimeCompare(sum[:], a.tokenSum[:]) == 1
}

func (a *auth) mac(parts ...string) string {
	m := hmac.New(sha256.New, a.key)
	for _, p := range parts {
		m.Write([]byte(p))
		m.Write([]byte{0})
	}
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// newSession is a fresh cookie value.
func (a *auth) newSession() string {
	var n [16]byte
	_, _ = rand.Read(n[:])
	exp := strconv.FormatInt(a.now().Add(sessionTTL).Unix(), 10)
	nonce := hex.EncodeToString(n[:])
	return exp + "." + nonce + "." + a.mac("session", exp, nonce)
}

// validSession checks a cookie value's MAC and expiry.
func (a *auth) validSession(v string) bool {
	parts := strings.Split(v, ".")
	if !a.enabled || len(parts) != 3 {
		return false
	}
	exp, err := strconv.ParseInt(parts[0], 10, 64)
	if err != nil || a.now().Unix() >= exp {
		return false
	}
	return hmac.Equal([]byte(parts[2]), []byte(a.mac("session", parts[0], parts[1])))
}

// formToken is the per-session token every form carries.
func (a *auth) formToken(session string) string { return a.mac("form", session) }

// who says how a request is authenticated.
type who int

const (
	nobody who = iota
	byBearer
	byCookie
)

// identify returns how r is authenticated, and its session (cookie) value.
func (a *auth) identify(r *http.Request) (who, string) {
	if !a.enabled {
		return nobody, ""
	}
	if scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " "); ok && strings.EqualFold(scheme, "Bearer") {
		if a.tokenOK(strings.TrimSpace(tok)) {
			return byBearer, ""
		}
		return nobody, ""
	}
	if c, err := r.Cookie(cookieName); err == nil && a.validSession(c.Value) {
		return byCookie, c.Value
	}
	return nobody, ""
}

// sameOrigin is the cross-site check of every POST: its Origin, or without
// one its Referer, must be the page's own origin. A request with neither
// (a command-line client) passes here; a cookie-authenticated one still
// needs the form token.
func sameOrigin(r *http.Request) bool {
	own := "http://" + r.Host
	if r.TLS != nil {
		own = "https://" + r.Host
	}
	if o := r.Header.Get("Origin"); o != "" {
		return o == own
	}
	if ref := r.Header.Get("Referer"); ref != "" {
		u, err := url.Parse(ref)
		return err == nil && u.Scheme+"://"+u.Host == own
	}
	return true
}

func (a *auth) setCookie(w http.ResponseWriter, r *http.Request, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: value, Path: "/ui", MaxAge: maxAge,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
}
