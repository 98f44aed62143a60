package main

import (
	"context"
	"errors"
	"log/slog"

	"github.com/paycomet-notify/paycomet-notify/config"
	"github.com/paycomet-notify/paycomet-notify/reconcile"
)

// openReconcileCopier is the receiver's notification path for
// --publish-missing.
func openReconcileCopier(ctx context.Context, cfg config.Config, conn *opsConn, log *slog.Logger) (reconcile.Copier, func(), error) {
	return nil, nil, errors.New("--publish-missing is not available yet")
}
