package main

// -legacy-vms N: the lab's legacy vSphere VMs, made through the API as a
// vCenter user makes them, so that os-onboard has VMs to adopt.
//
// The stock model's VMs cannot be adopted as they are: every VM of a host
// shares one MAC (Neutron allows a MAC once per network), and their NICs
// report no guest IP. The legacy VMs are what an estate leaving vCenter has:
// powered on, spread over the clusters (legacy-vc-01 on the first, -02 on
// the second, ...), a thin root VMDK, one vmxnet3 NIC with its own MAC on
// the distributed port group, an address "VMware Tools" reports, their own
// instanceUuid (derived from the name: the same after `lab down --purge`),
// and no OpenStack tag (no nvp.vm-uuid).
//
// They are made once: with -state-file they are part of the estate
// (estate.go), and a start that finds a VM of the name leaves it as it is
// (adopted, powered off or moved by a test). Only the guest address is set
// again when it is missing: it is guest state, which the estate does not
// keep (a restored VM has booted again).

import (
	"context"
	"flag"
	"fmt"
	"log"
	"strings"

	"github.com/google/uuid"
	"github.com/vmware/govmomi"
	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

var (
	legacyVMs      = flag.Int("legacy-vms", 0, "make this many legacy VMs (legacy-vc-NN) through the API unless they exist")
	legacyNet      = flag.String("legacy-port-group", "DC0_DVPG0", "port group of the legacy VMs' NICs")
	legacyIPPrefix = flag.String("legacy-ip-prefix", "10.99.0.", "the legacy VMs' guest addresses: PREFIX(200+N)")
	legacyClusters = flag.String("legacy-clusters", "DC0_C0,DC0_C1", "clusters the legacy VMs are spread over, in turn")
)

// legacyNamespace makes the instanceUuid of a legacy VM from its name.
var legacyNamespace = uuid.MustParse("6f6e626f-6172-4400-8000-6c6567616379")

func legacyName(n int) string { return fmt.Sprintf("legacy-vc-%02d", n) }

// LegacyMAC is in VMware's range for manually set addresses (00:50:56:00-3f).
func legacyMAC(n int) string { return fmt.Sprintf("00:50:56:3f:10:%02x", n) }

func ensureLegacyVMs(ctx context.Context, c *govmomi.Client) error {
	if *legacyVMs <= 0 {
		return nil
	}
	finder := find.NewFinder(c.Client, false)
	dc, err := finder.DefaultDatacenter(ctx)
	if err != nil {
		return err
	}
	finder.SetDatacenter(dc)
	folders, err := dc.Folders(ctx)
	if err != nil {
		return err
	}
	net, err := finder.Network(ctx, *legacyNet)
	if err != nil {
		return err
	}
	backing, err := net.EthernetCardBackingInfo(ctx)
	if err != nil {
		return err
	}
	clusters := strings.Split(*legacyClusters, ",")
	for n := 1; n <= *legacyVMs; n++ {
		name := legacyName(n)
		vm, err := finder.VirtualMachine(ctx, name)
		if err != nil {
			if _, ok := err.(*find.NotFoundError); !ok {
				return err
			}
			cluster, err := finder.ClusterComputeResource(ctx, clusters[(n-1)%len(clusters)])
			if err != nil {
				return err
			}
			pool, err := cluster.ResourcePool(ctx)
			if err != nil {
				return err
			}
			if vm, err = createLegacyVM(ctx, folders.VmFolder, pool, name, n, backing); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			log.Printf("legacy: made %s (instanceUuid %s, MAC %s) in %s", name, legacyUUID(name), legacyMAC(n), cluster.Name())
		}
		if err := legacyGuestAddress(ctx, c, vm, *legacyIPPrefix+fmt.Sprint(200+n)); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	return nil
}

func legacyUUID(name string) string {
	return uuid.NewSHA1(legacyNamespace, []byte(name)).String()
}

func createLegacyVM(ctx context.Context, folder *object.Folder, pool *object.ResourcePool, name string, n int, backing types.BaseVirtualDeviceBackingInfo) (*object.VirtualMachine, error) {
	controller := &types.VirtualLsiLogicController{VirtualSCSIController: types.VirtualSCSIController{
		SharedBus: types.VirtualSCSISharingNoSharing,
		VirtualController: types.VirtualController{BusNumber: 0,
			VirtualDevice: types.VirtualDevice{Key: 1000}}}}
	disk := &types.VirtualDisk{CapacityInKB: 1024, VirtualDevice: types.VirtualDevice{
		Key: 2000, ControllerKey: 1000, UnitNumber: types.NewInt32(0),
		Backing: &types.VirtualDiskFlatVer2BackingInfo{
			DiskMode: string(types.VirtualDiskModePersistent), ThinProvisioned: types.NewBool(true)}}}
	nic := &types.VirtualVmxnet3{VirtualVmxnet: types.VirtualVmxnet{VirtualEthernetCard: types.VirtualEthernetCard{
		AddressType: string(types.VirtualEthernetCardMacTypeManual), MacAddress: legacyMAC(n),
		VirtualDevice: types.VirtualDevice{Key: 4000, Backing: backing}}}}
	spec := types.VirtualMachineConfigSpec{
		Name: name, InstanceUuid: legacyUUID(name), NumCPUs: 1, MemoryMB: 64,
		GuestId: string(types.VirtualMachineGuestOsIdentifierOtherLinux64Guest),
		Files:   &types.VirtualMachineFileInfo{VmPathName: "[LocalDS_0]"},
		DeviceChange: []types.BaseVirtualDeviceConfigSpec{
			&types.VirtualDeviceConfigSpec{Operation: types.VirtualDeviceConfigSpecOperationAdd, Device: controller},
			&types.VirtualDeviceConfigSpec{Operation: types.VirtualDeviceConfigSpecOperationAdd,
				FileOperation: types.VirtualDeviceConfigSpecFileOperationCreate, Device: disk},
			&types.VirtualDeviceConfigSpec{Operation: types.VirtualDeviceConfigSpecOperationAdd, Device: nic},
		},
	}
	task, err := folder.CreateVM(ctx, spec, pool, nil)
	if err != nil {
		return nil, err
	}
	info, err := task.WaitForResult(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("CreateVM_Task: %w", err)
	}
	vm := object.NewVirtualMachine(folder.Client(), info.Result.(types.ManagedObjectReference))
	if err := waitTask(vm.PowerOn(ctx)); err != nil {
		return nil, fmt.Errorf("power on: %w", err)
	}
	return vm, nil
}

// legacyGuestAddress makes "VMware Tools" report ip on the VM's first NIC
// (the simulator's SET.guest.ipAddress) unless it already does.
func legacyGuestAddress(ctx context.Context, c *govmomi.Client, vm *object.VirtualMachine, ip string) error {
	var o mo.VirtualMachine
	if err := property.DefaultCollector(c.Client).RetrieveOne(ctx, vm.Reference(), []string{"guest.net"}, &o); err != nil {
		return err
	}
	if o.Guest != nil && len(o.Guest.Net) > 0 && len(o.Guest.Net[0].IpAddress) > 0 && o.Guest.Net[0].IpAddress[0] == ip {
		return nil
	}
	return reconfigure(ctx, vm, types.VirtualMachineConfigSpec{ExtraConfig: []types.BaseOptionValue{
		&types.OptionValue{Key: "SET.guest.ipAddress", Value: ip}}})
}
