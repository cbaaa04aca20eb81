package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/ecbridge/ecb/internal/config"
	"github.com/ecbridge/ecb/internal/server"
)

func init() {
	register(Command{
		Name:  "serve",
		Usage: "[--config FILE] [--listen ADDR] [--set key=value ...]",
		Short: "run the bridge (configuration: file, ECB_* environment, flags)",
		Run:   runServe,
	})
}

func runServe(ctx context.Context, args []string, env Env) (int, error) {
	fs := newFlags("serve", env)
	path := fs.String("config", "", "YAML configuration file")
	listen := fs.String("listen", "", "client API address (overrides listen)")
	var sets multiFlag
	fs.Var(&sets, "set", "override one setting, key=value (repeatable), e.g. --set backend.timeout=3s")
	if err := fs.Parse(args); err != nil {
		return 2, err
	}
	if fs.NArg() > 0 {
		return 2, fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	if *listen != "" {
		sets = append(sets, "listen="+*listen)
	}
	cfg, err := config.Load(*path, env.Getenv, sets)
	if err != nil {
		return 2, err
	}
	log := newLogger(env.Stderr, cfg.Log)
	srv, err := server.New(ctx, cfg, server.Options{Logger: log, Versions: versions()})
	if err != nil {
		return 1, err
	}
	if err := srv.Run(ctx); err != nil {
		return 1, err
	}
	return 0, nil
}

func newLogger(w io.Writer, c config.Log) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}
