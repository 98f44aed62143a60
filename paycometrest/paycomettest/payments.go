package paycomettest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/paycomet-notify/paycomet-notify/paycometrest"
)

// Operation is one operation the fake's payment search and info know
// (Server.AddOperations). PAYCOMET's search returns it when its terminal,
// type, state, currency, amount and time match the request.
type Operation struct {
	PaycometID int64 // unique; 0 gets the next free id
	Terminal   int
	Order      string
	Type       int // operationType (the notification's TransactionType)
	State      int // 0 failed, 1 succeeded, 2 pending
	Amount     int64
	Currency   string
	Time       time.Time // the operation's timestamp (kept at whole seconds, Europe/Madrid)
	AuthCode   string    // empty for a failed operation
	ErrorCode  int       // the operation's error, 0 when it succeeded
	Pan        string    // masked; a demo card by default
}

// response is the row's "response": OK, KO, or UF while pending.
func (o Operation) response() string {
	switch o.State {
	case paycometrest.OperationSucceeded:
		return "OK"
	case paycometrest.OperationFailed:
		return "KO"
	}
	return "UF"
}

// Fault replaces the answer to one payments call (Server.SetPaymentsFault).
type Fault struct {
	Status     int    // HTTP status
	RetryAfter string // Retry-After header, for 429
	Body       string // body as is; empty answers {"errorCode": ErrorCode}
	ErrorCode  int
}

// PaymentsCall is what a Fault hook sees of a request.
type PaymentsCall struct {
	Op       string // "payments-search" or "payments-info"
	Terminal int
	State    int    // search
	Currency string // search
	FromDate string // search, yyyymmddhhmmss
	ToDate   string
	Order    string // info
}

// payments is the fake's operation book; its zero value is ready.
type payments struct {
	mu     sync.Mutex
	ops    []Operation // sorted by Time, then PaycometID
	sorted bool
	nextID int64
	fault  func(PaymentsCall) *Fault
	calls  int
}

// AddOperations seeds operations for search and info.
func (s *Server) AddOperations(ops ...Operation) {
	p := &s.pay
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, o := range ops {
		if o.PaycometID == 0 {
			p.nextID++
			o.PaycometID = 350000000 + p.nextID
		}
		o.Time = o.Time.Truncate(time.Second)
		if o.Pan == "" {
			o.Pan = "454881******0004"
		}
		p.ops = append(p.ops, o)
	}
	p.sorted = false
}

// SetPaymentsFault makes f decide each payments call's answer: a non-nil
// Fault is answered instead of the real one.
func (s *Server) SetPaymentsFault(f func(PaymentsCall) *Fault) {
	s.pay.mu.Lock()
	s.pay.fault = f
	s.pay.mu.Unlock()
}

// PaymentsCalls counts the payments calls answered (faults included).
func (s *Server) PaymentsCalls() int {
	s.pay.mu.Lock()
	defer s.pay.mu.Unlock()
	return s.pay.calls
}

// Operation types that have a name in PAYCOMET's answers.
var operationNames = map[int]string{
	1: "Authorization", 2: "Refund", 3: "Preauthorization", 4: "Preauthorization cancel",
	6: "Preauthorization confirm", 9: "Subscription", 13: "Deferred preauthorization",
	14: "Deferred preauthorization cancel", 16: "Deferred preauthorization confirm",
	106: "Chargeback", 107: "Add user",
}

// row is an operation as PAYCOMET's search answers it: every member of the
// spec's inline_response20017_operations, with the mock's habit of sending
// paycometId and methodId as strings.
func (s *Server) row(o Operation) map[string]any {
	state := map[int]string{0: "Failed", 1: "Correct", 2: "Unfinished"}[o.State]
	auth := o.AuthCode
	errDesc := ""
	if o.ErrorCode != 0 {
		errDesc = paycometrest.ErrorMeaning(o.ErrorCode)
	}
	name := operationNames[o.Type]
	if name == "" {
		name = "Operation " + strconv.Itoa(o.Type)
	}
	return map[string]any{
		"paycometId": strconv.FormatInt(o.PaycometID, 10), "operationId": o.PaycometID*7 + 11, "methodId": "1",
		"timestamp": paycometrest.FormatDate(o.Time), "settlementDate": o.Time.In(paycometrest.Madrid).Format("20060102"),
		"order": o.Order, "operationType": o.Type, "operationName": name, "state": o.State, "stateName": state,
		"response": o.response(), "terminal": o.Terminal, "terminalName": "Terminal " + strconv.Itoa(o.Terminal),
		"user": "", "amount": strconv.FormatInt(o.Amount, 10), "currency": o.Currency,
		"amountDisplay": displayAmount(o.Amount, o.Currency) + " " + o.Currency, "errorCode": o.ErrorCode,
		"errorDescription": errDesc, "feeEuro": "0.00", "feePercent": 0.0, "originalIp": "192.0.2.10",
		"pan": o.Pan, "scoring": "0", "merchantBank": "", "bicCode": "", "productDescription": "",
		"cardType": "DEBIT", "cardCategory": "CLASSIC", "cardBrand": "VISA", "cardCountry": "ES", "secure": "1",
		"splitId": "", "issuerBank": "DEMO BANK", "authCode": auth,
	}
}

func displayAmount(minor int64, currency string) string {
	exp := 2
	switch currency {
	case "JPY", "KRW", "CLP", "ISK", "VND":
		exp = 0
	case "KWD", "BHD", "OMR", "JOD", "TND":
		exp = 3
	}
	s := strconv.FormatInt(minor, 10)
	if exp == 0 {
		return s
	}
	for len(s) <= exp {
		s = "0" + s
	}
	return s[:len(s)-exp] + "." + s[len(s)-exp:]
}

// servePayments answers the payments calls and reports whether r was one.
func (s *Server) servePayments(w http.ResponseWriter, r *http.Request) bool {
	var op, order string
	switch {
	case r.URL.Path == "/v1/payments/search":
		op = "payments-search"
	case strings.HasPrefix(r.URL.Path, "/v1/payments/") && strings.HasSuffix(r.URL.Path, "/info"):
		op = "payments-info"
		order = strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/v1/payments/"), "/info")
		if order == "" || strings.Contains(order, "/") {
			return false
		}
	default:
		return false
	}
	x, ok := s.admit(w, r, Call{Op: op, Order: order})
	if !ok {
		return true
	}
	call, answer, body := &x.call, x.answer, x.call.Body
	var pc PaymentsCall
	var out map[string]any
	var problems []string
	var q *searchQuery
	if op == "payments-search" {
		q, problems = parseSearch(body)
		if q != nil {
			pc = PaymentsCall{Op: op, Terminal: q.terminal, State: q.state, Currency: q.currency, FromDate: q.fromDate, ToDate: q.toDate}
		}
	} else {
		var terminal int
		terminal, problems = parseInfo(body)
		pc = PaymentsCall{Op: op, Terminal: terminal, Order: order}
	}
	if len(problems) > 0 {
		call.ErrorCode = codeValidation
		answer(http.StatusUnprocessableEntity, validation(problems...))
		return true
	}
	s.pay.mu.Lock()
	s.pay.calls++
	fault := s.pay.fault
	s.pay.mu.Unlock()
	if fault != nil {
		if f := fault(pc); f != nil {
			call.Status, call.ErrorCode = f.Status, f.ErrorCode
			s.record(*call)
			if f.RetryAfter != "" {
				w.Header().Set("Retry-After", f.RetryAfter)
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(f.Status)
			if f.Body != "" {
				io.WriteString(w, f.Body)
			} else {
				json.NewEncoder(w).Encode(map[string]int{"errorCode": f.ErrorCode})
			}
			return true
		}
	}
	if _, ok := s.cfg.Terminals[strconv.Itoa(pc.Terminal)]; !ok {
		call.ErrorCode = codeNoTerminal
		answer(http.StatusOK, map[string]any{"errorCode": codeNoTerminal})
		return true
	}
	if op == "payments-search" {
		out = s.search(q)
	} else {
		out = s.info(pc.Terminal, order)
	}
	call.ErrorCode, _ = out["errorCode"].(int)
	answer(http.StatusOK, out)
	return true
}

// searchQuery is a checked search request.
type searchQuery struct {
	terminal, state, limit, sortType, searchType int
	operations                                   map[int]bool
	minAmount, maxAmount                         int64
	from, to                                     time.Time
	fromDate, toDate, currency, order, sortOrder string
}

// parseSearch checks a search body against the spec's members
// (payments_search_body.py): required terminal, sortType, sortOrder,
// operations (integer array), minAmount, maxAmount, state, fromDate, toDate
// (yyyymmddhhmmss), currency; optional limit, order, searchType.
func parseSearch(body []byte) (*searchQuery, []string) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var raw map[string]json.RawMessage
	if err := dec.Decode(&raw); err != nil || raw == nil {
		return nil, []string{"the body must be one JSON object"}
	}
	var ops []int
	var problems []string
	if v, ok := raw["operations"]; ok {
		if json.Unmarshal(v, &ops) != nil || len(ops) == 0 {
			problems = append(problems, "operations: must be a non-empty array of integers")
		}
		delete(raw, "operations")
	} else {
		problems = append(problems, "operations: required")
	}
	rest, err := json.Marshal(raw)
	if err != nil {
		return nil, []string{"the body must be one JSON object"}
	}
	fields, more := checkMembers(rest, searchMembers)
	problems = append(problems, more...)
	q := &searchQuery{operations: map[int]bool{}, limit: paycometrest.DefaultSearchLimit}
	for _, t := range ops {
		q.operations[t] = true
	}
	num := func(k string) int64 { v, _ := fields[k].(int64); return v }
	str := func(k string) string { v, _ := fields[k].(string); return v }
	q.terminal, q.state, q.sortType = int(num("terminal")), int(num("state")), int(num("sortType"))
	q.minAmount, q.maxAmount = num("minAmount"), num("maxAmount")
	q.fromDate, q.toDate, q.currency, q.order, q.sortOrder = str("fromDate"), str("toDate"), str("currency"), str("order"), str("sortOrder")
	if _, ok := fields["limit"]; ok {
		q.limit = int(num("limit"))
		if q.limit <= 0 {
			problems = append(problems, "limit: must be positive")
		}
	}
	q.searchType = int(num("searchType"))
	if q.state < 0 || q.state > 2 {
		problems = append(problems, "state: must be 0, 1 or 2")
	}
	if q.sortOrder != "" && q.sortOrder != "ASC" && q.sortOrder != "DESC" {
		problems = append(problems, "sortOrder: must be ASC or DESC")
	}
	if len(q.currency) != 3 {
		problems = append(problems, "currency: must be ISO 4217")
	}
	for _, d := range []struct {
		key, v string
		t      *time.Time
	}{{"fromDate", q.fromDate, &q.from}, {"toDate", q.toDate, &q.to}} {
		if _, ok := fields[d.key]; !ok {
			continue
		}
		t, err := paycometrest.ParseDate(d.v)
		if err != nil || len(d.v) != 14 {
			problems = append(problems, d.key+": must be yyyymmddhhmmss")
			continue
		}
		*d.t = t
	}
	if len(problems) > 0 {
		return nil, problems
	}
	return q, nil
}

var (
	searchMembers = []member{
		{"terminal", true, true}, {"sortType", true, true}, {"sortOrder", false, true},
		{"minAmount", true, true}, {"maxAmount", true, true}, {"state", true, true},
		{"fromDate", false, true}, {"toDate", false, true}, {"currency", false, true},
		{"limit", true, false}, {"order", false, false}, {"searchType", true, false},
	}
	infoMembers = []member{{"terminal", true, true}}
)

// parseInfo checks {"payment": {"terminal": N}}.
func parseInfo(body []byte) (int, []string) {
	var raw map[string]json.RawMessage
	if json.Unmarshal(body, &raw) != nil || raw == nil {
		return 0, []string{"the body must be one JSON object"}
	}
	var problems []string
	for k := range raw {
		if k != "payment" {
			problems = append(problems, k+": unknown member")
		}
	}
	p, ok := raw["payment"]
	if !ok {
		return 0, append(problems, "payment: required")
	}
	fields, more := checkMembers(p, infoMembers)
	problems = append(problems, more...)
	t, _ := fields["terminal"].(int64)
	return int(t), problems
}

// sortLocked orders the book by time once after seeding.
func (p *payments) sortLocked() {
	if p.sorted {
		return
	}
	sort.SliceStable(p.ops, func(i, j int) bool {
		if !p.ops[i].Time.Equal(p.ops[j].Time) {
			return p.ops[i].Time.Before(p.ops[j].Time)
		}
		return p.ops[i].PaycometID < p.ops[j].PaycometID
	})
	p.sorted = true
}

// search answers with PAYCOMET's semantics: every filter applies, both
// dates are inclusive at whole seconds, the rows are sorted as asked and cut
// at limit, and nothing says more exist (no paging).
func (s *Server) search(q *searchQuery) map[string]any {
	p := &s.pay
	p.mu.Lock()
	p.sortLocked()
	lo := sort.Search(len(p.ops), func(i int) bool { return !p.ops[i].Time.Before(q.from) })
	var hits []Operation
	for _, o := range p.ops[lo:] {
		if o.Time.After(q.to) {
			break
		}
		if o.Terminal != q.terminal || !q.operations[o.Type] || o.State != q.state || o.Currency != q.currency ||
			o.Amount < q.minAmount || o.Amount > q.maxAmount {
			continue
		}
		if q.order != "" && ((q.searchType == 1 && o.Order != q.order) || (q.searchType != 1 && !strings.Contains(o.Order, q.order))) {
			continue
		}
		hits = append(hits, o)
	}
	p.mu.Unlock()
	less := func(a, b Operation) bool {
		switch q.sortType {
		case 2:
			return a.Order < b.Order
		case 3:
			return a.Type < b.Type
		case 6:
			return a.Amount < b.Amount
		}
		return a.Time.Before(b.Time)
	}
	if q.sortType != 0 {
		sort.SliceStable(hits, func(i, j int) bool {
			if q.sortOrder == "DESC" {
				return less(hits[j], hits[i])
			}
			return less(hits[i], hits[j])
		})
	}
	if len(hits) > q.limit {
		hits = hits[:q.limit]
	}
	rows := make([]map[string]any, len(hits))
	for i, o := range hits {
		rows[i] = s.row(o)
	}
	return map[string]any{"errorCode": 0, "operations": rows}
}

// codeOrderNotFound is the fake's answer to info for an unknown order
// (PAYCOMET's own code is not published; 102 is "Operation not found" in
// its error list).
const codeOrderNotFound = 102

// info answers the order's first operation on the terminal, with every
// operation of that order in history (refunds and the like), as the calamas
// mock does.
func (s *Server) info(terminal int, order string) map[string]any {
	p := &s.pay
	p.mu.Lock()
	p.sortLocked()
	var same []Operation
	for _, o := range p.ops {
		if o.Terminal == terminal && o.Order == order {
			same = append(same, o)
		}
	}
	p.mu.Unlock()
	if len(same) == 0 {
		return map[string]any{"errorCode": codeOrderNotFound}
	}
	pay := s.row(same[0])
	pay["amountEur"] = pay["amount"]
	pay["terminalCurrency"] = same[0].Currency
	pay["amountEurDisplay"] = pay["amountDisplay"]
	pay["merchantData"] = map[string]any{}
	hist := make([]map[string]any, len(same))
	for i, o := range same {
		hist[i] = s.row(o)
	}
	pay["history"] = hist
	return map[string]any{"errorCode": 0, "payment": pay}
}

// DemoOperations are what `paycomet-fake` seeds for the reconciliation
// demo: five operations of terminal in the half hour before now. The
// README's demo sends the notifications of DEMO1, DEMO3 and DEMO4 with
// `send --demo` (its default amount is 1999 EUR), so `reconcile --demo
// --last 1h` finds DEMO2 and DEMO5 missing.
func DemoOperations(terminal int, now time.Time) []Operation {
	at := func(m int) time.Time { return now.Add(time.Duration(m-30) * time.Minute) }
	return []Operation{
		{Terminal: terminal, Order: "DEMO1", Type: 1, State: 1, Amount: 1999, Currency: "EUR", Time: at(0), AuthCode: "DEMOA1"},
		{Terminal: terminal, Order: "DEMO2", Type: 1, State: 1, Amount: 2500, Currency: "EUR", Time: at(3), AuthCode: "DEMOA2"},
		{Terminal: terminal, Order: "DEMO3", Type: 1, State: 0, Amount: 1999, Currency: "EUR", Time: at(6), ErrorCode: 190},
		{Terminal: terminal, Order: "DEMO4", Type: 2, State: 1, Amount: 500, Currency: "EUR", Time: at(9), AuthCode: "DEMOR4"},
		{Terminal: terminal, Order: "DEMO5", Type: 3, State: 1, Amount: 1999, Currency: "EUR", Time: at(12), AuthCode: "DEMOP5"},
	}
}
