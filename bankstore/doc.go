// Package bankstore is the client of PAYCOMET's BankStore XML (SOAP) service:
// the server-to-server API that registers cards as users (DS_IDUSER plus
// DS_TOKEN_USER), charges, refunds, preauthorises and subscribes them.
//
// The refresher needs info_user and remove_user to act on card-expiry notices,
// and operators need every other operation to repair what a notification tells
// them, so all eighteen operations of the seed are here, each as one typed
// call (Client.InfoUser, Client.ExecutePurchase, ...) and all of them through
// Client.Call, the element-keyed form the command line uses.
//
// What the package guarantees:
//
//   - Input is checked against the seed's formats before anything is sent; a
//     failure is an *InputError naming the element. Values never appear in
//     these errors, so a PAN or CVV2 cannot leak through them.
//   - DS_MERCHANT_MERCHANTSIGNATURE is computed as Anexo I of the seed says:
//     lower-case hex SHA-512 over the listed elements and the terminal
//     password. Where an example in the seed disagrees with Anexo I (the
//     PHP add_user and execute_purchase_rtoken samples, the Java samples that
//     use SHA-1 or drop the password), Anexo I wins.
//   - A DS_ERROR_ID other than 0 or empty is an *Error carrying the code and
//     its meaning. SOAP faults (*FaultError), HTTP errors (*HTTPError) and
//     unreadable answers (ErrMalformedResponse) are distinct from it and from
//     each other.
//   - A call that moves money is sent once. When it fails for any reason other
//     than a PAYCOMET answer or bad input, its error wraps ErrOutcomeUnknown:
//     the charge may have happened, so the caller must reconcile rather than
//     retry. Only the read-only info_user is retried, with a small bounded
//     backoff (WithInfoUserRetry).
//   - Timeouts come from the injected *http.Client and the context.
package bankstore
