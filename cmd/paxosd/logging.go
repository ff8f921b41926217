package main

import (
	"fmt"
	"io"
	"time"

	"github.com/rs/zerolog"
	"github.com/spf13/pflag"

	"github.com/paxosd/paxosd/internal/cli"
)

// consoleTimeFormat is the console log's timestamp.
const consoleTimeFormat = "2006-01-02 15:04:05.000"

type logFlags struct {
	level  string
	format string
}

// register adds the flags; level is --log-level's default (shown by --help).
func (l *logFlags) register(fs *pflag.FlagSet, level string) {
	fs.StringVar(&l.level, "log-level", level, "log level: debug, info, warn, error")
	fs.StringVar(&l.format, "log-format", "console", "log format: console (human) or json")
}

func (l *logFlags) logger(w io.Writer) (zerolog.Logger, error) {
	lvl, err := zerolog.ParseLevel(l.level)
	if err != nil || l.level == "" {
		return zerolog.Logger{}, fmt.Errorf("%w: --log-level %q: want debug, info, warn or error", cli.ErrUsage, l.level)
	}
	switch l.format {
	case "json":
	case "console":
		// The date too: a node runs for months, and its log is read
		// days later.
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: consoleTimeFormat, NoColor: !cli.IsTerminal(w)}
	default:
		return zerolog.Logger{}, fmt.Errorf("%w: --log-format %q: want console or json", cli.ErrUsage, l.format)
	}
	zerolog.TimeFieldFormat = time.RFC3339Nano
	// Duration fields are milliseconds, and their names end in _ms.
	zerolog.DurationFieldUnit = time.Millisecond
	return zerolog.New(w).Level(lvl).With().Timestamp().Logger(), nil
}
