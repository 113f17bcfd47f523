// Command testdb lists and drops the throwaway databases that the test
// suite creates (see integrations/testenv). Tests drop their own databases;
// this is for the ones a killed test run left behind.
//
//	go run ./cmd/testdb clean           # drop test databases older than an hour
//	go run ./cmd/testdb clean -age 0s   # drop every test database
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/iec-almaty/sisnotify/integrations/testenv"
)

func main() {
	fs := flag.NewFlagSet("testdb clean", flag.ContinueOnError)
	age := fs.Duration("age", time.Hour, "drop test databases at least this old")
	if len(os.Args) < 2 || os.Args[1] != "clean" {
		fmt.Fprintln(os.Stderr, "usage: testdb clean [-age 1h]")
		os.Exit(2)
	}
	if err := fs.Parse(os.Args[2:]); err != nil {
		os.Exit(2)
	}
	dropped, err := testenv.Clean(context.Background(), *age)
	for _, n := range dropped {
		fmt.Println("dropped", n)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "testdb:", err)
		os.Exit(1)
	}
}
