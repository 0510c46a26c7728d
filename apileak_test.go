package nube_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestNoInternalTypesInAPI checks that no public package's API names a type
// from an internal/ package: a program outside this module cannot name such
// a type, so it could not declare a variable of it, fill in such a field or
// implement such an interface. It parses the exported declarations of
// every non-internal library package (tests aside): funcs and methods,
// types, the exported fields and methods of exported structs and
// interfaces, and typed vars and consts. An alias of an internal type is a
// leak too: it is only the internal type under another name.
func TestNoInternalTypesInAPI(t *testing.T) {
	t.Parallel()
	out, err := exec.Command("go", "list", "-json=ImportPath,Name,Dir,GoFiles", "./...").Output()
	if err != nil {
		t.Skipf("go list: %v (the go command is needed to find the packages)", err)
	}
	dec := json.NewDecoder(bytes.NewReader(out))
	seen := 0
	for dec.More() {
		var p struct {
			ImportPath, Name, Dir string
			GoFiles               []string
		}
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		if p.Name == "main" || isInternal(p.ImportPath) {
			continue
		}
		seen++
		for _, f := range p.GoFiles {
			for _, leak := range internalLeaks(t, filepath.Join(p.Dir, f)) {
				t.Errorf("%s: %s", p.ImportPath, leak)
			}
		}
	}
	if seen == 0 {
		t.Fatal("no public packages found")
	}
}

func isInternal(path string) bool {
	return strings.Contains(path+"/", "/internal/")
}

// internalLeaks returns each exported declaration of the file at path
// whose type mentions an internal package, as "file:line: name names pkg.T".
func internalLeaks(t *testing.T, path string) []string {
	t.Helper()
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
	if err != nil {
		t.Fatal(err)
	}
	internal := map[string]string{} // local name → import path
	for _, imp := range f.Imports {
		p, _ := strconv.Unquote(imp.Path.Value)
		if !isInternal(p) {
			continue
		}
		name := filepath.Base(p)
		if imp.Name != nil {
			name = imp.Name.Name
		}
		internal[name] = p
	}
	if len(internal) == 0 {
		return nil
	}
	var leaks []string
	check := func(what string, n ast.Node) {
		if n == nil {
			return
		}
		ast.Inspect(n, func(n ast.Node) bool {
			sel, ok := n.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			if x, ok := sel.X.(*ast.Ident); ok {
				if p, ok := internal[x.Name]; ok {
					leaks = append(leaks, fmt.Sprintf("%s: %s names %s.%s (from %s)",
						fset.Position(sel.Pos()), what, x.Name, sel.Sel.Name, p))
				}
			}
			return true
		})
	}
	// checkType checks an exported type's definition: for a struct or an
	// interface, only its exported fields and methods (and embedded ones).
	checkType := func(name string, typ ast.Expr) {
		var fields *ast.FieldList
		switch tt := typ.(type) {
		case *ast.StructType:
			fields = tt.Fields
		case *ast.InterfaceType:
			fields = tt.Methods
		default:
			check(name, typ)
			return
		}
		for _, fl := range fields.List {
			if len(fl.Names) == 0 {
				check(name+" (embedded)", fl.Type)
				continue
			}
			for _, n := range fl.Names {
				if n.IsExported() {
					check(name+"."+n.Name, fl.Type)
				}
			}
		}
	}
	for _, d := range f.Decls {
		switch d := d.(type) {
		case *ast.FuncDecl:
			if !d.Name.IsExported() {
				continue
			}
			name := d.Name.Name
			if d.Recv != nil {
				recv := receiverName(d.Recv.List[0].Type)
				if !ast.IsExported(recv) {
					continue
				}
				name = recv + "." + name
			}
			check(name, d.Type)
		case *ast.GenDecl:
			for _, s := range d.Specs {
				switch s := s.(type) {
				case *ast.TypeSpec:
					if s.Name.IsExported() {
						if s.TypeParams != nil {
							check(s.Name.Name+" (type parameters)", s.TypeParams)
						}
						checkType(s.Name.Name, s.Type)
					}
				case *ast.ValueSpec:
					for _, n := range s.Names {
						if n.IsExported() {
							check(n.Name, s.Type)
						}
					}
				}
			}
		}
	}
	return leaks
}

// receiverName returns the name of a method's receiver type.
func receiverName(e ast.Expr) string {
	for {
		switch x := e.(type) {
		case *ast.StarExpr:
			e = x.X
		case *ast.IndexExpr:
			e = x.X
		case *ast.IndexListExpr:
			e = x.X
		case *ast.Ident:
			return x.Name
		default:
			return ""
		}
	}
}
