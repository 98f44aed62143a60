package ops

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
)

// TailOptions are `events tail`'s flags.
type TailOptions struct {
	Subject string    // NATS subject filter; <prefix>.> when empty
	Since   time.Time // zero: only what arrives from now on
	JSON    bool      // one CloudEvent per line instead of a readable line
	Color   bool      // ANSI colours (stdout is a terminal)
}

// Tail follows the streams whose subjects the filter touches (the event
// stream and, for <prefix>.rejected, the quarantine) with ordered ephemeral
// consumers and writes one line per message to w until ctx ends, which is
// not an error. Lines of the two streams are written as they arrive.
func (r *Reader) Tail(ctx context.Context, o TailOptions, w io.Writer) error {
	if o.Subject == "" {
		o.Subject = r.s.Prefix + ".>"
	}
	var streams []string
	for _, name := range []string{r.s.Events, r.s.Rejected} {
		s, err := r.js.Stream(ctx, name)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			continue
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil // stopped before it began
			}
			return fmt.Errorf("stream %s: %w", name, err)
		}
		for _, subj := range s.CachedInfo().Config.Subjects {
			if natsserver.SubjectsCollide(subj, o.Subject) {
				streams = append(streams, name)
				break
			}
		}
	}
	if len(streams) == 0 {
		return fmt.Errorf("no stream (%s, %s) captures subjects matching %q", r.s.Events, r.s.Rejected, o.Subject)
	}
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{o.Subject}, DeliverPolicy: jetstream.DeliverNewPolicy}
	if !o.Since.IsZero() {
		since := o.Since
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &since
	}
	stopped := ctx // the caller's: its end (SIGINT) is a normal stop, also during set-up
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var mu sync.Mutex
	var werr error
	write := func(m Message) {
		var line string
		if o.JSON {
			line = string(m.Data)
		} else {
			line = Summarize(r.s.Prefix, m).Line(o.Color)
		}
		mu.Lock()
		defer mu.Unlock()
		if werr == nil {
			if _, werr = fmt.Fprintln(w, line); werr != nil {
				cancel() // stdout closed (a pipe whose reader left): stop
			}
		}
	}
	errc := make(chan error, len(streams))
	for _, name := range streams {
		cons, err := r.js.OrderedConsumer(ctx, name, cfg)
		if err != nil {
			if stopped.Err() != nil {
				return nil
			}
			return fmt.Errorf("stream %s: consumer: %w", name, err)
		}
		cc, err := cons.Consume(func(m jetstream.Msg) {
			msg, _, err := fromMsg(name, m)
			if err == nil {
				write(msg)
			}
		})
		if err != nil {
			if stopped.Err() != nil {
				return nil
			}
			return fmt.Errorf("stream %s: consume: %w", name, err)
		}
		go func() {
			select {
			case <-ctx.Done():
			case <-cc.Closed():
				errc <- fmt.Errorf("stream %s: consuming stopped", name)
			}
			cc.Stop()
		}()
	}
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	mu.Lock()
	defer mu.Unlock()
	if werr != nil {
		return fmt.Errorf("write: %w", werr)
	}
	return err
}
