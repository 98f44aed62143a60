package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/paycomet-notify/paycomet-notify/bankstore"
	"github.com/paycomet-notify/paycomet-notify/bankstore/bankstoretest"
	"github.com/paycomet-notify/paycomet-notify/internal/testenv"
)

const (
	bsMerchant = "MERCH001"
	bsTerminal = "1000"
	bsPassword = "terminal-password"
	bsPAN      = "4548812049400004"
)

func bankstoreEnv(url string) map[string]string {
	return map[string]string{
		"PAYCOMET_MERCHANT_CODE": bsMerchant,
		"PAYCOMET_TERMINALS":     bsTerminal + ":" + bsPassword,
		"BANKSTORE_URL":          url,
	}
}

type result struct {
	code           int
	stdout, stderr string
}

func runBankstoreCmd(t *testing.T, env map[string]string, stdin string, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(t.Context(), append([]string{"bankstore"}, args...), env, strings.NewReader(stdin), &out, &errOut)
	return result{code, out.String(), errOut.String()}
}

// answer decodes the JSON object the command printed.
func (r result) answer(t *testing.T) map[string]string {
	t.Helper()
	var m map[string]string
	if err := json.Unmarshal([]byte(r.stdout), &m); err != nil {
		t.Fatalf("stdout is not one JSON object of strings: %v\n%s", err, r.stdout)
	}
	return m
}

func TestBankstoreCommandExitCodes(t *testing.T) {
	fake := bankstoretest.NewServer(t, bsMerchant, bsTerminal, bsPassword)
	if err := fake.AddUser(41, "tok41", bsPAN, "1230"); err != nil {
		t.Fatal(err)
	}
	env := bankstoreEnv(fake.URL)

	t.Run("0: the answer as JSON", func(t *testing.T) {
		r := runBankstoreCmd(t, env, `{"DS_IDUSER": "41", "DS_TOKEN_USER": "tok41"}`, "info_user")
		if r.code != 0 {
			t.Fatalf("exit %d, want 0; stderr: %s", r.code, r.stderr)
		}
		got := r.answer(t)
		if got["DS_MERCHANT_PAN"] != "XXXXXXXXXXXX0004" || got["DS_EXPIRYDATE"] != "2030/12" || got["DS_ERROR_ID"] != "0" {
			t.Errorf("answer = %v", got)
		}
	})
	t.Run("2: PAYCOMET refused, answer still printed", func(t *testing.T) {
		r := runBankstoreCmd(t, env, `{"DS_IDUSER": 99, "DS_TOKEN_USER": "tok41"}`, "info_user")
		if r.code != 2 {
			t.Fatalf("exit %d, want 2; stderr: %s", r.code, r.stderr)
		}
		if got := r.answer(t); got["DS_ERROR_ID"] != "1001" {
			t.Errorf("answer = %v, want DS_ERROR_ID 1001", got)
		}
		if !strings.Contains(r.stderr, "1001") || !strings.Contains(r.stderr, "User (token) not found") {
			t.Errorf("stderr = %q, want the code and its meaning", r.stderr)
		}
	})

	// Bad input: exit 1 naming the problem, and nothing reaches the fake.
	before := len(fake.Calls())
	for _, tc := range []struct {
		name, stdin string
		args        []string
		env         map[string]string
		mentions    []string
	}{
		{"missing required element", `{"DS_IDUSER": "41"}`, []string{"info_user"}, env, []string{"DS_TOKEN_USER", "required"}},
		{"missing required flag", `{"DS_IDUSER": "41", "DS_TOKEN_USER": "tok41", "DS_SUBSCRIPTION_ENDDATE": "2030-01-01", "DS_SUBSCRIPTION_PERIODICITY": 7, "DS_SUBSCRIPTION_AMOUNT": 1}`,
			[]string{"edit_subscription"}, env, []string{"DS_EXECUTE", "required"}},
		{"nothing on stdin", ``, []string{"info_user"}, env, []string{"DS_IDUSER", "DS_TOKEN_USER"}},
		{"unknown operation", `{}`, []string{"info_users"}, env, []string{`"info_users"`, "info_user"}},
		{"unknown element", `{"DS_IDUSER": "41", "DS_TOKEN_USER": "tok41", "DS_USER": "x"}`, []string{"info_user"}, env, []string{"DS_USER", "not an element"}},
		{"terminal in the request", `{"DS_IDUSER": "41", "DS_TOKEN_USER": "tok41", "DS_MERCHANT_TERMINAL": "1000"}`, []string{"info_user"}, env, []string{"DS_MERCHANT_TERMINAL", "configuration"}},
		{"malformed value", `{"DS_IDUSER": "4x1", "DS_TOKEN_USER": "tok41"}`, []string{"info_user"}, env, []string{"DS_IDUSER"}},
		{"malformed amount", `{"DS_IDUSER": 41, "DS_TOKEN_USER": "tok41", "DS_MERCHANT_AMOUNT": 12.5, "DS_MERCHANT_ORDER": "O1", "DS_MERCHANT_CURRENCY": "EUR"}`,
			[]string{"execute_purchase"}, env, []string{"DS_MERCHANT_AMOUNT"}},
		{"not JSON", `DS_IDUSER=41`, []string{"info_user"}, env, []string{"not a JSON object"}},
		{"two JSON values", `{} {}`, []string{"info_user"}, env, []string{"more than one"}},
		{"unexpected argument", `{}`, []string{"info_user", "41"}, env, []string{`"41"`}},
		{"several terminals, none chosen", `{"DS_IDUSER": "41", "DS_TOKEN_USER": "tok41"}`, []string{"info_user"},
			map[string]string{"PAYCOMET_MERCHANT_CODE": bsMerchant, "PAYCOMET_TERMINALS": "1000:a,2000:b", "BANKSTORE_URL": fake.URL}, []string{"--terminal", "1000, 2000"}},
		{"terminal not configured", `{"DS_IDUSER": "41", "DS_TOKEN_USER": "tok41"}`, []string{"--terminal", "3000", "info_user"}, env, []string{"3000", "not configured"}},
		{"no configuration", `{"DS_IDUSER": "41", "DS_TOKEN_USER": "tok41"}`, []string{"info_user"},
			map[string]string{"BANKSTORE_URL": fake.URL}, []string{"PAYCOMET_MERCHANT_CODE", "PAYCOMET_TERMINALS"}},
	} {
		t.Run("1: "+tc.name, func(t *testing.T) {
			r := runBankstoreCmd(t, tc.env, tc.stdin, tc.args...)
			if r.code != 1 {
				t.Fatalf("exit %d, want 1; stdout %q stderr %q", r.code, r.stdout, r.stderr)
			}
			for _, m := range tc.mentions {
				if !strings.Contains(r.stderr, m) {
					t.Errorf("stderr %q does not mention %q", r.stderr, m)
				}
			}
			if r.stdout != "" {
				t.Errorf("stdout = %q, want nothing", r.stdout)
			}
		})
	}
	if calls := fake.Calls(); len(calls) != before {
		t.Errorf("bad input reached the fake: %+v", calls[before:])
	}

	t.Run("1: card data stays out of messages", func(t *testing.T) {
		r := runBankstoreCmd(t, env, `{"DS_MERCHANT_PAN": "`+bsPAN+`", "DS_MERCHANT_EXPIRYDATE": "1330", "DS_MERCHANT_CVV2": "987"}`, "add_user")
		if r.code != 1 || !strings.Contains(r.stderr, "DS_MERCHANT_EXPIRYDATE") {
			t.Fatalf("exit %d, stderr %q; want 1 naming DS_MERCHANT_EXPIRYDATE", r.code, r.stderr)
		}
		if strings.Contains(r.stderr, bsPAN) || strings.Contains(r.stderr, "987") {
			t.Errorf("stderr shows card data: %q", r.stderr)
		}
	})
	t.Run("1: transport failure", func(t *testing.T) {
		closed := fmt.Sprintf("http://127.0.0.1:%d/gateway/xml-bankstore", testenv.FreePort(t))
		r := runBankstoreCmd(t, bankstoreEnv(closed), `{"DS_IDUSER": "41", "DS_TOKEN_USER": "tok41"}`, "--timeout", "2s", "remove_user")
		if r.code != 1 || !strings.Contains(r.stderr, "remove_user") || !strings.Contains(r.stderr, "connection refused") {
			t.Errorf("exit %d, stderr %q; want 1 with the operation and the cause", r.code, r.stderr)
		}
	})
	t.Run("0: --terminal picks among several", func(t *testing.T) {
		env := map[string]string{"PAYCOMET_MERCHANT_CODE": bsMerchant, "PAYCOMET_TERMINALS": "2000:other," + bsTerminal + ":" + bsPassword, "BANKSTORE_URL": fake.URL}
		r := runBankstoreCmd(t, env, `{"DS_IDUSER": "41", "DS_TOKEN_USER": "tok41"}`, "info_user", "--terminal", bsTerminal)
		if r.code != 0 {
			t.Errorf("exit %d, want 0; stderr %s", r.code, r.stderr)
		}
	})
}

func TestBankstoreCommandHelp(t *testing.T) {
	for _, args := range [][]string{{"list"}, {"--help"}} {
		r := runBankstoreCmd(t, nil, "", args...)
		if r.code != 0 {
			t.Errorf("bankstore %v: exit %d, want 0", args, r.code)
		}
		for _, op := range bankstore.Operations() {
			if !strings.Contains(r.stdout, string(op)) {
				t.Errorf("bankstore %v does not list %s", args, op)
			}
		}
	}
	r := runBankstoreCmd(t, nil, "", "execute_refund", "--help")
	for _, want := range []string{"DS_MERCHANT_AUTHCODE", "required", "DS_MERCHANT_AMOUNT", "optional", "never retried"} {
		if r.code != 0 || !strings.Contains(r.stdout, want) {
			t.Errorf("bankstore execute_refund --help: exit %d, output lacks %q:\n%s", r.code, want, r.stdout)
		}
	}
}

// TestBankstoreCommandEveryOperation runs all eighteen operations through
// the command against the fake, each answer feeding the next request.
func TestBankstoreCommandEveryOperation(t *testing.T) {
	fake := bankstoretest.NewServer(t, bsMerchant, bsTerminal, bsPassword)
	env := bankstoreEnv(fake.URL)
	today := time.Now()
	expiry := fmt.Sprintf("12%02d", (today.Year()+3)%100)
	end := today.AddDate(1, 0, 0).Format(time.DateOnly)

	call := func(op string, request string) map[string]string {
		t.Helper()
		r := runBankstoreCmd(t, env, request, op)
		if r.code != 0 {
			t.Fatalf("bankstore %s %s: exit %d; stderr %s stdout %s", op, request, r.code, r.stderr, r.stdout)
		}
		return r.answer(t)
	}
	obj := func(kv ...string) string {
		m := map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		b, _ := json.Marshal(m)
		return string(b)
	}

	u := call("add_user", obj("DS_MERCHANT_PAN", bsPAN, "DS_MERCHANT_EXPIRYDATE", expiry, "DS_MERCHANT_CVV2", "123", "DS_MERCHANT_CARDHOLDERNAME", "Ana"))
	id, tok := u["DS_IDUSER"], u["DS_TOKEN_USER"]
	user := []string{"DS_IDUSER", id, "DS_TOKEN_USER", tok}
	with := func(kv ...string) string { return obj(append(append([]string{}, user...), kv...)...) }

	if got := call("info_user", with()); got["DS_MERCHANT_PAN"] != "XXXXXXXXXXXX0004" {
		t.Errorf("info_user = %v", got)
	}
	paid := call("execute_purchase", with("DS_MERCHANT_AMOUNT", "1250", "DS_MERCHANT_ORDER", "CMD1", "DS_MERCHANT_CURRENCY", "EUR",
		"DS_MERCHANT_SCA_EXCEPTION", "MIT", "DS_MERCHANT_TRX_TYPE", "R", "DS_ORIGINAL_IP", "192.0.2.7"))
	if got := call("execute_refund", with("DS_MERCHANT_AUTHCODE", paid["DS_MERCHANT_AUTHCODE"], "DS_MERCHANT_ORDER", "CMD1",
		"DS_MERCHANT_CURRENCY", "EUR", "DS_MERCHANT_AMOUNT", "250")); got["DS_RESPONSE"] != "1" {
		t.Errorf("execute_refund = %v", got)
	}
	offer := call("execute_purchase_dcc", with("DS_MERCHANT_AMOUNT", "1000", "DS_MERCHANT_ORDER", "CMDDCC"))
	call("confirm_purchase_dcc", obj("DS_MERCHANT_ORDER", "CMDDCC", "DS_MERCHANT_DCC_CURRENCY", offer["DS_MERCHANT_DCC_CURRENCY"],
		"DS_MERCHANT_DCC_SESSION", offer["DS_MERCHANT_DCC_SESSION"]))
	call("create_subscription_token", with("DS_SUBSCRIPTION_ENDDATE", end, "DS_SUBSCRIPTION_ORDER", "CMDSUB",
		"DS_SUBSCRIPTION_PERIODICITY", "30", "DS_SUBSCRIPTION_AMOUNT", "500", "DS_SUBSCRIPTION_CURRENCY", "EUR"))
	call("edit_subscription", with("DS_SUBSCRIPTION_ENDDATE", end, "DS_SUBSCRIPTION_PERIODICITY", "60",
		"DS_SUBSCRIPTION_AMOUNT", "700", "DS_EXECUTE", "0"))
	call("remove_subscription", with())
	sub := call("create_subscription", obj("DS_MERCHANT_PAN", "5540500001000004", "DS_MERCHANT_EXPIRYDATE", expiry, "DS_MERCHANT_CVV2", "321",
		"DS_SUBSCRIPTION_STARTDATE", today.Format(time.DateOnly), "DS_SUBSCRIPTION_ENDDATE", end, "DS_SUBSCRIPTION_ORDER", "CMDSUB2",
		"DS_SUBSCRIPTION_PERIODICITY", "7", "DS_SUBSCRIPTION_AMOUNT", "100", "DS_SUBSCRIPTION_CURRENCY", "EUR", "DS_EXECUTE", "1"))
	if sub["DS_IDUSER"] == "" || sub["DS_MERCHANT_AUTHCODE"] == "" {
		t.Errorf("create_subscription = %v", sub)
	}
	call("create_preauthorization", with("DS_MERCHANT_AMOUNT", "5000", "DS_MERCHANT_ORDER", "CMDPRE1", "DS_MERCHANT_CURRENCY", "EUR"))
	call("preauthorization_confirm", with("DS_MERCHANT_AMOUNT", "5000", "DS_MERCHANT_ORDER", "CMDPRE1"))
	call("create_preauthorization", with("DS_MERCHANT_AMOUNT", "100", "DS_MERCHANT_ORDER", "CMDPRE2", "DS_MERCHANT_CURRENCY", "EUR"))
	call("preauthorization_cancel", with("DS_MERCHANT_AMOUNT", "100", "DS_MERCHANT_ORDER", "CMDPRE2"))
	uid, _ := strconv.ParseInt(id, 10, 64)
	for _, order := range []string{"CMDDEF1", "CMDDEF2"} {
		if err := fake.AddDeferredPreauthorization(uid, order, 900, "EUR"); err != nil {
			t.Fatal(err)
		}
	}
	call("deferred_preauthorization_confirm", with("DS_MERCHANT_AMOUNT", "900", "DS_MERCHANT_ORDER", "CMDDEF1"))
	call("deferred_preauthorization_cancel", with("DS_MERCHANT_AMOUNT", "900", "DS_MERCHANT_ORDER", "CMDDEF2"))
	call("add_user_token", obj("DS_MERCHANT_JETTOKEN", strings.Repeat("ab12", 16), "DS_MERCHANT_JETID", strings.Repeat("cd34", 8)))
	call("execute_purchase_rtoken", obj("DS_MERCHANT_AMOUNT", "300", "DS_MERCHANT_ORDER", "CMDRTOKEN", "DS_MERCHANT_IDENTIFIER",
		strings.Repeat("0a1b", 10), "DS_MERCHANT_CURRENCY", "EUR"))
	call("remove_user", with())

	r := runBankstoreCmd(t, env, with(), "info_user")
	if r.code != 2 || r.answer(t)["DS_ERROR_ID"] != "1001" {
		t.Errorf("info_user after remove_user: exit %d, %s; want 2 with 1001", r.code, r.stdout)
	}

	seen := map[bankstore.Operation]bool{}
	for _, c := range fake.Calls() {
		if c.ErrorID == 0 {
			seen[c.Op] = true
		}
	}
	for _, op := range bankstore.Operations() {
		if !seen[op] {
			t.Errorf("%s never succeeded at the fake", op)
		}
	}
}
