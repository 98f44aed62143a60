package ops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Mark is what a replay did with one quarantined request or dead letter,
// kept in the key-value bucket <STREAM_NAME>_REPLAYED under
// "rejected.<id>" or "dlq.<id>". Why a bucket and not a message: the
// quarantine stream captures only <prefix>.rejected and the event stream
// only events, and a replay must be able to ask "was this one replayed?"
// in one lookup, which a key gives and a stream does not.
type Mark struct {
	Outcome string    `json:"outcome"`            // accepted, duplicate, rejected, replayed
	EventID string    `json:"event_id,omitempty"` // the event the notification is on the stream as
	Reason  string    `json:"reason,omitempty"`   // why it is still rejected
	Seq     uint64    `json:"seq,omitempty"`      // a replayed dead letter's new stream sequence
	At      time.Time `json:"at"`
}

// Done reports whether the replay put the message's content on the
// stream, so replaying it again must do nothing new.
func (m *Mark) Done() bool {
	return m != nil && (m.Outcome == OutcomeAccepted || m.Outcome == OutcomeDuplicate || m.Outcome == OutcomeReplayed)
}

// Marks is the replay-marks bucket, created on the first replay.
type Marks struct {
	js       jetstream.JetStream
	bucket   string
	replicas int
	mu       sync.Mutex
	kv       jetstream.KeyValue
}

// NewMarks returns s's marks bucket (not yet created).
func NewMarks(js jetstream.JetStream, s Streams) *Marks {
	return &Marks{js: js, bucket: s.MarksBucket(), replicas: max(s.Replicas, 1)}
}

// open returns the bucket; create says whether to create it when missing
// (a replay does, a read does not).
func (k *Marks) open(ctx context.Context, create bool) (jetstream.KeyValue, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.kv != nil {
		return k.kv, nil
	}
	kv, err := k.js.KeyValue(ctx, k.bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) && create {
		kv, err = k.js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:      k.bucket,
			Description: "paycomet-notify: what each quarantine or dead-letter replay did",
			Storage:     jetstream.FileStorage,
			Replicas:    k.replicas,
		})
		if errors.Is(err, jetstream.ErrBucketExists) {
			kv, err = k.js.KeyValue(ctx, k.bucket)
		}
	}
	if err != nil {
		return nil, err
	}
	k.kv = kv
	return kv, nil
}

// Get returns the mark of key, nil when there is none (or no bucket yet).
func (k *Marks) Get(ctx context.Context, key string) (*Mark, error) {
	if !validKey(key) {
		return nil, nil
	}
	kv, err := k.open(ctx, false)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("replay marks %s: %w", k.bucket, err)
	}
	e, err := kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("replay marks %s: get: %w", k.bucket, err)
	}
	var m Mark
	if err := json.Unmarshal(e.Value(), &m); err != nil {
		return nil, fmt.Errorf("replay marks %s: %s: %w", k.bucket, key, err)
	}
	return &m, nil
}

// Put records m under key.
func (k *Marks) Put(ctx context.Context, key string, m Mark) error {
	if !validKey(key) {
		return fmt.Errorf("replay marks: %q is not a valid key", key)
	}
	kv, err := k.open(ctx, true)
	if err != nil {
		return fmt.Errorf("replay marks %s: %w", k.bucket, err)
	}
	b, _ := json.Marshal(m)
	if _, err := kv.Put(ctx, key, b); err != nil {
		return fmt.Errorf("replay marks %s: put: %w", k.bucket, err)
	}
	return nil
}

// validKey accepts the keys ops writes: a kind, a dot, an id of letters,
// digits, '-' and '_' (event ids are hex). Anything else came from a
// message nobody should be able to name a key with.
func validKey(key string) bool {
	dot := false
	for i, r := range key {
		switch {
		case r == '.' && !dot && i > 0 && i < len(key)-1:
			dot = true
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
		default:
			return false
		}
	}
	return dot && len(key) <= 200
}

func rejectedKey(id string) string { return "rejected." + id }
func dlqKey(id string) string      { return "dlq." + id }
