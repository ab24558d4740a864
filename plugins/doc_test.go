// Package plugins_test runs every built check binary as Icinga does and
// asserts what every plugin promises: -h and -V exit 3, a bad flag or range
// is UNKNOWN with the flag named, the first line has the standard shape, and
// --role skips on a node of another role. Binaries are found by glob, so a
// new plugin is covered without editing this file.
package plugins_test
