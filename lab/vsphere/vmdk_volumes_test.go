package main

import (
	"context"
	"testing"

	"github.com/vmware/govmomi"
	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// A cluster of three hosts sharing one local datastore; then what Cinder's
// VMDK driver and Nova's attach/detach do: a backing VM with a SCSI
// controller and a new disk, its disk uuid set to the volume id, the vmdk
// added to a second VM (no uuid given) and removed again.
func TestVMDKVolumes(t *testing.T) {
	m := simulator.VPX()
	m.Datacenter, m.Cluster, m.ClusterHost, m.Host, m.Machine = 1, 1, 3, 1, 1
	if err := m.Create(); err != nil {
		t.Fatal(err)
	}
	defer m.Remove()
	installVMDKVolumes()
	installVMDKVolumes() // idempotent
	s := m.Service.NewServer()
	defer s.Close()
	ctx := context.Background()
	c, err := govmomi.NewClient(ctx, s.URL, true)
	if err != nil {
		t.Fatal(err)
	}

	hosts := simulator.Map.All("HostSystem")
	for _, e := range simulator.Map.All("Datastore") {
		ds := e.(*simulator.Datastore)
		if len(ds.Host) != len(hosts) {
			t.Fatalf("datastore %s mounts %d hosts, want every host (%d): %+v", ds.Name, len(ds.Host), len(hosts), ds.Host)
		}
	}
	for _, e := range simulator.Map.All("VirtualMachine") { // the model's VMs, fixed at install
		for _, d := range e.(*simulator.VirtualMachine).Config.Hardware.Device {
			checkDefaults(t, "model VM", d)
		}
	}

	finder := find.NewFinder(c.Client, true)
	dc, err := finder.DefaultDatacenter(ctx)
	if err != nil {
		t.Fatal(err)
	}
	finder.SetDatacenter(dc)
	folders, _ := dc.Folders(ctx)
	pool, err := finder.ResourcePool(ctx, "DC0_C0/Resources")
	if err != nil {
		t.Fatal(err)
	}
	create := func(name string, devices []types.BaseVirtualDeviceConfigSpec) *object.VirtualMachine {
		spec := types.VirtualMachineConfigSpec{Name: name, GuestId: "otherGuest",
			Files: &types.VirtualMachineFileInfo{VmPathName: "[LocalDS_0]"}, DeviceChange: devices}
		task, err := folders.VmFolder.CreateVM(ctx, spec, pool, nil)
		if err != nil {
			t.Fatal(err)
		}
		info, err := task.WaitForResult(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		return object.NewVirtualMachine(c.Client, info.Result.(types.ManagedObjectReference))
	}
	unit := int32(0)
	scsi := &types.VirtualLsiLogicController{VirtualSCSIController: types.VirtualSCSIController{
		SharedBus:         types.VirtualSCSISharingNoSharing,
		VirtualController: types.VirtualController{BusNumber: 0, VirtualDevice: types.VirtualDevice{Key: -100}}}}
	disk := &types.VirtualDisk{CapacityInKB: 1024, VirtualDevice: types.VirtualDevice{
		Key: -101, ControllerKey: -100, UnitNumber: &unit,
		Backing: &types.VirtualDiskFlatVer2BackingInfo{DiskMode: "persistent", ThinProvisioned: types.NewBool(true)}}}
	backing := create("volume-1", []types.BaseVirtualDeviceConfigSpec{
		&types.VirtualDeviceConfigSpec{Operation: "add", FileOperation: "create", Device: disk},
		&types.VirtualDeviceConfigSpec{Operation: "add", Device: scsi}})
	d := onlyDisk(t, ctx, backing)
	path := d.Backing.(*types.VirtualDiskFlatVer2BackingInfo).FileName
	if got := d.Backing.(*types.VirtualDiskFlatVer2BackingInfo).Uuid; got == "" {
		t.Fatal("a new disk has no uuid")
	}
	// Cinder's update_backing_disk_uuid: edit the disk with the volume id.
	const volumeID = "4e1bd3b6-0d8b-4b2c-9d53-1f3f3a8e7a11"
	d.Backing.(*types.VirtualDiskFlatVer2BackingInfo).Uuid = volumeID
	reconfigureDevice(t, ctx, backing, &types.VirtualDeviceConfigSpec{Operation: "edit", Device: d})
	if got := onlyDisk(t, ctx, backing).Backing.(*types.VirtualDiskFlatVer2BackingInfo).Uuid; got != volumeID {
		t.Fatalf("edited disk uuid %q, want %q", got, volumeID)
	}

	// Nova's attach: the vmdk by path on another VM, no uuid; it is the file's.
	instance := create("instance", []types.BaseVirtualDeviceConfigSpec{
		&types.VirtualDeviceConfigSpec{Operation: "add", Device: &types.VirtualLsiLogicController{
			VirtualSCSIController: types.VirtualSCSIController{SharedBus: types.VirtualSCSISharingNoSharing,
				VirtualController: types.VirtualController{BusNumber: 0, VirtualDevice: types.VirtualDevice{Key: -100}}}}}})
	var ctrl int32
	var vm mo.VirtualMachine
	if err := instance.Properties(ctx, instance.Reference(), []string{"config.hardware.device"}, &vm); err != nil {
		t.Fatal(err)
	}
	for _, dev := range vm.Config.Hardware.Device {
		checkDefaults(t, "instance", dev)
		if c, ok := dev.(types.BaseVirtualSCSIController); ok {
			ctrl = c.GetVirtualSCSIController().Key
		}
	}
	one := int32(1)
	attach := &types.VirtualDisk{CapacityInKB: 1024, VirtualDevice: types.VirtualDevice{
		Key: -102, ControllerKey: ctrl, UnitNumber: &one,
		Backing: &types.VirtualDiskFlatVer2BackingInfo{DiskMode: "persistent",
			VirtualDeviceFileBackingInfo: types.VirtualDeviceFileBackingInfo{FileName: path}}}}
	reconfigureDevice(t, ctx, instance, &types.VirtualDeviceConfigSpec{Operation: "add", Device: attach})
	got := onlyDisk(t, ctx, instance)
	if b := got.Backing.(*types.VirtualDiskFlatVer2BackingInfo); b.FileName != path || b.Uuid != volumeID {
		t.Fatalf("attached disk %s uuid %q, want %s uuid %q", b.FileName, b.Uuid, path, volumeID)
	}
	reconfigureDevice(t, ctx, instance, &types.VirtualDeviceConfigSpec{Operation: "remove", Device: got})
	if err := instance.Properties(ctx, instance.Reference(), []string{"config.hardware.device"}, &vm); err != nil {
		t.Fatal(err)
	}
	if n := len(object.VirtualDeviceList(vm.Config.Hardware.Device).SelectByType((*types.VirtualDisk)(nil))); n != 0 {
		t.Fatalf("%d disks left after the detach", n)
	}
}

func checkDefaults(t *testing.T, what string, d types.BaseVirtualDevice) {
	t.Helper()
	switch x := d.(type) {
	case types.BaseVirtualSCSIController:
		if n := x.GetVirtualSCSIController().ScsiCtlrUnitNumber; n != 7 {
			t.Fatalf("%s: SCSI controller %d has scsiCtlrUnitNumber %d", what, x.GetVirtualSCSIController().Key, n)
		}
	case *types.VirtualDisk:
		if b, ok := x.Backing.(*types.VirtualDiskFlatVer2BackingInfo); ok && b.Uuid == "" {
			t.Fatalf("%s: disk %s has no uuid", what, b.FileName)
		}
	}
}

func onlyDisk(t *testing.T, ctx context.Context, vm *object.VirtualMachine) *types.VirtualDisk {
	t.Helper()
	devices, err := vm.Device(ctx)
	if err != nil {
		t.Fatal(err)
	}
	disks := devices.SelectByType((*types.VirtualDisk)(nil))
	if len(disks) != 1 {
		t.Fatalf("%d disks, want 1", len(disks))
	}
	for _, d := range devices {
		checkDefaults(t, vm.Reference().Value, d)
	}
	return disks[0].(*types.VirtualDisk)
}

func reconfigureDevice(t *testing.T, ctx context.Context, vm *object.VirtualMachine, change types.BaseVirtualDeviceConfigSpec) {
	t.Helper()
	task, err := vm.Reconfigure(ctx, types.VirtualMachineConfigSpec{DeviceChange: []types.BaseVirtualDeviceConfigSpec{change}})
	if err != nil {
		t.Fatal(err)
	}
	if err := task.Wait(ctx); err != nil {
		t.Fatal(err)
	}
}
