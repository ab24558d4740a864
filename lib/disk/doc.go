// Package disk is check_pbx_disk: space and inode use of a node's mounts.
// It lists real filesystems from mountinfo (through procfs), runs statfs on
// each with its own deadline so one hung NFS mount cannot hide the others,
// and turns the figures into one sub-result per mount with df's arithmetic.
package disk
