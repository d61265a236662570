package main

import (
	"context"
	"math/rand"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/vmware/govmomi"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"
)

const (
	testUuid1 = "0a1b2c3d-0000-4000-8000-000000000001"
	testUuid2 = "0a1b2c3d-0000-4000-8000-000000000002"
	testUuid3 = "0a1b2c3d-0000-4000-8000-000000000003"
)

// startSim builds a small model with -state-file/-datastore-dir in dir and
// runs startEstate as main does; stop ends it (SIGTERM path).
func startSim(t *testing.T, dir string) (*govmomi.Client, func()) {
	t.Helper()
	*stateFile = filepath.Join(dir, "estate.json")
	*datastoreDir = filepath.Join(dir, "datastores")
	rand.Seed(1) // as at process start (init): the same model each time
	m := simulator.VPX()
	m.Datacenter, m.Cluster, m.ClusterHost, m.Host, m.Machine = 1, 1, 2, 1, 1
	if err := m.Create(); err != nil {
		t.Fatal(err)
	}
	s := m.Service.NewServer()
	ctx := context.Background()
	c, err := govmomi.NewClient(ctx, s.URL, true)
	if err != nil {
		t.Fatal(err)
	}
	if err := startEstate(ctx, c); err != nil {
		t.Fatal(err)
	}
	return c, func() {
		stopEstate()
		theEstate = nil
		s.Close()
		m.Remove()
	}
}

type vmView struct {
	Moref, Name, InstanceUuid, Uuid, Power, Folder, Host, NvpUuid string
	MACs, NICBackings, Disks                                      []string
}

func viewByInstanceUuid(t *testing.T, uuid string) *vmView {
	t.Helper()
	for _, e := range simulator.Map.All("VirtualMachine") {
		vm := e.(*simulator.VirtualMachine)
		if vm.Config.InstanceUuid != uuid {
			continue
		}
		v := &vmView{Moref: vm.Self.Value, Name: vm.Name, InstanceUuid: uuid, Uuid: vm.Config.Uuid,
			Power: string(vm.Runtime.PowerState), Host: vm.Runtime.Host.Value}
		for ref := vm.Parent; ; {
			f, ok := simulator.Map.Get(*ref).(*simulator.Folder)
			if !ok {
				break
			}
			v.Folder = f.Name + "/" + v.Folder
			ref = f.Parent
		}
		for _, o := range vm.Config.ExtraConfig {
			if o.GetOptionValue().Key == "nvp.vm-uuid" {
				v.NvpUuid = o.GetOptionValue().Value.(string)
			}
		}
		for _, d := range vm.Config.Hardware.Device {
			switch d := d.(type) {
			case types.BaseVirtualEthernetCard:
				n := d.GetVirtualEthernetCard()
				v.MACs = append(v.MACs, n.MacAddress)
				if b, ok := n.Backing.(*types.VirtualEthernetCardDistributedVirtualPortBackingInfo); ok {
					v.NICBackings = append(v.NICBackings, b.Port.PortgroupKey)
				}
			case *types.VirtualDisk:
				v.Disks = append(v.Disks, d.Backing.(types.BaseVirtualDeviceFileBackingInfo).GetVirtualDeviceFileBackingInfo().FileName)
			}
		}
		return v
	}
	return nil
}

func createTestVM(t *testing.T, c *govmomi.Client, folder *object.Folder, name, uuid, mac string, on bool) {
	t.Helper()
	ctx := context.Background()
	pg := simulator.Map.Any("DistributedVirtualPortgroup").(*simulator.DistributedVirtualPortgroup)
	dvs := simulator.Map.Get(*pg.Config.DistributedVirtualSwitch).(*simulator.DistributedVirtualSwitch)
	cluster := simulator.Map.Any("ClusterComputeResource").(*simulator.ClusterComputeResource)
	nic := &types.VirtualVmxnet3{VirtualVmxnet: types.VirtualVmxnet{VirtualEthernetCard: types.VirtualEthernetCard{
		VirtualDevice: types.VirtualDevice{Key: -10, Backing: &types.VirtualEthernetCardDistributedVirtualPortBackingInfo{
			Port: types.DistributedVirtualSwitchPortConnection{SwitchUuid: dvs.Uuid, PortgroupKey: pg.Key}}},
		AddressType: "manual", MacAddress: mac}}}
	scsi := &types.ParaVirtualSCSIController{VirtualSCSIController: types.VirtualSCSIController{
		VirtualController: types.VirtualController{VirtualDevice: types.VirtualDevice{Key: -20}}, SharedBus: "noSharing"}}
	unit := int32(0)
	disk := &types.VirtualDisk{CapacityInKB: 1024, VirtualDevice: types.VirtualDevice{Key: -21, ControllerKey: -20, UnitNumber: &unit,
		Backing: &types.VirtualDiskFlatVer2BackingInfo{DiskMode: "persistent", ThinProvisioned: types.NewBool(true),
			VirtualDeviceFileBackingInfo: types.VirtualDeviceFileBackingInfo{FileName: "[LocalDS_0] " + uuid + "/" + uuid + ".vmdk"}}}}
	spec := types.VirtualMachineConfigSpec{Name: name, InstanceUuid: uuid, GuestId: "otherGuest", NumCPUs: 1, MemoryMB: 64,
		Files:       &types.VirtualMachineFileInfo{VmPathName: "[LocalDS_0] " + uuid + "/" + uuid + ".vmx"},
		ExtraConfig: []types.BaseOptionValue{&types.OptionValue{Key: "nvp.vm-uuid", Value: uuid}},
		DeviceChange: []types.BaseVirtualDeviceConfigSpec{
			&types.VirtualDeviceConfigSpec{Operation: "add", Device: nic},
			&types.VirtualDeviceConfigSpec{Operation: "add", Device: scsi},
			&types.VirtualDeviceConfigSpec{Operation: "add", FileOperation: "create", Device: disk},
		}}
	task, err := folder.CreateVM(ctx, spec, object.NewResourcePool(c.Client, *cluster.ResourcePool), nil)
	if err != nil {
		t.Fatal(err)
	}
	info, err := task.WaitForResult(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if on {
		if err := waitTask(object.NewVirtualMachine(c.Client, info.Result.(types.ManagedObjectReference)).PowerOn(ctx)); err != nil {
			t.Fatal(err)
		}
	}
}

func TestEstateRoundTrip(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()

	c, stop := startSim(t, dir)
	legacy := map[string]*vmView{}
	for _, e := range simulator.Map.All("VirtualMachine") {
		u := e.(*simulator.VirtualMachine).Config.InstanceUuid
		legacy[u] = viewByInstanceUuid(t, u)
	}
	dc := simulator.Map.Any("Datacenter").(*simulator.Datacenter)
	vmFolder := object.NewFolder(c.Client, dc.VmFolder)
	createTestVM(t, c, vmFolder, "nova-1", testUuid1, "fa:16:3e:00:00:01", true)
	// A VM in API-made folders (as Cinder's backings), powered off.
	sub, err := vmFolder.CreateFolder(ctx, "OpenStack")
	if err != nil {
		t.Fatal(err)
	}
	sub, err = sub.CreateFolder(ctx, "Volumes")
	if err != nil {
		t.Fatal(err)
	}
	createTestVM(t, c, sub, "volume-2", testUuid2, "fa:16:3e:00:00:02", false)
	createTestVM(t, c, vmFolder, "nova-3", testUuid3, "fa:16:3e:00:00:03", false)
	gone := viewByInstanceUuid(t, testUuid3)
	if err := waitTask(object.NewVirtualMachine(c.Client, types.ManagedObjectReference{Type: "VirtualMachine", Value: gone.Moref}).Destroy(ctx)); err != nil {
		t.Fatal(err)
	}
	before := map[string]*vmView{testUuid1: viewByInstanceUuid(t, testUuid1), testUuid2: viewByInstanceUuid(t, testUuid2)}
	stop()

	saved, err := readEstate(filepath.Join(dir, "estate.json"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range saved.VMs {
		names = append(names, s.Name)
		if s.ExtraConfig["nvp.vm-uuid"] != s.InstanceUuid || len(s.MACs) != 1 || len(s.Disks) != 1 {
			t.Errorf("saved %s: %+v", s.Name, s)
		}
	}
	sort.Strings(names)
	if !reflect.DeepEqual(names, []string{"nova-1", "volume-2"}) {
		t.Fatalf("saved VMs %v, want nova-1 and volume-2", names)
	}

	_, stop = startSim(t, dir)
	defer stop()
	for u, want := range before {
		got := viewByInstanceUuid(t, u)
		if got == nil || !reflect.DeepEqual(got, want) {
			t.Errorf("after restart:\n got %+v\nwant %+v", got, want)
		}
	}
	if v := viewByInstanceUuid(t, testUuid3); v != nil {
		t.Errorf("destroyed VM is back: %+v", v)
	}
	for u, want := range legacy {
		if got := viewByInstanceUuid(t, u); !reflect.DeepEqual(got, want) {
			t.Errorf("model VM changed:\n got %+v\nwant %+v", got, want)
		}
	}
	// The disks are the files of the first run (datastore kept), not new ones.
	ds := simulator.Map.Any("Datastore").(*simulator.Datastore)
	if want := filepath.Join(dir, "datastores", "DC0-LocalDS_0"); ds.Summary.Url != want {
		t.Errorf("datastore url %s, want %s", ds.Summary.Url, want)
	}
	if _, err := os.Stat(filepath.Join(ds.Summary.Url, testUuid1, testUuid1+".vmdk")); err != nil {
		t.Error(err)
	}
	// The datastore's moref names the kept directory wherever it is held.
	if !strings.HasPrefix(ds.Self.Value, ds.Summary.Url+"@") {
		t.Errorf("datastore moref %s", ds.Self.Value)
	}
	for _, e := range simulator.Map.All("") {
		var refs []types.ManagedObjectReference
		switch o := e.(type) {
		case *simulator.HostSystem:
			refs = o.Datastore
		case *simulator.Datacenter:
			refs = o.Datastore
		case *simulator.ClusterComputeResource:
			refs = o.Datastore
		case *simulator.VirtualMachine:
			refs = o.Datastore
		case *simulator.Folder:
			refs = o.ChildEntity
		}
		for _, r := range refs {
			if simulator.Map.Get(r) == nil {
				t.Errorf("%s holds %s, which is not in the inventory", e.Reference().Value, r.Value)
			}
		}
	}
	// A VM made now gets a fresh moref, not a restored one.
	fresh := simulator.Map.NewEntity(&simulator.Folder{}).Entity().Self.Value
	if _, n := splitRef(fresh); n <= 0 {
		t.Errorf("fresh moref %s", fresh)
	} else if _, m := splitRef(before[testUuid2].Moref); n <= m {
		t.Errorf("fresh moref %s not past restored %s", fresh, before[testUuid2].Moref)
	}
}

func TestWriteAtomic(t *testing.T) {
	f := filepath.Join(t.TempDir(), "sub", "estate.json")
	for _, s := range []string{"one\n", "two\n"} {
		if err := writeAtomic(f, []byte(s)); err != nil {
			t.Fatal(err)
		}
		if b, _ := os.ReadFile(f); string(b) != s {
			t.Fatalf("%q", b)
		}
	}
	if entries, _ := os.ReadDir(filepath.Dir(f)); len(entries) != 1 {
		t.Fatalf("temp files left: %v", entries)
	}
}
