//go:build tools

// Package tools pins etcd's server (its root package is the etcd command).
package tools

import _ "go.etcd.io/etcd/server/v3"
