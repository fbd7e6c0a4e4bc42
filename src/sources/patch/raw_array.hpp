// raw_array.hpp - a growable array of trivially copyable values in raw-mmap memory, for the patcher's
// scratch lists (function extents, sites): the installer allocates nothing from malloc.
//
// Locking: none; one owner. Lifetime: the memory is unmapped by the destructor.
// Context: not a signal handler (it maps memory); no malloc, no lock.
// Memory ordering: none.
#pragma once

#include <sys/mman.h>

#include <cstddef>
#include <type_traits>

#include "sources/patch/scratch.hpp"
#include "sources/sys/sys.hpp"

namespace umn::detail::patch {

template <typename T>
class RawArray {
  static_assert(std::is_trivially_copyable_v<T>);

 public:
  RawArray() = default;
  RawArray(const RawArray&) = delete;
  RawArray& operator=(const RawArray&) = delete;
  ~RawArray() {
    if (data_ != nullptr) unmap_scratch(data_, bytes(capacity_));
  }

  // Appends v. Return: false when memory could not be mapped (v is dropped).
  bool push(const T& v) noexcept {
    if (size_ == capacity_ && !grow()) return false;
    data_[size_++] = v;
    return true;
  }
  T* begin() noexcept { return data_; }
  T* end() noexcept { return data_ + size_; }
  const T* begin() const noexcept { return data_; }
  const T* end() const noexcept { return data_ + size_; }
  T& operator[](size_t i) noexcept { return data_[i]; }
  const T& operator[](size_t i) const noexcept { return data_[i]; }
  size_t size() const noexcept { return size_; }
  void truncate(size_t n) noexcept { size_ = n < size_ ? n : size_; }

 private:
  static size_t bytes(size_t n) noexcept { return sys::page_up(n * sizeof(T)); }
  // A new mapping and a copy (not mremap: a move would unmap the old range unannounced, scratch.hpp).
  bool grow() noexcept {
    const size_t wanted = capacity_ == 0 ? sys::kPageSize / sizeof(T) : capacity_ * 2;
    long got = sys::mmap(nullptr, bytes(wanted), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (sys::failed(got)) return false;
    T* fresh = reinterpret_cast<T*>(got);
    for (size_t i = 0; i < size_; ++i) fresh[i] = data_[i];
    if (data_ != nullptr) unmap_scratch(data_, bytes(capacity_));
    data_ = fresh;
    capacity_ = bytes(wanted) / sizeof(T);
    return true;
  }

  T* data_ = nullptr;
  size_t size_ = 0;
  size_t capacity_ = 0;
};

}  // namespace umn::detail::patch
