package ecbserver

import (
	"go/ast"
	"go/doc"
	"go/parser"
	"go/token"
	"os"
	"strings"
	"testing"
)

// TestPackageDocNamesEveryInterface: the package comment, which an
// integrator reads first, links every interface a backend may implement.
func TestPackageDocNamesEveryInterface(t *testing.T) {
	fset := token.NewFileSet()
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	var files []*ast.File
	for _, e := range entries {
		if name := e.Name(); strings.HasSuffix(name, ".go") && !strings.HasSuffix(name, "_test.go") {
			f, err := parser.ParseFile(fset, name, nil, parser.ParseComments)
			if err != nil {
				t.Fatal(err)
			}
			files = append(files, f)
		}
	}
	p, err := doc.NewFromFiles(fset, files, "github.com/ecbridge/ecb/sdk/ecbserver")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, typ := range p.Types {
		spec := typ.Decl.Specs[0].(*ast.TypeSpec)
		if _, ok := spec.Type.(*ast.InterfaceType); !ok {
			continue
		}
		n++
		if !strings.Contains(p.Doc, "["+typ.Name+"]") {
			t.Errorf("the package comment (doc.go) does not name [%s]", typ.Name)
		}
	}
	if n < 4 {
		t.Fatalf("found %d interfaces, expected Backend and the optional ones", n)
	}
}
