// Package threshold parses and evaluates Nagios/monitoring-plugins ranges
// (https://www.monitoring-plugins.org/doc/guidelines.html#THRESHOLDFORMAT):
// "10", "10:", "~:10", "10:20", "@10:20", "@~:3", with decimals and
// negatives and inclusive endpoints.
//
// It is written here rather than taken from go-nagios because go-nagios'
// range code mis-parses "@~:N" and its evaluation stops at the first breach;
// a check that reports many mounts or arrays needs every one evaluated.
package threshold
