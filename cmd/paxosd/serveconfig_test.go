package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

// writeConfig writes a config file into a fresh temporary directory.
func writeConfig(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "paxosd.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestConfigPrecedence: command line over environment over file over
// default, flag by flag; a variable set empty counts as unset (the one-shot
// PAXOSD_NEW_CLUSTER too).
func TestConfigPrecedence(t *testing.T) {
	path := writeConfig(t, `# every layer sets some of these
id: 2
tick: 20ms
window: 100
log-level: debug
data-dir: /from/file
peers: [1=10.0.0.1:7401, 2=10.0.0.2:7401, 3=10.0.0.3:7401]
`)
	environ := []string{"PAXOSD_WINDOW=200", "PAXOSD_LOG_LEVEL=warn", "PAXOSD_ELECTION_TICKS=30", "PAXOSD_ID=", "PAXOSD_NEW_CLUSTER=", "HOME=/root"}
	sf, src, err := parseServe([]string{"--config", path, "--log-level", "error"}, environ)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		flag string
		got  any
		want any
		from string
	}{
		{"tick", sf.nf.tick, 20 * time.Millisecond, path + ":3"},              // file only
		{"window", sf.nf.window, 200, "$PAXOSD_WINDOW"},                       // env over file
		{"log-level", sf.lf.level, "error", ""},                               // command line over both
		{"election-ticks", sf.nf.electionTicks, 30, "$PAXOSD_ELECTION_TICKS"}, // env only
		{"heartbeat-ticks", sf.nf.heartbeatTicks, 3, ""},                      // default
		{"id", sf.id, uint32(2), path + ":2"},                                 // an empty variable is unset
		{"data-dir", sf.dataDir, "/from/file", path + ":6"},
		{"peers", sf.peers, "1=10.0.0.1:7401,2=10.0.0.2:7401,3=10.0.0.3:7401", path + ":7"},
	} {
		if c.got != c.want {
			t.Errorf("--%s = %v, want %v", c.flag, c.got, c.want)
		}
		if src.from[c.flag] != c.from {
			t.Errorf("--%s set from %q, want %q", c.flag, src.from[c.flag], c.from)
		}
	}
	if len(src.warnings) != 0 {
		t.Errorf("warnings %q, want none", src.warnings)
	}
}

// TestConfigFileForms: a list or a comma-separated string for --peers,
// booleans, quoted and block values, an empty file, $PAXOSD_CONFIG.
func TestConfigFileForms(t *testing.T) {
	list := writeConfig(t, "peers:\n  - 1=a:1\n  - 2=b:2\nunsafe-no-fsync: true\nlisten: \":7401\"\ncluster-id: >-\n  prod\n")
	sf, _, err := parseServe([]string{"--config", list}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if sf.peers != "1=a:1,2=b:2" || !sf.nf.noSync || sf.listen != ":7401" || sf.nf.clusterID != "prod" {
		t.Errorf("peers %q, unsafe-no-fsync %v, listen %q, cluster-id %q", sf.peers, sf.nf.noSync, sf.listen, sf.nf.clusterID)
	}
	str := writeConfig(t, "peers: 1=a:1,2=b:2\n")
	if sf, _, err = parseServe(nil, []string{"PAXOSD_CONFIG=" + str}); err != nil || sf.peers != "1=a:1,2=b:2" {
		t.Errorf("$PAXOSD_CONFIG with peers as a string: %v, peers %q", err, sf.peers)
	}
	for _, empty := range []string{"", "# nothing set\n", "---\n"} {
		if sf, _, err = parseServe([]string{"--config", writeConfig(t, empty)}, nil); err != nil || sf.nf.window != 256 {
			t.Errorf("config %q: %v, want the defaults", empty, err)
		}
	}
}

// TestConfigErrors: every mistake in the file or the environment is exit
// status 2 and one line naming the file and line (or the variable), the
// key and the problem.
func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	file := func(text string) string {
		f, err := os.CreateTemp(dir, "*.yaml")
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString(text)
		f.Close()
		return f.Name()
	}
	missing := filepath.Join(dir, "missing.yaml")
	cases := []struct {
		text string // the file's; "" for none
		env  map[string]string
		want string // after "paxosd: FILE"
	}{
		{text: "id: 1\ndata_dir: /x\n", want: `:2: unknown key "data_dir" (did you mean "data-dir"?)`},
		{text: "color: blue\n", want: `:1: unknown key "color" (the keys are serve's flag names; see 'paxosd serve --help')`},
		{text: "id: 1\nnew-cluster: true\n", want: `:2: key "new-cluster": --new-cluster acts once and is not read from a file, where every restart would see it; give --new-cluster on the command line, once`},
		{text: "rejoin: false\n", want: `:1: key "rejoin": --rejoin acts once and is not read from a file, where every restart would see it; give --rejoin on the command line, once`},
		{text: "force-new-cluster: true\n", want: `:1: key "force-new-cluster": --force-new-cluster acts once and is not read from a file, where every restart would see it; give --force-new-cluster on the command line, once`},
		{text: "config: /etc/other.yaml\n", want: `:1: key "config": a config file cannot name another`},
		{text: "tick: fast\n", want: `:1: key "tick": "fast" is not a duration such as 10ms or 2s`},
		{text: "unsafe-no-fsync: yes\n", want: `:1: key "unsafe-no-fsync": "yes" is not true or false`},
		{text: "window: 1.5\n", want: `:1: key "window": "1.5" is not a whole number`},
		{text: "id: -1\n", want: `:1: key "id": "-1" is not a whole number from 0 to 4294967295`},
		{text: "data-dir:\n", want: `:1: key "data-dir": no value (leave the key out for the default)`},
		{text: "window: [1, 2]\n", want: `:1: key "window": want one value, not a list`},
		{text: "peers: {1: a:1}\n", want: `:1: key "peers": want a value, not a mapping`},
		{text: "peers:\n  - 1=a:1\n  - [2]\n", want: `:1: key "peers": list item 2 is not a plain value`},
		{text: "id: 1\nid: 2\n", want: `:2: key "id" is given twice (first on line 1)`},
		{text: "- id: 1\n", want: `:1: want a mapping of serve's flag names to values, such as "data-dir: /var/lib/paxosd"`},
		{text: "id: [1\n", want: `:1: did not find expected ',' or ']'`},
		// A value only serve's own checks refuse names where it came from.
		{text: "id: 1\ndata-dir: /x\npeers: 1=a:b:7401\n",
			want: `--peers entry "1=a:b:7401": address "a:b:7401": too many colons in address; want ID=HOST:PORT (--peers is set in FILE:3)`},
		{text: "id: 4\ndata-dir: /x\npeers: 1=a:7401\n", env: map[string]string{"PAXOSD_ID": "9"},
			want: `node 9 is not in --peers (--peers is set in FILE:3)`},
		{env: map[string]string{"PAXOSD_NEW_CLUSTER": "true"},
			want: `$PAXOSD_NEW_CLUSTER="true": --new-cluster acts once and is not read from the environment, where every restart would see it; give --new-cluster on the command line, once`},
		{env: map[string]string{"PAXOSD_REJOIN": "1"},
			want: `$PAXOSD_REJOIN="1": --rejoin acts once and is not read from the environment, where every restart would see it; give --rejoin on the command line, once`},
		{env: map[string]string{"PAXOSD_FORCE_NEW_CLUSTER": "true"},
			want: `$PAXOSD_FORCE_NEW_CLUSTER="true": --force-new-cluster acts once and is not read from the environment, where every restart would see it; give --force-new-cluster on the command line, once`},
		{env: map[string]string{"PAXOSD_ELECTION_TICKS": "many"}, want: `$PAXOSD_ELECTION_TICKS="many": "many" is not a whole number`},
		{env: map[string]string{"PAXOSD_LOG_LEVEL": "loud", "PAXOSD_ID": "1", "PAXOSD_PEERS": "1=a:1", "PAXOSD_DATA_DIR": "/x"},
			want: `--log-level "loud": want debug, info, warn or error (--log-level is set by $PAXOSD_LOG_LEVEL)`},
		{env: map[string]string{"PAXOSD_CONFIG": missing}, want: `--config: open ` + missing + `: no such file or directory`},
	}
	for _, tc := range cases {
		for _, k := range []string{"PAXOSD_NEW_CLUSTER", "PAXOSD_REJOIN", "PAXOSD_FORCE_NEW_CLUSTER", "PAXOSD_ELECTION_TICKS", "PAXOSD_LOG_LEVEL", "PAXOSD_ID", "PAXOSD_PEERS", "PAXOSD_DATA_DIR", "PAXOSD_CONFIG"} {
			t.Setenv(k, tc.env[k])
			if tc.env[k] == "" {
				os.Unsetenv(k)
			}
		}
		args := []string{"serve"}
		want := "paxosd: " + tc.want + "\n"
		if tc.text != "" {
			path := file(tc.text)
			args = append(args, "--config", path)
			if strings.HasPrefix(tc.want, ":") {
				want = "paxosd: " + path + tc.want + "\n"
			}
			want = strings.ReplaceAll(want, "FILE", path)
		}
		var out, errb bytes.Buffer
		if code := run(args, &out, &errb); code != 2 || errb.String() != want {
			t.Errorf("config %q, env %v: exit %d, stderr\n%q\nwant exit 2 and\n%q", tc.text, tc.env, code, errb.String(), want)
		}
	}
}

// TestConfigEnvWarnings: a PAXOSD_ variable serve does not know is named
// in a warning (with the likely meant one), unless it is one of the client
// commands' variables, which a shell may well have set.
func TestConfigEnvWarnings(t *testing.T) {
	_, src, err := parseServe(nil, []string{"PAXOSD_DATADIR=/x", "PAXOSD_ENDPOINTS=a:1", "PAXOSD_LOCK_TOKEN=3", "PAXOSD_COLOUR=red"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"$PAXOSD_COLOUR is not a serve setting and is ignored",
		"$PAXOSD_DATADIR is not a serve setting and is ignored (did you mean $PAXOSD_DATA_DIR?)",
	}
	if strings.Join(src.warnings, "\n") != strings.Join(want, "\n") {
		t.Errorf("warnings\n%q\nwant\n%q", src.warnings, want)
	}
}

// TestConfigEveryLastingFlag: each serve flag but the one-shot ones can be
// set from the file and from the environment, so a new flag cannot be
// forgotten there.
func TestConfigEveryLastingFlag(t *testing.T) {
	var sf serveFlags
	fs := sf.flagSet()
	n := 0
	for _, name := range flagNames(fs) {
		if oneShotFlags[name] || name == "config" {
			continue
		}
		n++
		f := fs.Lookup(name)
		v := map[string]string{"bool": "true", "duration": "7ms", "int": "7", "uint32": "7"}[f.Value.Type()]
		if v == "" {
			v = "x7"
		}
		sf2, src, err := parseServe([]string{"--config", writeConfig(t, name+": "+v+"\n")}, nil)
		if err != nil || src.from[name] == "" {
			t.Errorf("%s from the file: %v", name, err)
		}
		if sf2 != nil && sf2.flagValue(name) != v {
			t.Errorf("%s from the file = %q, want %q", name, sf2.flagValue(name), v)
		}
		if _, src, err := parseServe(nil, []string{envName(name) + "=" + v}); err != nil || src.from[name] != "$"+envName(name) {
			t.Errorf("%s from $%s: %v", name, envName(name), err)
		}
	}
	if n < 15 {
		t.Errorf("only %d lasting flags found", n)
	}
}

func flagNames(fs *pflag.FlagSet) []string {
	var out []string
	fs.VisitAll(func(f *pflag.Flag) { out = append(out, f.Name) })
	return out
}

func (s *serveFlags) flagValue(name string) string { return s.fs.Lookup(name).Value.String() }
