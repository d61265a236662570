// vcsim-lab: the lab's vSphere API simulator (govmomi's simulator package).
//
// Debian ships govmomi's simulator package (golang-github-vmware-govmomi-dev)
// but not the vcsim command, so the lab builds this small main in GOPATH mode:
//
//	GO111MODULE=off GOPATH=/usr/share/gocode go build -o vcsim-lab main.go
//
// The model is a vCenter (VPX): per datacenter -standalone hosts and
// -clusters of -cluster-hosts hosts, -vms VMs per standalone host and per
// cluster resource pool, one distributed port group for every VM's NIC.
// The password comes from $VCSIM_PASSWORD (not argv, which `ps` shows).
//
// On top of the stock model, -extras N VMs get what a brownfield estate has
// and the stock model lacks: a raw device mapping of a SAN LUN (naa.…),
// a thick disk, guest IPs reported by "VMware Tools"; -dup-uuid N VM pairs
// share one instanceUuid (e.g. a VM registered twice from a copied .vmx).
// Prints "READY <url without password>" on stdout when it serves requests.
//
// For OpenStack's VMware drivers (Nova's vmwareapi, Cinder's VMDK; both via
// oslo.vmware) -https-listen adds an https listener on the same simulator,
// and the lab adds what govmomi 0.24 lacks: the WSDL oslo.vmware loads,
// SearchIndex.FindAllByUuid, an ExtensionManager, a PropertyCollector that
// honours TraversalSpec.type and indexed property paths. See README.md.
package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"sort"
	"syscall"

	"github.com/vmware/govmomi"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/simulator/esx"
	"github.com/vmware/govmomi/view"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// A SAN LUN every host sees; RDM disks of the -extras VMs map it.
const (
	lunNaa  = "naa.600a098038303053453f463045727a42"
	lunUuid = "0200000000600a098038303053453f463045727a424c554e20432d"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8989", "address to serve on")
	user := flag.String("username", "onboard", "login user (password: $VCSIM_PASSWORD)")
	useTLS := flag.Bool("tls", false, "serve https with a self-signed certificate")
	dcs := flag.Int("dc", 1, "datacenters")
	clusters := flag.Int("clusters", 1, "clusters per datacenter")
	clusterHosts := flag.Int("cluster-hosts", 3, "hosts per cluster")
	standalone := flag.Int("standalone", 1, "standalone hosts per datacenter")
	vms := flag.Int("vms", 2, "VMs per standalone host and per cluster resource pool")
	extras := flag.Int("extras", 0, "VMs that get an RDM disk, a thick disk and guest IPs")
	dupUUID := flag.Int("dup-uuid", 0, "VM pairs made to share one instanceUuid")
	httpsListen := flag.String("https-listen", "", "also serve https (self-signed) on this address")
	certOut := flag.String("cert-out", "", "write the https certificate (PEM) to this file")
	instanceUUID := flag.String("instance-uuid", "dbed6e0c-bd88-4ef6-b594-21283e1c677f", "vCenter about.instanceUuid")
	esxEndpoints := flag.Bool("esx-endpoints", false, "name hosts 127.0.1.N and serve datastore transfers there (with -https-listen)")
	trace := flag.Bool("trace", false, "log every SOAP request and response (stderr)")
	dsType := flag.String("datastore-type", "VMFS", "summary.type of the datastores (the stock model says OTHER, which Nova refuses)")
	wsdlDir := flag.String("wsdl-dir", defaultWSDLDir(), "directory of the generated vimService.wsdl and vim.wsdl")
	flag.Parse()

	simulator.Trace = *trace
	password := os.Getenv("VCSIM_PASSWORD")
	if password == "" {
		log.Fatal("VCSIM_PASSWORD is not set")
	}
	addLun()
	model := simulator.VPX()
	model.Datacenter, model.Cluster, model.ClusterHost = *dcs, *clusters, *clusterHosts
	model.Host, model.Machine = *standalone, *vms
	if err := model.Create(); err != nil {
		log.Fatal(err)
	}
	defer model.Remove() // the datastores' temporary directories
	serviceInstance().Content.About.InstanceUuid = *instanceUUID
	for _, e := range simulator.Map.All("Datastore") {
		e.(*simulator.Datastore).Summary.Type = *dsType
	}
	var esxHosts []esxHost
	if *esxEndpoints {
		esxHosts = nameHostsByAddress()
	}
	installPropertyCollector()
	installSearchIndex()
	installExtensionManager()
	installDatastoreBrowsers()
	installVMDKVolumes()
	installRelocations()
	installBootTimes()
	model.Service.Listen = &url.URL{Host: *listen, User: url.UserPassword(*user, password)}
	if *useTLS {
		model.Service.TLS = new(tls.Config)
	}
	mux := http.NewServeMux()
	serveWSDL(mux, *wsdlDir)
	model.Service.ServeMux = mux
	server := model.Service.NewServer()
	defer server.Close()
	// Before the first request: http.Server reads Handler per request.
	handler := routeMethods(mux)
	server.Config.Handler = handler
	if *httpsListen != "" {
		l, err := serveHTTPS(*httpsListen, *certOut, handler)
		if err != nil {
			log.Fatal(err)
		}
		defer l.Close()
		log.Printf("https: serving https://%s/sdk", l.Addr())
		_, port, _ := net.SplitHostPort(*httpsListen)
		if err := serveESX(esxHosts, port, handler); err != nil {
			log.Fatal(err)
		}
	}

	ctx := context.Background()
	client, err := govmomi.NewClient(ctx, server.URL, true)
	if err != nil {
		log.Fatal(err)
	}
	if err := decorate(ctx, client, *extras, *dupUUID); err != nil {
		log.Fatal(err)
	}
	if err := startEstate(ctx, client); err != nil { // estate.go: -datastore-dir, -state-file
		log.Fatal(err)
	}
	if err := ensureLegacyVMs(ctx, client); err != nil { // legacy.go: -legacy-vms
		log.Fatal(err)
	}
	_ = client.Logout(ctx)

	shown := *server.URL
	shown.User = url.User(*user)
	fmt.Printf("READY %s\n", shown.String())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	stopEstate()
}

func serviceInstance() *simulator.ServiceInstance {
	return simulator.Map.Get(vim25.ServiceInstance).(*simulator.ServiceInstance)
}

func serviceContent() types.ServiceContent {
	return serviceInstance().Content
}

// addLun adds the SAN LUN to the template every simulated host copies.
func addLun() {
	esx.HostStorageDeviceInfo.ScsiLun = append(esx.HostStorageDeviceInfo.ScsiLun,
		&types.HostScsiDisk{
			ScsiLun: types.ScsiLun{
				HostDevice:    types.HostDevice{DeviceName: "/vmfs/devices/disks/" + lunNaa, DeviceType: "disk"},
				Key:           "key-vim.host.ScsiDisk-" + lunUuid,
				Uuid:          lunUuid,
				CanonicalName: lunNaa,
				DisplayName:   "NETAPP Fibre Channel Disk (" + lunNaa + ")",
				LunType:       "disk",
				Vendor:        "NETAPP  ",
				Model:         "LUN C-Mode      ",
				SerialNumber:  "80SE?F0Erz",
			},
			Capacity:   types.HostDiskDimensionsLba{BlockSize: 512, Block: 20971520},
			DevicePath: "/vmfs/devices/disks/" + lunNaa,
		})
}

// decorate gives the first `extras` VMs (by name) their brownfield devices.
func decorate(ctx context.Context, c *govmomi.Client, extras, dupUUID int) error {
	m := view.NewManager(c.Client)
	v, err := m.CreateContainerView(ctx, c.ServiceContent.RootFolder, []string{"VirtualMachine"}, true)
	if err != nil {
		return err
	}
	var all []mo.VirtualMachine
	if err := v.Retrieve(ctx, []string{"VirtualMachine"}, []string{"name", "config.instanceUuid"}, &all); err != nil {
		return err
	}
	sort.Slice(all, func(i, j int) bool { return all[i].Name < all[j].Name })
	for i := 0; i < dupUUID && 2*i+1 < len(all); i++ {
		// Take the UUID of the last VMs (first: the RDM VMs take no ReconfigVM later).
		a, b := all[len(all)-1-2*i], all[len(all)-2-2*i]
		spec := types.VirtualMachineConfigSpec{InstanceUuid: a.Config.InstanceUuid}
		if err := reconfigure(ctx, object.NewVirtualMachine(c.Client, b.Self), spec); err != nil {
			return err
		}
	}
	for i := 0; i < extras && i < len(all); i++ {
		vm := object.NewVirtualMachine(c.Client, all[i].Self)
		devices, err := vm.Device(ctx)
		if err != nil {
			return err
		}
		scsi, err := devices.FindDiskController("scsi")
		if err != nil {
			return err
		}
		thick := &types.VirtualDisk{CapacityInKB: 2 << 20, VirtualDevice: types.VirtualDevice{
			Backing: &types.VirtualDiskFlatVer2BackingInfo{
				VirtualDeviceFileBackingInfo: types.VirtualDeviceFileBackingInfo{
					FileName: fmt.Sprintf("[LocalDS_0] %s/%s_data.vmdk", all[i].Name, all[i].Name)},
				DiskMode: "persistent", ThinProvisioned: types.NewBool(false),
				EagerlyScrub: types.NewBool(true),
			}}}
		devices.AssignController(thick, scsi)
		if err := vm.AddDevice(ctx, thick); err != nil {
			return fmt.Errorf("%s: %w", all[i].Name, err)
		}
		// The simulator turns this key into guest.net[0].ipAddress.
		ip := fmt.Sprintf("10.20.%d.%d", i/250, i%250+1)
		spec := types.VirtualMachineConfigSpec{ExtraConfig: []types.BaseOptionValue{
			&types.OptionValue{Key: "SET.guest.ipAddress", Value: ip}}}
		if err := reconfigure(ctx, vm, spec); err != nil {
			return err
		}
		addRdm(all[i].Self, all[i].Name, i) // last: no ReconfigVM after this one
	}
	return v.Destroy(ctx)
}

// addRdm attaches a physical-mode RDM of the SAN LUN. The simulator's
// ReconfigVM panics on RDM backings (it assumes flat VMDKs when it lays out
// disk files), so the device goes into the registry directly. Later device
// edits of that VM would hit the same panic; the lab never makes any.
func addRdm(ref types.ManagedObjectReference, name string, n int) {
	obj := simulator.Map.Get(ref).(*simulator.VirtualMachine)
	simulator.Map.WithLock(obj, func() {
		devices := object.VirtualDeviceList(obj.Config.Hardware.Device)
		scsi, _ := devices.FindDiskController("scsi")
		key := int32(0)
		for _, d := range devices {
			key = max32(key, d.GetVirtualDevice().Key)
		}
		rdm := &types.VirtualDisk{CapacityInKB: 10 << 20, VirtualDevice: types.VirtualDevice{
			Key: key + 1,
			Backing: &types.VirtualDiskRawDiskMappingVer1BackingInfo{
				VirtualDeviceFileBackingInfo: types.VirtualDeviceFileBackingInfo{
					FileName: fmt.Sprintf("[LocalDS_0] %s/%s_rdm.vmdk", name, name)},
				LunUuid: lunUuid, DeviceName: "/vmfs/devices/disks/" + lunNaa,
				CompatibilityMode: "physicalMode", DiskMode: "independent_persistent",
				Uuid: fmt.Sprintf("6000C29d-5244-4d00-8000-%012x", n),
			}}}
		devices.AssignController(rdm, scsi)
		all := append(devices, rdm)
		simulator.Map.Update(obj, []types.PropertyChange{
			{Name: "config.hardware.device", Val: []types.BaseVirtualDevice(all)}})
	})
}

func max32(a, b int32) int32 {
	if a > b {
		return a
	}
	return b
}

func reconfigure(ctx context.Context, vm *object.VirtualMachine, spec types.VirtualMachineConfigSpec) error {
	task, err := vm.Reconfigure(ctx, spec)
	if err != nil {
		return err
	}
	return task.Wait(ctx)
}
