//go:debug randseednop=0

package main

// The estate across restarts (a real vCenter persists its whole inventory).
//
// Deterministic model: govmomi 0.24 names a VM's files after its name, its
// BIOS uuid and instanceUuid after the .vmx path (SHA-1), its MACs after the
// BIOS uuid, morefs after a counter; what it randomises comes from
// math/rand (the host a cluster VM lands on, keys of devices added without
// one). The lab seeds math/rand with a constant, so the same flags give the
// same estate. (Go 1.19 seeds with 1 anyway; 1.20+ seeds randomly, 1.24+
// ignores rand.Seed unless randseednop=0: the go:debug line above.)
//
// -datastore-dir DIR: the datastores' files live in DIR/<datacenter>-<name>
// instead of 0.24's fresh temporary directories, and stay there across
// starts (the model's files are merged in, existing files win): the disks
// of restored VMs are still there, and summary.url is the same every start.
//
// -state-file FILE: every VM that is not part of the model (made through the
// API: CreateVM_Task, CloneVM_Task, RegisterVM_Task) is written to FILE
// (JSON; atomically: temp file + rename) whenever a VM or folder changes,
// and at start, before READY, re-created with its moref, name, folder, pool,
// host, config (instanceUuid, uuid, extraConfig, devices with their keys,
// MACs, port-group backings and disk files) and power state. A VM that
// cannot be re-created (its host or pool is gone, e.g. other model flags)
// is logged and kept in the file with the reason until it can be.

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"math/rand"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vmware/govmomi"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/simulator/esx"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
	"github.com/vmware/govmomi/vim25/xml"
)

var (
	stateFile    = flag.String("state-file", "", "keep the VMs made through the API in this JSON file and re-create them at start")
	datastoreDir = flag.String("datastore-dir", "", "keep the datastores' files in DIR/<datacenter>-<name> across starts (default: fresh temporary directories)")
)

func init() {
	rand.Seed(1)
}

const estateVersion = 1

type estateFile struct {
	Version int       `json:"version"`
	Note    string    `json:"note,omitempty"`
	VMs     []savedVM `json:"vms"`
}

// namedRef is an object the VM hangs off: moref and name (the moref is
// tried first, then the name).
type namedRef struct {
	Ref  string `json:"ref"`
	Name string `json:"name"`
}

type savedVM struct {
	Moref        string `json:"moref"`
	Name         string `json:"name"`
	InstanceUuid string `json:"instanceUuid"`
	Uuid         string `json:"uuid"`
	PowerState   string `json:"powerState"`
	Template     bool   `json:"template,omitempty"`
	// Datacenter and the folder names from its vm folder down ("vm", ...).
	Datacenter string     `json:"datacenter"`
	Folder     []namedRef `json:"folder"`
	Pool       namedRef   `json:"pool"`
	Host       namedRef   `json:"host"`
	// For readers and tests only (restore uses Config).
	ExtraConfig map[string]string `json:"extraConfig,omitempty"`
	MACs        []string          `json:"macs,omitempty"`
	Disks       []string          `json:"disks,omitempty"`
	// config as vim25 XML (xsi:type keeps the device and backing types).
	Config string `json:"config"`
	// Set when the last start could not re-create the VM.
	RestoreError string `json:"restoreError,omitempty"`
}

type estate struct {
	path  string
	model map[types.ManagedObjectReference]bool // VMs of the model: never written
	kick  chan struct{}
	done  chan struct{}

	mu         sync.Mutex
	last       []byte
	unrestored []savedVM
	stopped    bool // after the last write (stopEstate)
}

var theEstate *estate

// startEstate runs after the model is built and decorated, before READY:
// datastores to -datastore-dir, VMs of -state-file re-created, then every
// change written.
func startEstate(ctx context.Context, c *govmomi.Client) error {
	if *datastoreDir != "" {
		if err := keepDatastores(*datastoreDir); err != nil {
			return err
		}
	}
	if *stateFile == "" {
		return nil
	}
	e := &estate{path: *stateFile, model: map[types.ManagedObjectReference]bool{},
		kick: make(chan struct{}, 1), done: make(chan struct{})}
	for _, vm := range simulator.Map.All("VirtualMachine") {
		e.model[vm.Reference()] = true
	}
	saved, err := readEstate(e.path)
	if err != nil {
		return err
	}
	for _, s := range saved.VMs {
		if moref, err := restoreVM(ctx, c, s); err != nil {
			log.Printf("estate: VM %s (%s, instanceUuid %s) NOT restored: %v", s.Name, s.Moref, s.InstanceUuid, err)
			s.RestoreError = err.Error()
			e.unrestored = append(e.unrestored, s)
		} else {
			log.Printf("estate: VM %s restored as %s (instanceUuid %s, %s)", s.Name, moref, s.InstanceUuid, s.PowerState)
		}
	}
	if err := e.write(); err != nil {
		return err
	}
	simulator.Map.AddHandler(e)
	go e.run()
	theEstate = e
	return nil
}

// stopEstate writes the last state (on SIGTERM/SIGINT).
func stopEstate() {
	if theEstate == nil {
		return
	}
	simulator.Map.RemoveHandler(theEstate)
	close(theEstate.done)
	if err := theEstate.write(); err != nil {
		log.Printf("estate: %v", err)
	}
	theEstate.mu.Lock()
	theEstate.stopped = true
	theEstate.mu.Unlock()
}

// The registry calls these with objects locked: only note that something changed.
func (e *estate) Reference() types.ManagedObjectReference {
	return types.ManagedObjectReference{Type: "LabEstate", Value: "lab-estate"}
}

func (e *estate) note(ref types.ManagedObjectReference) {
	if ref.Type == "VirtualMachine" || ref.Type == "Folder" {
		select {
		case e.kick <- struct{}{}:
		default:
		}
	}
}

func (e *estate) PutObject(o mo.Reference)                              { e.note(o.Reference()) }
func (e *estate) UpdateObject(o mo.Reference, _ []types.PropertyChange) { e.note(o.Reference()) }
func (e *estate) RemoveObject(ref types.ManagedObjectReference)         { e.note(ref) }

func (e *estate) run() {
	for {
		select {
		case <-e.done:
			return
		case <-e.kick:
			// A task's changes come as several updates; let them land.
			time.Sleep(20 * time.Millisecond)
			if err := e.write(); err != nil {
				log.Printf("estate: %v", err)
			}
		}
	}
}

// write saves the API-made VMs if they differ from the last write.
func (e *estate) write() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.stopped {
		return nil
	}
	f := estateFile{Version: estateVersion, VMs: []savedVM{},
		Note: "vcsim-lab: VMs made through the API, re-created at start (lab/vsphere/README.md)"}
	live := map[string]bool{}
	var refs []types.ManagedObjectReference
	for _, o := range simulator.Map.All("VirtualMachine") {
		if !e.model[o.Reference()] {
			refs = append(refs, o.Reference())
		}
	}
	sort.Slice(refs, func(i, j int) bool { return refLess(refs[i].Value, refs[j].Value) })
	for _, ref := range refs {
		vm, ok := simulator.Map.Get(ref).(*simulator.VirtualMachine)
		if !ok {
			continue // destroyed meanwhile
		}
		s, err := saveVM(vm)
		if err != nil {
			log.Printf("estate: VM %s (%s) NOT saved: %v", vm.Name, ref.Value, err)
			continue
		}
		if s == nil {
			continue
		}
		live[s.InstanceUuid] = true
		f.VMs = append(f.VMs, *s)
	}
	for _, s := range e.unrestored {
		if !live[s.InstanceUuid] {
			f.VMs = append(f.VMs, s)
		}
	}
	b, err := encodeEstate(&f)
	if err != nil {
		return err
	}
	if bytes.Equal(b, e.last) {
		return nil
	}
	if err := writeAtomic(e.path, b); err != nil {
		return err
	}
	e.last = b
	return nil
}

// refLess orders morefs by type prefix, then number (vm-9 before vm-10).
func refLess(a, b string) bool {
	pa, na := splitRef(a)
	pb, nb := splitRef(b)
	if pa != pb {
		return pa < pb
	}
	if na != nb {
		return na < nb
	}
	return a < b
}

func splitRef(v string) (string, int) {
	i := strings.LastIndexByte(v, '-')
	if i < 0 {
		return v, -1
	}
	n, err := strconv.Atoi(v[i+1:])
	if err != nil {
		return v, -1
	}
	return v[:i], n
}

func writeAtomic(file string, b []byte) error {
	dir := filepath.Dir(file)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(file)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after a successful rename: no such file
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), file)
}

// encodeEstate: indented JSON, the config XML without \u003c escapes.
func encodeEstate(f *estateFile) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", " ")
	if err := enc.Encode(f); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func readEstate(file string) (*estateFile, error) {
	b, err := os.ReadFile(file)
	if os.IsNotExist(err) {
		return &estateFile{Version: estateVersion}, nil
	}
	if err != nil {
		return nil, err
	}
	var f estateFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if f.Version != estateVersion {
		return nil, fmt.Errorf("%s: version %d, this simulator reads %d", file, f.Version, estateVersion)
	}
	return &f, nil
}

func entityName(ref *types.ManagedObjectReference) namedRef {
	if ref == nil {
		return namedRef{}
	}
	n := namedRef{Ref: ref.Value}
	if e, ok := simulator.Map.Get(*ref).(mo.Entity); ok {
		n.Name = e.Entity().Name
	}
	return n
}

// saveVM reads one VM under its lock (nil: not placed yet).
func saveVM(vm *simulator.VirtualMachine) (*savedVM, error) {
	var s *savedVM
	var err error
	simulator.Map.WithLock(vm, func() {
		if vm.Config == nil || vm.Parent == nil || vm.Runtime.Host == nil {
			return
		}
		var b []byte
		b, err = xml.Marshal(vm.Config)
		if err != nil {
			return
		}
		s = &savedVM{Moref: vm.Self.Value, Name: vm.Name, InstanceUuid: vm.Config.InstanceUuid,
			Uuid: vm.Config.Uuid, PowerState: string(vm.Runtime.PowerState), Template: vm.Config.Template,
			Pool: entityName(vm.ResourcePool), Host: entityName(vm.Runtime.Host), Config: string(b)}
		for _, o := range vm.Config.ExtraConfig {
			v := o.GetOptionValue()
			if str, ok := v.Value.(string); ok && v.Key != "govcsim" {
				if s.ExtraConfig == nil {
					s.ExtraConfig = map[string]string{}
				}
				s.ExtraConfig[v.Key] = str
			}
		}
		for _, d := range vm.Config.Hardware.Device {
			switch d := d.(type) {
			case types.BaseVirtualEthernetCard:
				s.MACs = append(s.MACs, d.GetVirtualEthernetCard().MacAddress)
			case *types.VirtualDisk:
				if b, ok := d.Backing.(types.BaseVirtualDeviceFileBackingInfo); ok {
					s.Disks = append(s.Disks, b.GetVirtualDeviceFileBackingInfo().FileName)
				}
			}
		}
		// Folders up to the datacenter.
		for ref := vm.Parent; ref != nil; {
			o := simulator.Map.Get(*ref)
			if dc, ok := o.(*simulator.Datacenter); ok {
				s.Datacenter = dc.Name
				break
			}
			f, ok := o.(*simulator.Folder)
			if !ok {
				err = fmt.Errorf("parent %s is not a folder", ref.Value)
				return
			}
			s.Folder = append([]namedRef{{Ref: f.Self.Value, Name: f.Name}}, s.Folder...)
			ref = f.Parent
		}
	})
	return s, err
}

// restoreVM re-creates one saved VM through the API (CreateVM_Task on its
// folder, pool and host), then gives it its moref and power state back.
func restoreVM(ctx context.Context, c *govmomi.Client, s savedVM) (string, error) {
	var cfg types.VirtualMachineConfigInfo
	dec := xml.NewDecoder(strings.NewReader(s.Config))
	dec.TypeFunc = types.TypeFunc()
	if err := dec.Decode(&cfg); err != nil {
		return "", fmt.Errorf("config: %w", err)
	}
	host, ok := findEntity("HostSystem", s.Host).(*simulator.HostSystem)
	if !ok {
		return "", fmt.Errorf("host %s (%s) is gone", s.Host.Name, s.Host.Ref)
	}
	pool := findEntity("ResourcePool", s.Pool)
	if pool == nil {
		pool = findEntity("VirtualApp", s.Pool)
	}
	if pool == nil {
		// The root pool of the host's cluster or standalone host.
		owner := simulator.Map.Get(*host.Parent)
		switch cr := owner.(type) {
		case *simulator.ClusterComputeResource:
			pool = simulator.Map.Get(*cr.ResourcePool).(mo.Entity)
		case *mo.ComputeResource:
			pool = simulator.Map.Get(*cr.ResourcePool).(mo.Entity)
		}
		if pool == nil {
			return "", fmt.Errorf("resource pool %s (%s) is gone", s.Pool.Name, s.Pool.Ref)
		}
		log.Printf("estate: VM %s: resource pool %s (%s) is gone; using %s", s.Name, s.Pool.Name, s.Pool.Ref, pool.Reference().Value)
	}
	folder, err := vmFolder(ctx, c, s)
	if err != nil {
		return "", err
	}
	// Rename_Task changes the entity's name only (0.24): the name is s.Name.
	cfg.Name = s.Name
	spec, err := restoreSpec(c, &cfg)
	if err != nil {
		return "", err
	}
	hostRef := host.Self
	task, err := folder.CreateVM(ctx, *spec, object.NewResourcePool(c.Client, pool.Reference()), object.NewHostSystem(c.Client, hostRef))
	if err != nil {
		return "", err
	}
	info, err := task.WaitForResult(ctx, nil)
	if err != nil {
		return "", fmt.Errorf("CreateVM_Task: %w", err)
	}
	ref := info.Result.(types.ManagedObjectReference)
	vm := object.NewVirtualMachine(c.Client, ref)
	if cfg.Template {
		if err := vm.MarkAsTemplate(ctx); err != nil {
			return ref.Value, err
		}
	}
	switch types.VirtualMachinePowerState(s.PowerState) {
	case types.VirtualMachinePowerStatePoweredOn, types.VirtualMachinePowerStateSuspended:
		if err := waitTask(vm.PowerOn(ctx)); err != nil {
			return ref.Value, fmt.Errorf("power on: %w", err)
		}
		if s.PowerState == string(types.VirtualMachinePowerStateSuspended) {
			if err := waitTask(vm.Suspend(ctx)); err != nil {
				return ref.Value, fmt.Errorf("suspend: %w", err)
			}
		}
	}
	if s.Moref != "" && s.Moref != ref.Value {
		old := types.ManagedObjectReference{Type: "VirtualMachine", Value: s.Moref}
		if err := rekeyVM(ref, old); err != nil {
			log.Printf("estate: VM %s keeps moref %s (was %s): %v", s.Name, ref.Value, s.Moref, err)
		} else {
			ref = old
		}
	}
	return ref.Value, nil
}

func waitTask(t *object.Task, err error) error {
	if err != nil {
		return err
	}
	return t.Wait(context.Background())
}

// findEntity: the object of that type with that moref and name, else the
// only one of that type with that name.
func findEntity(kind string, n namedRef) mo.Entity {
	if n.Ref != "" {
		if e, ok := simulator.Map.Get(types.ManagedObjectReference{Type: kind, Value: n.Ref}).(mo.Entity); ok && e.Entity().Name == n.Name {
			return e
		}
	}
	var found []mo.Entity
	for _, e := range simulator.Map.All(kind) {
		if e.Entity().Name == n.Name {
			found = append(found, e)
		}
	}
	if len(found) == 1 {
		return found[0]
	}
	return nil
}

// vmFolder finds the saved folder, creating the folders that are missing
// (an API-made folder, e.g. Cinder's "OpenStack/Project (…)/Volumes").
func vmFolder(ctx context.Context, c *govmomi.Client, s savedVM) (*object.Folder, error) {
	var dc *simulator.Datacenter
	for _, e := range simulator.Map.All("Datacenter") {
		if e.Entity().Name == s.Datacenter {
			dc = e.(*simulator.Datacenter)
		}
	}
	if dc == nil {
		return nil, fmt.Errorf("datacenter %q is gone", s.Datacenter)
	}
	if len(s.Folder) == 0 {
		return nil, fmt.Errorf("no folder saved")
	}
	cur := dc.VmFolder
	for _, want := range s.Folder[1:] { // [0] is the datacenter's vm folder
		f := simulator.Map.Get(cur).(*simulator.Folder)
		var next *types.ManagedObjectReference
		for _, child := range f.ChildEntity {
			if child.Type != "Folder" {
				continue
			}
			if e, ok := simulator.Map.Get(child).(mo.Entity); ok && e.Entity().Name == want.Name {
				child := child
				next = &child
				break
			}
		}
		if next == nil {
			nf, err := object.NewFolder(c.Client, cur).CreateFolder(ctx, want.Name)
			if err != nil {
				return nil, fmt.Errorf("folder %s: %w", want.Name, err)
			}
			r := nf.Reference()
			next = &r
		}
		cur = *next
	}
	return object.NewFolder(c.Client, cur), nil
}

// restoreSpec: a CreateVM spec that gives back the saved config (the
// defaults every simulated VM gets, such as the IDE controllers, are left
// out as 0.24's CloneVM_Task does).
func restoreSpec(c *govmomi.Client, cfg *types.VirtualMachineConfigInfo) (*types.VirtualMachineConfigSpec, error) {
	files := cfg.Files
	spec := &types.VirtualMachineConfigSpec{
		Name: cfg.Name, GuestId: cfg.GuestId, Annotation: cfg.Annotation, Version: cfg.Version,
		Uuid: cfg.Uuid, InstanceUuid: cfg.InstanceUuid, Firmware: cfg.Firmware,
		NumCPUs: cfg.Hardware.NumCPU, NumCoresPerSocket: cfg.Hardware.NumCoresPerSocket,
		MemoryMB: int64(cfg.Hardware.MemoryMB), Files: &files, ManagedBy: cfg.ManagedBy,
		BootOptions: cfg.BootOptions, Tools: cfg.Tools, Flags: &cfg.Flags,
		CpuAllocation: cfg.CpuAllocation, MemoryAllocation: cfg.MemoryAllocation,
		LatencySensitivity: cfg.LatencySensitivity, ChangeTrackingEnabled: cfg.ChangeTrackingEnabled,
		NestedHVEnabled: cfg.NestedHVEnabled, CpuHotAddEnabled: cfg.CpuHotAddEnabled,
		MemoryHotAddEnabled: cfg.MemoryHotAddEnabled,
	}
	for _, o := range cfg.ExtraConfig {
		if o.GetOptionValue().Key != "govcsim" { // every simulated VM gets it
			spec.ExtraConfig = append(spec.ExtraConfig, o)
		}
	}
	// The placeholder files CreateVM_Task makes again (it refuses to
	// overwrite them); disks stay.
	ds, err := datastoreDir0(files.VmPathName)
	if err != nil {
		return nil, err
	}
	var p object.DatastorePath
	p.FromString(files.VmPathName)
	vmx := filepath.Join(ds, p.Path)
	if path.Ext(p.Path) == ".vmx" {
		for _, f := range []string{vmx, filepath.Join(filepath.Dir(vmx), cfg.Name+".nvram"), filepath.Join(filepath.Dir(vmx), "vmware.log")} {
			_ = os.Remove(f)
		}
	}
	defaults := object.VirtualDeviceList(esx.VirtualDevice)
	devices := object.VirtualDeviceList(cfg.Hardware.Device)
	var controllers, others []types.BaseVirtualDeviceConfigSpec
	for _, d := range devices {
		if defaults.Find(devices.Name(d)) != nil {
			continue
		}
		ds := &types.VirtualDeviceConfigSpec{Operation: types.VirtualDeviceConfigSpecOperationAdd, Device: d}
		if disk, ok := d.(*types.VirtualDisk); ok {
			if b, ok := disk.Backing.(types.BaseVirtualDeviceFileBackingInfo); ok {
				name := b.GetVirtualDeviceFileBackingInfo().FileName
				if !datastoreFileExists(name) {
					log.Printf("estate: VM %s: disk %s is missing; made again (empty)", cfg.Name, name)
					ds.FileOperation = types.VirtualDeviceConfigSpecFileOperationCreate
				}
			}
		}
		if _, ok := d.(types.BaseVirtualController); ok {
			controllers = append(controllers, ds)
		} else {
			others = append(others, ds)
		}
	}
	spec.DeviceChange = append(controllers, others...)
	return spec, nil
}

// datastoreDir0: the local directory of the datastore a "[ds] path" names.
func datastoreDir0(dsPath string) (string, error) {
	var p object.DatastorePath
	if !p.FromString(dsPath) {
		return "", fmt.Errorf("bad datastore path %q", dsPath)
	}
	for _, e := range simulator.Map.All("Datastore") {
		if ds := e.(*simulator.Datastore); ds.Name == p.Datastore {
			return ds.Info.GetDatastoreInfo().Url, nil
		}
	}
	return "", fmt.Errorf("datastore %q is gone", p.Datastore)
}

func datastoreFileExists(dsPath string) bool {
	dir, err := datastoreDir0(dsPath)
	if err != nil {
		return false
	}
	var p object.DatastorePath
	p.FromString(dsPath)
	_, err = os.Stat(filepath.Join(dir, p.Path))
	return err == nil
}

// rekeyVM gives a just-created VM the moref it had before the restart (Nova
// keeps VM morefs in memory: a nova-compute that outlives a simulator
// restart keeps finding its VMs). Before READY: nothing watches yet.
func rekeyVM(cur, old types.ManagedObjectReference) error {
	if simulator.Map.Get(old) != nil {
		return fmt.Errorf("%s is taken", old.Value)
	}
	vm := simulator.Map.Get(cur).(*simulator.VirtualMachine)
	simulator.Map.Remove(cur)
	vm.Self = old
	simulator.Map.Put(vm)
	swap := func(o mo.Reference, refs []types.ManagedObjectReference) {
		simulator.Map.WithLock(o, func() {
			for i := range refs {
				if refs[i] == cur {
					refs[i] = old
				}
			}
		})
	}
	f := simulator.Map.Get(*vm.Parent).(*simulator.Folder)
	swap(f, f.ChildEntity)
	h := simulator.Map.Get(*vm.Runtime.Host).(*simulator.HostSystem)
	swap(h, h.Vm)
	for _, ref := range vm.Datastore {
		ds := simulator.Map.Get(ref).(*simulator.Datastore)
		swap(ds, ds.Vm)
	}
	switch p := simulator.Map.Get(*vm.ResourcePool).(type) {
	case *simulator.ResourcePool:
		swap(p, p.Vm)
	case *simulator.VirtualApp:
		swap(p, p.Vm)
	}
	// Later objects must not get this moref again: move the counter past it.
	if _, n := splitRef(old.Value); n > 0 {
		for {
			e := simulator.Map.NewEntity(&mo.Folder{})
			if _, m := splitRef(e.Entity().Self.Value); m >= n {
				break
			}
		}
	}
	return nil
}

// keepDatastores moves each datastore's files to dir/<datacenter>-<name>
// (merged: files already there win) and points the datastore at it.
func keepDatastores(dir string) error {
	for _, e := range simulator.Map.All("Datastore") {
		ds := e.(*simulator.Datastore)
		info := ds.Info.GetDatastoreInfo()
		dc := ""
		for ref := ds.Parent; ref != nil; {
			o := simulator.Map.Get(*ref).(mo.Entity)
			if _, ok := o.(*simulator.Datacenter); ok {
				dc = o.Entity().Name
				break
			}
			ref = o.Entity().Parent
		}
		dst, err := filepath.Abs(filepath.Join(dir, dc+"-"+ds.Name))
		if err != nil {
			return err
		}
		if info.Url == dst {
			continue
		}
		if err := os.MkdirAll(dst, 0o700); err != nil {
			return err
		}
		if err := mergeDir(info.Url, dst); err != nil {
			return fmt.Errorf("datastore %s: %w", ds.Name, err)
		}
		if err := os.RemoveAll(info.Url); err != nil {
			return err
		}
		simulator.Map.WithLock(ds, func() {
			info.Url = dst
			ds.Summary.Url = dst
			if l, ok := ds.Info.(*types.LocalDatastoreInfo); ok {
				l.Path = dst
			}
		})
		// 0.24 names a local datastore "<path>@<folder>": the new path, as
		// if the model had made it there.
		if i := strings.LastIndexByte(ds.Self.Value, '@'); i > 0 {
			rekeyDatastore(ds, types.ManagedObjectReference{Type: ds.Self.Type, Value: dst + ds.Self.Value[i:]})
		}
	}
	return nil
}

// rekeyDatastore replaces the datastore's moref wherever the inventory
// holds it: every entity (folders, datacenter, compute resources, hosts,
// VMs incl. their disk backings and storage usage) and the hosts' datastore
// systems and browsers. Before READY: nothing watches yet.
func rekeyDatastore(ds *simulator.Datastore, ref types.ManagedObjectReference) {
	old := ds.Self
	if simulator.Map.Get(ref) != nil {
		return
	}
	holders := []mo.Reference{}
	for _, e := range simulator.Map.All("") {
		holders = append(holders, e)
		if h, ok := e.(*simulator.HostSystem); ok {
			if h.ConfigManager.DatastoreSystem != nil {
				holders = append(holders, simulator.Map.Get(*h.ConfigManager.DatastoreSystem))
			}
			holders = append(holders, simulator.Map.Get(h.DatastoreBrowser))
		}
		if d, ok := e.(*simulator.Datastore); ok {
			holders = append(holders, simulator.Map.Get(d.Browser))
		}
	}
	simulator.Map.Remove(old)
	seen := map[seenKey]bool{}
	for _, h := range holders {
		if h != nil {
			swapRef(reflect.ValueOf(h), old, ref, seen)
		}
	}
	ds.Self = ref // if no holder pointed at it
	simulator.Map.Put(ds)
}

var refType = reflect.TypeOf(types.ManagedObjectReference{})

type seenKey struct {
	p uintptr
	t reflect.Type
}

// swapRef sets every ManagedObjectReference equal to old below v to ref
// (exported fields, slices, arrays, pointers, interfaces holding pointers).
func swapRef(v reflect.Value, old, ref types.ManagedObjectReference, seen map[seenKey]bool) {
	switch v.Kind() {
	case reflect.Ptr:
		// A pointer to an entity's Self (Parent, Summary.Vm) has the
		// entity's address: seen is per address and type.
		k := seenKey{v.Pointer(), v.Type()}
		if v.IsNil() || seen[k] {
			return
		}
		seen[k] = true
		swapRef(v.Elem(), old, ref, seen)
	case reflect.Interface:
		if !v.IsNil() && v.Elem().Kind() == reflect.Ptr {
			swapRef(v.Elem(), old, ref, seen)
		}
	case reflect.Struct:
		if v.Type() == refType {
			if v.CanSet() && v.Interface().(types.ManagedObjectReference) == old {
				v.Set(reflect.ValueOf(ref))
			}
			return
		}
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() {
				swapRef(v.Field(i), old, ref, seen)
			}
		}
	case reflect.Slice, reflect.Array:
		for i := 0; i < v.Len(); i++ {
			swapRef(v.Index(i), old, ref, seen)
		}
	}
}

// mergeDir moves src's entries into dst unless dst has them.
func mergeDir(src, dst string) error {
	entries, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	for _, en := range entries {
		s, d := filepath.Join(src, en.Name()), filepath.Join(dst, en.Name())
		st, err := os.Lstat(d)
		switch {
		case os.IsNotExist(err):
			if err := os.Rename(s, d); err != nil {
				return err
			}
		case err != nil:
			return err
		case st.IsDir() && en.IsDir():
			if err := mergeDir(s, d); err != nil {
				return err
			}
		}
	}
	return nil
}
