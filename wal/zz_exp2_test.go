package wal

import (
	"os"
	"path/filepath"
	"testing"
)

func TestExpMarker(t *testing.T) {
	for name, f := range map[string]func(dir string){
		"marker+logs": func(dir string) {
			os.Remove(newest(t, dir, "marker.manifest.*"))
			m, _ := filepath.Glob(filepath.Join(dir, "*.log")); for _, x := range m { os.Remove(x) }
		},
		"marker+logs+current": func(dir string) {
			os.Remove(newest(t, dir, "marker.manifest.*"))
			os.Remove(filepath.Join(dir, "CURRENT"))
			m, _ := filepath.Glob(filepath.Join(dir, "*.log")); for _, x := range m { os.Remove(x) }
		},
		"only sst": func(dir string) {
			es, _ := os.ReadDir(dir)
			for _, e := range es { if filepath.Ext(e.Name()) != ".sst" { os.Remove(filepath.Join(dir, e.Name())) } }
		},
	} {
		dir := realStore(t)
		f(dir)
		s, err := Open(dir, testID, Options{})
		if err != nil { t.Logf("%s: ERR %v", name, err); continue }
		st, err := s.Load()
		t.Logf("%s: OPEN new=%v %s %v", name, s.IsNew(), describeState(st), err)
		s.Close()
	}
}
