// Package debpkg holds the install test of the Debian package (make deb):
// it builds the .deb, installs it with dpkg on this machine, checks what
// landed where, runs installed plugins as the nagios user, validates the
// installed Icinga 2 configuration, and purges it. It changes the machine
// (as root), so it lives with the lab's packages, which `make labtest`
// runs one at a time.
package debpkg
