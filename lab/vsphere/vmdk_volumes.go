package main

// What Cinder's VMDK driver and Nova's volume attach/detach need from the
// simulator beyond 0.24 (installVMDKVolumes, after the model is built).
//
// Datastore.host lists every host that mounts the datastore. The model makes
// its local datastores per datacenter and has every host "create" each one
// (CreateLocalDatastore with the same path): each host's `datastore` lists
// it, but the registry keeps one Datastore per moref, the last host's, whose
// `host` names that host only. vCenter lists every mounting host of a shared
// datastore. Cinder places a backing only on a datastore whose `host` holds
// the chosen host (DatastoreSelector; at attach, _relocate_backing with the
// host of the instance's VM): on 0.24 an attach works only when Nova's VM
// happened to land on the datacenter's last host. Each datastore gets a
// read-write mount for every host that lists it (hosts added later are not
// followed).
//
// Device defaults vCenter fills in, set whenever a VM's device list changes
// (CreateVM, ReconfigVM, ...; a registry handler, so every VM, whatever
// made it):
//   - VirtualSCSIController.scsiCtlrUnitNumber = 7 (the controller's own
//     unit; 0.24 leaves it unset). Nova reads it on every disk attach
//     (vm_util._find_allocated_slots).
//   - a disk's backing.uuid, which belongs to the vmdk file (its descriptor's
//     ddb.uuid): 0.24 leaves it empty. Cinder sets it to the volume id on the
//     backing VM (update_backing_disk_uuid); Nova records the backing's disk
//     uuid in the instance VM's extraConfig["volume-<id>"] at attach and at
//     detach finds the instance's disk by it. The lab keeps one uuid per
//     datastore path: a disk without one gets the path's (the last set by a
//     client, else derived from the path), so two VMs naming one vmdk see
//     the same uuid, as on vCenter.

import (
	"sort"
	"sync"

	"github.com/google/uuid"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

func installVMDKVolumes() {
	installDatastoreHosts()
	h := &deviceDefaults{uuids: map[string]string{}}
	h.Self = types.ManagedObjectReference{Type: "LabDeviceDefaults", Value: "lab-device-defaults"}
	for _, e := range simulator.Map.All("VirtualMachine") {
		if vm, ok := e.(*simulator.VirtualMachine); ok && vm.Config != nil {
			simulator.Map.WithLock(vm, func() { h.fill(vm.Config.Hardware.Device) })
		}
	}
	simulator.Map.AddHandler(h)
}

func installDatastoreHosts() {
	for _, e := range simulator.Map.All("HostSystem") {
		h, ok := e.(*simulator.HostSystem)
		if !ok {
			continue
		}
		for _, ref := range h.Datastore {
			ds, ok := simulator.Map.Get(ref).(*simulator.Datastore)
			if !ok || mountsHost(ds, h.Self) {
				continue
			}
			simulator.Map.WithLock(ds, func() {
				ds.Host = append(ds.Host, types.DatastoreHostMount{
					Key: h.Self,
					MountInfo: types.HostMountInfo{
						AccessMode: string(types.HostMountModeReadWrite),
						Mounted:    types.NewBool(true),
						Accessible: types.NewBool(true),
					},
				})
				sort.Slice(ds.Host, func(i, j int) bool { return ds.Host[i].Key.Value < ds.Host[j].Key.Value })
			})
		}
	}
}

func mountsHost(ds *simulator.Datastore, host types.ManagedObjectReference) bool {
	for _, m := range ds.Host {
		if m.Key == host {
			return true
		}
	}
	return false
}

// deviceDefaults is a registry handler (simulator.RegisterObject): the
// registry calls UpdateObject for every property change, after applying it.
type deviceDefaults struct {
	mo.Folder // only for Reference(); never registered as an object

	mu    sync.Mutex
	uuids map[string]string // datastore path of a vmdk -> its uuid
}

func (h *deviceDefaults) PutObject(mo.Reference) {}

func (h *deviceDefaults) RemoveObject(types.ManagedObjectReference) {}

func (h *deviceDefaults) UpdateObject(obj mo.Reference, changes []types.PropertyChange) {
	if _, ok := obj.(*mo.VirtualMachine); !ok {
		return
	}
	for _, c := range changes {
		if c.Name != "config.hardware.device" {
			continue
		}
		switch v := c.Val.(type) {
		case []types.BaseVirtualDevice:
			h.fill(v)
		case *types.ArrayOfVirtualDevice: // how the registry wraps the slice
			h.fill(v.VirtualDevice)
		case types.ArrayOfVirtualDevice:
			h.fill(v.VirtualDevice)
		}
	}
}

func (h *deviceDefaults) fill(devices []types.BaseVirtualDevice) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, d := range devices {
		switch x := d.(type) {
		case types.BaseVirtualSCSIController:
			if c := x.GetVirtualSCSIController(); c.ScsiCtlrUnitNumber == 0 {
				c.ScsiCtlrUnitNumber = 7
			}
		case *types.VirtualDisk:
			var file string
			var id *string
			switch b := x.Backing.(type) {
			case *types.VirtualDiskFlatVer2BackingInfo:
				file, id = b.FileName, &b.Uuid
			case *types.VirtualDiskSparseVer2BackingInfo:
				file, id = b.FileName, &b.Uuid
			case *types.VirtualDiskSeSparseBackingInfo:
				file, id = b.FileName, &b.Uuid
			}
			if id == nil || file == "" {
				continue
			}
			if *id != "" {
				h.uuids[file] = *id
				continue
			}
			if known, ok := h.uuids[file]; ok {
				*id = known
				continue
			}
			*id = uuid.NewSHA1(uuid.NameSpaceURL, []byte("vmdk:"+file)).String()
			h.uuids[file] = *id
		}
	}
}
