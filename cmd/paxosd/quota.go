package main

import (
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/paxosd/paxosd/internal/cli"
	"github.com/paxosd/paxosd/statemachine"
)

// quotaSynopsis is what 'paxosd quota --help' prints above the flags.
const quotaSynopsis = `paxosd quota [get] [-w json] print the space quota and its usage
       paxosd quota set BYTES      set the space quota: 8GiB, 512MiB, 1G, 1000000

The quota bounds the bytes of the live keys and values (key length plus
value length, summed). A put that would grow them beyond it fails; deletes,
reads and writes that do not grow them go on. K, M, G, T and KiB, MiB, GiB,
TiB are binary (1K = 1024 bytes); KB, MB, GB, TB decimal (1KB = 1000).`

// cmdQuota: paxosd quota [get] | quota set BYTES.
func cmdQuota(args []string, stdout io.Writer) error {
	sub := "get"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		sub, args = args[0], args[1:]
	}
	if sub != "get" && sub != "set" {
		return fmt.Errorf("%w: unknown quota subcommand %q: want get or set (see 'paxosd quota --help')", cli.ErrUsage, sub)
	}
	fs := cli.NewFlags("quota", quotaSynopsis)
	var cf cli.ClientFlags
	cf.Register(fs)
	o := output{w: stdout}
	o.register(fs)
	if err := parseOutput(fs, args, &o); err != nil {
		return err
	}
	var limit uint64
	switch {
	case sub == "get" && fs.NArg() != 0:
		return fmt.Errorf("%w: quota get takes no arguments", cli.ErrUsage)
	case sub == "set" && fs.NArg() != 1:
		return fmt.Errorf("%w: quota set takes BYTES, e.g. 8GiB", cli.ErrUsage)
	case sub == "set":
		n, err := parseBytes(fs.Arg(0))
		if err != nil {
			return fmt.Errorf("%w: quota set: %v", cli.ErrUsage, err)
		}
		limit = n
	}
	cl, ctx, cancel, err := cf.Connect()
	if err != nil {
		return err
	}
	defer cancel()
	defer cl.Close()
	if sub == "set" {
		if err := cl.SetQuota(ctx, limit); err != nil {
			return err
		}
		if o.json() {
			return o.print(quotaJSON{QuotaBytes: limit})
		}
		fmt.Fprintf(stdout, "quota set to %s\n", statemachine.FormatBytes(limit))
		return nil
	}
	q, err := cl.Quota(ctx)
	if err != nil {
		return err
	}
	if o.json() {
		return o.print(quotaJSON{UsedBytes: &q.Used, QuotaBytes: q.Limit, Set: &q.Set})
	}
	line := fmt.Sprintf("used %s of %s (%d%%)", statemachine.FormatBytes(q.Used), statemachine.FormatBytes(q.Limit), percent(q.Used, q.Limit))
	if !q.Set {
		line += " (the default; not enforced until every member runs protocol 4)"
	}
	fmt.Fprintln(stdout, line)
	return nil
}

// percent is used/limit in whole percent, rounded down.
func percent(used, limit uint64) uint64 {
	if limit == 0 {
		return 0
	}
	return uint64(float64(used) / float64(limit) * 100)
}

// byteUnits are the suffixes parseBytes takes, lower-cased.
var byteUnits = map[string]uint64{
	"": 1, "b": 1,
	"k": 1 << 10, "ki": 1 << 10, "kib": 1 << 10, "kb": 1e3,
	"m": 1 << 20, "mi": 1 << 20, "mib": 1 << 20, "mb": 1e6,
	"g": 1 << 30, "gi": 1 << 30, "gib": 1 << 30, "gb": 1e9,
	"t": 1 << 40, "ti": 1 << 40, "tib": 1 << 40, "tb": 1e12,
}

// parseBytes reads a size: a number, possibly with a fraction ("1.5GiB"),
// and a unit suffix (byteUnits), spaces allowed between.
func parseBytes(s string) (uint64, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && (t[i] >= '0' && t[i] <= '9' || t[i] == '.') {
		i++
	}
	num, unit := t[:i], strings.ToLower(strings.TrimSpace(t[i:]))
	mult, ok := byteUnits[unit]
	if num == "" || !ok {
		return 0, fmt.Errorf("%q is not a size: want a number of bytes, or one with a unit such as 8GiB, 512MiB, 1G", s)
	}
	var n uint64
	if strings.Contains(num, ".") {
		f, err := strconv.ParseFloat(num, 64)
		if err != nil || f*float64(mult) >= math.MaxUint64 {
			return 0, fmt.Errorf("%q is not a size", s)
		}
		n = uint64(f * float64(mult))
	} else {
		v, err := strconv.ParseUint(num, 10, 64)
		if err != nil || v > math.MaxUint64/mult {
			return 0, fmt.Errorf("%q is not a size (or too large)", s)
		}
		n = v * mult
	}
	if n == 0 {
		return 0, fmt.Errorf("a quota of %q is 0 bytes: nothing could be written", s)
	}
	return n, nil
}
