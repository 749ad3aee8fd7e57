// FnRef: a non-owning, non-allocating reference to a callable (like std::function_ref in C++26).
// The referenced callable must outlive every call.
#pragma once

#include <type_traits>
#include <utility>

namespace tokmeter::tokenizer {

template <class Sig>
class FnRef;

template <class R, class... A>
class FnRef<R(A...)> {
 public:
  template <class F>
    requires(!std::is_same_v<std::remove_cvref_t<F>, FnRef>)
  FnRef(F& f)
      : obj_(&f), call_([](void* o, A... a) -> R { return (*static_cast<F*>(o))(std::forward<A>(a)...); }) {}  // NOLINT
  R operator()(A... a) const { return call_(obj_, std::forward<A>(a)...); }

 private:
  void* obj_;
  R (*call_)(void*, A...);
};

}  // namespace tokmeter::tokenizer
