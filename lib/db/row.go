package db

import "strings"

// Row is one result row by column name, compared without regard to case
// (servers disagree: MariaDB's Connection_name, MySQL's Channel_Name).
// A nil value is NULL.
type Row map[string]*string

// NewRow pairs column names with values. A name that appears twice keeps
// its first value; values beyond the names are dropped, missing ones are
// NULL.
func NewRow(cols []string, vals []*string) Row {
	r := make(Row, len(cols))
	for i, c := range cols {
		k := strings.ToLower(c)
		if _, dup := r[k]; dup {
			continue
		}
		if i < len(vals) {
			r[k] = vals[i]
		} else {
			r[k] = nil
		}
	}
	return r
}

// Lookup returns the first of names that the row has: its value (""
// when NULL), whether it was NULL, and whether any name was found at all.
func (r Row) Lookup(names ...string) (val string, null, found bool) {
	for _, n := range names {
		v, ok := r[strings.ToLower(n)]
		if !ok {
			continue
		}
		if v == nil {
			return "", true, true
		}
		return *v, false, true
	}
	return "", false, false
}

// String is Lookup's value alone.
func (r Row) String(names ...string) string {
	v, _, _ := r.Lookup(names...)
	return v
}
