// Package probe answers "does this address answer?" quickly and with a hard
// upper bound on time: ICMP echo (github.com/prometheus-community/pro-bing),
// TCP connects, or both. check_pbx_master_alive and check_pbx_net_failover
// decide failovers with it, so a verdict must come in well under a second
// and must not be fooled by a slow or lossy path.
//
// # Timing
//
// Options.Count probes are sent per target; each may take Options.Timeout
// to be answered. The next probe goes out as soon as the previous one is
// answered, or Options.Interval after it, whichever comes first (check_icmp
// paces the same way), so a live target is known after a few round trips
// and a silent one after (Count-1)*Interval + Timeout — Budget — or at
// ctx's end. A probe that fails at once (no route, a refused banner) does
// not hurry the next: a burst of instant local errors must not declare a
// path dead.
//
// Each ICMP probe is one pro-bing Pinger of Count 1. pro-bing's
// Pinger.Timeout is its whole run, not a per-probe wait, and its receive
// goroutine only notices Stop after its current read deadline (an
// exponential backoff up to ~100 ms): Probe takes the reply through OnRecv
// and does not wait for that goroutine, which ends by itself moments
// later. pro-bing logs to the standard logger (stderr) by default; a
// plugin must write nothing there, so its logger is replaced.
//
// # Reachable means one answer
//
// Result.Reachable is Received > 0. A path that loses two of three probes
// is slow or congested, not dead: failing a PBX over on packet loss would
// cut every call for a problem a failover does not fix. Loss is reported
// (Result.Loss) for thresholds and graphs; deadness needs silence.
//
// # Privileges (ICMP)
//
// Linux offers unprivileged ICMP "ping" sockets (SOCK_DGRAM, IPPROTO_ICMP)
// to processes whose gid is in net.ipv4.ping_group_range (per network
// namespace; Debian's default "1 0" allows nobody, some distributions allow
// everyone). Otherwise a raw socket is needed, which needs CAP_NET_RAW
// (`make install` sets it on the binaries, as iputils' ping has it). Probe
// reads the sysctl and the process's gids on each run and picks one; when
// opening the socket is refused (EPERM/EACCES) it tries the other kind once.
//
// # TCP
//
// A TCP probe connects to each of Options.Ports. A refused connection
// counts as an answer: the host's kernel sent the RST, so the host is up
// and the path works even if nothing listens there. Only timeouts and
// unreachable errors (ICMP unreachable, no ARP answer) are losses. The
// handshake itself is completed by the kernel, even for a listener whose
// process is stopped (the connection waits in the accept backlog), so TCP
// says as little about the application as ICMP does. Method Banner is the
// application-level probe: the connection must also deliver its first
// bytes (an SSH or AMI greeting) within Timeout; there a refusal is a loss,
// since nothing is there to greet.
package probe
