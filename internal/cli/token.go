package cli

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ecbridge/ecb/sdk/ecbserver"
)

func init() {
	register(Command{
		Name:  "token",
		Usage: "--key private.pem --aud AUD (--user ID [--name N] [--roles r1,r2] | --thread ID --uid USER [--acc 3]) [--ttl 1h]",
		Short: "sign a userToken or threadToken with a private key (for testing an installation)",
		Run:   runToken,
	})
}

func runToken(_ context.Context, args []string, env Env) (int, error) {
	fs := newFlags("token", env)
	keyPath := fs.String("key", "", "private key PEM (the backend's)")
	aud := fs.String("aud", "", "audience (auth.audience of ECB)")
	iss := fs.String("iss", "", "issuer (auth.issuer of ECB), optional")
	user := fs.String("user", "", "sign a userToken for this user id")
	name := fs.String("name", "", "the user's display name (default: the id)")
	roles := fs.String("roles", "", "comma-separated roles: agent, supervisor, bot")
	workgroups := fs.String("workgroups", "", "comma-separated workgroups")
	thread := fs.String("thread", "", "sign a threadToken for this thread id")
	uid := fs.String("uid", "", "with --thread: the user the token is for")
	acc := fs.Int("acc", 3, "with --thread: access bits (1 read, 2 write, 4 admin, 8 owner)")
	ttl := fs.Duration("ttl", time.Hour, "lifetime")
	if err := fs.Parse(args); err != nil {
		return 2, err
	}
	if *keyPath == "" || *aud == "" || (*user == "") == (*thread == "") {
		return 2, fmt.Errorf("%w: --key, --aud and exactly one of --user and --thread are required", errUsage)
	}
	key, err := ecbserver.LoadPrivateKeyPEM(*keyPath)
	if err != nil {
		return 1, err
	}
	signer, err := ecbserver.NewTokenSigner(key, ecbserver.SignerOptions{Audience: *aud, Issuer: *iss, UserTTL: *ttl, ThreadTTL: *ttl})
	if err != nil {
		return 1, err
	}
	var tok string
	if *user != "" {
		if *name == "" {
			*name = *user
		}
		tok, err = signer.SignUserToken(ecbserver.UserTokenParams{ID: *user, Name: *name, Roles: split(*roles), Workgroups: split(*workgroups)})
	} else {
		if *uid == "" {
			return 2, fmt.Errorf("%w: --thread needs --uid", errUsage)
		}
		tok, err = signer.SignThreadToken(ecbserver.ThreadTokenParams{ThreadID: *thread, UserID: *uid, Access: *acc})
	}
	if err != nil {
		return 1, err
	}
	fmt.Fprintln(env.Stdout, tok)
	return 0, nil
}

func split(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
