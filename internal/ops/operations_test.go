package ops_test

import (
	"context"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ecbridge/ecb/internal/ops"
	"github.com/ecbridge/ecb/internal/support"
)

// opConstants parses the package's files for the values of its Op…
// constants: the names of the operations.
func opConstants(tb testing.TB) []string {
	tb.Helper()
	files, err := filepath.Glob("*.go")
	if err != nil {
		tb.Fatal(err)
	}
	var out []string
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), name, nil, 0)
		if err != nil {
			tb.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			vs, ok := n.(*ast.ValueSpec)
			if !ok {
				return true
			}
			for i, name := range vs.Names {
				if !strings.HasPrefix(name.Name, "Op") || i >= len(vs.Values) {
					continue
				}
				if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
					v, _ := strconv.Unquote(lit.Value)
					out = append(out, v)
				}
			}
			return true
		})
	}
	slices.Sort(out)
	return out
}

func TestOperationsListsEveryOperation(t *testing.T) {
	f := newFixture(t)
	if err := f.svc.EnableSupportOn([]support.Workgroup{{Name: "w", Strategy: support.RoundRobin, OfferTimeout: time.Second, MaxChats: 1, Open: true}},
		time.Second, support.NewManualClock(time.Now())); err != nil {
		t.Fatal(err)
	}
	got := f.svc.Operations()
	if want := opConstants(t); !slices.Equal(got, want) {
		t.Fatalf("Operations() %v\nthe Op constants %v", got, want)
	}
	for _, op := range got {
		_, err := f.svc.Call(context.Background(), ops.Caller{}, op, nil)
		if err != nil && strings.Contains(err.Error(), "unknown operation") {
			t.Fatalf("Operations() lists %s, which Call does not know", op)
		}
	}
	if core := newFixture(t).svc.Operations(); slices.Contains(core, ops.OpSupportAsk) || !slices.Contains(core, ops.OpSendMessage) {
		t.Fatalf("without support: %v", core)
	}
}
