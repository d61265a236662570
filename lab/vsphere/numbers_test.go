package main

import (
	"strings"
	"testing"
)

func TestIntegralFloats(t *testing.T) {
	in := `<?xml version="1.0"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:ns1="urn:vim25"><soapenv:Body><ns1:CreateVirtualDisk_Task><ns1:_this type="VirtualDiskManager">vdm</ns1:_this><ns1:name>[ds] a/b.vmdk</ns1:name><ns1:spec xsi:type="ns1:FileBackedVirtualDiskSpec"><ns1:diskType>preallocated</ns1:diskType><ns1:adapterType>lsiLogic</ns1:adapterType><ns1:capacityKb>1024.0</ns1:capacityKb></ns1:spec></ns1:CreateVirtualDisk_Task></soapenv:Body></soapenv:Envelope>`
	out := string(integralFloats([]byte(in)))
	if !strings.Contains(out, "<ns1:capacityKb>1024</ns1:capacityKb>") || strings.Replace(out, ">1024<", ">1024.0<", 1) != in {
		t.Fatal(out)
	}
	ext := `<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:ns1="urn:vim25"><soapenv:Body><ns1:RegisterExtension><ns1:extension><ns1:key>k</ns1:key><ns1:version>1.0</ns1:version></ns1:extension></ns1:RegisterExtension></soapenv:Body></soapenv:Envelope>`
	if out := string(integralFloats([]byte(ext))); out != ext {
		t.Fatal("string field changed: ", out)
	}
}
