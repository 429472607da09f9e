#pragma once

// Intrusive reference counting for objects that live on one worker thread.
//
// A request in flight holds a reference to whoever waits for its reply, so a client that goes
// away while its requests are out is destroyed only after the last reply (or failure) has been
// delivered and dropped. The count is a plain integer: these objects never leave their thread.

#include <cstdint>
#include <utility>

namespace cachegate::routing {

class RefCounted {
 public:
  RefCounted() = default;
  RefCounted(const RefCounted&) = delete;
  RefCounted& operator=(const RefCounted&) = delete;

  void add_ref() { ++refs_; }
  void release() {
    if (--refs_ == 0) destroy();
  }
  uint32_t ref_count() const { return refs_; }

 protected:
  virtual ~RefCounted() = default;
  // Called when the last reference goes; pooled objects override it to recycle themselves.
  virtual void destroy() { delete this; }

 private:
  uint32_t refs_ = 0;
};

// An owning pointer to a RefCounted object.
template <class T>
class Ref {
 public:
  Ref() = default;
  Ref(T* p) : p_(p) {  // NOLINT: implicit by design, like a raw pointer
    if (p_) p_->add_ref();
  }
  Ref(const Ref& o) : Ref(o.p_) {}
  Ref(Ref&& o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
  template <class U>
  Ref(const Ref<U>& o) : Ref(o.get()) {}
  ~Ref() {
    if (p_) p_->release();
  }
  Ref& operator=(Ref o) noexcept {
    std::swap(p_, o.p_);
    return *this;
  }
  T* get() const { return p_; }
  T* operator->() const { return p_; }
  T& operator*() const { return *p_; }
  explicit operator bool() const { return p_ != nullptr; }
  void reset() { Ref().swap(*this); }
  void swap(Ref& o) noexcept { std::swap(p_, o.p_); }

 private:
  T* p_ = nullptr;
};

template <class T, class... Args>
Ref<T> make_ref(Args&&... args) {
  return Ref<T>(new T(std::forward<Args>(args)...));
}

}  // namespace cachegate::routing
