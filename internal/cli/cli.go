// Package cli owns the ecb command line: a small registry of subcommands, each
// a function that returns an exit code. cmd/ecb only sets up the signal
// context and calls Main.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
)

// Env is what a subcommand may touch.
type Env struct {
	Stdout, Stderr io.Writer
	Getenv         []string // the process environment (KEY=VALUE)
}

// Command is one subcommand.
type Command struct {
	Name  string
	Usage string // one line: arguments
	Short string
	Run   func(ctx context.Context, args []string, env Env) (int, error)
}

var commands = map[string]Command{}

func register(c Command) { commands[c.Name] = c }

// errUsage reports bad arguments: exit code 2 with the command's usage.
var errUsage = errors.New("usage")

// Main runs the subcommand named by args[0] and returns the exit code.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return MainEnv(ctx, args, Env{Stdout: stdout, Stderr: stderr, Getenv: environ()})
}

// MainEnv is Main with an explicit environment (tests).
func MainEnv(ctx context.Context, args []string, env Env) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		printHelp(env.Stdout)
		return 0
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(env.Stderr, "ecb: unknown command %q\n\n", args[0])
		printHelp(env.Stderr)
		return 2
	}
	code, err := c.Run(ctx, args[1:], env)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if errors.Is(err, errUsage) {
		fmt.Fprintf(env.Stderr, "ecb %s: %v\nusage: ecb %s %s\n", c.Name, err, c.Name, c.Usage)
		return 2
	}
	if err != nil {
		fmt.Fprintf(env.Stderr, "ecb %s: %v\n", c.Name, err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

func printHelp(w io.Writer) {
	fmt.Fprintln(w, "ecb — the Enterprise Chat Bridge")
	fmt.Fprintln(w, "\nUsage: ecb <command> [flags]\n\nCommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-12s %s\n", n, commands[n].Short)
	}
	fmt.Fprintln(w, "\nRun 'ecb <command> -h' for its flags. Documentation: docs/ in the repository.")
}

// newFlags returns a flag set that reports errors instead of exiting.
func newFlags(name string, env Env) *flag.FlagSet {
	fs := flag.NewFlagSet("ecb "+name, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	return fs
}

// multiFlag collects a repeated string flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }
