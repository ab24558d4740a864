// Package icingaconf holds no code: its folder is pbxha's Icinga 2
// configuration (CheckCommands, EventCommand, NotificationCommands,
// templates, apply rules, zone examples), and its test loads that
// configuration into the real icinga2 binary, checks every CheckCommand
// against its plugin's flags and runs Icinga with stand-in plugins to see
// the command lines, the event handler and the notification it produces.
package icingaconf
