// auxl/core/error.hpp — the exception hierarchy.
//
// Every error auxl raises at run time derives from auxl::error, and its message names what was
// expected and what was found (a width, a file, a field), so a user can fix the input without
// reading our source.  Errors that are known at compile time are static_asserts instead.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace auxl {

struct error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

/// Data of the wrong shape: width, batch size, number of targets.
struct shape_error : error {
    using error::error;
};

/// A value outside its domain: a label out of range, a NaN or Inf where a finite number is needed.
struct value_error : error {
    using error::error;
};

/// Training produced a non-finite number: a NaN or Inf loss or gradient (the run diverged).
struct numeric_error : error {
    using error::error;
};

/// A file that cannot be read or written, or whose contents are corrupt.
struct io_error : error {
    using error::error;
};

/// A hyper-parameter or a combination of options that cannot work.
struct config_error : error {
    using error::error;
};

namespace detail {
/// Builds a message from any streamable pieces: make_message("expected ", 784, " found ", 783).
template <class... Parts>
std::string make_message(const Parts&... parts) {
    std::ostringstream out;
    (out << ... << parts);
    return out.str();
}
}  // namespace detail

/// Throws Error with a message built from the streamable parts.
template <class Error = error, class... Parts>
[[noreturn]] void raise(const Parts&... parts) {
    throw Error(detail::make_message(parts...));
}

}  // namespace auxl
