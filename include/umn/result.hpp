// result.hpp - umn::Result<T>: a value or a std::error_code (std::expected is not in g++ 12), and the
// mapping from the C API's negative errno values to std::error_code.
//
// Locking: none. Lifetime: a Result owns its value. Context: any.
#pragma once

#include <cerrno>
#include <system_error>
#include <utility>
#include <variant>

namespace umn {

// The std::error_code for a C API return value: 0 is success, -E is std::generic_category() E.
inline std::error_code errno_code(int negative_errno) noexcept {
  return negative_errno == 0 ? std::error_code{} : std::error_code(-negative_errno, std::generic_category());
}

template <class T>
class Result {
 public:
  Result(T value) : state_(std::move(value)) {}     // NOLINT(google-explicit-constructor): returned by value
  Result(std::error_code error) : state_(error) {}  // NOLINT(google-explicit-constructor)

  [[nodiscard]] bool ok() const noexcept { return std::holds_alternative<T>(state_); }
  explicit operator bool() const noexcept { return ok(); }
  // The value. Precondition: ok().
  [[nodiscard]] T& value() & { return std::get<T>(state_); }
  [[nodiscard]] T&& value() && { return std::get<T>(std::move(state_)); }
  // The error; an empty code when ok().
  [[nodiscard]] std::error_code error() const noexcept {
    return ok() ? std::error_code{} : std::get<std::error_code>(state_);
  }

 private:
  std::variant<T, std::error_code> state_;
};

}  // namespace umn
