package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/paxosd/paxosd/client"
	"github.com/paxosd/paxosd/internal/cli"
	"github.com/paxosd/paxosd/paxos"
)

// memberSynopsis is what 'paxosd member --help' prints above the flags.
const memberSynopsis = `paxosd member list [-w json]             the members: id, address, voter or learner, reachable, applied index, lag
       paxosd member add ID=HOST:PORT [--learner] add a member (then start it: paxosd serve --id ID --listen HOST:PORT --join ...)
       paxosd member promote ID [--wait]        make a learner a voter (--wait: once it has caught up)
       paxosd member remove ID                  remove a member (the leader hands over first if it is the one)
       paxosd member update ID=HOST:PORT        record that a member moved to a new address

One change at a time: each returns once the new configuration is in force
(docs/MEMBERSHIP.md). A change while another is in progress fails with
"a membership change is already in progress".`

// cmdMember: paxosd member list|add|promote|remove|update.
func cmdMember(args []string, stdout io.Writer) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			fmt.Fprintln(stdout, "usage: "+memberSynopsis)
			return nil
		}
		return fmt.Errorf("%w: member needs a subcommand: list, add, promote, remove or update (see 'paxosd member --help')", cli.ErrUsage)
	}
	sub, args := args[0], args[1:]
	fs := cli.NewFlags("member "+sub, memberSynopsis)
	var cf cli.ClientFlags
	cf.Register(fs)
	o := output{w: stdout}
	o.register(fs)
	learner := fs.Bool("learner", false, "member add: the new member joins as a learner (it does not vote until promoted)")
	wait := fs.Bool("wait", false, "member promote: wait until the learner has caught up, then promote it")
	if err := parseOutput(fs, args, &o); err != nil {
		return err
	}
	want := map[string]int{"list": 0, "add": 1, "promote": 1, "remove": 1, "update": 1}
	n, ok := want[sub]
	if !ok {
		return fmt.Errorf("%w: unknown member subcommand %q: want list, add, promote, remove or update", cli.ErrUsage, sub)
	}
	if fs.NArg() != n {
		return fmt.Errorf("%w: member %s takes %s", cli.ErrUsage, sub, map[string]string{
			"list": "no arguments", "add": "ID=HOST:PORT", "promote": "ID", "remove": "ID", "update": "ID=HOST:PORT"}[sub])
	}
	var id paxos.NodeID
	var addr string
	if n == 1 {
		var err error
		if sub == "add" || sub == "update" {
			id, addr, err = parseMemberAddr(fs.Arg(0))
		} else {
			id, err = parseMemberID(fs.Arg(0))
		}
		if err != nil {
			return fmt.Errorf("%w: member %s: %v", cli.ErrUsage, sub, err)
		}
	}
	if *learner && sub != "add" || *wait && sub != "promote" {
		return fmt.Errorf("%w: --learner is for member add, --wait for member promote", cli.ErrUsage)
	}
	cl, ctx, cancel, err := cf.Connect()
	if err != nil {
		return err
	}
	defer cancel()
	defer cl.Close()
	var m client.Membership
	switch sub {
	case "list":
		m, err = cl.MemberList(ctx)
	case "add":
		m, err = cl.MemberAdd(ctx, id, addr, *learner)
	case "promote":
		if *wait {
			m, err = promoteWhenCaughtUp(cl, id, stdout, o.json())
		} else {
			m, err = cl.MemberPromote(ctx, id)
		}
	case "remove":
		m, err = cl.MemberRemove(ctx, id)
	case "update":
		m, err = cl.MemberUpdate(ctx, id, addr)
	}
	if err != nil {
		return err
	}
	if o.json() {
		return o.print(newMembershipJSON(m))
	}
	if sub != "list" {
		fmt.Fprintf(stdout, "membership version %d is in force\n", m.Version)
	}
	printMembers(stdout, m)
	return nil
}

// promoteWhenCaughtUp asks for the promotion until the leader takes it,
// as long as the learner keeps catching up, saying how far behind it is
// every few seconds. It gives up when the learner stops gaining for a
// minute.
func promoteWhenCaughtUp(cl *client.Client, id paxos.NodeID, stdout io.Writer, quiet bool) (client.Membership, error) {
	var said time.Time
	best, bestAt := uint64(1<<63), time.Now()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		m, err := cl.MemberPromote(ctx, id)
		cancel()
		if err == nil || !errors.Is(err, client.ErrMemberConflict) || !strings.Contains(err.Error(), "behind") && !strings.Contains(err.Error(), "not answered") {
			return m, err
		}
		lag := lagOf(cl, id)
		if lag < best {
			best, bestAt = lag, time.Now()
		}
		if time.Since(bestAt) > time.Minute {
			return m, fmt.Errorf("node %d has not caught up for a minute (%s): is it running? (paxosd member list)", id, err)
		}
		if !quiet && time.Since(said) >= 3*time.Second {
			said = time.Now()
			fmt.Fprintf(stdout, "waiting for node %d to catch up: %s\n", id, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// lagOf returns member id's lag as the leader lists it (max if unknown).
func lagOf(cl *client.Client, id paxos.NodeID) uint64 {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	m, err := cl.MemberList(ctx)
	if err != nil {
		return 1 << 63
	}
	for _, x := range m.Members {
		if x.ID == id && x.Commit != 0 {
			return x.Lag
		}
	}
	return 1 << 63
}

func printMembers(w io.Writer, m client.Membership) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tADDRESS\tROLE\tREACHABLE\tAPPLIED\tLAG")
	for _, x := range m.Members {
		role := "voter"
		if x.Learner {
			role = "learner"
		}
		switch {
		case x.Next:
			role += " (joining)"
		case x.Leaving:
			role += " (leaving)"
		}
		applied, lag := "-", "-"
		if x.Commit != 0 {
			applied, lag = strconv.FormatUint(uint64(x.Commit), 10), strconv.FormatUint(x.Lag, 10)
		}
		reach := "yes"
		if !x.Reachable {
			reach = "no"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", x.ID, x.Addr, role, reach, applied, lag)
	}
	tw.Flush()
}

type memberEntryJSON struct {
	ID        uint32 `json:"id"`
	Addr      string `json:"addr"`
	Learner   bool   `json:"learner"`
	Joining   bool   `json:"joining,omitempty"`
	Leaving   bool   `json:"leaving,omitempty"`
	Reachable bool   `json:"reachable"`
	Applied   uint64 `json:"applied,omitempty"`
	Lag       uint64 `json:"lag"`
}

type membershipJSON struct {
	Version uint64            `json:"version"`
	Members []memberEntryJSON `json:"members"`
}

func newMembershipJSON(m client.Membership) membershipJSON {
	out := membershipJSON{Version: m.Version, Members: []memberEntryJSON{}}
	for _, x := range m.Members {
		out.Members = append(out.Members, memberEntryJSON{ID: uint32(x.ID), Addr: x.Addr, Learner: x.Learner, Joining: x.Next,
			Leaving: x.Leaving, Reachable: x.Reachable, Applied: uint64(x.Commit), Lag: x.Lag})
	}
	return out
}

// parseMemberID reads a member id.
func parseMemberID(s string) (paxos.NodeID, error) {
	id, err := strconv.ParseUint(s, 10, 32)
	if err != nil || id == 0 {
		return 0, fmt.Errorf("%q is not a member id (a number from 1)", s)
	}
	return paxos.NodeID(id), nil
}

// parseMemberAddr reads ID=HOST:PORT.
func parseMemberAddr(s string) (paxos.NodeID, string, error) {
	idStr, addr, ok := strings.Cut(s, "=")
	if !ok {
		return 0, "", fmt.Errorf("%q: want ID=HOST:PORT", s)
	}
	id, err := parseMemberID(idStr)
	if err != nil {
		return 0, "", err
	}
	if _, port, ok := strings.Cut(addr, ":"); !ok || port == "" || strings.HasPrefix(addr, ":") {
		return 0, "", fmt.Errorf("%q: want ID=HOST:PORT", s)
	}
	return id, addr, nil
}
