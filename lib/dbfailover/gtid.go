package dbfailover

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// GTID is one MariaDB global transaction id, domain-server-sequence.
type GTID struct {
	Domain, Server uint32
	Seq            uint64
}

func (g GTID) String() string { return fmt.Sprintf("%d-%d-%d", g.Domain, g.Server, g.Seq) }

// ParseMariaDBGTIDs parses a MariaDB GTID list as @@gtid_binlog_pos,
// @@gtid_slave_pos and @@gtid_current_pos show it: "0-1-42,1-2-7"; "" is
// the empty list. A domain may appear once only.
func ParseMariaDBGTIDs(s string) ([]GTID, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	var out []GTID
	seen := map[uint32]bool{}
	for _, part := range strings.Split(s, ",") {
		f := strings.Split(strings.TrimSpace(part), "-")
		if len(f) != 3 {
			return nil, fmt.Errorf("GTID %q: want domain-server-sequence", part)
		}
		d, err1 := strconv.ParseUint(f[0], 10, 32)
		sv, err2 := strconv.ParseUint(f[1], 10, 32)
		sq, err3 := strconv.ParseUint(f[2], 10, 64)
		if err1 != nil || err2 != nil || err3 != nil {
			return nil, fmt.Errorf("GTID %q: not three unsigned numbers", part)
		}
		if seen[uint32(d)] {
			return nil, fmt.Errorf("GTID list %q: domain %d twice", s, d)
		}
		seen[uint32(d)] = true
		out = append(out, GTID{uint32(d), uint32(sv), sq})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Domain < out[j].Domain })
	return out, nil
}

// ParseMariaDBGTIDState parses @@gtid_binlog_state: like a position, but
// one entry per domain AND server (the last GTID each server logged). Empty
// parts are skipped, so joined lists ("a," + "") parse.
func ParseMariaDBGTIDState(s string) ([]GTID, error) {
	var out []GTID
	for _, part := range strings.Split(s, ",") {
		if strings.TrimSpace(part) == "" {
			continue
		}
		g, err := ParseMariaDBGTIDs(part)
		if err != nil {
			return nil, err
		}
		out = append(out, g...)
	}
	return out, nil
}

// Errant is a run of transactions this node logged that the new master
// lacks: server Last.Server's GTIDs in domain Last.Domain after MasterSeq
// (0 and !MasterHas when the master has none of that server's) up to Last.
type Errant struct {
	Last      GTID
	MasterSeq uint64
	MasterHas bool
}

// String names the run: this server's GTIDs in the domain after the
// master's last one of it (sequence numbers between may belong to other
// servers), up to Last.
func (e Errant) String() string {
	if !e.MasterHas {
		return "up to " + e.Last.String()
	}
	if e.MasterSeq+1 == e.Last.Seq {
		return e.Last.String()
	}
	return "after " + GTID{e.Last.Domain, e.Last.Server, e.MasterSeq}.String() + " up to " + e.Last.String()
}

// MariaDBErrant returns what of local (this node's gtid_binlog_pos) the new
// master's state (its gtid_binlog_state plus gtid_slave_pos) does not cover.
// A GTID is covered when the master has a GTID of the same domain and
// server with a sequence at least as high: sequence numbers of one server
// in one domain only grow. Replicating over an uncovered GTID would leave
// its transactions only here (or stop the replica), so Rejoin refuses.
func MariaDBErrant(local, state []GTID) []Errant {
	var out []Errant
	for _, g := range local {
		e := Errant{Last: g}
		for _, h := range state {
			if h.Domain == g.Domain && h.Server == g.Server && (!e.MasterHas || h.Seq > e.MasterSeq) {
				e.MasterSeq, e.MasterHas = h.Seq, true
			}
		}
		if !e.MasterHas || e.MasterSeq < g.Seq {
			out = append(out, e)
		}
	}
	return out
}

// ErrantMessageMariaDB tells the admin what was found and what to do.
func ErrantMessageMariaDB(self, master string, errant []Errant, localPos string) string {
	s := make([]string, len(errant))
	for i, e := range errant {
		s[i] = e.String()
	}
	return fmt.Sprintf("%s has transactions %s never got: GTIDs %s (its gtid_binlog_pos %s); nothing was changed and %s stays read only. "+
		"Inspect them with mariadb-binlog --start-position/--stop-position on %s's binlogs; "+
		"either apply what must be kept on %s by hand, or accept losing them, back up %s and rebuild it from %s; then run rejoin again",
		self, master, strings.Join(s, ", "), orNone(localPos), self, self, master, self, master)
}

// ErrantMessageMySQL is the same for MySQL's GTID sets.
func ErrantMessageMySQL(self, master, errant string) string {
	return fmt.Sprintf("%s has transactions %s never got: GTID set %s; nothing was changed and %s stays read only. "+
		"Inspect them with mysqlbinlog --include-gtids='%s' on %s; either apply them on %s, or accept losing them, back up %s and rebuild it from %s; then run rejoin again",
		self, master, errant, self, errant, self, master, self, master)
}
