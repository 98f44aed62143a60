// Package paycometrest is the client of PAYCOMET REST (HTTP and JSON, one
// API key in the PAYCOMET-API-TOKEN header): today the IVR calls of contract
// section 10, tomorrow the payment search and order info the reconciler of
// section 11 needs. One package for the technology, so both share the same
// request, authentication, error and timeout machinery (client.go, errors.go)
// and each feature only adds its typed calls (ivr.go).
//
// What the package guarantees:
//
//   - Requests are the JSON PAYCOMET's own generated clients send, key by key
//     and type by type: ivrTransactionType is a string, amounts and ids are
//     integers, optional members are left out rather than sent empty.
//   - Input is checked against the IVR seed's bounds before anything is sent;
//     a failure is an *InputError naming the seed element and the JSON key,
//     never repeating the value (a caller's phone number is personal data).
//   - PAYCOMET's answers become distinct error values: *Error for a non-zero
//     errorCode (with its meaning, the IVR codes 1002, 1206, 1255 to 1259
//     among them), *ValidationError for HTTP 422 {errorCode, error{message,
//     detail}}, ErrResponseFalse for ivrResponse false, *HTTPError for any
//     other status without a usable answer, ErrMalformedResponse for an
//     unreadable body. Transport failures and timeouts are wrapped as they
//     come. IsAnswer tells "PAYCOMET said no" from "no usable answer".
//   - Nothing is retried: GetSession starts a phone call, and whether a read
//     may be retried is the caller's decision (ivr pay simply polls again).
//   - The API key is a secret.Value: it goes into the header and nowhere else,
//     and is scrubbed from every error text the client produces.
//   - Timeouts come from the injected *http.Client (DefaultTimeout otherwise)
//     and the context.
package paycometrest
