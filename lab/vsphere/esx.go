package main

// ESX hosts' own https endpoints (-esx-endpoints).
//
// Nova uploads an image straight to an ESX host that mounts the datastore
// (vmops._get_esx_host_and_cookies): https://<HostSystem.name>:<vCenter
// port>/folder/<path>?dcPath=ha-datacenter&dsName=<ds>, with a generic
// service ticket as cookie. The simulated hosts' names (DC0_C0_H0) resolve
// nowhere, so with -esx-endpoints each host is named by a loopback address
// of its own (127.0.1.N, in name order) and that address serves the
// datastore /folder transfers on the https port, mapping ESX's
// "ha-datacenter" to the host's datacenter. Linux routes all of 127/8 to
// the loopback interface: no setup needed.

import (
	"fmt"
	"net"
	"net/http"
	"sort"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

type esxHost struct {
	addr, datacenter string
}

// nameHostsByAddress renames every host to 127.0.1.N and returns them.
func nameHostsByAddress() []esxHost {
	var hosts []*simulator.HostSystem
	for _, e := range simulator.Map.All("HostSystem") {
		hosts = append(hosts, e.(*simulator.HostSystem))
	}
	sort.Slice(hosts, func(i, j int) bool { return hosts[i].Name < hosts[j].Name })
	var out []esxHost
	for i, h := range hosts {
		addr := fmt.Sprintf("127.0.1.%d", i+1)
		dc := datacenterOf(h.Self)
		simulator.Map.WithLock(h, func() {
			h.Name = addr
			h.Summary.Config.Name = addr
		})
		out = append(out, esxHost{addr: addr, datacenter: dc})
	}
	return out
}

func datacenterOf(ref types.ManagedObjectReference) string {
	for i := 0; i < 64; i++ {
		obj := simulator.Map.Get(ref)
		if dc, ok := obj.(*simulator.Datacenter); ok {
			return dc.Name
		}
		e, ok := obj.(mo.Entity)
		if !ok || e.Entity().Parent == nil {
			return ""
		}
		ref = *e.Entity().Parent
	}
	return ""
}

// serveESX serves /folder on each host's address at port.
func serveESX(hosts []esxHost, port string, next http.Handler) error {
	for _, h := range hosts {
		h := h
		handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if len(r.URL.Path) < len("/folder/") || r.URL.Path[:len("/folder/")] != "/folder/" {
				http.NotFound(w, r)
				return
			}
			q := r.URL.Query()
			if dc := q.Get("dcPath"); dc == "" || dc == "ha-datacenter" {
				q.Set("dcPath", h.datacenter)
				u := *r.URL
				u.RawQuery = q.Encode()
				r.URL = &u
			}
			next.ServeHTTP(w, r)
		})
		if _, err := serveHTTPS(net.JoinHostPort(h.addr, port), "", handler); err != nil {
			return fmt.Errorf("esx endpoint %s: %w", h.addr, err)
		}
	}
	return nil
}
