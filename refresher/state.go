package refresher

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// The refresher keeps two JetStream key-value buckets next to the stream:
//
// <STREAM_NAME>_CARD_TOKENS, the registry, no expiry:
//
//	<terminal>.<id_user>                 tokenEntry: the TokenUser (confirmed by info_user) and where it was learnt
//
// <STREAM_NAME>_REFRESHER, its own progress, expiring after Config.StateTTL:
//
//	notice.<notice event id>             noticeMark: the notice's output is published (checked first)
//	registration.<terminal>.<hex order>  tokenEntry: a 107 OK by order, for a renewal_started that comes later
//	renewal.<terminal>.<hex order>       RenewalStarted: a renewal waiting for its registration
//	replaced.<terminal>.<hex order>      TokenReplaced: that renewal is complete
//
// Orders are hex-encoded because KV keys allow only [-/_=.a-zA-Z0-9].
// TokenUser is stored (the registry exists to hold it) but never logged:
// tokenEntry's LogValue leaves it out.

// tokenEntry is one IdUser -> TokenUser pair.
type tokenEntry struct {
	Terminal   string     `json:"terminal"`
	IDUser     int64      `json:"id_user"`
	TokenUser  string     `json:"token_user"`
	LearntFrom learntFrom `json:"learnt_from"`
	LearntAt   time.Time  `json:"learnt_at"`
	// ConfirmedAt is when info_user confirmed the pair before it was
	// stored; zero in entries written before confirmation existed.
	ConfirmedAt time.Time `json:"confirmed_at,omitzero"`
}

// learntFrom says which event taught the registry a token, so an operator
// can trace a wrong one.
type learntFrom struct {
	EventID        string `json:"event_id"`
	Type           string `json:"type"`
	Subject        string `json:"subject"`
	StreamSequence uint64 `json:"stream_sequence"`
}

// LogValue keeps the token out of any log line that prints an entry.
func (e tokenEntry) LogValue() slog.Value {
	return slog.GroupValue(slog.String("terminal", e.Terminal), slog.Int64("id_user", e.IDUser),
		slog.String("learnt_from", e.LearntFrom.Type))
}

// noticeMark is the processed mark of a notice.
type noticeMark struct {
	Kind     string    `json:"kind"`
	OutputID string    `json:"output_id"`
	At       time.Time `json:"at"`
}

type store struct {
	tokens jetstream.KeyValue
	state  jetstream.KeyValue
}

func openStore(ctx context.Context, js jetstream.JetStream, stream string, replicas int, ttl time.Duration) (*store, error) {
	tokens, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      stream + "_CARD_TOKENS",
		Description: "paycomet-notify refresher: IdUser -> TokenUser registry, learnt from card registrations and payments",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("token registry bucket: %w", err)
	}
	state, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      stream + "_REFRESHER",
		Description: "paycomet-notify refresher: processed notices, pending renewals, registrations by order",
		History:     1,
		TTL:         ttl,
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("refresher state bucket: %w", err)
	}
	return &store{tokens: tokens, state: state}, nil
}

func tokenKey(terminal string, idUser int64) string {
	return terminal + "." + strconv.FormatInt(idUser, 10)
}

func orderKey(what, terminal, order string) string {
	return what + "." + terminal + "." + hex.EncodeToString([]byte(order))
}

// get reads key into v; found is false when the key is missing.
func get(ctx context.Context, kv jetstream.KeyValue, key string, v any) (found bool, err error) {
	e, err := kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("kv get %s: %w", kv.Bucket(), err)
	}
	if err := json.Unmarshal(e.Value(), v); err != nil {
		return false, fmt.Errorf("kv %s: stored value is not JSON: %w", kv.Bucket(), err)
	}
	return true, nil
}

func put(ctx context.Context, kv jetstream.KeyValue, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("kv put %s: %w", kv.Bucket(), err)
	}
	if _, err := kv.Put(ctx, key, b); err != nil {
		return fmt.Errorf("kv put %s: %w", kv.Bucket(), err)
	}
	return nil
}

func (s *store) token(ctx context.Context, terminal string, idUser int64) (tokenEntry, bool, error) {
	var e tokenEntry
	found, err := get(ctx, s.tokens, tokenKey(terminal, idUser), &e)
	return e, found, err
}

// put records e, confirmed by the caller, whatever the registry held.
func (s *store) put(ctx context.Context, e tokenEntry) error {
	return put(ctx, s.tokens, tokenKey(e.Terminal, e.IDUser), e)
}

// learn records e unless the registry already has the same token for that
// user; it reports whether it wrote.
func (s *store) learn(ctx context.Context, e tokenEntry) (bool, error) {
	old, found, err := s.token(ctx, e.Terminal, e.IDUser)
	if err != nil {
		return false, err
	}
	if found && old.TokenUser == e.TokenUser {
		return false, nil
	}
	return true, put(ctx, s.tokens, tokenKey(e.Terminal, e.IDUser), e)
}

func (s *store) forget(ctx context.Context, terminal string, idUser int64) error {
	if err := s.tokens.Delete(ctx, tokenKey(terminal, idUser)); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("kv delete %s: %w", s.tokens.Bucket(), err)
	}
	return nil
}

func (s *store) noticeDone(ctx context.Context, noticeID string) (noticeMark, bool, error) {
	var m noticeMark
	found, err := get(ctx, s.state, "notice."+noticeID, &m)
	return m, found, err
}

func (s *store) markNotice(ctx context.Context, noticeID string, m noticeMark) error {
	return put(ctx, s.state, "notice."+noticeID, m)
}

func (s *store) registration(ctx context.Context, terminal, order string) (tokenEntry, bool, error) {
	var e tokenEntry
	found, err := get(ctx, s.state, orderKey("registration", terminal, order), &e)
	return e, found, err
}

func (s *store) putRegistration(ctx context.Context, order string, e tokenEntry) error {
	return put(ctx, s.state, orderKey("registration", e.Terminal, order), e)
}

func (s *store) renewal(ctx context.Context, terminal, order string) (RenewalStarted, bool, error) {
	var r RenewalStarted
	found, err := get(ctx, s.state, orderKey("renewal", terminal, order), &r)
	return r, found, err
}

// startRenewal records r unless a renewal of the same order is already
// recorded; it returns the one that is recorded now, so the caller can tell
// a repeat (same old user) from a conflict.
func (s *store) startRenewal(ctx context.Context, terminal string, r RenewalStarted) (RenewalStarted, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return RenewalStarted{}, err
	}
	key := orderKey("renewal", terminal, r.Order)
	for range 3 {
		_, err = s.state.Create(ctx, key, b)
		if err == nil {
			return r, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return RenewalStarted{}, fmt.Errorf("kv create %s: %w", s.state.Bucket(), err)
		}
		have, found, err := s.renewal(ctx, terminal, r.Order)
		if err != nil {
			return RenewalStarted{}, err
		}
		if found {
			return have, nil
		}
		// Expired or deleted since Create failed: create again.
	}
	return RenewalStarted{}, fmt.Errorf("kv create %s: renewal key keeps changing", s.state.Bucket())
}

func (s *store) replaced(ctx context.Context, terminal, order string) (bool, error) {
	var t TokenReplaced
	return get(ctx, s.state, orderKey("replaced", terminal, order), &t)
}

func (s *store) markReplaced(ctx context.Context, terminal, order string, t TokenReplaced) error {
	return put(ctx, s.state, orderKey("replaced", terminal, order), t)
}

// ping reads both buckets' status, for /readyz.
func (s *store) ping(ctx context.Context) error {
	if _, err := s.tokens.Status(ctx); err != nil {
		return fmt.Errorf("token registry: %w", err)
	}
	if _, err := s.state.Status(ctx); err != nil {
		return fmt.Errorf("refresher state: %w", err)
	}
	return nil
}
