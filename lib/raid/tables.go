package raid

import "strings"

// table is one of the column tables tw_cli prints: a header line, a line of
// dashes, then rows until a blank line or the next header.
type table struct {
	header []string
	rows   [][]string
}

// col is the index of the header column named name, or -1.
func (t table) col(name string) int {
	for i, h := range t.header {
		if strings.EqualFold(h, name) {
			return i
		}
	}
	return -1
}

// cell is row[i] by header name, "" when the column or the cell is missing
// (rover's controller line stops before its BBU column).
func (t table) cell(row []string, name string) string {
	i := t.col(name)
	if i < 0 || i >= len(row) {
		return ""
	}
	return row[i]
}

func isDashes(s string) bool {
	s = strings.TrimSpace(s)
	return len(s) >= 3 && strings.Trim(s, "-") == ""
}

// splitTables finds every table in tw_cli output. Everything else (the
// "/c0 Model = ..." lines of "show all", "# tw_cli ..." echoes, decoration
// such as "---Speed---") is ignored. tw_cli 9.x separates tables by blank
// lines, older versions (and enclosure listings) start the next header right
// after the last row, so a line followed by dashes always starts a table.
func splitTables(text string) []table {
	lines := strings.Split(strings.ReplaceAll(text, "\r", ""), "\n")
	var tables []table
	var cur *table
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		if strings.TrimSpace(line) == "" || strings.Contains(line, " = ") {
			// a blank line ends a table; so does a "/c0/e1 Vendor = ..."
			// line, which in concatenated output follows the last row
			cur = nil
			continue
		}
		if i+1 < len(lines) && isDashes(lines[i+1]) && !isDashes(line) {
			tables = append(tables, table{header: strings.Fields(line)})
			cur = &tables[len(tables)-1]
			i++ // the dashes
			continue
		}
		if cur != nil && !isDashes(line) {
			cur.rows = append(cur.rows, strings.Fields(line))
		}
	}
	return tables
}
