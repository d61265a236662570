// wsdlgen writes the vSphere WSDL documents the simulator serves
// (/sdk/vimService.wsdl and the vim.wsdl it imports), generated from the
// Go sources of govmomi's vim25/types package the simulator is built with.
//
// vim25/types is itself generated from VMware's WSDL, so its declarations
// map back one to one: a struct is a complexType (an embedded first field is
// its base type), `type X string` an enum, `type X XRequestType` a method's
// request element, XResponse its response element, interfaces BaseX stand
// for X and its subtypes. The XSD names come from the package's registry
// (t["Name"] = ...), which spells a few types differently from Go.
// SOAP clients that read the WSDL (suds, as oslo.vmware uses it) need the
// types, the request/response elements and one operation per method.
//
// The lab's build runs it (lab/lib/vsphere.sh):
//
//	wsdlgen -types $GOPATH/src/github.com/vmware/govmomi/vim25/types -out DIR
package main

import (
	"bytes"
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"log"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

const apiVersion = "6.5" // the simulated vCenter's about.apiVersion (soapAction urn:vim25/6.5)

type gen struct {
	structs  map[string]*ast.StructType // Go name -> struct
	enums    map[string]bool            // Go name of `type X string`
	enumVals map[string][]string        // Go enum name -> values
	requests map[string]string          // request element (XSD) -> Go request type
	xsdName  map[string]string          // Go name -> XSD name (from the registry)
	base     map[string]string          // Go name -> embedded base Go name
}

var registry = regexp.MustCompile(`t\["([A-Za-z0-9_]+)"\] = reflect\.TypeOf\(\(\*([A-Za-z0-9_]+)\)\(nil\)\)`)

func main() {
	dir := flag.String("types", "/usr/share/gocode/src/github.com/vmware/govmomi/vim25/types", "govmomi's vim25/types source directory")
	out := flag.String("out", "wsdl", "output directory")
	flag.Parse()

	g := &gen{
		structs:  map[string]*ast.StructType{},
		enums:    map[string]bool{},
		enumVals: map[string][]string{},
		requests: map[string]string{},
		xsdName:  map[string]string{},
		base:     map[string]string{},
	}
	fset := token.NewFileSet()
	for _, name := range []string{"types.go", "enum.go", "if.go"} {
		path := filepath.Join(*dir, name)
		src, err := os.ReadFile(path)
		if err != nil {
			log.Fatal(err)
		}
		for _, m := range registry.FindAllSubmatch(src, -1) {
			if x, goName := string(m[1]), string(m[2]); x != "Base"+goName {
				g.xsdName[goName] = x
			}
		}
		f, err := parser.ParseFile(fset, path, src, 0)
		if err != nil {
			log.Fatal(err)
		}
		g.collect(f)
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		log.Fatal(err)
	}
	write(filepath.Join(*out, "vim.wsdl"), g.vimWSDL())
	write(filepath.Join(*out, "vimService.wsdl"), []byte(vimService))
}

func write(path string, b []byte) {
	if err := os.WriteFile(path+".new", b, 0o644); err != nil {
		log.Fatal(err)
	}
	if err := os.Rename(path+".new", path); err != nil {
		log.Fatal(err)
	}
}

func (g *gen) collect(f *ast.File) {
	for _, d := range f.Decls {
		gd, ok := d.(*ast.GenDecl)
		if !ok {
			continue
		}
		for _, s := range gd.Specs {
			switch s := s.(type) {
			case *ast.TypeSpec:
				switch t := s.Type.(type) {
				case *ast.StructType:
					g.structs[s.Name.Name] = t
					if len(t.Fields.List) > 0 && len(t.Fields.List[0].Names) == 0 {
						g.base[s.Name.Name] = typeName(t.Fields.List[0].Type)
					}
				case *ast.Ident:
					if t.Name == "string" {
						g.enums[s.Name.Name] = true
					} else if strings.HasSuffix(t.Name, "RequestType") {
						g.requests[s.Name.Name] = t.Name
					}
				}
			case *ast.ValueSpec:
				// VirtualMachinePowerStatePoweredOn = VirtualMachinePowerState("poweredOn")
				for _, v := range s.Values {
					if c, ok := v.(*ast.CallExpr); ok && len(c.Args) == 1 {
						if id, ok := c.Fun.(*ast.Ident); ok {
							if lit, ok := c.Args[0].(*ast.BasicLit); ok && lit.Kind == token.STRING {
								val, _ := strconv.Unquote(lit.Value)
								g.enumVals[id.Name] = append(g.enumVals[id.Name], val)
							}
						}
					}
				}
			}
		}
	}
}

func typeName(e ast.Expr) string {
	switch t := e.(type) {
	case *ast.Ident:
		return t.Name
	case *ast.StarExpr:
		return typeName(t.X)
	case *ast.ArrayType:
		return typeName(t.Elt)
	case *ast.SelectorExpr:
		return typeName(t.X) + "." + t.Sel.Name
	}
	return ""
}

func (g *gen) xsd(goName string) string {
	if x, ok := g.xsdName[goName]; ok {
		return x
	}
	return goName
}

// ref is the XSD type a field of Go type e refers to.
func (g *gen) ref(e ast.Expr) string {
	if a, ok := e.(*ast.ArrayType); ok {
		e = a.Elt
	}
	if s, ok := e.(*ast.StarExpr); ok {
		e = s.X
	}
	name := typeName(e)
	switch name {
	case "string":
		return "xsd:string"
	case "bool":
		return "xsd:boolean"
	case "int32":
		return "xsd:int"
	case "int64":
		return "xsd:long"
	case "int16":
		return "xsd:short"
	case "byte", "int8", "uint8":
		return "xsd:byte"
	case "float32":
		return "xsd:float"
	case "float64":
		return "xsd:double"
	case "time.Time":
		return "xsd:dateTime"
	case "AnyType":
		return "xsd:anyType"
	}
	if strings.HasPrefix(name, "Base") {
		if _, ok := g.structs[name]; !ok {
			name = strings.TrimPrefix(name, "Base")
		}
	}
	return "vim25:" + g.xsd(name)
}

func (g *gen) isFault(goName string) bool {
	for n := goName; n != ""; n = g.base[n] {
		if n == "MethodFault" {
			return true
		}
	}
	return false
}

// elements writes a struct's fields (not its embedded base) as xsd elements.
func (g *gen) elements(b *bytes.Buffer, st *ast.StructType, indent string) {
	for i, f := range st.Fields.List {
		if i == 0 && len(f.Names) == 0 {
			continue
		}
		tag := ""
		if f.Tag != nil {
			s, _ := strconv.Unquote(f.Tag.Value)
			tag = reflect.StructTag(s).Get("xml")
		}
		parts := strings.Split(tag, ",")
		name := parts[0]
		if name == "" || name == "-" {
			continue
		}
		omit := strings.Contains(tag, "omitempty")
		_, ptr := f.Type.(*ast.StarExpr)
		_, isArr := f.Type.(*ast.ArrayType)
		occurs := ""
		if omit || ptr || isArr {
			occurs = ` minOccurs="0"`
		}
		if isArr {
			occurs += ` maxOccurs="unbounded"`
		}
		fmt.Fprintf(b, "%s<element name=%q type=%q%s/>\n", indent, name, g.ref(f.Type), occurs)
	}
}

func (g *gen) vimWSDL() []byte {
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>
<!-- Generated by the lab's wsdlgen from govmomi's vim25/types (the simulator's own types); not VMware's WSDL. -->
<definitions targetNamespace="urn:vim25" xmlns="http://schemas.xmlsoap.org/wsdl/" xmlns:soap="http://schemas.xmlsoap.org/wsdl/soap/" xmlns:vim25="urn:vim25" xmlns:xsd="http://www.w3.org/2001/XMLSchema">
<types>
<schema targetNamespace="urn:vim25" xmlns="http://www.w3.org/2001/XMLSchema" xmlns:vim25="urn:vim25" xmlns:xsd="http://www.w3.org/2001/XMLSchema" elementFormDefault="qualified">
`)
	// Complex types: every registered struct plus the unregistered ones
	// (e.g. XResponse is inlined in its element below, not a type).
	var names []string
	for n := range g.structs {
		names = append(names, n)
	}
	sort.Strings(names)
	var faults []string
	for _, n := range names {
		st := g.structs[n]
		if _, registered := g.xsdName[n]; !registered && !strings.HasSuffix(n, "RequestType") {
			continue
		}
		x := g.xsd(n)
		if n == "ManagedObjectReference" {
			b.WriteString(`<complexType name="ManagedObjectReference"><simpleContent><extension base="xsd:string"><attribute name="type" type="xsd:string"/></extension></simpleContent></complexType>
`)
			continue
		}
		if g.isFault(n) {
			faults = append(faults, x)
		}
		fmt.Fprintf(&b, "<complexType name=%q>\n", x)
		if base, ok := g.base[n]; ok {
			fmt.Fprintf(&b, " <complexContent><extension base=\"vim25:%s\"><sequence>\n", g.xsd(base))
			g.elements(&b, st, "  ")
			b.WriteString(" </sequence></extension></complexContent>\n")
		} else {
			b.WriteString(" <sequence>\n")
			g.elements(&b, st, "  ")
			b.WriteString(" </sequence>\n")
		}
		b.WriteString("</complexType>\n")
	}
	var enums []string
	for n := range g.enums {
		enums = append(enums, n)
	}
	sort.Strings(enums)
	for _, n := range enums {
		fmt.Fprintf(&b, "<simpleType name=%q><restriction base=\"xsd:string\">", g.xsd(n))
		for _, v := range g.enumVals[n] {
			fmt.Fprintf(&b, "<enumeration value=%q/>", v)
		}
		b.WriteString("</restriction></simpleType>\n")
	}
	for _, f := range faults {
		fmt.Fprintf(&b, "<element name=\"%sFault\" type=\"vim25:%s\"/>\n", f, f)
	}
	var ops []string
	for op := range g.requests {
		ops = append(ops, op)
	}
	sort.Strings(ops)
	for _, goOp := range ops {
		op := g.xsd(goOp)
		fmt.Fprintf(&b, "<element name=%q type=\"vim25:%s\"/>\n", op, g.xsd(g.requests[goOp]))
		fmt.Fprintf(&b, "<element name=\"%sResponse\"><complexType><sequence>\n", op)
		if st, ok := g.structs[goOp+"Response"]; ok {
			g.elements(&b, st, " ")
		}
		b.WriteString("</sequence></complexType></element>\n")
	}
	b.WriteString("</schema>\n</types>\n")
	for _, goOp := range ops {
		op := g.xsd(goOp)
		fmt.Fprintf(&b, "<message name=\"%sRequestMsg\"><part name=\"parameters\" element=\"vim25:%s\"/></message>\n", op, op)
		fmt.Fprintf(&b, "<message name=\"%sResponseMsg\"><part name=\"parameters\" element=\"vim25:%sResponse\"/></message>\n", op, op)
	}
	b.WriteString("<message name=\"RuntimeFaultFaultMsg\"><part name=\"fault\" element=\"vim25:RuntimeFaultFault\"/></message>\n")
	b.WriteString("<portType name=\"VimPortType\">\n")
	for _, goOp := range ops {
		op := g.xsd(goOp)
		fmt.Fprintf(&b, "<operation name=%q><input message=\"vim25:%sRequestMsg\"/><output message=\"vim25:%sResponseMsg\"/><fault name=\"RuntimeFault\" message=\"vim25:RuntimeFaultFaultMsg\"/></operation>\n", op, op, op)
	}
	b.WriteString("</portType>\n<binding name=\"VimBinding\" type=\"vim25:VimPortType\">\n<soap:binding style=\"document\" transport=\"http://schemas.xmlsoap.org/soap/http\"/>\n")
	for _, goOp := range ops {
		op := g.xsd(goOp)
		fmt.Fprintf(&b, "<operation name=%q><soap:operation soapAction=\"urn:vim25/%s\" style=\"document\"/><input><soap:body use=\"literal\"/></input><output><soap:body use=\"literal\"/></output><fault name=\"RuntimeFault\"><soap:fault name=\"RuntimeFault\" use=\"literal\"/></fault></operation>\n", op, apiVersion)
	}
	b.WriteString("</binding>\n</definitions>\n")
	return b.Bytes()
}

const vimService = `<?xml version="1.0" encoding="UTF-8"?>
<!-- Generated by the lab's wsdlgen; the simulator serves it at /sdk/vimService.wsdl. -->
<definitions targetNamespace="urn:vim25Service" xmlns="http://schemas.xmlsoap.org/wsdl/" xmlns:soap="http://schemas.xmlsoap.org/wsdl/soap/" xmlns:interface="urn:vim25">
<import location="vim.wsdl" namespace="urn:vim25"/>
<service name="VimService">
<port binding="interface:VimBinding" name="VimPort">
<soap:address location="https://localhost/sdk"/>
</port>
</service>
</definitions>
`
