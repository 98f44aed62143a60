package bankstore

import "context"

// One method per operation of the seed. Each checks its request, signs it,
// sends it once (info_user alone may be retried) and returns the typed answer
// or an error: *InputError, *Error (PAYCOMET refused), *FaultError,
// *HTTPError, ErrMalformedResponse or a transport error, the last four
// wrapping ErrOutcomeUnknown when the operation moves money.

// AddUser registers a card and returns the new user's DS_IDUSER and
// DS_TOKEN_USER.
func (c *Client) AddUser(ctx context.Context, r AddUserRequest) (*UserResponse, error) {
	return call[UserResponse](ctx, c, OpAddUser, &r)
}

// InfoUser describes the card behind a user. A user that does not exist is
// an *Error with Code CodeUserNotFound.
func (c *Client) InfoUser(ctx context.Context, r UserRequest) (*InfoUserResponse, error) {
	return call[InfoUserResponse](ctx, c, OpInfoUser, &r)
}

// RemoveUser deletes a user and its card.
func (c *Client) RemoveUser(ctx context.Context, r UserRequest) (*RemoveResponse, error) {
	return call[RemoveResponse](ctx, c, OpRemoveUser, &r)
}

// ExecutePurchase charges a user's card.
func (c *Client) ExecutePurchase(ctx context.Context, r PurchaseRequest) (*PurchaseResponse, error) {
	return call[PurchaseResponse](ctx, c, OpExecutePurchase, &r)
}

// ExecutePurchaseDCC starts a charge in the card's currency; confirm it with
// ConfirmPurchaseDCC and the returned session.
func (c *Client) ExecutePurchaseDCC(ctx context.Context, r DCCPurchaseRequest) (*DCCPurchaseResponse, error) {
	return call[DCCPurchaseResponse](ctx, c, OpExecutePurchaseDCC, &r)
}

// ConfirmPurchaseDCC completes a DCC charge in the chosen currency.
func (c *Client) ConfirmPurchaseDCC(ctx context.Context, r ConfirmDCCRequest) (*ChargeResponse, error) {
	return call[ChargeResponse](ctx, c, OpConfirmPurchaseDCC, &r)
}

// ExecuteRefund refunds a charge, wholly or in part.
func (c *Client) ExecuteRefund(ctx context.Context, r RefundRequest) (*RefundResponse, error) {
	return call[RefundResponse](ctx, c, OpExecuteRefund, &r)
}

// CreateSubscription registers a card with a recurring charge.
func (c *Client) CreateSubscription(ctx context.Context, r CreateSubscriptionRequest) (*SubscriptionResponse, error) {
	return call[SubscriptionResponse](ctx, c, OpCreateSubscription, &r)
}

// EditSubscription changes a subscription's dates, period or amount.
func (c *Client) EditSubscription(ctx context.Context, r EditSubscriptionRequest) (*SubscriptionResponse, error) {
	return call[SubscriptionResponse](ctx, c, OpEditSubscription, &r)
}

// RemoveSubscription cancels a subscription.
func (c *Client) RemoveSubscription(ctx context.Context, r UserRequest) (*RemoveResponse, error) {
	return call[RemoveResponse](ctx, c, OpRemoveSubscription, &r)
}

// CreateSubscriptionToken adds a recurring charge to a registered user.
func (c *Client) CreateSubscriptionToken(ctx context.Context, r CreateSubscriptionTokenRequest) (*SubscriptionResponse, error) {
	return call[SubscriptionResponse](ctx, c, OpCreateSubscriptionToken, &r)
}

// CreatePreauthorization holds an amount on a user's card.
func (c *Client) CreatePreauthorization(ctx context.Context, r PurchaseRequest) (*PurchaseResponse, error) {
	return call[PurchaseResponse](ctx, c, OpCreatePreauthorization, &r)
}

// PreauthorizationConfirm charges a held amount.
func (c *Client) PreauthorizationConfirm(ctx context.Context, r PreauthorizationRequest) (*ChargeResponse, error) {
	return call[ChargeResponse](ctx, c, OpPreauthorizationConfirm, &r)
}

// PreauthorizationCancel releases a held amount.
func (c *Client) PreauthorizationCancel(ctx context.Context, r PreauthorizationRequest) (*ChargeResponse, error) {
	return call[ChargeResponse](ctx, c, OpPreauthorizationCancel, &r)
}

// DeferredPreauthorizationConfirm charges a deferred preauthorisation.
func (c *Client) DeferredPreauthorizationConfirm(ctx context.Context, r PreauthorizationRequest) (*ChargeResponse, error) {
	return call[ChargeResponse](ctx, c, OpDeferredPreauthorizationConfirm, &r)
}

// DeferredPreauthorizationCancel releases a deferred preauthorisation.
func (c *Client) DeferredPreauthorizationCancel(ctx context.Context, r PreauthorizationRequest) (*ChargeResponse, error) {
	return call[ChargeResponse](ctx, c, OpDeferredPreauthorizationCancel, &r)
}

// AddUserToken registers the card behind a BankStore JET token.
func (c *Client) AddUserToken(ctx context.Context, r AddUserTokenRequest) (*UserResponse, error) {
	return call[UserResponse](ctx, c, OpAddUserToken, &r)
}

// ExecutePurchaseRToken charges a card by a payment-by-reference identifier.
func (c *Client) ExecutePurchaseRToken(ctx context.Context, r RTokenPurchaseRequest) (*ChargeResponse, error) {
	return call[ChargeResponse](ctx, c, OpExecutePurchaseRToken, &r)
}
