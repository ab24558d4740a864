// Package raid is check_pbx_raid: the health of the RAID arrays under a PBX
// node, Linux md (/proc/mdstat and /sys/block/md*/md) and 3ware controllers
// (tw_cli).
//
// It is a failover-class check: a HARD CRITICAL makes the event handler move
// every call to the other node. CRITICAL therefore means that an array can
// no longer be trusted to serve, not that something is imperfect. Reading
// (ReadFile, tw_cli through a process group killed at the deadline) is split
// from parsing (ParseMDStat, ParseTWShow, ParseTWInfo, ParseTWEnclosure:
// pure, fuzzed) and from the policy (EvaluateMD, EvaluateTW: pure,
// table-tested).
//
// # Sources
//
// --source auto checks md when the mdstat file exists and 3ware when tw_cli
// is found; a source that is absent, or has no array, is noted in the long
// output. --source md, 3ware or md,3ware require each source: a missing file,
// tool or controller is UNKNOWN. When no array is found at all the state is
// --no-arrays (default UNKNOWN: nothing was checked).
//
// # md policy
//
//	CRITICAL  array inactive (not an IMSM/DDF container), broken, raid0/linear
//	          with a failed member, or degraded with no recovery, resync or
//	          reshape running or waiting
//	WARNING   recovery, resync or reshape running or delayed/pending; a failed
//	          (F) device on an array that is still complete (a failed spare)
//	OK        all members up; a check or repair (scrub) running or delayed;
//	          containers (they hold no data; their volumes are arrays)
//
// mdstat prints "resync=DELAYED" for every kind of waiting sync and
// "resync" for a repair; /sys/block/mdN/md/sync_action tells them apart.
// Without sysfs a waiting sync on a degraded array is taken for a recovery,
// one on a complete array that shares disks with an array running a check
// for that same scheduled check, and any other for a resync; the long output
// says when such a guess was made. The sysfs degraded count is used when it
// is larger than mdstat's. mismatch_cnt is reported, never alarmed on: raid1
// and raid10 count in-flight writes of swap and O_DIRECT as mismatches.
//
// prometheus/procfs parses mdstat (levels, [n/m], member flags, sync
// progress); its model lacks the member status string ("U_U"),
// resync=DELAYED and resync=PENDING (both read as "resyncing"), containers
// ("super external:imsm") and the read-only flags, which ParseMDStat reads
// itself. procfs exports no byte parser, so the text goes through a private
// temporary directory. procfs's sysfs Mdraids is not used: it has no
// mismatch_cnt and fails as a whole on any unreadable file.
//
// # 3ware policy
//
//	CRITICAL  a unit DEGRADED (no rebuild running) or INOPERABLE
//	WARNING   a unit REBUILDING, INITIALIZING, MIGRATING (or paused) or in
//	          RECOVERY; a spare unit not OK; a drive not OK, NOT-PRESENT or
//	          VERIFYING; a BBU fault (the controller then writes through: slower,
//	          still serving); an enclosure fault or alarm
//	OK        units OK, VERIFYING or VERIFY-PAUSED (verify is routine); a BBU
//	          testing or charging, or without a capacity test yet (said in the
//	          summary)
//	UNKNOWN   a unit state this check does not know; tw_cli failing, or printing
//	          no unit table
//
// Per controller `tw_cli info cN` prints units, drives and BBU at once; the
// `unitstatus`, `drivestatus` and `bbustatus` sub-commands fill what it did
// not print. Enclosures listed by `tw_cli show` are read with
// `/cN/eM show all`.
//
// # Output
//
// One sub-result per array, unit, spare, drive outside a unit that is not
// OK, BBU and enclosure: "md0(raid1):UU", "md0(raid1):_U recovery 3.6%",
// "c0/u0(RAID-1):REBUILDING 98% (p0:DEGRADED)", "c0/bbu:OK", "c0/e0:OK".
//
// # Perfdata
//
//	md_degraded            md arrays missing a member (recovering or not)
//	md_failed_members      md members marked (F)
//	<mdN>_rebuild          % of a running recovery, resync or reshape
//	<mdN>_check            % of a running check or repair
//	<mdN>_mismatch_cnt     sysfs mismatch_cnt, when readable
//	tw_degraded            3ware units without full redundancy (DEGRADED,
//	                       INOPERABLE, REBUILDING, REBUILD-PAUSED)
//	tw_drives_not_ok       3ware drives not OK, NOT-PRESENT or VERIFYING
//	<cN>_<uN>_rebuild      % of a 3ware rebuild, initialisation or migration
//	<cN>_<uN>_verify       % of a 3ware verify
package raid
