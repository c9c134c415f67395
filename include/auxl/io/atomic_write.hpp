// auxl/io/atomic_write.hpp — write a file so that the previous version survives any failure.
//
// Everything auxl writes (checkpoints, IDX/npy files, CSV logs at the end of an epoch) goes to a
// temporary file beside the target, is flushed and checked, and only then renamed over the
// target.  rename() within one directory is atomic on POSIX, so a reader sees the old file or
// the new one, never half of either; a failure removes the temporary and leaves the old file.
#pragma once

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <system_error>

#include <unistd.h>

#include "auxl/core/error.hpp"

namespace auxl::io {

/// A temporary path beside `target` that no other process of ours uses.
inline std::filesystem::path temporary_path_for(const std::filesystem::path& target) {
    return target.string() + ".tmp-" + std::to_string(::getpid());
}

/// Renames `temporary` over `target`; on failure removes the temporary and throws io_error.
inline void commit_temporary(const std::filesystem::path& temporary, const std::filesystem::path& target) {
    std::error_code ec;
    std::filesystem::rename(temporary, target, ec);
    if (ec) {
        std::filesystem::remove(temporary, ec);
        raise<io_error>("auxl: cannot rename ", temporary.string(), " to ", target.string(), ": ", ec.message());
    }
}

/// Calls write(stream) on a binary stream to a temporary file, then renames it to `target`.
inline void write_atomically(const std::filesystem::path& target, const std::function<void(std::ostream&)>& write) {
    const auto temporary = temporary_path_for(target);
    {
        std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
        if (!out) raise<io_error>("auxl: cannot open ", temporary.string(), " for writing (directory missing or not writable?)");
        try {
            write(out);
        } catch (...) {
            out.close();
            std::error_code ec;
            std::filesystem::remove(temporary, ec);
            throw;
        }
        // flush() and close() both write: either can hit a full disk or a file-size limit.
        out.flush();
        const bool written = static_cast<bool>(out);
        out.close();
        if (!written || out.fail()) {
            std::error_code ec;
            std::filesystem::remove(temporary, ec);
            raise<io_error>("auxl: writing ", temporary.string(), " failed (disk full?); ", target.string(), " is unchanged");
        }
    }
    commit_temporary(temporary, target);
}

}  // namespace auxl::io
