//go:build linux

package chaos

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The defaults are the short run `make test` does (one schedule, well
// under three minutes with the build and the checks); `make chaos` passes
// -chaos.schedules 20 -chaos.duration 60s.
var (
	flagSeed      = flag.Int64("chaos.seed", 0, "seed of the first schedule (0: pick one at random); schedule i uses seed+i")
	flagSchedules = flag.Int("chaos.schedules", 1, "number of fault schedules to run, each on a fresh cluster")
	flagDuration  = flag.Duration("chaos.duration", 40*time.Second, "how long each schedule injects faults (it runs on to its whole-cluster crash)")
	flagServe     = flag.String("chaos.serve-flags", "auto", "extra `paxosd serve` flags, space-separated; \"auto\": --log-format json, plus --snapshot-entries 2000 if the binary has that flag")
	flagBound     = flag.Duration("chaos.recovery-bound", 5*time.Second, "after a fault heals a write must succeed within this bound, else it is an anomaly")
	flagDir       = flag.String("chaos.dir", "", "directory for node logs, data and failing histories (default: a new one under $TMPDIR; removed after a run with no anomaly unless -chaos.keep)")
	flagKeep      = flag.Bool("chaos.keep", false, "keep the run's directory even when there is no anomaly")
	flagTTL       = flag.Duration("chaos.session-ttl", 3*time.Second, "TTL of the lock and election workers' sessions (1s..1h)")
	flagCheck     = flag.Duration("chaos.check-timeout", 2*time.Minute, "how long porcupine may take per schedule before the check counts as inconclusive (an anomaly)")
	flagTLS       = flag.String("chaos.tls", "seed", "TLS between the nodes and with every client, certificates made by openssl: on, off, or seed (the schedules with an odd seed)")
)

// TestChaos is the fault-injection suite: see the package comment and
// docs/CHAOS.md.
func TestChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("fault-injection suite: multi-process, skipped with -short")
	}
	seed := *flagSeed
	if seed == 0 {
		seed = 1 + rand.Int64N(1<<31)
	}
	replay := replayLine(seed, *flagSchedules)
	t.Logf("seed %d; replay: %s", seed, replay)

	base := chaosSetup(t, "paxosd-chaos-")
	net, bin, serveFlags, firstFlags, dir := base.Net, base.Bin, base.ServeFlags, base.FirstFlags, base.Dir
	t.Logf("paxosd serve flags: %q (first start: %q); logs, data and failing histories under %s", serveFlags, firstFlags, dir)

	tlsFiles, useTLS := resolveTLS(t, net, dir, *flagTLS)
	cfg := Config{
		Net: net, Bin: bin, ServeFlags: serveFlags, FirstFlags: firstFlags, Dir: dir,
		TLS: tlsFiles, UseTLS: useTLS,
		Duration: *flagDuration, RecoveryBound: *flagBound,
		ElectionTimeoutMax: electionTimeoutMax(serveFlags),
		CheckTimeout:       *flagCheck,
		SessionTTL:         *flagTTL,
		Logf:               t.Logf,
	}
	total := NewStats()
	start := time.Now()
	for i := 0; i < *flagSchedules; i++ {
		sseed := seed + int64(i)
		t0 := time.Now()
		st, err := RunSchedule(cfg, i, sseed)
		total.Add(st)
		if err != nil {
			t.Fatalf("schedule %d (seed %d): %v\n%s\nlogs in %s; replay this schedule: %s", i, sseed, err, st.Summary(), dir, replayLine(sseed, 1))
		}
		t.Logf("schedule %d/%d seed %d (TLS %s) done in %s\n%s", i+1, *flagSchedules, sseed, onOff(tlsFiles != nil && useTLS(sseed)),
			time.Since(t0).Round(time.Second), st.Summary())
		if n := len(st.Anomalies()); n > 0 {
			t.Errorf("schedule %d (seed %d): %d anomalies; replay this schedule: %s", i, sseed, n, replayLine(sseed, 1))
		} else if !*flagKeep {
			os.RemoveAll(ScheduleDir(dir, i, sseed)) // tens of MB each, and nothing to look at
		}
	}
	summary := fmt.Sprintf("CHAOS SUMMARY seed %d: %d schedules x %s in %s, recovery bound %s, iptables %s\n%s",
		seed, *flagSchedules, *flagDuration, time.Since(start).Round(time.Second), *flagBound, net.Backend(), total.Summary())
	t.Log(summary)
	_ = os.WriteFile(filepath.Join(dir, "summary.txt"), []byte(summary+"\n"), 0o644)
	if len(total.Anomalies()) > 0 || t.Failed() {
		t.Errorf("anomalies found; logs, data and histories are kept in %s; replay: %s", dir, replay)
		return
	}
	if !*flagKeep && *flagDir == "" {
		os.RemoveAll(dir)
	}
}

// cleanUpOnSignal removes the network (and with it the nodes, which also
// get SIGKILL when this process dies) if the run is interrupted: t.Cleanup
// does not run then. A run that dies otherwise (a go test -timeout panic)
// leaves namespaces behind, and the next run removes them.
func cleanUpOnSignal(t *testing.T, net *Network) {
	sigc := make(chan os.Signal, 1)
	signal.Notify(sigc, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case sig := <-sigc:
			fmt.Fprintf(os.Stderr, "chaos: %v: removing the network and the nodes\n", sig)
			net.Close()
			os.Exit(1)
		case <-done:
		}
	}()
	t.Cleanup(func() { signal.Stop(sigc); close(done) })
}

// replayLine is the command that runs the same schedules again.
func replayLine(seed int64, schedules int) string {
	args := []string{"go test ./chaos -run 'TestChaos$' -v -count=1", "-chaos.seed", strconv.FormatInt(seed, 10),
		"-chaos.schedules", strconv.Itoa(schedules), "-chaos.duration", flagDuration.String()}
	flag.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "chaos.serve-flags", "chaos.recovery-bound", "chaos.check-timeout", "chaos.session-ttl", "chaos.tls":
			args = append(args, "-"+f.Name, strconv.Quote(f.Value.String()))
		}
	})
	timeout := time.Duration(schedules)*(*flagDuration+3*time.Minute) + 5*time.Minute
	return strings.Join(append(args, "-timeout", timeout.String()), " ")
}

// resolveTLS turns -chaos.tls into the certificates (made once per run,
// with scripts/make-certs.sh) and the choice of schedules that use them.
// "seed" picks the schedules with an odd seed, so that the one schedule
// 'make test' runs is a TLS one every other run, and a replay of a seed
// runs as it ran.
func resolveTLS(t *testing.T, net *Network, dir, mode string) (*TLSFiles, func(int64) bool) {
	t.Helper()
	var use func(int64) bool
	switch mode {
	case "off":
		return nil, nil
	case "on":
		use = func(int64) bool { return true }
	case "seed":
		use = func(seed int64) bool { return seed%2 != 0 }
	default:
		t.Fatalf("-chaos.tls %q: want on, off or seed", mode)
	}
	if _, err := exec.LookPath("openssl"); err != nil {
		if mode == "on" {
			t.Fatal("-chaos.tls on: openssl is not installed (make deps installs it)")
		}
		t.Log("openssl is not installed: every schedule runs without TLS (make deps installs it)")
		return nil, nil
	}
	files, err := MakeTLSFiles("../scripts/make-certs.sh", filepath.Join(dir, "certs"), net)
	if err != nil {
		t.Fatal(err)
	}
	return files, use
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// buildPaxosd builds the binary once per run (without the race detector:
// the nodes should run at their real speed).
// chaosSetup makes what every suite of the package runs on: the network
// of three namespaces (torn down on a signal too), the paxosd binary, the
// serve flags of -chaos.serve, and the run's directory (-chaos.dir, else a
// new one named from prefix). The Config it returns holds those only.
func chaosSetup(t *testing.T, prefix string) Config {
	net := newTestNetwork(t, 3)
	cleanUpOnSignal(t, net)
	bin := buildPaxosd(t)
	serveFlags, firstFlags := resolveServeFlags(t, bin, *flagServe)
	dir := *flagDir
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", prefix); err != nil {
			t.Fatal(err)
		}
	}
	return Config{Net: net, Bin: bin, ServeFlags: serveFlags, FirstFlags: firstFlags, Dir: dir}
}

func buildPaxosd(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "paxosd")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/paxosd/paxosd/cmd/paxosd").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// resolveServeFlags turns -chaos.serve-flags into arguments, and says
// what a node's first start needs: --new-cluster, if the binary has it (a
// node that finds no state refuses to start without it, so that one that
// lost its disk does not vote again with promises it forgot).
func resolveServeFlags(t *testing.T, bin, spec string) (serve, first []string) {
	t.Helper()
	help, _ := exec.Command(bin, "serve", "--help").CombinedOutput()
	if strings.Contains(string(help), "--new-cluster") {
		first = []string{"--new-cluster"}
	}
	if spec != "auto" {
		return strings.Fields(spec), first
	}
	serve = []string{"--log-format", "json"}
	if strings.Contains(string(help), "--snapshot-entries") {
		serve = append(serve, "--snapshot-entries", "2000")
	}
	return serve, first
}

// electionTimeoutMax reads the longest election timeout (twice
// election-ticks ticks) from the serve flags, with paxosd's defaults.
func electionTimeoutMax(flags []string) time.Duration {
	tick, ticks := 10*time.Millisecond, 15
	for i := 0; i < len(flags); i++ {
		name, val, ok := strings.Cut(flags[i], "=")
		if !ok && i+1 < len(flags) {
			val = flags[i+1]
		}
		switch name {
		case "--tick":
			if d, err := time.ParseDuration(val); err == nil {
				tick = d
			}
		case "--election-ticks":
			if n, err := strconv.Atoi(val); err == nil {
				ticks = n
			}
		}
	}
	return 2 * time.Duration(ticks) * tick
}
