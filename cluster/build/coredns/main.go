// CoreDNS with only the plugins the cluster's Corefile (cluster/manifests/coredns.yaml) uses,
// assembled the way CoreDNS documents builds "with external golang source code"
// (coredns.io/2017/07/25/compile-time-enabling-or-disabling-plugins). The full binary compiles
// every plugin's cloud SDK (Azure, Route 53, Cloud DNS, Datadog tracing, ...): several times
// the build time for nothing the node runs.
package main

import (
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/loop"
	_ "github.com/coredns/coredns/plugin/metrics"
	_ "github.com/coredns/coredns/plugin/ready"
	_ "github.com/coredns/coredns/plugin/reload"
)

// The order plugins run in, a subsequence of CoreDNS's own core/dnsserver/zdirectives.go
// (generated from its plugin.cfg): a Corefile's order does not matter, this list's does.
// prometheus is not in the Corefile, but the kubernetes plugin compiles it in anyway and the
// Deployment names its port (9153), so enabling it takes a Corefile line, not a rebuild.
var directives = []string{
	"reload",
	"ready",
	"health",
	"prometheus",
	"errors",
	"cache",
	"kubernetes",
	"loop",
}

func init() {
	dnsserver.Directives = directives
}

func main() {
	coremain.Run()
}
