package main

// ExtensionManager (govmomi added one to its simulator in v0.37; 0.24's
// service content names ExtensionManager but nothing answers for it).
//
// Nova's VMwareVCDriver constructor calls FindExtension("org.openstack.compute")
// and RegisterExtension when it is absent (_register_openstack_extension);
// Cinder's VMDK driver does the same with its own key.

import (
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

type labExtensionManager struct {
	mo.ExtensionManager
}

func installExtensionManager() {
	ref := serviceContent().ExtensionManager
	if ref == nil {
		return // an ESX model has none
	}
	simulator.Map.Put(&labExtensionManager{mo.ExtensionManager{Self: *ref}})
}

// FindExtension: the extension with that key, or no returnval.
func (m *labExtensionManager) FindExtension(req *types.FindExtension) soap.HasFault {
	body := &methods.FindExtensionBody{Res: new(types.FindExtensionResponse)}
	for i := range m.ExtensionList {
		if m.ExtensionList[i].Key == req.ExtensionKey {
			x := m.ExtensionList[i]
			body.Res.Returnval = &x
		}
	}
	return body
}

// RegisterExtension: InvalidArgument for a key already registered (as vCenter).
func (m *labExtensionManager) RegisterExtension(req *types.RegisterExtension) soap.HasFault {
	for _, x := range m.ExtensionList {
		if x.Key == req.Extension.Key {
			return &methods.RegisterExtensionBody{Fault_: simulator.Fault("", &types.InvalidArgument{InvalidProperty: "extension.key"})}
		}
	}
	m.ExtensionList = append(m.ExtensionList, req.Extension)
	simulator.Map.Update(m, []types.PropertyChange{{Name: "extensionList", Val: m.ExtensionList}})
	return &methods.RegisterExtensionBody{Res: new(types.RegisterExtensionResponse)}
}

// UpdateExtension: replaces the registered extension; NotFound when absent.
func (m *labExtensionManager) UpdateExtension(req *types.UpdateExtension) soap.HasFault {
	for i, x := range m.ExtensionList {
		if x.Key == req.Extension.Key {
			m.ExtensionList[i] = req.Extension
			simulator.Map.Update(m, []types.PropertyChange{{Name: "extensionList", Val: m.ExtensionList}})
			return &methods.UpdateExtensionBody{Res: new(types.UpdateExtensionResponse)}
		}
	}
	return &methods.UpdateExtensionBody{Fault_: simulator.Fault("", new(types.NotFound))}
}

// UnregisterExtension: NotFound when absent.
func (m *labExtensionManager) UnregisterExtension(req *types.UnregisterExtension) soap.HasFault {
	for i, x := range m.ExtensionList {
		if x.Key == req.ExtensionKey {
			m.ExtensionList = append(m.ExtensionList[:i:i], m.ExtensionList[i+1:]...)
			simulator.Map.Update(m, []types.PropertyChange{{Name: "extensionList", Val: m.ExtensionList}})
			return &methods.UnregisterExtensionBody{Res: new(types.UnregisterExtensionResponse)}
		}
	}
	return &methods.UnregisterExtensionBody{Fault_: simulator.Fault("", new(types.NotFound))}
}
