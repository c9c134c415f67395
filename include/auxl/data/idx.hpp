// auxl/data/idx.hpp — IDX files (the MNIST / Fashion-MNIST format), raw or gzip-compressed.
//
// Layout: two zero bytes, a type code (0x08 = unsigned byte; the only type these data sets use
// and the only one read here), the number of dimensions, then each dimension as a big-endian
// 32-bit integer, then the values.  zlib's gzread reads gzip and plain files alike, so one code
// path serves both.  Every malformed file is an io_error naming the file, the field, the value
// expected and the value found: wrong magic, unsupported type, zero or too many dimensions,
// truncated data, trailing bytes, a corrupt gzip stream.  This is the only header that uses zlib.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <zlib.h>

#include "auxl/core/error.hpp"
#include "auxl/io/atomic_write.hpp"

namespace auxl::data {

/// An IDX array of unsigned bytes: dims (outermost first) and the values, row-major.
struct idx_array {
    std::vector<std::size_t> dims;
    std::vector<std::uint8_t> values;
};

namespace detail {

/// Largest decompressed file accepted (guards against decompression bombs): 4 GiB.
inline constexpr std::size_t idx_max_bytes = std::size_t(1) << 32;

inline std::vector<std::uint8_t> read_all_gz(const std::string& path) {
    gzFile file = gzopen(path.c_str(), "rb");
    if (!file) raise<io_error>("auxl::data::read_idx: cannot open ", path);
    std::vector<std::uint8_t> bytes;
    std::vector<std::uint8_t> chunk(1 << 16);
    for (;;) {
        const int got = gzread(file, chunk.data(), static_cast<unsigned>(chunk.size()));
        if (got < 0) {
            int code = 0;
            const std::string message = gzerror(file, &code);
            gzclose(file);
            raise<io_error>("auxl::data::read_idx: ", path, " is not a readable gzip or raw file (", message, ")");
        }
        if (got == 0) break;
        bytes.insert(bytes.end(), chunk.begin(), chunk.begin() + got);
        if (bytes.size() > idx_max_bytes) {
            gzclose(file);
            raise<io_error>("auxl::data::read_idx: ", path, " decompresses to more than ", idx_max_bytes, " bytes");
        }
    }
    int code = 0;
    const std::string message = gzerror(file, &code);
    gzclose(file);
    // A gzip stream cut short reads as EOF with Z_BUF_ERROR ("unexpected end of file").
    if (code != Z_OK && code != Z_STREAM_END) {
        raise<io_error>("auxl::data::read_idx: ", path, " is a truncated or corrupt gzip stream (", message, ")");
    }
    return bytes;
}

}  // namespace detail

/// Reads an unsigned-byte IDX file (gzip or raw).
inline idx_array read_idx(const std::filesystem::path& path) {
    const std::string name = path.string();
    const auto bytes = detail::read_all_gz(name);
    if (bytes.size() < 4) {
        raise<io_error>("auxl::data::read_idx: ", name, " field header: expected at least 4 bytes, found ", bytes.size());
    }
    if (bytes[0] != 0 || bytes[1] != 0) {
        raise<io_error>("auxl::data::read_idx: ", name, " field magic: expected 0x0000, found 0x", std::hex,
                        int(bytes[0]) * 256 + int(bytes[1]));
    }
    if (bytes[2] != 0x08) {
        raise<io_error>("auxl::data::read_idx: ", name, " field type: expected 0x08 (unsigned byte), found 0x", std::hex,
                        int(bytes[2]));
    }
    const std::size_t rank = bytes[3];
    if (rank < 1 || rank > 4) {
        raise<io_error>("auxl::data::read_idx: ", name, " field dimensions: expected 1 to 4, found ", rank);
    }
    const std::size_t header = 4 + 4 * rank;
    if (bytes.size() < header) {
        raise<io_error>("auxl::data::read_idx: ", name, " field sizes: expected ", header, " header bytes, found ",
                        bytes.size());
    }
    idx_array out;
    std::size_t count = 1;
    for (std::size_t d = 0; d < rank; ++d) {
        const std::uint8_t* p = bytes.data() + 4 + 4 * d;
        const std::size_t dim = (std::size_t(p[0]) << 24) | (std::size_t(p[1]) << 16) | (std::size_t(p[2]) << 8) | p[3];
        out.dims.push_back(dim);
        count *= dim;  // at most (2^32)^4 would overflow, but the byte check below bounds it first
        if (count > detail::idx_max_bytes) {
            raise<io_error>("auxl::data::read_idx: ", name, " field sizes: ", count, " values exceed the limit of ",
                            detail::idx_max_bytes);
        }
    }
    if (bytes.size() - header != count) {
        raise<io_error>("auxl::data::read_idx: ", name, " field data: expected ", count, " bytes for dimensions",
                        [&] {
                            std::string s;
                            for (auto d : out.dims) {
                                s += ' ';
                                s += std::to_string(d);
                            }
                            return s;
                        }(),
                        ", found ", bytes.size() - header, bytes.size() - header < count ? " (truncated)" : " (trailing bytes)");
    }
    out.values.assign(bytes.begin() + std::ptrdiff_t(header), bytes.end());
    return out;
}

/// Writes an unsigned-byte IDX file, gzip-compressed when `compress` (or when the name ends in
/// .gz and compress is left at its default), atomically (temporary file + rename).
inline void write_idx(const std::filesystem::path& path, const idx_array& array, int compress = -1) {
    const bool gz = compress < 0 ? path.extension() == ".gz" : compress > 0;
    if (array.dims.empty() || array.dims.size() > 4) {
        raise<shape_error>("auxl::data::write_idx: ", array.dims.size(), " dimensions; IDX needs 1 to 4");
    }
    std::size_t count = 1;
    for (auto d : array.dims) count *= d;
    if (count != array.values.size()) {
        raise<shape_error>("auxl::data::write_idx: dimensions give ", count, " values, the array has ", array.values.size());
    }
    std::vector<std::uint8_t> bytes = {0, 0, 0x08, static_cast<std::uint8_t>(array.dims.size())};
    for (auto d : array.dims) {
        for (int shift = 24; shift >= 0; shift -= 8) bytes.push_back(static_cast<std::uint8_t>((d >> shift) & 0xFF));
    }
    bytes.insert(bytes.end(), array.values.begin(), array.values.end());
    const auto temporary = io::temporary_path_for(path);
    gzFile file = gzopen(temporary.c_str(), gz ? "wb" : "wbT");  // "T": write without compression
    if (!file) raise<io_error>("auxl::data::write_idx: cannot open ", temporary.string(), " for writing");
    // gzfwrite takes a size_t count (gzwrite's int result would cap a file at 2 GiB).
    const z_size_t written = bytes.empty() ? 0 : gzfwrite(bytes.data(), 1, bytes.size(), file);
    const int closed = gzclose(file);
    if (written != bytes.size() || closed != Z_OK) {
        std::error_code ec;
        std::filesystem::remove(temporary, ec);
        raise<io_error>("auxl::data::write_idx: writing ", temporary.string(), " failed; ", path.string(), " is unchanged");
    }
    io::commit_temporary(temporary, path);
}

}  // namespace auxl::data
