//go:build tools

// Package tools pins the control-plane commands in go.mod; scripts/control-plane.sh builds them.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
)
