package main

// /sdk/vimService.wsdl and /sdk/vim.wsdl, which oslo.vmware's suds client
// loads before its first call. The lab's build generates them (wsdlgen/)
// from govmomi's vim25/types, next to the binary; a real vCenter serves
// VMware's own WSDL and XSDs there.

import (
	"log"
	"net/http"
	"os"
	"path/filepath"
)

var wsdlFiles = []string{"vimService.wsdl", "vim.wsdl"}

func defaultWSDLDir() string {
	exe, err := os.Executable()
	if err != nil {
		return "wsdl"
	}
	return filepath.Join(filepath.Dir(exe), "wsdl")
}

func serveWSDL(mux *http.ServeMux, dir string) {
	for _, name := range wsdlFiles {
		file := filepath.Join(dir, name)
		if _, err := os.Stat(file); err != nil {
			log.Printf("wsdl: %s missing (run wsdlgen): /sdk/%s answers 404", file, name)
		}
		mux.HandleFunc("/sdk/"+name, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/xml; charset=utf-8")
			http.ServeFile(w, r, file)
		})
	}
}
