package main

// runtime.bootTime (installBootTimes).
//
// vCenter sets a VM's runtime.bootTime when it powers on and clears it when
// it powers off; 0.24 never sets it. It is the lab's witness that a VM was
// not restarted (tests compare it before and after adoption), so a registry
// handler keeps it as vCenter does, whatever changed the power state. A VM
// restored by the estate at start booted then.

import (
	"time"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

type bootTimes struct {
	mo.ManagedEntity
}

func installBootTimes() {
	h := &bootTimes{}
	h.Self = types.ManagedObjectReference{Type: "LabBootTimes", Value: "lab-boot-times"}
	now := time.Now()
	for _, e := range simulator.Map.All("VirtualMachine") {
		if vm, ok := e.(*simulator.VirtualMachine); ok && vm.Runtime.PowerState == types.VirtualMachinePowerStatePoweredOn && vm.Runtime.BootTime == nil {
			simulator.Map.WithLock(vm, func() { vm.Runtime.BootTime = &now })
		}
	}
	simulator.Map.AddHandler(h)
}

func (h *bootTimes) PutObject(mo.Reference)                    {}
func (h *bootTimes) RemoveObject(types.ManagedObjectReference) {}

func (h *bootTimes) UpdateObject(obj mo.Reference, changes []types.PropertyChange) {
	vm, ok := obj.(*mo.VirtualMachine)
	if !ok {
		return
	}
	for _, c := range changes {
		if c.Name != "runtime.powerState" {
			continue
		}
		switch c.Val {
		case types.VirtualMachinePowerStatePoweredOn:
			if vm.Runtime.BootTime == nil { // not on a repeated "on"
				now := time.Now()
				simulator.Map.Update(vm, []types.PropertyChange{{Name: "runtime.bootTime", Val: &now}})
			}
		case types.VirtualMachinePowerStatePoweredOff:
			// Not through Map.Update: 0.24's property assignment panics on a nil value.
			vm.Runtime.BootTime = nil
		}
	}
}
