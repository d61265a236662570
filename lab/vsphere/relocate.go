package main

// RelocateVM_Task keeps the inventory's back references (installRelocations).
//
// vCenter lists a VM in its host's `vm` and its resource pool's `vm`. On
// 0.24 a relocation (vMotion to another host or cluster) changes the VM's
// runtime.host and resourcePool but removes the *destination's* own
// reference from the destination's list and leaves the VM in the source's:
// the source host and pool keep listing a VM that left, the destination does
// not list it. A registry handler puts the VM in the lists of the host and
// pool it names and takes it out of every other, whatever changed them.

import (
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

type relocations struct {
	mo.ManagedEntity
}

func installRelocations() {
	h := &relocations{}
	h.Self = types.ManagedObjectReference{Type: "LabRelocations", Value: "lab-relocations"}
	simulator.Map.AddHandler(h)
}

func (h *relocations) PutObject(mo.Reference)                    {}
func (h *relocations) RemoveObject(types.ManagedObjectReference) {}

func (h *relocations) UpdateObject(obj mo.Reference, changes []types.PropertyChange) {
	vm, ok := obj.(*mo.VirtualMachine)
	if !ok {
		return
	}
	for _, c := range changes {
		ref, ok := refOf(c.Val)
		if !ok {
			continue
		}
		switch c.Name {
		case "runtime.host":
			moveReference(vm.Self, "HostSystem", ref)
		case "resourcePool":
			moveReference(vm.Self, "ResourcePool", ref)
		}
	}
}

// refOf: RelocateVM_Task passes the spec's pointers, other callers values.
func refOf(v interface{}) (types.ManagedObjectReference, bool) {
	switch r := v.(type) {
	case types.ManagedObjectReference:
		return r, true
	case *types.ManagedObjectReference:
		if r != nil {
			return *r, true
		}
	}
	return types.ManagedObjectReference{}, false
}

// moveReference lists vm in the `vm` field of object `to` of kind and in no
// other object of that kind.
func moveReference(vm types.ManagedObjectReference, kind string, to types.ManagedObjectReference) {
	for _, e := range simulator.Map.All(kind) {
		var list *[]types.ManagedObjectReference
		switch o := e.(type) {
		case *simulator.HostSystem:
			list = &o.Vm
		case *simulator.ResourcePool:
			list = &o.Vm
		default:
			continue
		}
		if e.Reference() == to {
			simulator.Map.AddReference(e, list, vm)
		} else if simulator.FindReference(*list, vm) != nil {
			simulator.Map.RemoveReference(e, list, vm)
		}
	}
}
