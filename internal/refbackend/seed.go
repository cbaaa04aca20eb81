package refbackend

import (
	"context"
	"database/sql"
	"fmt"
)

// seedUser is one demo user; the password is the user id.
type seedUser struct {
	id, name   string
	roles      []string
	workgroups []string
}

// seedUsers are the users `ecb demo` promises (DESIGN §5.2). Their order is
// the order GET /users lists them in.
var seedUsers = []seedUser{
	{id: "alice", name: "Alice"},
	{id: "bob", name: "Bob"},
	{id: "carol", name: "Carol"},
	{id: "agent1", name: "Agent One", roles: []string{"agent"}, workgroups: []string{"support"}},
	{id: "agent2", name: "Agent Two", roles: []string{"agent"}, workgroups: []string{"support"}},
	{id: "super", name: "Supervisor", roles: []string{"supervisor"}, workgroups: []string{"support"}},
}

// seedBots are added by migration 6: a bot is an ordinary user (role bot)
// that an agent adds to a support thread; it chats with its own userToken.
var seedBots = []seedUser{
	{id: "helpbot", name: "Help Bot", roles: []string{"bot"}},
}

// seedColleagues are each other's contacts.
var seedColleagues = []string{"alice", "bob", "carol"}

// seedDemo is a migration so that it runs exactly once per database: a
// restart finds it recorded and seeds nothing, and users deleted later stay
// deleted.
func seedDemo(iterations int) func(context.Context, *sql.Tx) error {
	return func(ctx context.Context, tx *sql.Tx) error {
		if err := insertUsers(ctx, tx, seedUsers, iterations); err != nil {
			return err
		}
		for _, a := range seedColleagues {
			for _, b := range seedColleagues {
				if a == b {
					continue
				}
				if _, err := tx.ExecContext(ctx, `INSERT INTO contacts(user_id, contact_id) VALUES (?, ?)`, a, b); err != nil {
					return fmt.Errorf("seed contact %s-%s: %w", a, b, err)
				}
			}
		}
		return nil
	}
}

// seedBotUsers is migration 6.
func seedBotUsers(iterations int) func(context.Context, *sql.Tx) error {
	return func(ctx context.Context, tx *sql.Tx) error { return insertUsers(ctx, tx, seedBots, iterations) }
}

// insertUsers creates users with their roles and workgroups.
func insertUsers(ctx context.Context, tx *sql.Tx, users []seedUser, iterations int) error {
	for _, u := range users {
		ph, err := hashPassword(u.id, iterations)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO users(id, name, password_hash, password_salt, password_iter) VALUES (?, ?, ?, ?, ?)`,
			u.id, u.name, ph.Hash, ph.Salt, ph.Iter); err != nil {
			return fmt.Errorf("seed user %s: %w", u.id, err)
		}
		for _, r := range u.roles {
			if _, err := tx.ExecContext(ctx, `INSERT INTO user_roles(user_id, role) VALUES (?, ?)`, u.id, r); err != nil {
				return fmt.Errorf("seed role of %s: %w", u.id, err)
			}
		}
		for _, w := range u.workgroups {
			if _, err := tx.ExecContext(ctx, `INSERT INTO workgroup_members(workgroup, user_id) VALUES (?, ?)`, w, u.id); err != nil {
				return fmt.Errorf("seed workgroup of %s: %w", u.id, err)
			}
		}
	}
	return nil
}
