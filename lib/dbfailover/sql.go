package dbfailover

import (
	"strconv"
	"strings"
)

// quoteMySQL makes s a MySQL/MariaDB string literal. Backslash is escaped
// too, since the server treats it as an escape unless NO_BACKSLASH_ESCAPES.
func quoteMySQL(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `'`, `\'`, "\x00", `\0`, "\n", `\n`, "\r", `\r`, "\x1a", `\Z`)
	return "'" + r.Replace(s) + "'"
}

// changeMasterSQL is the CHANGE MASTER/REPLICATION SOURCE statement. It holds
// the replication password: never log it.
func changeMasterSQL(mariadb bool, host string, port int, user, password string) string {
	if mariadb {
		return "CHANGE MASTER TO MASTER_HOST=" + quoteMySQL(host) + ", MASTER_PORT=" + itoa(port) +
			", MASTER_USER=" + quoteMySQL(user) + ", MASTER_PASSWORD=" + quoteMySQL(password) +
			", MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1"
	}
	return "CHANGE REPLICATION SOURCE TO SOURCE_HOST=" + quoteMySQL(host) + ", SOURCE_PORT=" + itoa(port) +
		", SOURCE_USER=" + quoteMySQL(user) + ", SOURCE_PASSWORD=" + quoteMySQL(password) +
		", SOURCE_AUTO_POSITION=1, SOURCE_CONNECT_RETRY=1"
}

// pgConnValue quotes a libpq keyword/value connection string value.
func pgConnValue(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// primaryConninfo is primary_conninfo without a password: the password goes
// to a passfile the walreceiver reads (passfile=...).
func primaryConninfo(host string, port int, user, passfile, appName string) string {
	s := "host=" + pgConnValue(host) + " port=" + itoa(port) + " user=" + pgConnValue(user) +
		" application_name=" + pgConnValue(appName) + " connect_timeout=5"
	if passfile != "" {
		s += " passfile=" + pgConnValue(passfile)
	}
	return s
}

// pgpassEscape escapes a .pgpass field (\ and :).
func pgpassEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `:`, `\:`).Replace(s)
}

// autoConfLine is one postgresql.auto.conf setting; single quotes doubled.
func autoConfLine(key, val string) string {
	return key + " = '" + strings.ReplaceAll(val, "'", "''") + "'"
}

// setAutoConf replaces (or appends) key in postgresql.auto.conf's text.
func setAutoConf(text, key, val string) string {
	var out []string
	for _, l := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
		t := strings.TrimSpace(l)
		if t == "" {
			continue
		}
		if k, _, ok := strings.Cut(t, "="); ok && strings.TrimSpace(k) == key {
			continue
		}
		out = append(out, l)
	}
	out = append(out, autoConfLine(key, val))
	return strings.Join(out, "\n") + "\n"
}

// dropAutoConf removes key from postgresql.auto.conf's text.
func dropAutoConf(text, key string) string {
	var out []string
	for _, l := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
		if k, _, ok := strings.Cut(strings.TrimSpace(l), "="); ok && strings.TrimSpace(k) == key {
			continue
		}
		if strings.TrimSpace(l) != "" {
			out = append(out, l)
		}
	}
	if len(out) == 0 {
		return ""
	}
	return strings.Join(out, "\n") + "\n"
}

func itoa(i int) string { return strconv.Itoa(i) }
