package client

import (
	"context"
	"fmt"

	"github.com/paxosd/paxosd/wire"
)

// Users, roles and auth (docs/SECURITY.md). Managing them is root's while
// auth is enabled; each change goes through the log like a write.

// Perm is what a role may do under a prefix.
type Perm = wire.Perm

const (
	PermRead      = wire.PermRead
	PermWrite     = wire.PermWrite
	PermReadWrite = wire.PermReadWrite
)

// User describes a user: never its password.
type User = wire.UserInfo

// Role describes a role and its permissions, by prefix.
type Role = wire.RoleInfo

// AuthStatus says whether the cluster checks requests, and who this
// client's connection is.
type AuthStatus struct {
	Enabled bool
	User    string
}

// authCall sends an auth request through the log (or to the node, for
// the listings) and returns its answer.
func (c *Client) authCall(ctx context.Context, q *wire.Request) (*wire.Response, error) {
	resp, err := c.do(ctx, q)
	if err != nil {
		return nil, err
	}
	if err := responseError(resp); err != nil {
		return resp, err
	}
	return resp, nil
}

// UserAdd adds user name with password (empty: it authenticates only with
// a client certificate whose CommonName is name). The node stores a
// bcrypt hash of it.
func (c *Client) UserAdd(ctx context.Context, name, password string) error {
	_, err := c.authCall(ctx, &wire.Request{Op: wire.OpUserAdd, Name: name, Value: []byte(password)})
	return err
}

// UserDelete deletes user name.
func (c *Client) UserDelete(ctx context.Context, name string) error {
	_, err := c.authCall(ctx, &wire.Request{Op: wire.OpUserDelete, Name: name})
	return err
}

// UserGrantRole gives user role.
func (c *Client) UserGrantRole(ctx context.Context, user, role string) error {
	_, err := c.authCall(ctx, &wire.Request{Op: wire.OpUserGrantRole, Name: user, Role: role})
	return err
}

// UserRevokeRole takes role from user; it takes effect at the user's next
// request.
func (c *Client) UserRevokeRole(ctx context.Context, user, role string) error {
	_, err := c.authCall(ctx, &wire.Request{Op: wire.OpUserRevokeRole, Name: user, Role: role})
	return err
}

// Users lists the users, by name.
func (c *Client) Users(ctx context.Context) ([]User, error) {
	resp, err := c.authCall(ctx, &wire.Request{Op: wire.OpUserList})
	if err != nil {
		return nil, err
	}
	return resp.Users, nil
}

// RoleAdd adds role name, without permissions.
func (c *Client) RoleAdd(ctx context.Context, name string) error {
	_, err := c.authCall(ctx, &wire.Request{Op: wire.OpRoleAdd, Name: name})
	return err
}

// RoleDelete deletes role name, taking it from every user.
func (c *Client) RoleDelete(ctx context.Context, name string) error {
	_, err := c.authCall(ctx, &wire.Request{Op: wire.OpRoleDelete, Name: name})
	return err
}

// RoleGrant lets role do perm on the keys, locks and elections whose name
// starts with prefix (replacing what it had on that prefix).
func (c *Client) RoleGrant(ctx context.Context, role, prefix string, perm Perm) error {
	if perm < PermRead || perm > PermReadWrite {
		return fmt.Errorf("%w: permission %d", ErrInvalid, perm)
	}
	_, err := c.authCall(ctx, &wire.Request{Op: wire.OpRoleGrant, Name: role, Prefix: prefix, Perm: perm})
	return err
}

// RoleRevoke takes role's permission on prefix away.
func (c *Client) RoleRevoke(ctx context.Context, role, prefix string) error {
	_, err := c.authCall(ctx, &wire.Request{Op: wire.OpRoleRevoke, Name: role, Prefix: prefix})
	return err
}

// Roles lists the roles, by name.
func (c *Client) Roles(ctx context.Context) ([]Role, error) {
	resp, err := c.authCall(ctx, &wire.Request{Op: wire.OpRoleList})
	if err != nil {
		return nil, err
	}
	return resp.Roles, nil
}

// AuthEnable makes the cluster check every request; refused until user
// root exists.
func (c *Client) AuthEnable(ctx context.Context) error {
	_, err := c.authCall(ctx, &wire.Request{Op: wire.OpAuthEnable})
	return err
}

// AuthDisable stops the checks.
func (c *Client) AuthDisable(ctx context.Context) error {
	_, err := c.authCall(ctx, &wire.Request{Op: wire.OpAuthDisable})
	return err
}

// AuthStatus reports whether auth is enabled and who this connection is.
func (c *Client) AuthStatus(ctx context.Context) (AuthStatus, error) {
	resp, err := c.authCall(ctx, &wire.Request{Op: wire.OpAuthStatus})
	if err != nil {
		return AuthStatus{}, err
	}
	return AuthStatus{Enabled: resp.AuthEnabled, User: resp.User}, nil
}
