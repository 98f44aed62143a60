package paycometrest

// The demo's REST identity: `paycomet-fake` accepts it and `ivr --demo`
// uses it, next to the demo merchant and terminal. These values are public
// on purpose and must never protect real money.
const (
	DemoAPIKey     = "demo-api-key-not-a-secret"
	DemoProviderID = 4242
	DemoStationID  = "DEMOSTATION1"
	// DemoURL is where `paycomet-fake` listens by default: REST under it,
	// BankStore XML at DemoURL + "/gateway/xml-bankstore".
	DemoURL = "http://127.0.0.1:8099"
)
