package main

// HostDatastoreBrowser.SearchDatastore_Task without a searchSpec.
//
// The spec is optional (vCenter then lists every file); Nova omits it when
// it lists the image cache's folders (ds_util.get_sub_folders, run at every
// spawn once the cache exists). govmomi 0.24 dereferences the nil spec and
// the request dies with a panic. labDatastoreBrowser stands in for the
// browsers of the datastores and hosts that exist at start (datastores
// added later keep the stock browser).

import (
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

type labDatastoreBrowser struct {
	*simulator.HostDatastoreBrowser
}

func everyFile(spec *types.HostDatastoreBrowserSearchSpec) *types.HostDatastoreBrowserSearchSpec {
	if spec == nil {
		spec = &types.HostDatastoreBrowserSearchSpec{}
	}
	if len(spec.MatchPattern) == 0 {
		spec.MatchPattern = []string{"*"}
	}
	return spec
}

func (b *labDatastoreBrowser) SearchDatastoreTask(s *types.SearchDatastore_Task) soap.HasFault {
	s.SearchSpec = everyFile(s.SearchSpec)
	return b.HostDatastoreBrowser.SearchDatastoreTask(s)
}

func (b *labDatastoreBrowser) SearchDatastoreSubFoldersTask(s *types.SearchDatastoreSubFolders_Task) soap.HasFault {
	s.SearchSpec = everyFile(s.SearchSpec)
	return b.HostDatastoreBrowser.SearchDatastoreSubFoldersTask(s)
}

func installDatastoreBrowsers() {
	var refs []types.ManagedObjectReference
	for _, e := range simulator.Map.All("Datastore") {
		refs = append(refs, e.(*simulator.Datastore).Browser)
	}
	for _, e := range simulator.Map.All("HostSystem") {
		if h := e.(*simulator.HostSystem); h.DatastoreBrowser.Value != "" {
			refs = append(refs, h.DatastoreBrowser)
		}
	}
	for _, ref := range refs {
		if b, ok := simulator.Map.Get(ref).(*simulator.HostDatastoreBrowser); ok {
			simulator.Map.Put(&labDatastoreBrowser{b})
		}
	}
}
