package herald

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// pattern is a subscription path in hapi's syntax: literal segments, "{name}" parameters,
// "{name?}" optional last parameters, "{name*}" for any number of last segments, "{name*2}"
// for exactly two segments, and parameters mixed with literals in a segment
// ("{file}.{ext}", "v{version}").
type pattern struct {
	raw      string
	segments []segment
	params   bool // it has parameters: publications go only to sockets on the exact path
}

type segmentKind int

// Segment kinds, most specific first: a path matching several patterns picks the one whose
// kinds, segment by segment, rank first.
const (
	segLiteral segmentKind = iota
	segMixed
	segParam
	segOptional
	segCount
	segWildcard
)

type segment struct {
	kind    segmentKind
	literal string
	name    string
	count   int            // segCount
	re      *regexp.Regexp // segMixed
	names   []string       // segMixed
}

var paramRE = regexp.MustCompile(`\{(\w+)(\?|\*\d*)?\}`)

// parsePattern parses a subscription path.
func parsePattern(path string) (*pattern, error) {
	if path == "" || path[0] != '/' {
		return nil, fmt.Errorf("herald: subscription path %q must start with /", path)
	}
	p := &pattern{raw: path}
	parts := strings.Split(path[1:], "/")
	for i, part := range parts {
		last := i == len(parts)-1
		locs := paramRE.FindAllStringSubmatchIndex(part, -1)
		switch {
		case len(locs) == 0:
			if strings.ContainsAny(part, "{}") {
				return nil, fmt.Errorf("herald: subscription path %q: bad parameter in %q", path, part)
			}
			p.segments = append(p.segments, segment{kind: segLiteral, literal: part})
			continue
		case len(locs) == 1 && locs[0][0] == 0 && locs[0][1] == len(part):
			name := part[locs[0][2]:locs[0][3]]
			mod := ""
			if locs[0][4] >= 0 {
				mod = part[locs[0][4]:locs[0][5]]
			}
			p.params = true
			switch {
			case mod == "":
				p.segments = append(p.segments, segment{kind: segParam, name: name})
			case mod == "?":
				if !last {
					return nil, fmt.Errorf("herald: subscription path %q: optional parameter %s must be last", path, name)
				}
				p.segments = append(p.segments, segment{kind: segOptional, name: name})
			case mod == "*":
				if !last {
					return nil, fmt.Errorf("herald: subscription path %q: wildcard parameter %s must be last", path, name)
				}
				p.segments = append(p.segments, segment{kind: segWildcard, name: name})
			default:
				n, err := strconv.Atoi(mod[1:])
				if err != nil || n < 1 {
					return nil, fmt.Errorf("herald: subscription path %q: bad segment count in %s", path, part)
				}
				p.segments = append(p.segments, segment{kind: segCount, name: name, count: n})
			}
		default:
			// Parameters mixed with literals in one segment.
			var re strings.Builder
			var names []string
			re.WriteString("^")
			prev := 0
			for _, l := range locs {
				if l[4] >= 0 {
					return nil, fmt.Errorf("herald: subscription path %q: %q cannot mix optional or wildcard parameters with text", path, part)
				}
				re.WriteString(regexp.QuoteMeta(part[prev:l[0]]))
				re.WriteString("(.+?)")
				names = append(names, part[l[2]:l[3]])
				prev = l[1]
			}
			re.WriteString(regexp.QuoteMeta(part[prev:]) + "$")
			p.params = true
			p.segments = append(p.segments, segment{kind: segMixed, re: regexp.MustCompile(re.String()), names: names})
		}
	}
	return p, nil
}

// match matches a concrete path, returning its parameters.
func (p *pattern) match(path string) (map[string]string, bool) {
	if path == "" || path[0] != '/' {
		return nil, false
	}
	parts := strings.Split(path[1:], "/")
	params := map[string]string{}
	i := 0
	for _, seg := range p.segments {
		switch seg.kind {
		case segLiteral:
			if i >= len(parts) || parts[i] != seg.literal {
				return nil, false
			}
			i++
		case segParam:
			if i >= len(parts) || parts[i] == "" {
				return nil, false
			}
			params[seg.name] = parts[i]
			i++
		case segOptional:
			if i < len(parts) {
				if parts[i] != "" {
					params[seg.name] = parts[i]
				}
				i++
			}
		case segWildcard:
			if i < len(parts) {
				if rest := strings.Join(parts[i:], "/"); rest != "" {
					params[seg.name] = rest
				}
				i = len(parts)
			}
		case segCount:
			if i+seg.count > len(parts) {
				return nil, false
			}
			for _, x := range parts[i : i+seg.count] {
				if x == "" {
					return nil, false
				}
			}
			params[seg.name] = strings.Join(parts[i:i+seg.count], "/")
			i += seg.count
		case segMixed:
			if i >= len(parts) {
				return nil, false
			}
			m := seg.re.FindStringSubmatch(parts[i])
			if m == nil {
				return nil, false
			}
			for j, name := range seg.names {
				params[name] = m[j+1]
			}
			i++
		}
	}
	if i != len(parts) {
		return nil, false
	}
	return params, true
}

// moreSpecific reports whether p should win over q when both match a path.
func (p *pattern) moreSpecific(q *pattern) bool {
	for i := 0; i < len(p.segments) && i < len(q.segments); i++ {
		if a, b := p.segments[i].kind, q.segments[i].kind; a != b {
			return a < b
		}
	}
	return len(p.segments) > len(q.segments)
}
