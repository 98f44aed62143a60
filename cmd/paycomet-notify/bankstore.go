package main

import (
	"context"
	"fmt"
	"io"
)

// runBankstore is a placeholder until the BankStore client lands (issue 3).
func runBankstore(ctx context.Context, args []string, env map[string]string, stdin io.Reader, stdout, stderr io.Writer) int {
	fmt.Fprintln(stderr, "paycomet-notify bankstore: not built yet")
	return 1
}
