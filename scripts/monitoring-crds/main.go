// Package main only anchors the Prometheus Operator's API types in this module, so that
// controller-gen (a `tool` of this module) can load them with their dependencies.
package main

import _ "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"

func main() {}
