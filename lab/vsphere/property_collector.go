package main

// The PropertyCollector as oslo.vmware (Nova, Cinder) uses it.
//
// govmomi 0.24's collector ignores TraversalSpec.type: it follows a spec's
// path on any object that has a field of that name. oslo.vmware's recursive
// inventory traversal (vim_util.build_recursive_traversal_spec) has
// rpToVm (ResourcePool.vm) and crToRp (ComputeResource.resourcePool):
// applied to a VirtualMachine, "resourcePool" leads back to the pool, whose
// "vm" leads to the VM again, and the simulator recurses until its stack
// overflows. labPropertyCollector walks the selection specs itself, honouring
// type (and subtypes), then hands the stock collector a flat object list.
//
// It also answers indexed property paths, e.g.
// config.extraConfig["nvp.vm-uuid"] (Nova) or config.hardware.device[2000]:
// the element of the array property whose key matches, as a real vCenter
// does; the property is left out when no element has that key.

import (
	"path"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// labPropertyCollector embeds the stock collector by value: the simulator
// makes each session's view of the root collector with
// reflect.New(type of the registered one).
type labPropertyCollector struct {
	simulator.PropertyCollector
}

func installPropertyCollector() {
	ref := serviceContent().PropertyCollector
	pc := &labPropertyCollector{}
	pc.Self = ref
	simulator.Map.Put(pc)
}

// CreatePropertyCollector: collectors a client creates get the same fixes.
func (pc *labPropertyCollector) CreatePropertyCollector(ctx *simulator.Context, c *types.CreatePropertyCollector) soap.HasFault {
	cpc := &labPropertyCollector{}
	cpc.Self.Type = "PropertyCollector" // else the session names it after the Go type
	return &methods.CreatePropertyCollectorBody{
		Res: &types.CreatePropertyCollectorResponse{Returnval: ctx.Session.Put(cpc).Reference()},
	}
}

func (pc *labPropertyCollector) RetrievePropertiesEx(ctx *simulator.Context, r *types.RetrievePropertiesEx) soap.HasFault {
	flat, indexed, fault := flatten(ctx, r.SpecSet)
	if fault != nil {
		return &methods.RetrievePropertiesExBody{Fault_: simulator.Fault("", fault)}
	}
	res := pc.PropertyCollector.RetrievePropertiesEx(ctx, &types.RetrievePropertiesEx{
		This: r.This, SpecSet: flat, Options: r.Options,
	})
	body := res.(*methods.RetrievePropertiesExBody)
	if body.Res != nil && body.Res.Returnval != nil && len(indexed) != 0 {
		for i := range body.Res.Returnval.Objects {
			resolveIndexed(&body.Res.Returnval.Objects[i], indexed)
		}
	}
	if body.Res != nil && body.Res.Returnval != nil && len(body.Res.Returnval.Objects) == 0 {
		// A real vCenter answers an empty result with no returnval at all.
		body.Res.Returnval = nil
	}
	return body
}

// RetrieveProperties (deprecated; pyVmomi and govmomi still use it).
func (pc *labPropertyCollector) RetrieveProperties(ctx *simulator.Context, r *types.RetrieveProperties) soap.HasFault {
	body := &methods.RetrievePropertiesBody{}
	res := pc.RetrievePropertiesEx(ctx, &types.RetrievePropertiesEx{This: r.This, SpecSet: r.SpecSet})
	if res.Fault() != nil {
		body.Fault_ = res.Fault()
		return body
	}
	body.Res = &types.RetrievePropertiesResponse{}
	if rv := res.(*methods.RetrievePropertiesExBody).Res.Returnval; rv != nil {
		body.Res.Returnval = rv.Objects
	}
	return body
}

// indexedPath is one requested path such as config.extraConfig["nvp.vm-uuid"].
type indexedPath struct {
	name   string      // as requested
	base   string      // config.extraConfig
	key    interface{} // "nvp.vm-uuid" or int32(2000)
	item   string      // a sub-path after the index ("" for none)
	asked  bool        // base was requested too
	kind   string      // the PropertySpec type it was asked for
	hasKey bool
}

var indexRe = regexp.MustCompile(`^([A-Za-z0-9_.]+)\[(?:"([^"]*)"|(-?[0-9]+))\](?:\.([A-Za-z0-9_.]+))?$`)

func parseIndexed(p string) (indexedPath, bool) {
	m := indexRe.FindStringSubmatch(p)
	if m == nil {
		return indexedPath{}, false
	}
	ip := indexedPath{name: p, base: m[1], item: m[4], hasKey: true}
	if strings.Contains(p, `["`) {
		ip.key = m[2]
	} else {
		n, err := strconv.ParseInt(m[3], 10, 32)
		if err != nil {
			return indexedPath{}, false
		}
		ip.key = int32(n)
	}
	return ip, true
}

// flatten returns filter specs whose object sets list every object the
// selection specs reach (no select sets left), and the indexed paths it
// replaced by their array property.
func flatten(ctx *simulator.Context, specs []types.PropertyFilterSpec) ([]types.PropertyFilterSpec, []indexedPath, types.BaseMethodFault) {
	var out []types.PropertyFilterSpec
	var indexed []indexedPath
	for _, spec := range specs {
		fs := types.PropertyFilterSpec{ReportMissingObjectsInResults: spec.ReportMissingObjectsInResults}
		for _, ps := range spec.PropSet {
			plain := map[string]bool{}
			var paths []string
			for _, p := range ps.PathSet {
				if !strings.Contains(p, "[") {
					plain[p] = true
				}
			}
			for _, p := range ps.PathSet {
				ip, ok := parseIndexed(p)
				if !ok {
					paths = append(paths, p)
					continue
				}
				ip.asked = plain[ip.base]
				ip.kind = ps.Type
				indexed = append(indexed, ip)
				if !plain[ip.base] {
					plain[ip.base] = true
					paths = append(paths, ip.base)
				}
			}
			ps.PathSet = paths
			fs.PropSet = append(fs.PropSet, ps)
		}
		named := map[string]*types.TraversalSpec{}
		for _, o := range spec.ObjectSet {
			collectNamed(o.SelectSet, named)
		}
		for _, o := range spec.ObjectSet {
			rval, ok := lookup(ctx, o.Obj)
			if !ok || len(o.SelectSet) == 0 {
				fs.ObjectSet = append(fs.ObjectSet, types.ObjectSpec{Obj: o.Obj, Skip: o.Skip})
				continue
			}
			if o.Skip == nil || !*o.Skip {
				fs.ObjectSet = append(fs.ObjectSet, types.ObjectSpec{Obj: o.Obj})
			}
			w := &walker{ctx: ctx, named: named, seen: map[walkKey]bool{}, found: map[types.ManagedObjectReference]bool{}}
			if fault := w.walk(o.Obj, rval, o.SelectSet); fault != nil {
				return nil, nil, fault
			}
			for _, ref := range w.refs {
				fs.ObjectSet = append(fs.ObjectSet, types.ObjectSpec{Obj: ref})
			}
		}
		out = append(out, fs)
	}
	return out, indexed, nil
}

func collectNamed(set []types.BaseSelectionSpec, named map[string]*types.TraversalSpec) {
	for _, s := range set {
		if ts, ok := s.(*types.TraversalSpec); ok {
			if ts.Name != "" {
				if _, dup := named[ts.Name]; dup {
					continue
				}
				named[ts.Name] = ts
			}
			collectNamed(ts.SelectSet, named)
		}
	}
}

type walkKey struct {
	obj  types.ManagedObjectReference
	spec *types.TraversalSpec
}

type walker struct {
	ctx   *simulator.Context
	named map[string]*types.TraversalSpec
	seen  map[walkKey]bool
	found map[types.ManagedObjectReference]bool
	refs  []types.ManagedObjectReference
}

func (w *walker) walk(ref types.ManagedObjectReference, rval reflect.Value, set []types.BaseSelectionSpec) types.BaseMethodFault {
	for _, s := range set {
		ts, ok := s.(*types.TraversalSpec)
		if !ok {
			ts = w.named[s.GetSelectionSpec().Name]
			if ts == nil {
				return &types.InvalidArgument{InvalidProperty: "selectSet"}
			}
		}
		if !isA(ref, rval, ts.Type) {
			continue
		}
		k := walkKey{ref, ts}
		if w.seen[k] {
			continue
		}
		w.seen[k] = true
		for _, next := range refsAt(rval, ts.Path) {
			nval, exists := lookup(w.ctx, next)
			if !exists {
				// 0.24 leaves a destroyed VM in its host's and resource pool's
				// vm lists; handing it to the stock collector fails the whole
				// call (ManagedObjectNotFound). vCenter's traversal only reaches
				// objects that exist.
				continue
			}
			if ts.Skip == nil || !*ts.Skip {
				if !w.found[next] {
					w.found[next] = true
					w.refs = append(w.refs, next)
				}
			}
			if fault := w.walk(next, nval, ts.SelectSet); fault != nil {
				return fault
			}
		}
	}
	return nil
}

// isA: the object is of type kind or a subtype (ClusterComputeResource is a
// ComputeResource, every inventory object a ManagedEntity).
func isA(ref types.ManagedObjectReference, rval reflect.Value, kind string) bool {
	if kind == "" || ref.Type == kind || rval.Type().Name() == kind {
		return true
	}
	f, ok := rval.Type().FieldByName(kind)
	return ok && f.Anonymous
}

// lookup is the simulator's getObject: the session's view first, then the
// inventory; the result is the embedded mo struct.
func lookup(ctx *simulator.Context, ref types.ManagedObjectReference) (reflect.Value, bool) {
	var obj mo.Reference
	if ctx.Session != nil {
		obj = ctx.Session.Get(ref)
	} else {
		obj = ctx.Map.Get(ref)
	}
	if obj == nil {
		return reflect.Value{}, false
	}
	if o, ok := obj.(interface{ Get() mo.Reference }); ok {
		obj = o.Get()
	}
	rval := reflect.ValueOf(obj).Elem()
	for path.Base(rval.Type().PkgPath()) != "mo" {
		if rval.Kind() != reflect.Struct || rval.NumField() == 0 {
			return reflect.Value{}, false
		}
		rval = rval.Field(0)
		if rval.Kind() == reflect.Ptr {
			if rval.IsNil() {
				return reflect.Value{}, false
			}
			rval = rval.Elem()
		}
	}
	return rval, true
}

// refsAt returns the references at a (dotted) property path.
func refsAt(rval reflect.Value, p string) []types.ManagedObjectReference {
	v, ok := valueAt(rval, p)
	if !ok {
		return nil
	}
	switch x := v.Interface().(type) {
	case types.ManagedObjectReference:
		return []types.ManagedObjectReference{x}
	case *types.ManagedObjectReference:
		if x != nil {
			return []types.ManagedObjectReference{*x}
		}
	case []types.ManagedObjectReference:
		return x
	}
	return nil
}

func valueAt(rval reflect.Value, p string) (reflect.Value, bool) {
	for _, name := range strings.Split(p, ".") {
		for rval.Kind() == reflect.Interface || rval.Kind() == reflect.Ptr {
			if rval.IsNil() {
				return reflect.Value{}, false
			}
			rval = rval.Elem()
		}
		if rval.Kind() != reflect.Struct {
			return reflect.Value{}, false
		}
		rval = rval.FieldByName(strings.ToUpper(name[:1]) + name[1:])
		if !rval.IsValid() {
			return reflect.Value{}, false
		}
	}
	return rval, true
}

// resolveIndexed replaces each requested array property by the element the
// indexed path names (or nothing) and drops the array when only the index
// was asked for.
func resolveIndexed(oc *types.ObjectContent, indexed []indexedPath) {
	props := map[string]int{}
	for i, p := range oc.PropSet {
		props[p.Name] = i
	}
	drop := map[string]bool{}
	var add []types.DynamicProperty
	var missing []types.MissingProperty
	for _, ip := range indexed {
		if ip.kind != oc.Obj.Type && ip.kind != "" && !typeMatches(oc.Obj, ip.kind) {
			continue
		}
		if !ip.asked {
			drop[ip.base] = true
		}
		for _, m := range oc.MissingSet {
			if m.Path == ip.base {
				// The base's own fault: NotAuthenticated (no session, e.g.
				// after a simulator restart) makes oslo.vmware log in again.
				fault := m.Fault
				if _, ok := fault.Fault.(*types.InvalidProperty); ok || fault.Fault == nil {
					fault = types.LocalizedMethodFault{Fault: &types.InvalidProperty{Name: ip.name}}
				}
				missing = append(missing, types.MissingProperty{Path: ip.name, Fault: fault})
			}
		}
		i, ok := props[ip.base]
		if !ok {
			continue
		}
		if val, ok := element(oc.PropSet[i].Val, ip); ok {
			add = append(add, types.DynamicProperty{Name: ip.name, Val: val})
		}
	}
	var ps []types.DynamicProperty
	for _, p := range oc.PropSet {
		if !drop[p.Name] {
			ps = append(ps, p)
		}
	}
	oc.PropSet = append(ps, add...)
	var ms []types.MissingProperty
	for _, m := range oc.MissingSet {
		if !drop[m.Path] {
			ms = append(ms, m)
		}
	}
	oc.MissingSet = append(ms, missing...)
}

func typeMatches(ref types.ManagedObjectReference, kind string) bool {
	obj := simulator.Map.Get(ref)
	if obj == nil {
		return false
	}
	rval := reflect.ValueOf(obj).Elem()
	_, ok := rval.Type().FieldByName(kind)
	return ok
}

// element finds the item whose Key equals ip.key in an ArrayOf* value.
func element(val types.AnyType, ip indexedPath) (types.AnyType, bool) {
	rval := reflect.ValueOf(val)
	for rval.Kind() == reflect.Ptr || rval.Kind() == reflect.Interface {
		if rval.IsNil() {
			return nil, false
		}
		rval = rval.Elem()
	}
	if rval.Kind() == reflect.Struct && rval.NumField() == 1 { // types.ArrayOfX{X: []...}
		rval = rval.Field(0)
	}
	if rval.Kind() != reflect.Slice {
		return nil, false
	}
	for i := 0; i < rval.Len(); i++ {
		item := rval.Index(i)
		for item.Kind() == reflect.Ptr || item.Kind() == reflect.Interface {
			if item.IsNil() {
				break
			}
			item = item.Elem()
		}
		if item.Kind() != reflect.Struct {
			continue
		}
		k := item.FieldByName("Key")
		if !k.IsValid() || k.Interface() != ip.key {
			continue
		}
		if ip.item == "" {
			return item.Interface(), true
		}
		v, ok := valueAt(item, ip.item)
		if !ok || (v.Kind() == reflect.Ptr && v.IsNil()) {
			return nil, false
		}
		if v.Kind() == reflect.Ptr {
			v = v.Elem()
		}
		return v.Interface(), true
	}
	return nil, false
}
