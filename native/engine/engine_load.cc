// Engine::Load — the one function of the engine that knows the ONNX Runtime model (kept apart so that engine.cc
// builds and is tested without ONNX Runtime).
#include "engine/causal_lm.h"
#include "engine/engine.h"
#include "engine/model_files.h"

namespace tokmeter::engine {

std::shared_ptr<Engine> Engine::Load(const EngineOptions& options) {
  ModelFileFor(options.dtype);  // an unknown dtype is refused before anything is opened
  if (options.maxBatch < 1) throw Error(codes::kInvalidArgument, "expected maxBatch >= 1");
  LoadOptions load;
  load.dir = options.dir;
  load.dtype = options.dtype;
  load.threads = options.threads;
  load.device = options.device;
  load.deviceId = options.deviceId;
  load.maxSequences = options.maxBatch;  // every live sequence holds a device sampler slot
  return Create(CausalLm::Load(load, options.config), options);
}

}  // namespace tokmeter::engine
