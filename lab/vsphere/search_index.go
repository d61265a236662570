package main

// SearchIndex.FindAllByUuid (govmomi added it to its simulator in v0.52).
//
// Nova finds an instance's VM with FindAllByUuid(uuid, vmSearch=True,
// instanceUuid=True) (nova.virt.vmwareapi.vm_util._get_vm_ref_from_vm_uuid).
// The stock SearchIndex cannot be replaced in the registry (the simulator's
// RegisterVM_Task type-asserts it), so the method lives on a lab object of
// its own and routeMethods sends the calls there (see routes.go).

import (
	"sort"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

type labSearchIndex struct {
	mo.SearchIndex
}

var labSearchIndexRef = types.ManagedObjectReference{Type: "SearchIndex", Value: "lab-SearchIndex"}

func installSearchIndex() {
	simulator.Map.Put(&labSearchIndex{mo.SearchIndex{Self: labSearchIndexRef}})
	routes["FindAllByUuid"] = labSearchIndexRef
}

// FindAllByUuid: VMs whose config.instanceUuid (instanceUuid=true) or BIOS
// config.uuid (otherwise) is uuid, or with vmSearch=false hosts whose
// hardware uuid is; limited to one datacenter when given. Every match (two
// VMs may share an instance UUID, e.g. a .vmx registered twice).
func (s *labSearchIndex) FindAllByUuid(ctx *simulator.Context, req *types.FindAllByUuid) soap.HasFault {
	body := &methods.FindAllByUuidBody{Res: new(types.FindAllByUuidResponse)}
	var found []types.ManagedObjectReference
	if req.VmSearch {
		byInstance := req.InstanceUuid != nil && *req.InstanceUuid
		for _, e := range ctx.Map.All("VirtualMachine") {
			vm, ok := e.(*simulator.VirtualMachine)
			if !ok || vm.Config == nil {
				continue
			}
			id := vm.Config.Uuid
			if byInstance {
				id = vm.Config.InstanceUuid
			}
			if id == req.Uuid && inDatacenter(ctx, vm.Self, req.Datacenter) {
				found = append(found, vm.Self)
			}
		}
	} else {
		for _, e := range ctx.Map.All("HostSystem") {
			h, ok := e.(*simulator.HostSystem)
			if !ok || h.Summary.Hardware == nil {
				continue
			}
			if h.Summary.Hardware.Uuid == req.Uuid && inDatacenter(ctx, h.Self, req.Datacenter) {
				found = append(found, h.Self)
			}
		}
	}
	sort.Slice(found, func(i, j int) bool { return found[i].Value < found[j].Value })
	body.Res.Returnval = found
	return body
}

func inDatacenter(ctx *simulator.Context, ref types.ManagedObjectReference, dc *types.ManagedObjectReference) bool {
	if dc == nil {
		return true
	}
	for i := 0; i < 64; i++ {
		if ref == *dc {
			return true
		}
		e, ok := ctx.Map.Get(ref).(mo.Entity)
		if !ok || e.Entity().Parent == nil {
			return false
		}
		ref = *e.Entity().Parent
	}
	return false
}
