package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"
)

// Task is one long-running part of a subcommand: a listener, a consumer, a
// background refresher.
type Task struct {
	Name string
	// Run blocks until the task ends. A clean stop returns nil,
	// http.ErrServerClosed or context.Canceled.
	Run func() error
	// Stop makes Run return: it stops accepting and finishes the work in
	// hand, within ctx.
	Stop func(ctx context.Context) error
}

// ContextTask runs fn with a context of its own that Stop cancels: a
// background loop with an owner and a stop.
func ContextTask(name string, fn func(ctx context.Context) error) Task {
	ctx, cancel := context.WithCancel(context.Background())
	return Task{Name: name, Run: func() error { return fn(ctx) }, Stop: func(context.Context) error { cancel(); return nil }}
}

// Run starts every task and waits until ctx ends or a task returns. Then it
// stops the tasks in the order given, each only after the previous one has
// returned (stop accepting notifications and let them reach their acks
// before anything they need goes away), all within grace. The result is the
// first task's failure, if one ended the run, joined with stop failures.
func Run(ctx context.Context, log *slog.Logger, grace time.Duration, tasks ...Task) error {
	done := make([]chan error, len(tasks))
	first := make(chan int, len(tasks))
	for i, t := range tasks {
		done[i] = make(chan error, 1)
		go func() {
			err := t.Run()
			done[i] <- err
			first <- i
		}()
	}
	var errs []error
	ended := -1
	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case ended = <-first:
		err := <-done[ended]
		done[ended] <- err // read again below
		if !clean(err) {
			errs = append(errs, fmt.Errorf("%s: %w", tasks[ended].Name, err))
			log.Info("shutting down", "because", tasks[ended].Name+" failed")
		} else {
			log.Info("shutting down", "because", tasks[ended].Name+" ended")
		}
	}
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	for i, t := range tasks {
		if err := t.Stop(sctx); err != nil && !clean(err) {
			errs = append(errs, fmt.Errorf("stop %s: %w", t.Name, err))
		}
		select {
		case err := <-done[i]:
			if i != ended && !clean(err) {
				errs = append(errs, fmt.Errorf("%s: %w", t.Name, err))
			}
		case <-sctx.Done():
			errs = append(errs, fmt.Errorf("%s did not stop within %s", t.Name, grace))
		}
	}
	return errors.Join(errs...)
}

func clean(err error) bool {
	return err == nil || errors.Is(err, http.ErrServerClosed) || errors.Is(err, context.Canceled)
}
