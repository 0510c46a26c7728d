package api

import (
	"html/template"
	"net/http"

	"github.com/nubecloud/nube"
)

// The status page is plain server-rendered HTML that reloads itself: the
// dashboard proper comes later; this shows a person that the node runs and
// whom it is connected to.
var page = template.Must(template.New("status").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="refresh" content="5">
<title>nube node {{.Status.ID}}</title>
<style>
body{font:15px/1.4 system-ui,sans-serif;margin:2em auto;max-width:60em;padding:0 1em;color:#222}
h1{font-size:1.4em} code{font-size:.9em;word-break:break-all}
table{border-collapse:collapse;width:100%} td,th{text-align:left;padding:.3em .6em;border-bottom:1px solid #ddd;vertical-align:top}
.k{color:#666;width:12em}
</style></head><body>
<h1>nube node</h1>
<table>
<tr><td class="k">peer ID</td><td><code>{{.Status.ID}}</code></td></tr>
<tr><td class="k">user</td><td><code>{{.Status.UserID}}</code></td></tr>
<tr><td class="k">version</td><td>{{.Status.Version}}</td></tr>
<tr><td class="k">up for</td><td>{{.Status.Uptime}}</td></tr>
<tr><td class="k">reachability</td><td>{{.Status.Reachability}}{{if .Status.RelayService}}, relaying for others{{end}}</td></tr>
<tr><td class="k">DHT routing table</td><td>{{.Status.RoutingTable}} peers</td></tr>
<tr><td class="k">data dir</td><td><code>{{if .Status.DataDir}}{{.Status.DataDir}}{{else}}(in memory){{end}}</code></td></tr>
<tr><td class="k">addresses</td><td>{{range .Status.Addrs}}<code>{{.}}</code><br>{{end}}</td></tr>
</table>
<h2>{{len .Peers}} connected peers</h2>
<table><tr><th>peer</th><th>direction</th><th>latency</th><th>address</th></tr>
{{range .Peers}}<tr><td><code>{{.ID}}</code></td><td>{{.Direction}}{{if .Relayed}} (relayed){{end}}</td>
<td>{{if .LatencyMS}}{{printf "%.2f" .LatencyMS}} ms{{end}}</td><td>{{range .Addrs}}<code>{{.}}</code><br>{{end}}</td></tr>
{{else}}<tr><td colspan="4">none yet</td></tr>{{end}}
</table>
<p><a href="/metrics">metrics</a></p>
</body></html>
`))

func (s *Server) handlePage(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	w.Header().Set("X-Frame-Options", "DENY")
	_ = page.Execute(w, struct {
		Status nube.Status
		Peers  []nube.PeerInfo
	}{s.node.Status(), s.node.Peers()})
}
