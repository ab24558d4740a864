// Package integration holds the tests that run pbxha's built binaries
// inside the lab's namespaces against its real services (testharness/lab).
// They take the lab lock, attach to the running lab and reset it after each
// test; `make test` brings the lab up before them and down after.
package integration
