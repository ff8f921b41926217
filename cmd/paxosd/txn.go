package main

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode"

	"github.com/paxosd/paxosd/client"
	"github.com/paxosd/paxosd/internal/cli"
	"github.com/paxosd/paxosd/wire"
)

// txnSynopsis is what 'paxosd txn --help' prints above the flags.
const txnSynopsis = `paxosd txn [-w json] < TXN

Reads a transaction from stdin in etcdctl's txn format: the compares, one
per line; a blank line; the operations run when every compare holds; a
blank line; the operations run otherwise. Prints SUCCESS or FAILURE (which
branch ran) and each operation's result; exits 0 either way, 1 on error.

Compares:  value("KEY") = "V"     version("KEY") > "0"    create("KEY") = "0"
           mod("KEY") < "42"      exists("KEY") = "1"     token("LOCK") = "12"
           (operators = != < >; token is the lock's fencing token while held, 0 if free)
Operations: put KEY VALUE | del KEY [--prefix] | get KEY [--prefix] [--limit N]
           (a word with spaces or quotes is written as a Go string: "a b")

Example:
  printf 'token("jobs/lock") = "12"\nvalue("acct/a") = "100"\n\nput acct/a 90\nput acct/b 110\n\nget acct/a\n' | paxosd txn`

// cmdTxn: paxosd txn, a transaction read from stdin.
func cmdTxn(args []string, stdin io.Reader, stdout io.Writer) error {
	fs := cli.NewFlags("txn", txnSynopsis)
	var cf cli.ClientFlags
	cf.Register(fs)
	o := output{w: stdout}
	o.register(fs)
	if err := parseOutput(fs, args, &o); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("%w: txn takes no arguments: it reads the transaction from stdin (see 'paxosd txn --help')", cli.ErrUsage)
	}
	t, err := parseTxn(stdin)
	if err != nil {
		return err
	}
	cl, ctx, cancel, err := cf.Connect()
	if err != nil {
		return err
	}
	defer cancel()
	defer cl.Close()
	resp, err := cl.Txn(ctx).If(t.cmps...).Then(t.then...).Else(t.els...).Commit()
	if err != nil {
		return err
	}
	ops := t.thenOps
	if !resp.Succeeded {
		ops = t.elseOps
	}
	if o.json() {
		return o.print(newTxn(resp, ops))
	}
	if resp.Succeeded {
		fmt.Fprintln(stdout, "SUCCESS")
	} else {
		fmt.Fprintln(stdout, "FAILURE")
	}
	for i, r := range resp.Results {
		fmt.Fprintln(stdout)
		printTxnResult(stdout, ops[i], r)
	}
	return nil
}

// printTxnResult prints one operation's result as etcdctl does: OK for a
// put, the number of keys deleted for a del, each pair's key and value on
// two lines for a get.
func printTxnResult(w io.Writer, op txnOpLine, r client.TxnResult) {
	switch r.Type {
	case wire.TxnPut:
		fmt.Fprintln(w, "OK")
	case wire.TxnDelete:
		fmt.Fprintln(w, r.Deleted)
	case wire.TxnGet:
		kvs := r.KVs
		if !op.prefix && r.Found {
			kvs = []client.KV{r.KV}
		}
		for _, kv := range kvs {
			fmt.Fprintf(w, "%s\n%s\n", kv.Key, kv.Value)
		}
	}
}

// parsedTxn is a transaction read from stdin.
type parsedTxn struct {
	cmps             []client.Cmp
	then, els        []client.Op
	thenOps, elseOps []txnOpLine
}

// txnOpLine is what the JSON and simple outputs need to know of an
// operation as it was written.
type txnOpLine struct {
	kind   string // put, del, get
	key    string
	prefix bool
}

// parseTxn reads etcdctl's txn format: compares, a blank line, the
// success operations, a blank line, the failure operations. Lines are
// numbered in its errors.
func parseTxn(r io.Reader) (*parsedTxn, error) {
	var t parsedTxn
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), wire.DefaultFrameBytesMax)
	section, line := 0, 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" {
			section++
			if section > 2 {
				return nil, fmt.Errorf("%w: txn: line %d: a third blank line: the format is compares, a blank line, success operations, a blank line, failure operations", cli.ErrUsage, line)
			}
			continue
		}
		var err error
		switch section {
		case 0:
			var c client.Cmp
			c, err = parseCompare(text)
			t.cmps = append(t.cmps, c)
		default:
			var op client.Op
			var ol txnOpLine
			op, ol, err = parseTxnOp(text)
			if section == 1 {
				t.then, t.thenOps = append(t.then, op), append(t.thenOps, ol)
			} else {
				t.els, t.elseOps = append(t.els, op), append(t.elseOps, ol)
			}
		}
		if err != nil {
			return nil, fmt.Errorf("%w: txn: line %d: %v", cli.ErrUsage, line, err)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("txn: reading stdin: %w", err)
	}
	return &t, nil
}

// parseCompare reads TARGET("KEY") OP "VALUE".
func parseCompare(s string) (client.Cmp, error) {
	open := strings.IndexByte(s, '(')
	if open < 0 {
		return client.Cmp{}, fmt.Errorf("compare %q: want TARGET(\"KEY\") OP \"VALUE\", e.g. value(\"k\") = \"v\"", s)
	}
	target := strings.TrimSpace(s[:open])
	key, rest, err := quoted(s[open+1:])
	if err != nil {
		return client.Cmp{}, fmt.Errorf("compare %q: the key: %v", s, err)
	}
	rest = strings.TrimLeftFunc(rest, unicode.IsSpace)
	if !strings.HasPrefix(rest, ")") {
		return client.Cmp{}, fmt.Errorf("compare %q: want ) after the key", s)
	}
	rest = strings.TrimLeftFunc(rest[1:], unicode.IsSpace)
	var op string
	for _, o := range []string{"!=", "=", "<", ">"} {
		if strings.HasPrefix(rest, o) {
			op, rest = o, strings.TrimLeftFunc(rest[len(o):], unicode.IsSpace)
			break
		}
	}
	if op == "" {
		return client.Cmp{}, fmt.Errorf("compare %q: want an operator =, !=, < or > after the key", s)
	}
	val, rest, err := quoted(rest)
	if err != nil {
		return client.Cmp{}, fmt.Errorf("compare %q: the value: %v", s, err)
	}
	if strings.TrimSpace(rest) != "" {
		return client.Cmp{}, fmt.Errorf("compare %q: unexpected %q after the value", s, strings.TrimSpace(rest))
	}
	var t client.CmpTarget
	switch target {
	case "value", "val":
		return client.Compare(client.Value(key), op, val), nil
	case "version", "ver":
		t = client.Version(key)
	case "create", "c":
		t = client.CreateRevision(key)
	case "mod", "m":
		t = client.ModRevision(key)
	case "exists":
		t = client.Exists(key)
		switch val {
		case "true":
			val = "1"
		case "false":
			val = "0"
		}
	case "token":
		t = client.LockToken(key)
	default:
		return client.Cmp{}, fmt.Errorf("compare %q: unknown target %q: want value, version, create, mod, exists or token", s, target)
	}
	n, err := strconv.ParseUint(val, 10, 64)
	if err != nil {
		return client.Cmp{}, fmt.Errorf("compare %q: %s takes a number, not %q", s, target, val)
	}
	return client.Compare(t, op, n), nil
}

// quoted reads a Go-quoted string at the start of s (after spaces) and
// returns it and what follows.
func quoted(s string) (string, string, error) {
	s = strings.TrimLeftFunc(s, unicode.IsSpace)
	if !strings.HasPrefix(s, `"`) {
		return "", "", fmt.Errorf("want a double-quoted string")
	}
	prefix, err := strconv.QuotedPrefix(s)
	if err != nil {
		return "", "", fmt.Errorf("unterminated or bad quoted string")
	}
	v, err := strconv.Unquote(prefix)
	return v, s[len(prefix):], err
}

// parseTxnOp reads put KEY VALUE, del KEY [--prefix] or get KEY [--prefix]
// [--limit N].
func parseTxnOp(s string) (client.Op, txnOpLine, error) {
	words, err := splitWords(s)
	if err != nil {
		return client.Op{}, txnOpLine{}, err
	}
	var args []string
	prefix, limit := false, -1
	for i := 1; i < len(words); i++ {
		switch w := words[i]; {
		case w == "--prefix":
			prefix = true
		case w == "--limit" && i+1 < len(words):
			n, err := strconv.Atoi(words[i+1])
			if err != nil || n < 0 {
				return client.Op{}, txnOpLine{}, fmt.Errorf("%q: --limit takes a count, not %q", s, words[i+1])
			}
			limit, i = n, i+1
		case strings.HasPrefix(w, "--") && len(w) > 2:
			return client.Op{}, txnOpLine{}, fmt.Errorf("%q: unknown flag %s", s, w)
		default:
			args = append(args, w)
		}
	}
	ol := txnOpLine{kind: words[0], prefix: prefix}
	if len(args) > 0 {
		ol.key = args[0]
	}
	switch {
	case words[0] == "put" && len(args) == 2 && !prefix && limit < 0:
		return client.OpPut(args[0], []byte(args[1])), ol, nil
	case words[0] == "del" && len(args) == 1 && limit < 0:
		if prefix {
			return client.OpDeletePrefix(args[0]), ol, nil
		}
		return client.OpDelete(args[0]), ol, nil
	case words[0] == "get" && len(args) == 1 && (prefix || limit < 0):
		if prefix {
			return client.OpList(args[0], max(limit, 0)), ol, nil
		}
		return client.OpGet(args[0]), ol, nil
	}
	return client.Op{}, txnOpLine{}, fmt.Errorf("operation %q: want put KEY VALUE, del KEY [--prefix] or get KEY [--prefix] [--limit N]", s)
}

// splitWords splits s at spaces; a word that starts with a double quote
// is a Go string literal (for keys and values with spaces or quotes).
func splitWords(s string) ([]string, error) {
	var words []string
	for {
		s = strings.TrimLeftFunc(s, unicode.IsSpace)
		if s == "" {
			return words, nil
		}
		if s[0] == '"' {
			w, rest, err := quoted(s)
			if err != nil {
				return nil, fmt.Errorf("%q: %v", s, err)
			}
			words, s = append(words, w), rest
			continue
		}
		end := strings.IndexFunc(s, unicode.IsSpace)
		if end < 0 {
			end = len(s)
		}
		words, s = append(words, s[:end]), s[end:]
	}
}
