package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/pflag"

	"github.com/paxosd/paxosd/client"
	"github.com/paxosd/paxosd/internal/cli"
)

// The user, role and auth commands (docs/SECURITY.md, "Users and roles").

const userSynopsis = `paxosd user add NAME [--password-stdin | --no-password]   add a user (prompts for the password on a terminal)
       paxosd user list [-w json]                   the users and their roles
       paxosd user delete NAME                      delete a user
       paxosd user grant-role USER ROLE             give USER the permissions of ROLE
       paxosd user revoke-role USER ROLE            take ROLE from USER (effective at its next request)

A user authenticates with --user NAME[:PASSWORD] ($PAXOSD_USER,
$PAXOSD_PASSWORD), or with a client certificate whose CommonName is NAME
(--no-password: such a user has no password at all). The user named root
may do everything. With auth enabled, only root manages users.`

const roleSynopsis = `paxosd role add NAME                                    add a role, without permissions
       paxosd role list [-w json]                   the roles and their permissions
       paxosd role delete NAME                      delete a role (and take it from every user)
       paxosd role grant NAME --prefix P --read|--write|--readwrite
                                                    let the role read and/or write the keys, locks and
                                                    elections whose name starts with P
       paxosd role revoke NAME --prefix P           take the role's permission on P away`

const authSynopsis = `paxosd auth enable              check every request from now on (refused until user root exists)
       paxosd auth disable             stop checking
       paxosd auth status [-w json]    whether auth is enabled, and who you are`

// subcommand splits "SUB args..." off args, or fails with what subs are.
func subcommand(cmd string, args []string, subs ...string) (string, []string, error) {
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		for _, s := range subs {
			if args[0] == s {
				return s, args[1:], nil
			}
		}
		return "", nil, fmt.Errorf("%w: unknown %s subcommand %q: want %s (see 'paxosd %s --help')", cli.ErrUsage, cmd, args[0], strings.Join(subs, ", "), cmd)
	}
	if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
		return "", args, nil // the flag set prints the synopsis
	}
	return "", nil, fmt.Errorf("%w: paxosd %s needs a subcommand: %s (see 'paxosd %s --help')", cli.ErrUsage, cmd, strings.Join(subs, ", "), cmd)
}

// connected parses fs over args, checks there are nargs arguments (usage
// says which), connects and runs f.
func connected(fs *pflag.FlagSet, cf *cli.ClientFlags, o *output, args []string, nargs int, usage string,
	f func(ctx context.Context, cl *client.Client) error) error {
	if err := parseOutput(fs, args, o); err != nil {
		return err
	}
	if fs.NArg() != nargs {
		return fmt.Errorf("%w: %s", cli.ErrUsage, usage)
	}
	cl, ctx, cancel, err := cf.Connect()
	if err != nil {
		return err
	}
	defer cancel()
	defer cl.Close()
	return f(ctx, cl)
}

// done prints what a change did: a line, or with -w json {"ok":true}.
func done(o *output, line string) error {
	if o.json() {
		return o.print(struct {
			OK bool `json:"ok"`
		}{true})
	}
	fmt.Fprintln(o.w, line)
	return nil
}

// cmdUser: paxosd user add|list|delete|grant-role|revoke-role.
func cmdUser(args []string, stdin io.Reader, stdout io.Writer) error {
	sub, args, err := subcommand("user", args, "add", "list", "delete", "grant-role", "revoke-role")
	if err != nil {
		return err
	}
	fs := cli.NewFlags("user", userSynopsis)
	var cf cli.ClientFlags
	cf.Register(fs)
	o := output{w: stdout}
	o.register(fs)
	var fromStdin, noPassword bool
	if sub == "add" || sub == "" {
		fs.BoolVar(&fromStdin, "password-stdin", false, "read the password from the first line of stdin")
		fs.BoolVar(&noPassword, "no-password", false, "a user without a password: it authenticates with a client certificate only")
	}
	switch sub {
	case "add":
		return connected(fs, &cf, &o, args, 1, "user add takes NAME", func(ctx context.Context, cl *client.Client) error {
			name := fs.Arg(0)
			password, err := newPassword(name, fromStdin, noPassword, stdin)
			if err != nil {
				return err
			}
			if err := cl.UserAdd(ctx, name, password); err != nil {
				return err
			}
			return done(&o, "user "+name+" added")
		})
	case "delete":
		return connected(fs, &cf, &o, args, 1, "user delete takes NAME", func(ctx context.Context, cl *client.Client) error {
			if err := cl.UserDelete(ctx, fs.Arg(0)); err != nil {
				return err
			}
			return done(&o, "user "+fs.Arg(0)+" deleted")
		})
	case "grant-role", "revoke-role":
		return connected(fs, &cf, &o, args, 2, "user "+sub+" takes USER ROLE", func(ctx context.Context, cl *client.Client) error {
			user, role := fs.Arg(0), fs.Arg(1)
			if sub == "grant-role" {
				if err := cl.UserGrantRole(ctx, user, role); err != nil {
					return err
				}
				return done(&o, "role "+role+" granted to user "+user)
			}
			if err := cl.UserRevokeRole(ctx, user, role); err != nil {
				return err
			}
			return done(&o, "role "+role+" revoked from user "+user)
		})
	case "list":
		return connected(fs, &cf, &o, args, 0, "user list takes no arguments", func(ctx context.Context, cl *client.Client) error {
			users, err := cl.Users(ctx)
			if err != nil {
				return err
			}
			if o.json() {
				return o.print(usersJSON(users))
			}
			for _, u := range users {
				line := u.Name
				if len(u.Roles) > 0 {
					line += "\troles " + strings.Join(u.Roles, ",")
				}
				if !u.HasPassword {
					line += "\t(no password: client certificate only)"
				}
				fmt.Fprintln(stdout, line)
			}
			return nil
		})
	}
	return cli.Parse(fs, args) // --help
}

// newPassword is the password of a user being added: none with
// --no-password, stdin's first line with --password-stdin, else asked
// twice on the terminal.
func newPassword(name string, fromStdin, none bool, stdin io.Reader) (string, error) {
	switch {
	case none && fromStdin:
		return "", fmt.Errorf("%w: --no-password and --password-stdin exclude each other", cli.ErrUsage)
	case none:
		return "", nil
	case fromStdin:
		line, err := bufio.NewReader(stdin).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", fmt.Errorf("reading the password from stdin: %w", err)
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			return "", fmt.Errorf("%w: --password-stdin read an empty password (use --no-password for a user without one)", cli.ErrUsage)
		}
		return line, nil
	}
	p1, ok := cli.PromptPassword("Password for new user " + name + ": ")
	if !ok {
		return "", fmt.Errorf("%w: user add needs a password: run it on a terminal, or pass --password-stdin (or --no-password)", cli.ErrUsage)
	}
	p2, _ := cli.PromptPassword("Again: ")
	if p1 != p2 {
		return "", fmt.Errorf("%w: the two passwords differ", cli.ErrUsage)
	}
	if p1 == "" {
		return "", fmt.Errorf("%w: an empty password (use --no-password for a user without one)", cli.ErrUsage)
	}
	return p1, nil
}

// cmdRole: paxosd role add|list|delete|grant|revoke.
func cmdRole(args []string, stdout io.Writer) error {
	sub, args, err := subcommand("role", args, "add", "list", "delete", "grant", "revoke")
	if err != nil {
		return err
	}
	fs := cli.NewFlags("role", roleSynopsis)
	var cf cli.ClientFlags
	cf.Register(fs)
	o := output{w: stdout}
	o.register(fs)
	var prefix string
	var read, write, readwrite bool
	if sub == "grant" || sub == "revoke" || sub == "" {
		fs.StringVar(&prefix, "prefix", "", "the key prefix (\"\": every key, lock and election)")
	}
	if sub == "grant" || sub == "" {
		fs.BoolVar(&read, "read", false, "may read (get, list, watch; check locks, read leaders)")
		fs.BoolVar(&write, "write", false, "may write (put, delete; take locks, campaign)")
		fs.BoolVar(&readwrite, "readwrite", false, "may read and write")
	}
	switch sub {
	case "add", "delete":
		return connected(fs, &cf, &o, args, 1, "role "+sub+" takes NAME", func(ctx context.Context, cl *client.Client) error {
			f, what := cl.RoleAdd, "added"
			if sub == "delete" {
				f, what = cl.RoleDelete, "deleted"
			}
			if err := f(ctx, fs.Arg(0)); err != nil {
				return err
			}
			return done(&o, "role "+fs.Arg(0)+" "+what)
		})
	case "grant", "revoke":
		return connected(fs, &cf, &o, args, 1, "role "+sub+" takes NAME (and --prefix P)", func(ctx context.Context, cl *client.Client) error {
			if !fs.Changed("prefix") {
				return fmt.Errorf("%w: role %s needs --prefix P (--prefix \"\" for every key)", cli.ErrUsage, sub)
			}
			role := fs.Arg(0)
			if sub == "revoke" {
				if err := cl.RoleRevoke(ctx, role, prefix); err != nil {
					return err
				}
				return done(&o, fmt.Sprintf("role %s: permission on %q revoked", role, prefix))
			}
			var perm client.Perm
			switch {
			case readwrite && !read && !write, read && write && !readwrite:
				perm = client.PermReadWrite
			case read && !write && !readwrite:
				perm = client.PermRead
			case write && !read && !readwrite:
				perm = client.PermWrite
			default:
				return fmt.Errorf("%w: role grant needs one of --read, --write, --readwrite", cli.ErrUsage)
			}
			if err := cl.RoleGrant(ctx, role, prefix, perm); err != nil {
				return err
			}
			return done(&o, fmt.Sprintf("role %s may %s %q", role, perm, prefix))
		})
	case "list":
		return connected(fs, &cf, &o, args, 0, "role list takes no arguments", func(ctx context.Context, cl *client.Client) error {
			roles, err := cl.Roles(ctx)
			if err != nil {
				return err
			}
			if o.json() {
				return o.print(rolesJSON(roles))
			}
			for _, r := range roles {
				fmt.Fprintln(stdout, r.Name)
				for _, g := range r.Perms {
					fmt.Fprintf(stdout, "\t%-9s %q\n", g.Perm, g.Prefix)
				}
			}
			return nil
		})
	}
	return cli.Parse(fs, args) // --help
}

// cmdAuth: paxosd auth enable|disable|status.
func cmdAuth(args []string, stdout io.Writer) error {
	sub, args, err := subcommand("auth", args, "enable", "disable", "status")
	if err != nil {
		return err
	}
	fs := cli.NewFlags("auth", authSynopsis)
	var cf cli.ClientFlags
	cf.Register(fs)
	o := output{w: stdout}
	o.register(fs)
	switch sub {
	case "enable", "disable":
		return connected(fs, &cf, &o, args, 0, "auth "+sub+" takes no arguments", func(ctx context.Context, cl *client.Client) error {
			f := cl.AuthEnable
			if sub == "disable" {
				f = cl.AuthDisable
			}
			if err := f(ctx); err != nil {
				return err
			}
			return done(&o, "auth "+sub+"d")
		})
	case "status":
		return connected(fs, &cf, &o, args, 0, "auth status takes no arguments", func(ctx context.Context, cl *client.Client) error {
			st, err := cl.AuthStatus(ctx)
			if err != nil {
				return err
			}
			if o.json() {
				return o.print(authStatusJSON{Enabled: st.Enabled, User: st.User})
			}
			line := "auth disabled"
			if st.Enabled {
				line = "auth enabled"
			}
			if st.User != "" {
				line += "; you are " + st.User
			} else {
				line += "; you are not authenticated"
			}
			fmt.Fprintln(stdout, line)
			return nil
		})
	}
	return cli.Parse(fs, args) // --help
}
