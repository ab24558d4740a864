// Package cluster holds a node's view of the cluster: its state file (role,
// epoch, since, reason), written atomically, and the --role gate every check
// uses to decide whether it applies on this node.
package cluster
