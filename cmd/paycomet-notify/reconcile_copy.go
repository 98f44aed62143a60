package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/paycomet-notify/paycomet-notify/config"
	"github.com/paycomet-notify/paycomet-notify/events"
	"github.com/paycomet-notify/paycomet-notify/notify"
	"github.com/paycomet-notify/paycomet-notify/paycometrest"
	"github.com/paycomet-notify/paycomet-notify/reconcile"
	"github.com/paycomet-notify/paycomet-notify/tracing"
)

// openReconcileCopier is --publish-missing: the receiver's notification
// path (the dedupe store of REDIS_URL or the JetStream bucket, the event
// stream) through which each missing operation's own event is published.
func openReconcileCopier(ctx context.Context, cfg config.Config, conn *opsConn, log *slog.Logger, tr *tracing.Tracing) (reconcile.Copier, func(), error) {
	store, closeStore, err := openDedupe(ctx, cfg, conn.js)
	if err != nil {
		return nil, nil, err
	}
	return &pathCopier{path: replayPath(cfg, store, conn.js, log, tr), now: time.Now}, closeStore, nil
}

// pathCopier publishes operations through a notify.Path.
type pathCopier struct {
	path *notify.Path
	now  func() time.Time
}

// PublishOperation builds the operation's event from the search row alone
// and publishes it. An operation younger than notify.ReconciledMinAge is
// left alone: its notification may still be on its way.
func (c *pathCopier) PublishOperation(ctx context.Context, terminal string, op paycometrest.Operation) (reconcile.CopyResult, error) {
	if t, err := op.Time(); err == nil && c.now().Sub(t) < notify.ReconciledMinAge {
		return reconcile.CopyResult{}, nil
	}
	resp := op.Response
	if resp != "OK" && resp != "KO" {
		resp = "KO"
		if op.State == paycometrest.OperationSucceeded {
			resp = "OK"
		}
	}
	ev, err := events.Reconciled(events.ReconciledOperation{Terminal: terminal, TransactionType: op.OperationType, Order: op.Order,
		Response: resp, Amount: op.Amount, Currency: op.Currency, AuthCode: op.AuthCode, Timestamp: op.Timestamp,
		Raw: rowRaw(op.Raw)}, c.now())
	if err != nil {
		return reconcile.CopyResult{}, err
	}
	key := events.MatchKey(terminal, op.OperationType, op.Order, ev.Outcome, op.Amount, op.Currency)
	out := c.path.PublishReconciled(ctx, ev, key)
	switch out.Kind {
	case notify.Accepted:
		return reconcile.CopyResult{EventID: out.EventID}, nil
	case notify.Duplicate:
		return reconcile.CopyResult{EventID: out.EventID, Duplicate: true}, nil
	}
	return reconcile.CopyResult{}, fmt.Errorf("%s: %s", out.Kind, out.Detail)
}

// rowRaw is the search row as the event's raw: every member as text
// (strings as they are, numbers and booleans as written, null empty).
func rowRaw(row json.RawMessage) events.Raw {
	var m map[string]json.RawMessage
	if json.Unmarshal(row, &m) != nil {
		return events.Raw{}
	}
	raw := make(events.Raw, len(m))
	for k, v := range m {
		v = bytes.TrimSpace(v)
		var s string
		switch {
		case len(v) > 0 && v[0] == '"':
			_ = json.Unmarshal(v, &s)
		case string(v) == "null":
		default:
			s = string(v)
			if _, err := strconv.ParseFloat(s, 64); err != nil && s != "true" && s != "false" {
				var b bytes.Buffer
				_ = json.Compact(&b, v)
				s = b.String()
			}
		}
		raw[k] = s
	}
	return raw
}
