package spec

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"text/template"
	"text/template/parse"
)

// QueryVars are the placeholders of a custom query: {{.Release}}, {{.Stage}}, {{.APIID}},
// {{.Window}} (a Prometheus duration such as "30s").
type QueryVars struct {
	Release string
	Stage   string
	APIID   string
	Window  string
}

// placeholders are the fields of QueryVars, the only actions a custom query may contain.
var placeholders = []string{"Release", "Stage", "APIID", "Window"}

// MaxRenderedQuery bounds what a custom query renders to.
const MaxRenderedQuery = 4 * MaxQuery

var errPlaceholdersOnly = errors.New("functions, pipelines, variables, conditions and loops are not allowed")

// ParseQuery parses a custom query: text/template syntax restricted to bare placeholders. A
// function or a loop could make a query of any size ({{printf "%999999999d" 1}}, {{range 1e9}})
// where workflow code validates and renders it.
func ParseQuery(q string) (*template.Template, error) {
	t, err := template.New("query").Option("missingkey=error").Parse(q)
	if err != nil {
		return nil, err
	}
	if t.Tree == nil {
		return t, nil // only text
	}
	for _, n := range t.Tree.Root.Nodes {
		if !placeholderOrText(n) {
			return nil, fmt.Errorf("%s: %w", clip(n.String()), errPlaceholdersOnly)
		}
	}
	return t, nil
}

func placeholderOrText(n parse.Node) bool {
	switch n := n.(type) {
	case *parse.TextNode:
		return true
	case *parse.ActionNode:
		p := n.Pipe
		if p == nil || len(p.Decl) > 0 || len(p.Cmds) != 1 || len(p.Cmds[0].Args) != 1 {
			return false
		}
		f, ok := p.Cmds[0].Args[0].(*parse.FieldNode)
		return ok && len(f.Ident) == 1 && slices.Contains(placeholders, f.Ident[0])
	}
	return false
}

// clip shortens what an error repeats of a query.
func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// RenderQuery renders a parsed custom query with vars, refusing output over MaxRenderedQuery.
func RenderQuery(t *template.Template, vars QueryVars) (string, error) {
	w := &boundedWriter{limit: MaxRenderedQuery}
	if err := t.Execute(w, vars); err != nil {
		return "", err
	}
	return w.b.String(), nil
}

var errQueryTooLong = fmt.Errorf("renders to more than %d bytes", MaxRenderedQuery)

type boundedWriter struct {
	b     strings.Builder
	limit int
}

func (w *boundedWriter) Write(p []byte) (int, error) {
	if w.b.Len()+len(p) > w.limit {
		return 0, errQueryTooLong
	}
	return w.b.Write(p)
}
