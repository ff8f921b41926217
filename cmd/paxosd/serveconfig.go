package main

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"

	"github.com/paxosd/paxosd/internal/cli"
)

// Configuration like a daemon: every lasting serve flag can also come from
// a YAML file (--config) and from an environment variable (PAXOSD_DATA_DIR
// for --data-dir), so that a unit file holds one ExecStart line and the
// settings live in /etc. Precedence: command line, then environment, then
// file, then the flag's default.
//
// The file's keys are the flag names and nothing else: the flag set is the
// one list of settings, so the file cannot drift from the flags, and an
// unknown key is refused with its line (go.yaml.in/yaml/v3's KnownFields
// does the same for struct targets; the file is walked as a yaml.Node
// instead so that each key is checked against the flag set and every error
// names its line).

// oneShotFlags act once and must not be kept where every restart reads
// them: a unit file's environment or a config file. A leftover
// --new-cluster would let a member whose data directory was lost create
// empty state and vote again (docs/proposals/BOOTSTRAP.md).
var oneShotFlags = map[string]bool{"new-cluster": true, "rejoin": true, "force-new-cluster": true}

// listFlags may be a YAML list in the file; the items are joined with
// commas, the flag's own form.
var listFlags = map[string]bool{"peers": true}

// envPrefix starts every serve variable.
const envPrefix = "PAXOSD_"

// otherEnv are PAXOSD_ variables that are not serve's: the client commands'
// and those paxosd lock/elect give their COMMAND. serve does not warn of
// them, since a shell or unit may well have them set.
var otherEnv = map[string]bool{
	"PAXOSD_ENDPOINTS": true, "PAXOSD_LOCK_TOKEN": true, "PAXOSD_LOCK_NAME": true, "PAXOSD_SESSION_ID": true,
	"PAXOSD_ELECTION_TERM": true, "PAXOSD_ELECTION_NAME": true, "PAXOSD_ELECTION_VALUE": true, "PAXOSD_BINARY": true,
	"PAXOSD_CACERT": true, "PAXOSD_CERT": true, "PAXOSD_KEY": true,
}

// envName is the variable that sets flag name.
func envName(name string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// configSources says where the flags not given on the command line got
// their values: for error messages and the start-up log.
type configSources struct {
	file string
	from map[string]string // flag name -> "FILE:LINE" or "$PAXOSD_X"
	// warnings are things to log once the logger exists.
	warnings []string
}

// layerConfig fills the flags the command line left unset: first from the
// config file (--config, or $PAXOSD_CONFIG), then from the environment,
// which overrides the file. environ is os.Environ()'s form.
func layerConfig(fs *pflag.FlagSet, environ []string) (*configSources, error) {
	env := map[string]string{}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, envPrefix) {
			env[k] = v
		}
	}
	src := &configSources{from: map[string]string{}}
	onCLI := map[string]bool{}
	fs.Visit(func(f *pflag.Flag) { onCLI[f.Name] = true })

	// The one-shot flags are refused outright rather than ignored: an
	// operator who put PAXOSD_NEW_CLUSTER in a unit would otherwise believe
	// it acts, and the unit would keep it for the day it does harm. (Set
	// but empty counts as unset, as for every variable here.)
	for _, name := range sortedKeys(oneShotFlags) {
		if v := env[envName(name)]; v != "" {
			return nil, fmt.Errorf("%w: $%s=%q: --%s acts once and is not read from the environment, where every restart would see it; give --%s on the command line, once",
				cli.ErrUsage, envName(name), v, name, name)
		}
	}

	src.file = fs.Lookup("config").Value.String()
	if !onCLI["config"] && env[envName("config")] != "" {
		src.file = env[envName("config")]
		src.from["config"] = "$" + envName("config")
	}
	if src.file != "" {
		entries, err := readConfigFile(src.file)
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			if err := src.fromConfigEntry(fs, onCLI, e); err != nil {
				return nil, err
			}
		}
	}

	for _, k := range sortedKeys(env) {
		v := env[k]
		name := strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(k, envPrefix), "_", "-"))
		f := fs.Lookup(name)
		switch {
		case name == "config":
			continue // read above
		case f == nil || k != envName(name):
			if !otherEnv[k] && !strings.HasPrefix(k, envPrefix+"TEST_") {
				w := fmt.Sprintf("$%s is not a serve setting and is ignored", k)
				if hint := suggest(fs, name, func(s string) string { return "$" + envName(s) }); hint != "" {
					w += " (" + hint + ")"
				}
				src.warnings = append(src.warnings, w)
			}
			continue
		case v == "":
			continue // Environment=PAXOSD_X= in a unit: unset, as in a shell
		case onCLI[name]:
			continue // the command line wins
		}
		if err := setFlag(fs, f, v); err != nil {
			return nil, fmt.Errorf("%w: $%s=%q: %v", cli.ErrUsage, k, v, err)
		}
		src.from[name] = "$" + k
	}
	return src, nil
}

// setBy lists, sorted, the flags whose value came from the environment
// (env true) or from the file: for the start-up log.
func (src *configSources) setBy(env bool) []string {
	var out []string
	for _, name := range sortedKeys(src.from) {
		if name != "config" && strings.HasPrefix(src.from[name], "$") == env {
			out = append(out, name)
		}
	}
	return out
}

// configEntry is one key of the file, its value in the flag's string form.
type configEntry struct {
	key, value string
	line       int
}

// fromConfigEntry sets one flag from the file, unless the command line
// set it (the environment, applied later, overrides what this sets).
func (src *configSources) fromConfigEntry(fs *pflag.FlagSet, onCLI map[string]bool, e configEntry) error {
	at := fmt.Sprintf("%s:%d", src.file, e.line)
	f := fs.Lookup(e.key)
	switch {
	case oneShotFlags[e.key]:
		return fmt.Errorf("%w: %s: key %q: --%s acts once and is not read from a file, where every restart would see it; give --%s on the command line, once",
			cli.ErrUsage, at, e.key, e.key, e.key)
	case e.key == "config":
		return fmt.Errorf("%w: %s: key %q: a config file cannot name another", cli.ErrUsage, at, e.key)
	case f == nil:
		if hint := suggest(fs, e.key, strconv.Quote); hint != "" {
			return fmt.Errorf("%w: %s: unknown key %q (%s)", cli.ErrUsage, at, e.key, hint)
		}
		return fmt.Errorf("%w: %s: unknown key %q (the keys are serve's flag names; see 'paxosd serve --help')", cli.ErrUsage, at, e.key)
	case onCLI[e.key]:
		return nil
	}
	if err := setFlag(fs, f, e.value); err != nil {
		return fmt.Errorf("%w: %s: key %q: %v", cli.ErrUsage, at, e.key, err)
	}
	src.from[e.key] = at
	return nil
}

// readConfigFile reads a YAML mapping of flag names to values: scalars,
// or lists for listFlags.
func readConfigFile(path string) ([]configEntry, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: --config: %v", cli.ErrUsage, err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		// "yaml: line 3: ..." as "FILE:3: ...", like the other errors.
		msg := yamlLine.ReplaceAllString(strings.TrimPrefix(err.Error(), "yaml: "), ":$1:")
		if !strings.HasPrefix(msg, ":") {
			msg = ": " + msg
		}
		return nil, fmt.Errorf("%w: %s%s", cli.ErrUsage, path, msg)
	}
	if doc.Kind == 0 {
		return nil, nil // empty, or only comments
	}
	root := doc.Content[0]
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return nil, nil
	}
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%w: %s:%d: want a mapping of serve's flag names to values, such as \"data-dir: /var/lib/paxosd\"", cli.ErrUsage, path, root.Line)
	}
	var out []configEntry
	seen := map[string]int{}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], resolveAlias(root.Content[i+1])
		at := fmt.Sprintf("%s:%d", path, k.Line)
		if k.Kind != yaml.ScalarNode {
			return nil, fmt.Errorf("%w: %s: a key must be a flag name", cli.ErrUsage, at)
		}
		if first, dup := seen[k.Value]; dup {
			return nil, fmt.Errorf("%w: %s: key %q is given twice (first on line %d)", cli.ErrUsage, at, k.Value, first)
		}
		seen[k.Value] = k.Line
		value, err := scalarOrList(k.Value, v)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: key %q: %v", cli.ErrUsage, at, k.Value, err)
		}
		out = append(out, configEntry{key: k.Value, value: value, line: k.Line})
	}
	return out, nil
}

func resolveAlias(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

// scalarOrList turns a value into the flag's string form.
func scalarOrList(key string, v *yaml.Node) (string, error) {
	switch {
	case v.Kind == yaml.ScalarNode && v.Tag == "!!null":
		return "", errors.New("no value (leave the key out for the default)")
	case v.Kind == yaml.ScalarNode:
		return v.Value, nil
	case v.Kind == yaml.SequenceNode && listFlags[key]:
		items := make([]string, len(v.Content))
		for i, it := range v.Content {
			it = resolveAlias(it)
			if it.Kind != yaml.ScalarNode || it.Tag == "!!null" {
				return "", fmt.Errorf("list item %d is not a plain value", i+1)
			}
			items[i] = it.Value
		}
		return strings.Join(items, ","), nil
	case v.Kind == yaml.SequenceNode:
		return "", errors.New("want one value, not a list")
	default:
		return "", errors.New("want a value, not a mapping")
	}
}

// setFlag sets f from a file or the environment, saying in the flag's own
// terms what a bad value should look like.
func setFlag(fs *pflag.FlagSet, f *pflag.Flag, v string) error {
	if err := fs.Set(f.Name, v); err != nil {
		want := map[string]string{
			"bool":     "true or false",
			"duration": "a duration such as 10ms or 2s",
			"int":      "a whole number",
			"uint32":   "a whole number from 0 to 4294967295",
			"uint64":   "a whole number from 0",
		}[f.Value.Type()]
		if want == "" {
			return err
		}
		return fmt.Errorf("%q is not %s", v, want)
	}
	return nil
}

// suggest names the flag a misspelt key probably meant ("data_dir",
// "datadir", "DataDir" for data-dir), in the form form gives, or "".
func suggest(fs *pflag.FlagSet, key string, form func(string) string) string {
	norm := func(s string) string { return strings.ToLower(strings.NewReplacer("-", "", "_", "").Replace(s)) }
	var hit string
	fs.VisitAll(func(f *pflag.Flag) {
		if norm(f.Name) == norm(key) && !oneShotFlags[f.Name] {
			hit = f.Name
		}
	})
	if hit == "" {
		return ""
	}
	return fmt.Sprintf("did you mean %s?", form(hit))
}

var yamlLine = regexp.MustCompile(`^line (\d+):`)

var flagRef = regexp.MustCompile(`--([a-z][a-z0-9-]*)`)

// explain adds to a message about flags where each flag it names got its
// value, when that was not the command line: "--peers entry ...: ...
// (--peers is set in /etc/paxosd/paxosd.yaml:3)".
func (src *configSources) explain(err error) error {
	if src == nil || err == nil {
		return err
	}
	var notes []string
	seen := map[string]bool{}
	for _, m := range flagRef.FindAllStringSubmatch(err.Error(), -1) {
		name := m[1]
		if from, ok := src.from[name]; ok && !seen[name] {
			seen[name] = true
			verb := "set in"
			if strings.HasPrefix(from, "$") {
				verb = "set by"
			}
			notes = append(notes, fmt.Sprintf("--%s is %s %s", name, verb, from))
		}
	}
	if len(notes) == 0 {
		return err
	}
	return fmt.Errorf("%w (%s)", err, strings.Join(notes, "; "))
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
