package cloudwatchemu

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
)

// Metric math: the test bed's CloudWatch evaluates arithmetic between the ids of other queries
// and numbers (+, -, *, / and parentheses), as CloudWatch's metric math does: an operation
// between two time series keeps the timestamps both have; one between a series and a number
// applies to every value. A division by zero leaves no datapoint. Functions (SUM, FILL, SEARCH,
// METRICS, …) are refused with InvalidParameterValue rather than evaluated approximately.
// https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/using-metric-math.html

type evaluator struct {
	s    *Server
	req  request
	byID map[string]*dataQuery
	done map[string]series
	busy map[string]bool
}

func (ev *evaluator) query(id string) (series, error) {
	if s, ok := ev.done[id]; ok {
		return s, nil
	}
	q := ev.byID[id]
	if ev.busy[id] {
		return nil, invalidValue("Error in expression %s: it refers to itself (through %s).", q.path+"Expression", id)
	}
	ev.busy[id] = true
	defer delete(ev.busy, id)
	var out series
	if q.stat != nil {
		out = ev.s.statSeries(q.stat, ev.req.start, ev.req.end)
	} else {
		v, err := ev.expression(q)
		if err != nil {
			return nil, err
		}
		if v.series == nil {
			return nil, invalidValue("Error in expression %s: %q refers to no metric; an expression must use at least one other query's id.", q.path+"Expression", q.expression)
		}
		out = v.series
	}
	ev.done[id] = out
	return out, nil
}

func (ev *evaluator) expression(q *dataQuery) (value, error) {
	p := &parser{src: q.expression, ev: ev}
	p.next()
	v, err := p.sum()
	if err == nil && p.tok.kind != tokEOF {
		err = fmt.Errorf("unexpected %q at position %d", p.tok.text, p.tok.pos)
	}
	if err != nil {
		var ae *apiError
		if asAPIError(err, &ae) {
			return value{}, err
		}
		return value{}, invalidValue("Error in expression %s (%q): %v.", q.path+"Expression", q.expression, err)
	}
	return v, nil
}

func asAPIError(err error, target **apiError) bool {
	ae, ok := err.(*apiError)
	if ok {
		*target = ae
	}
	return ok
}

// value is a number or a time series.
type value struct {
	number float64
	series series
}

type tokKind int

const (
	tokEOF tokKind = iota
	tokNumber
	tokIdent
	tokOp
)

type token struct {
	kind tokKind
	text string
	pos  int
}

type parser struct {
	src string
	pos int
	tok token
	ev  *evaluator
}

func (p *parser) next() {
	for p.pos < len(p.src) && p.src[p.pos] == ' ' {
		p.pos++
	}
	start := p.pos
	if p.pos >= len(p.src) {
		p.tok = token{tokEOF, "", start}
		return
	}
	c := rune(p.src[p.pos])
	switch {
	case unicode.IsDigit(c) || c == '.':
		for p.pos < len(p.src) && (unicode.IsDigit(rune(p.src[p.pos])) || p.src[p.pos] == '.') {
			p.pos++
		}
		p.tok = token{tokNumber, p.src[start:p.pos], start}
	case unicode.IsLetter(c) || c == '_':
		for p.pos < len(p.src) && (unicode.IsLetter(rune(p.src[p.pos])) || unicode.IsDigit(rune(p.src[p.pos])) || p.src[p.pos] == '_') {
			p.pos++
		}
		p.tok = token{tokIdent, p.src[start:p.pos], start}
	default:
		p.pos++
		p.tok = token{tokOp, string(c), start}
	}
}

// sum := product (("+" | "-") product)*
func (p *parser) sum() (value, error) {
	v, err := p.product()
	for err == nil && p.tok.kind == tokOp && (p.tok.text == "+" || p.tok.text == "-") {
		op := p.tok.text
		p.next()
		var r value
		if r, err = p.product(); err == nil {
			v = apply(op, v, r)
		}
	}
	return v, err
}

// product := unary (("*" | "/") unary)*
func (p *parser) product() (value, error) {
	v, err := p.unary()
	for err == nil && p.tok.kind == tokOp && (p.tok.text == "*" || p.tok.text == "/") {
		op := p.tok.text
		p.next()
		var r value
		if r, err = p.unary(); err == nil {
			v = apply(op, v, r)
		}
	}
	return v, err
}

// unary := "-" unary | primary
func (p *parser) unary() (value, error) {
	if p.tok.kind == tokOp && p.tok.text == "-" {
		p.next()
		v, err := p.unary()
		return apply("*", value{number: -1}, v), err
	}
	return p.primary()
}

// primary := number | id | "(" sum ")"
func (p *parser) primary() (value, error) {
	t := p.tok
	switch {
	case t.kind == tokNumber:
		n, err := strconv.ParseFloat(t.text, 64)
		if err != nil {
			return value{}, fmt.Errorf("%q is not a number", t.text)
		}
		p.next()
		return value{number: n}, nil
	case t.kind == tokIdent:
		p.next()
		if p.tok.kind == tokOp && p.tok.text == "(" {
			return value{}, fmt.Errorf("function %s is not supported by the test bed's CloudWatch (only arithmetic between query ids and numbers is)", strings.ToUpper(t.text))
		}
		if _, ok := p.ev.byID[t.text]; !ok {
			return value{}, fmt.Errorf("%q is not the id of a query in this request", t.text)
		}
		s, err := p.ev.query(t.text)
		if err != nil {
			return value{}, err
		}
		return value{series: s}, nil
	case t.kind == tokOp && t.text == "(":
		p.next()
		v, err := p.sum()
		if err != nil {
			return v, err
		}
		if p.tok.kind != tokOp || p.tok.text != ")" {
			return value{}, fmt.Errorf("missing ) at position %d", p.tok.pos)
		}
		p.next()
		return v, nil
	case t.kind == tokEOF:
		return value{}, fmt.Errorf("unexpected end of expression")
	default:
		return value{}, fmt.Errorf("unexpected %q at position %d", t.text, t.pos)
	}
}

func apply(op string, a, b value) value {
	f := func(x, y float64) (float64, bool) {
		switch op {
		case "+":
			return x + y, true
		case "-":
			return x - y, true
		case "*":
			return x * y, true
		default:
			return x / y, y != 0
		}
	}
	switch {
	case a.series == nil && b.series == nil:
		r, _ := f(a.number, b.number)
		return value{number: r}
	case a.series != nil && b.series != nil:
		out := series{}
		for t, x := range a.series {
			if y, ok := b.series[t]; ok {
				if r, ok := f(x, y); ok {
					out[t] = r
				}
			}
		}
		return value{series: out}
	default:
		out := series{}
		for t, x := range a.series {
			if r, ok := f(x, b.number); ok {
				out[t] = r
			}
		}
		for t, y := range b.series {
			if r, ok := f(a.number, y); ok {
				out[t] = r
			}
		}
		return value{series: out}
	}
}
