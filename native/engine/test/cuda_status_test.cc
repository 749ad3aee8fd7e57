// CudaStatusReport::ready() (cuda_plugin.h): true only when every piece cudaStatus() lists is present, so a machine
// where one library the ONNX Runtime CUDA provider loads is missing reads as not ready (the GPU tests then skip with
// that library named) instead of ready-then-failing at Model.load. Header only: no plug-in, no CUDA, no ORT.
#include "engine/cuda_plugin.h"
#include "test/test_util.h"

using tokmeter::engine::CudaLibraryProbe;
using tokmeter::engine::CudaStatusReport;

namespace {

CudaStatusReport Everything() {
  CudaStatusReport r;
  r.pluginLoaded = true;
  r.providerLibrary = true;
  r.providerSharedLibrary = true;
  r.deviceCount = 1;
  for (const char* name :
       {"libcuda.so.1", "libcudart.so.13", "libcublas.so.13", "libcublasLt.so.13", "libcurand.so.10"}) {
    CudaLibraryProbe p;
    p.name = name;
    p.loadable = true;
    r.libraries.push_back(p);
  }
  return r;
}

}  // namespace

TEST(ReadyWhenEverythingIsPresent) { CHECK(Everything().ready()); }

TEST(NotReadyWhenAProviderLibraryIsMissing) {
  for (size_t i = 0; i < Everything().libraries.size(); ++i) {
    CudaStatusReport r = Everything();
    r.libraries[i].loadable = false;
    r.libraries[i].error = r.libraries[i].name + ": cannot open shared object file";
    CHECK(!r.ready());
  }
}

TEST(NotReadyWithoutPluginProviderOrDevice) {
  CudaStatusReport a = Everything();
  a.pluginLoaded = false;
  CHECK(!a.ready());
  CudaStatusReport b = Everything();
  b.providerLibrary = false;
  CHECK(!b.ready());
  CudaStatusReport c = Everything();
  c.providerSharedLibrary = false;
  CHECK(!c.ready());
  CudaStatusReport d = Everything();
  d.deviceCount = 0;
  CHECK(!d.ready());
}

int main() { return tmtest::RunAll(); }
