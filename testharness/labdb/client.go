package labdb

import (
	"fmt"
	"strconv"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"

	"pbxha/testharness/netnsdial"
)

// MySQLConfig returns a driver config for the application user on node's
// MariaDB, database pbx, over TCP to the node's cluster address, dialled
// from inside the node's namespace (so the login comes from an allowed
// address). Open it with mysql.NewConnector and sql.OpenDB.
func (c *Cluster) MySQLConfig(node string) (*mysql.Config, error) {
	s, err := c.Server(node, MariaDB)
	if err != nil {
		return nil, err
	}
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd = c.st.Creds.AppUser, c.st.Creds.AppPassword
	cfg.Net, cfg.Addr, cfg.DBName = "tcp", s.Addr, Database
	cfg.Timeout, cfg.ReadTimeout, cfg.WriteTimeout = 3*time.Second, 10*time.Second, 10*time.Second
	cfg.DialFunc = netnsdial.Dialer(s.Netns)
	return cfg, nil
}

// PGConfig is MySQLConfig for PostgreSQL: the application user, database
// pbx, TCP to the node's cluster address from inside its namespace.
func (c *Cluster) PGConfig(node string) (*pgx.ConnConfig, error) {
	s, err := c.Server(node, PostgreSQL)
	if err != nil {
		return nil, err
	}
	i, _ := c.nodeIndex(node)
	// Keyword/value form needs no escaping: names and passwords are
	// validated to plain characters.
	cfg, err := pgx.ParseConfig(fmt.Sprintf("host=%s port=%s user=%s password=%s dbname=%s sslmode=disable connect_timeout=3",
		c.st.Nodes[i].ClusterIP, strconv.Itoa(PostgreSQLPort), c.st.Creds.AppUser, c.st.Creds.AppPassword, Database))
	if err != nil {
		return nil, err
	}
	cfg.DialFunc = netnsdial.Dialer(s.Netns)
	return cfg, nil
}
