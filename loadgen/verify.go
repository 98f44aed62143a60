package loadgen

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/paycomet-notify/paycomet-notify/events"
)

// Verification is what the stream says about the run's notifications. A
// notification is identified by its event id, which loadgen computes with
// the receiver's own events package; copies share it.
type Verification struct {
	// StartSeq and EndSeq are the stream sequences read: from the first
	// after the run started to the last once it settled.
	StartSeq, EndSeq uint64
	// Expected is the notifications answered 200 at least once (any copy,
	// any retry): each must have exactly one event.
	Expected int
	// Found is those with exactly one event; Lost with none; Duplicated
	// counts every notification with more than one, accepted or not.
	Found, Lost, Duplicated int
	// NotAccepted is notifications never answered 200 and without an event:
	// the receiver kept its promise (503 means nothing was stored) and
	// PAYCOMET would have gone on retrying.
	NotAccepted int
	// PublishedWithout200 is notifications never answered 200 that have one
	// event: the publish reached the stream but its ack came too late (the
	// receiver answered 503, or the connection broke). PAYCOMET's next retry
	// would be answered 200 as a duplicate. Legitimate, not a failure.
	PublishedWithout200 int
	// Unexpected is events of this run that match no notification it sent,
	// or that sit on the wrong subject.
	Unexpected int
	// Quarantined is this run's notifications published on <prefix>.rejected
	// (every one was correctly signed, so any is a receiver or key problem;
	// the 4xx answers say which).
	Quarantined int
	// Events is every message of this run read from the stream; Others is
	// messages of other traffic in the same sequence range.
	Events, Others int
	// Examples names a few lost, duplicated or unexpected notifications.
	Examples []string
}

// Failed reports a broken promise: an accepted notification without its
// event, any notification with two, or an event nobody sent.
func (v Verification) Failed() bool {
	return v.Lost > 0 || v.Duplicated > 0 || v.Unexpected > 0
}

type verifier struct {
	o        Options
	gen      *generator
	nc       *nats.Conn
	js       jetstream.JetStream
	stream   jetstream.Stream
	startSeq uint64
}

func openVerifier(ctx context.Context, o Options, gen *generator) (*verifier, error) {
	nc, err := nats.Connect(o.NATSURL, append([]nats.Option{nats.Name("paycomet-notify loadgen"), nats.Timeout(2 * time.Second),
		nats.MaxReconnects(-1), nats.ReconnectWait(100 * time.Millisecond)}, o.NATSOptions...)...)
	if err != nil {
		return nil, fmt.Errorf("connect NATS to verify: %w", err)
	}
	v := &verifier{o: o, gen: gen, nc: nc}
	if v.js, err = jetstream.New(nc); err != nil {
		nc.Close()
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	if v.stream, err = v.js.Stream(ctx, o.Stream); err != nil {
		nc.Close()
		return nil, fmt.Errorf("stream %s: %w (does the receiver run against this NATS?)", o.Stream, err)
	}
	info, err := v.stream.Info(ctx)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("stream %s info: %w", o.Stream, err)
	}
	v.startSeq = info.State.LastSeq + 1
	return v, nil
}

func (v *verifier) close() { v.nc.Close() }

// expected rebuilds every original's event id and subject, in parallel: it
// is the receiver's per-request work again, done after the run so it does not
// compete with the receiver for CPU during it.
func (v *verifier) expected(n uint64) ([]eventID, []string, error) {
	ids := make([]eventID, n)
	topics := make([]string, n)
	workers := runtime.GOMAXPROCS(0)
	var wg sync.WaitGroup
	errs := make([]error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seq := uint64(w); seq < n; seq += uint64(workers) {
				id, topic, err := v.gen.expect(seq)
				if err != nil {
					errs[w] = err
					return
				}
				ids[seq], topics[seq] = id, topic
			}
		}()
	}
	wg.Wait()
	return ids, topics, errors.Join(errs...)
}

// verify reads the stream from startSeq and matches each message to the
// notification whose event id it carries in Nats-Msg-Id.
func (v *verifier) verify(ctx context.Context, n uint64, acked []bool) (Verification, error) {
	res := Verification{StartSeq: v.startSeq}
	ids, topics, err := v.expected(n)
	if err != nil {
		return res, err
	}
	index := make(map[eventID]uint32, n)
	for seq, id := range ids {
		if prev, dup := index[id]; dup {
			return res, fmt.Errorf("notifications %s and %s have the same event id: the generator or the idempotency key is broken",
				v.gen.orderOf(uint64(prev)), v.gen.orderOf(uint64(seq)))
		}
		index[id] = uint32(seq)
	}
	info, err := v.stream.Info(ctx)
	if err != nil {
		return res, fmt.Errorf("stream %s info: %w", v.o.Stream, err)
	}
	res.EndSeq = info.State.LastSeq
	counts := make([]uint8, n)
	count := func(seq uint32) {
		if counts[seq] < 255 {
			counts[seq]++
		}
	}
	var unknown []uint64
	if res.EndSeq >= v.startSeq {
		// Headers only: the id is all matching needs, and the bodies would be
		// most of the bytes.
		cons, err := v.js.OrderedConsumer(ctx, v.o.Stream, jetstream.OrderedConsumerConfig{
			DeliverPolicy: jetstream.DeliverByStartSequencePolicy,
			OptStartSeq:   v.startSeq,
			HeadersOnly:   true,
		})
		if err != nil {
			return res, fmt.Errorf("read stream %s: %w", v.o.Stream, err)
		}
		it, err := cons.Messages(jetstream.PullMaxMessages(4096))
		if err != nil {
			return res, fmt.Errorf("read stream %s: %w", v.o.Stream, err)
		}
		defer it.Stop()
		for {
			m, err := it.Next(jetstream.NextContext(ctx))
			if err != nil {
				return res, fmt.Errorf("read stream %s: %w", v.o.Stream, err)
			}
			meta, err := m.Metadata()
			if err != nil {
				return res, fmt.Errorf("read stream %s: %w", v.o.Stream, err)
			}
			sseq := meta.Sequence.Stream
			if sseq > res.EndSeq {
				break
			}
			id, ok := parseEventID(m.Headers().Get(jetstream.MsgIDHeader))
			seq, known := index[id]
			switch {
			case !ok || !known:
				unknown = append(unknown, sseq)
			case m.Subject() != topics[seq]:
				res.Unexpected++
				res.Events++
				v.example(&res, fmt.Sprintf("Order %s: event on %s, want %s", v.gen.orderOf(uint64(seq)), m.Subject(), topics[seq]))
			default:
				res.Events++
				count(seq)
			}
			if sseq >= res.EndSeq {
				break
			}
		}
	}
	// Messages whose Nats-Msg-Id is not one of ours: other traffic, the
	// run's quarantined notifications, or events the run did not cause.
	for _, sseq := range unknown {
		m, err := v.stream.GetMsg(ctx, sseq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue // removed by limits meanwhile; not ours to judge
		}
		if err != nil {
			return res, fmt.Errorf("get message %d: %w", sseq, err)
		}
		var ev struct {
			ID      string `json:"id"`
			Type    string `json:"type"`
			Subject string `json:"subject"`
			Data    struct {
				Fields map[string][]string `json:"fields"`
			} `json:"data"`
		}
		_ = json.Unmarshal(m.Data, &ev)
		id, ok := parseEventID(ev.ID)
		if seq, known := index[id]; ok && known {
			// The event id is ours though the header was not.
			res.Events++
			if m.Subject != topics[seq] || m.Header.Get(jetstream.MsgIDHeader) == "" {
				res.Unexpected++
				v.example(&res, fmt.Sprintf("Order %s: event on %s with Nats-Msg-Id %q", v.gen.orderOf(uint64(seq)), m.Subject, m.Header.Get(jetstream.MsgIDHeader)))
			}
			count(seq)
			continue
		}
		mine := v.gen.ours(ev.Subject)
		if !mine && ev.Type == events.EventTypeRejected {
			for _, u := range ev.Data.Fields["IdUser"] {
				mine = mine || v.gen.ours(u)
			}
		}
		switch {
		case !mine, strings.HasPrefix(ev.Type, "paycomet.card."):
			// Not ours, or a consumer's reaction to ours (the refresher
			// answers the run's 108s on <prefix>.<terminal>.card.* and
			// <prefix>.dlq): the receiver never publishes those.
			res.Others++
		case ev.Type == events.EventTypeRejected:
			res.Events++
			res.Quarantined++
		default:
			res.Events++
			res.Unexpected++
			v.example(&res, fmt.Sprintf("unexpected event %s (%s, subject %s) at stream sequence %d", ev.ID, ev.Type, ev.Subject, sseq))
		}
	}
	for seq := range counts {
		c, ok := counts[seq], seq < len(acked) && acked[seq]
		if ok {
			res.Expected++
		}
		switch {
		case c > 1:
			res.Duplicated++
			v.example(&res, fmt.Sprintf("Order %s: %d events (answered 200: %v)", v.gen.orderOf(uint64(seq)), c, ok))
		case ok && c == 1:
			res.Found++
		case ok:
			res.Lost++
			v.example(&res, fmt.Sprintf("Order %s: answered 200, no event", v.gen.orderOf(uint64(seq))))
		case c == 1:
			res.PublishedWithout200++
		default:
			res.NotAccepted++
		}
	}
	return res, nil
}

const maxExamples = 10

func (v *verifier) example(res *Verification, s string) {
	if len(res.Examples) < maxExamples {
		res.Examples = append(res.Examples, s)
	}
}
