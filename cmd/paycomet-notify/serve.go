package main

import (
	"context"
	"fmt"
	"io"
)

func runServe(ctx context.Context, args []string, env map[string]string, stdout, stderr io.Writer) int {
	fmt.Fprintln(stderr, "paycomet-notify serve: not built yet")
	return 1
}

func runSend(ctx context.Context, args []string, env map[string]string, stdout, stderr io.Writer) int {
	fmt.Fprintln(stderr, "paycomet-notify send: not built yet")
	return 1
}
